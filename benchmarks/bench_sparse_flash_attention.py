"""Benchmark of npu_sparse_flash_attention (a script, not a test).

CPU (default): times the emulator (the CPU back end) and the fp32 reference on the DeepSeek-V3.2
decode shape B=4, N1=128, S1=1, S2=8192, K=2048 (BSND cache) and a small prefill shape.
``--device cuda`` times the op on CUDA tensors (whatever back end dispatch picks there).

Counting follows PERF.md: FLOPs = 2 * N1 * (576 + 512) * (valid selected keys summed over
query tokens); bytes = unique KV tokens read * 1152 + Q + O. Times are medians.

    python benchmarks/bench_sparse_flash_attention.py [--device cpu] [--repeats 5] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass

import torch

import cann_attention  # noqa: F401
from cann_attention.op_kernel.sparse_flash_attention import reference

D, DR = 512, 64


@dataclass(frozen=True)
class Shape:
    name: str
    B: int
    S1: int
    S2: int
    N1: int
    K: int
    sparse_mode: int = 3


SHAPES = (
    Shape("decode", B=4, S1=1, S2=8192, N1=128, K=2048),
    Shape("prefill", B=1, S1=128, S2=4096, N1=16, K=2048),
)


def build(shape: Shape, device):
    g = torch.Generator().manual_seed(0)
    dt = torch.bfloat16
    r = lambda *s: torch.randn(*s, generator=g).to(dt)  # noqa: E731
    q, qr = r(shape.B, shape.S1, shape.N1, D), r(shape.B, shape.S1, shape.N1, DR)
    k, kr = r(shape.B, shape.S2, 1, D), r(shape.B, shape.S2, 1, DR)
    idx = torch.full((shape.B, shape.S1, 1, shape.K), -1, dtype=torch.int32)
    for b in range(shape.B):
        for s in range(shape.S1):
            visible = shape.S2 - shape.S1 + s + 1
            take = min(shape.K, visible)
            idx[b, s, 0, :take] = torch.randperm(visible, generator=g)[:take].to(torch.int32)
    args = tuple(x.to(device) for x in (q, k, k, idx)) + (1.0 / 24, 1)
    kwargs = dict(query_rope=qr.to(device), key_rope=kr.to(device),
                  sparse_mode=shape.sparse_mode)
    valid = int((idx >= 0).sum())
    unique_kv = sum(int(torch.unique(idx[b][idx[b] >= 0]).numel()) for b in range(shape.B))
    flops = 2 * shape.N1 * (D + DR + D) * valid
    nbytes = unique_kv * (D + DR) * 2 + 2 * q.numel() * 2 + qr.numel() * 2
    return args, kwargs, flops, nbytes


def median_time(fn, repeats, device):
    fn()  # warm-up
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
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-reference", action="store_true", help="skip the slow fp32 reference")
    ap.add_argument("--json", help="write the results to this file")
    a = ap.parse_args()
    op = torch.ops.custom.npu_sparse_flash_attention
    rows = []
    for shape in SHAPES:
        args, kwargs, flops, nbytes = build(shape, a.device)
        impls = [("emulate", lambda: op(*args, **kwargs))]
        if not a.no_reference:
            cpu_args = tuple(x.cpu() if isinstance(x, torch.Tensor) else x for x in args)
            cpu_kwargs = {k: v.cpu() if isinstance(v, torch.Tensor) else v
                          for k, v in kwargs.items()}
            impls.append(("reference", lambda: reference.sparse_flash_attention(
                *cpu_args, **cpu_kwargs)))
        for impl, fn in impls:
            secs = median_time(fn, a.repeats if impl == "emulate" else 1, a.device)
            rows.append(dict(shape=asdict(shape), impl=impl, ms=secs * 1e3,
                             gflops=flops / secs / 1e9, gbps=nbytes / secs / 1e9))
    meta = dict(device=a.device, torch=torch.__version__, threads=torch.get_num_threads(),
                machine=platform.processor() or platform.machine(),
                commit=subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                      capture_output=True, text=True).stdout.strip(),
                date=time.strftime("%Y-%m-%d"))
    print(f"npu_sparse_flash_attention on {a.device} ({meta['threads']} threads, "
          f"torch {meta['torch']}, commit {meta['commit']}, {meta['date']})")
    print(f"{'shape':<48} {'impl':<10} {'ms':>10} {'GFLOP/s':>10} {'GB/s':>8}")
    for r in rows:
        s = r["shape"]
        label = (f"{s['name']} B={s['B']} S1={s['S1']} S2={s['S2']} N1={s['N1']} K={s['K']}")
        print(f"{label:<48} {r['impl']:<10} {r['ms']:>10.1f} {r['gflops']:>10.1f} "
              f"{r['gbps']:>8.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(meta=meta, results=rows), f, indent=2)


if __name__ == "__main__":
    main()
