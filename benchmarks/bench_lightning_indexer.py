"""Benchmark of npu_lightning_indexer (FLOPs = 2 * N1 * D * visible pairs, docs/performance.md).

Times the op end to end (score + top-k, host planning included) and, as a peer, the naive
PyTorch indexer of the DeepSeek-V3.2 reference (dense fp32 scores of every visible pair, masked,
torch.topk). Median of ``--repeats`` runs after one warm-up. The default set (``--set cpu``) is
three small shapes for a CPU; ``--set perf`` runs the full set of prefill (S1 2048-8192, S2
8192-131072) and paged decode (B 1-128, context 8192 / 65536) shapes, meant for a GPU.

    python benchmarks/bench_lightning_indexer.py [--device cpu] [--set cpu|perf] [--repeats 3]
        [--backend auto|emulate|triton|...]   (the op's back end: cann_attention.use(backend=))
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import torch

import cann_attention  # registers torch.ops.cann_attention.*

D = 128
PAGE = 64


@dataclass(frozen=True)
class Shape:
    name: str
    batch: int
    s1: int          # query tokens per sequence
    s2: int          # context (keys) per sequence
    n1: int = 64
    k: int = 2048
    paged: bool = False

    def visible_pairs(self) -> int:
        """Right-down causal pairs: query s sees s2 - s1 + s + 1 keys."""
        per_seq = sum(min(self.s2, max(0, self.s2 - self.s1 + s + 1)) for s in range(self.s1))
        return self.batch * per_seq


CPU_SET = [
    Shape("decode B1 ctx8192 paged", 1, 1, 8192, paged=True),
    Shape("decode B4 ctx8192 paged", 4, 1, 8192, paged=True),
    Shape("prefill S1=64 S2=8192", 1, 64, 8192),
]
PERF_SET = ([Shape(f"prefill S1={s1} S2={s2}", 1, s1, s2) for s1 in (2048, 4096, 8192)
             for s2 in (8192, 32768, 131072) if s2 >= s1]
            + [Shape(f"decode B{b} ctx{c} paged", b, 1, c, paged=True) for b in (1, 32, 128)
               for c in (8192, 65536)])


def inputs(shape: Shape, device):
    gen = torch.Generator().manual_seed(0)
    rnd = lambda *s: torch.randn(*s, generator=gen).bfloat16().to(device)  # noqa: E731
    q, w = rnd(shape.batch, shape.s1, shape.n1, D), rnd(shape.batch, shape.s1, shape.n1)
    kw = dict(sparse_count=shape.k, sparse_mode=3)
    if shape.paged:
        pages = -(-shape.s2 // PAGE)
        key = rnd(shape.batch * pages, PAGE, 1, D)
        perm = torch.randperm(shape.batch * pages, generator=gen).reshape(shape.batch, pages)
        kw.update(layout_key="PA_BSND", block_table=perm.to(torch.int32).to(device),
                  actual_seq_lengths_key=torch.full((shape.batch,), shape.s2, dtype=torch.int32,
                                                    device=device))
        dense_key = key[perm.to(device).flatten()].reshape(shape.batch, pages * PAGE, D)
    else:
        key = rnd(shape.batch, shape.s2, 1, D)
        dense_key = key[:, :, 0]
    return q, key, w, kw, dense_key[:, : shape.s2]


def naive_indexer(q, w, dense_key, k):
    """DeepSeek-V3.2 reference style: dense fp32 scores, causal mask, topk(min(k, S2))."""
    s1, s2 = q.shape[1], dense_key.shape[1]
    score = torch.einsum("bshd,btd->bsht", q.float(), dense_key.float()).relu_()
    score = (score * w.float().unsqueeze(-1)).sum(2)
    causal = torch.arange(s2, device=q.device)[None] <= (s2 - s1 + torch.arange(
        s1, device=q.device))[:, None]
    score = score.masked_fill(~causal, float("-inf"))
    return torch.topk(score, min(k, s2), dim=-1).indices


def _median_time(fn, repeats, device):
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", choices=("cpu", "perf"), default="cpu")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-peer", action="store_true", help="skip the naive PyTorch peer")
    ap.add_argument("--backend", default="auto",
                    help="the op's back end (on CUDA: 'triton' for our kernel; auto runs the "
                         "emulator there until the kernel has been verified on a GPU)")
    args = ap.parse_args()
    device = torch.device(args.device)
    print(f"npu_lightning_indexer on {device} (torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads), back end {args.backend}, bf16, K=2048, N1=64, "
          f"D=128, sparse_mode 3")
    print(f"{'shape':32s} {'op ms':>9s} {'GFLOP/s':>9s} {'naive ms':>9s}")
    for shape in CPU_SET if args.set == "cpu" else PERF_SET:
        q, key, w, kw, dense_key = inputs(shape, device)
        op = lambda: torch.ops.cann_attention.npu_lightning_indexer(q, key, w, **kw)  # noqa: E731
        with cann_attention.use(backend=args.backend):
            t_op = _median_time(op, args.repeats, device)
        flops = 2 * shape.n1 * D * shape.visible_pairs()
        peer = "-"
        if not args.no_peer:
            t_peer = _median_time(lambda: naive_indexer(q, w, dense_key, shape.k),
                                  args.repeats, device)
            peer = f"{t_peer * 1e3:9.1f}"
        print(f"{shape.name:32s} {t_op * 1e3:9.1f} {flops / t_op / 1e9:9.2f} {peer:>9s}")


if __name__ == "__main__":
    main()
