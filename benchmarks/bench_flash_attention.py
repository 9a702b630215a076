"""Benchmark of npu_flash_attention (a script, not a test).

CPU (default): times the emulator (the CPU back end) against torch's scaled_dot_product_attention
on the same shapes: a causal GQA prefill, a sliding-window prefill (where tile skipping pays),
and a paged decode step (split-K). Times are medians of ``--repeats`` runs after one warm-up.

FLOPs count only the visible (q, k) pairs: 4 * B * N1 * D * visible pairs (QK^T and PV), the
rule of docs/performance.md with the mask's exact pair count (a causal mask is not taken as half).

    python benchmarks/bench_flash_attention.py [--device cpu] [--repeats 3] [--json out.json]
    python benchmarks/bench_flash_attention.py --device cuda [--backend library] [--shapes ...] \
        [--budget-s N] --json benchmarks/results/fa_<gpu>_<date>_<tag>.json

CUDA: PERF.md's prefill set (bench_flash_attention_cuda.py) in one run: the matmul ceiling, the
op graph-replayed on the named back end, and beside it PyTorch SDPA's flash, cuDNN and efficient
back ends, FlexAttention (compiled, block mask built once) and a plain PyTorch attention.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, dataclass

import torch

import cann_attention  # noqa: F401

OP = torch.ops.cann_attention.npu_flash_attention


@dataclass(frozen=True)
class Shape:
    name: str
    B: int
    S1: int
    S2: int
    N1: int
    N2: int
    D: int
    window: int | None = None     # sliding-window causal (sparse_mode 4, pre = window - 1)
    paged: bool = False


SHAPES = (
    Shape("prefill_causal", B=1, S1=1024, S2=1024, N1=16, N2=4, D=128),
    Shape("prefill_window128", B=1, S1=1024, S2=1024, N1=16, N2=4, D=128, window=128),
    Shape("decode_paged", B=4, S1=1, S2=4096, N1=32, N2=8, D=128, paged=True),
)


def build(s: Shape, device):
    g = torch.Generator().manual_seed(0)
    dt = torch.bfloat16
    r = lambda *shape: torch.randn(*shape, generator=g).to(dt).to(device)  # noqa: E731
    q = r(s.B, s.S1, s.N1, s.D)
    kw = dict(sparse_mode=3)
    if s.window:
        kw = dict(sparse_mode=4, pre_tokens=s.window - 1, next_tokens=0)
    if s.paged:
        bs = 128
        pages = s.S2 // bs
        k, v = r(s.B * pages, bs, s.N2, s.D), r(s.B * pages, bs, s.N2, s.D)
        table = torch.randperm(s.B * pages, generator=g).view(s.B, pages).int().to(device)
        kw.update(layout_kv="PA_BSND", block_table=table,
                  actual_seq_lengths_kv=torch.full((s.B,), s.S2, dtype=torch.int32))
        kd = k[table.long()].flatten(1, 2)                          # dense copy for SDPA
        vd = v[table.long()].flatten(1, 2)
    else:
        k, v = r(s.B, s.S2, s.N2, s.D), r(s.B, s.S2, s.N2, s.D)
        kd, vd = k, v
    i = torch.arange(s.S1).view(-1, 1) + s.S2 - s.S1
    j = torch.arange(s.S2).view(1, -1)
    vis = j <= i
    if s.window:
        vis &= i - j < s.window
    flops = 4 * s.B * s.N1 * s.D * int(vis.sum())
    g_ = s.N1 // s.N2

    def sdpa():
        return torch.nn.functional.scaled_dot_product_attention(
            q.transpose(1, 2), kd.repeat_interleave(g_, 2).transpose(1, 2),
            vd.repeat_interleave(g_, 2).transpose(1, 2), attn_mask=vis.to(device),
            scale=s.D ** -0.5)

    return (lambda: OP(q, k, v, s.D ** -0.5, **kw)), sdpa, flops


def median_time(fn, repeats, device):
    fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed runs per measurement (default: 3 on cpu, 20 on cuda)")
    ap.add_argument("--backend", default="library", help="cuda: the op's back end")
    ap.add_argument("--shapes", help="cuda: comma-separated shape names (default: all)")
    ap.add_argument("--budget-s", type=float, default=0,
                    help="cuda: start no shape after this many seconds")
    ap.add_argument("--json")
    a = ap.parse_args()
    if a.device == "cuda":
        import bench_flash_attention_cuda
        a.repeats = a.repeats or 20
        return bench_flash_attention_cuda.main(a)
    a.repeats = a.repeats or 3
    rows = []
    for s in SHAPES:
        op, sdpa, flops = build(s, a.device)
        t_op = median_time(op, a.repeats, a.device)
        t_sdpa = median_time(sdpa, a.repeats, a.device)
        row = dict(asdict(s), op_ms=t_op * 1e3, sdpa_ms=t_sdpa * 1e3,
                   op_gflops=flops / t_op / 1e9, threads=torch.get_num_threads())
        rows.append(row)
        print(f"{s.name:20s} op {t_op * 1e3:9.1f} ms ({row['op_gflops']:6.2f} GFLOP/s)   "
              f"sdpa(dense mask) {t_sdpa * 1e3:9.1f} ms")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
