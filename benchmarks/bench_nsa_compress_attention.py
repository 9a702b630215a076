"""CPU benchmark of npu_nsa_compress_attention (the emulator executing the CPU plan).

FLOP accounting (2 per multiply-add): the attention pass does 2 * T1 * N1 * C * (D1 + D2), as
docs/performance.md counts; this CPU benchmark also counts the importance pass, which recomputes
the scores over the importance window, 2 * T1 * N1 * C * D1 (halo ignored). Bytes: query, key,
value and outputs, read/written once.
Prints one line per shape: time (median of --repeat runs), GFLOP/s, and the plan's tiles.

Run: python benchmarks/bench_nsa_compress_attention.py [--repeat 5]
     python benchmarks/bench_nsa_compress_attention.py --device cuda [--backend triton] \
         [--shapes ...] [--budget-s N] --json benchmarks/results/nsa_<gpu>_<date>_<tag>.json
(CUDA: bench_nsa_compress_attention_cuda.py, PERF.md's shapes beside plain PyTorch and fla-core.)
"""
from __future__ import annotations

import argparse
import statistics
import time
from itertools import accumulate

import torch

import cann_attention
from cann_attention.op_host.common.platform import CPU
from cann_attention.op_host.nsa_compress_attention import tiling

# (name, B, Sq per batch, C per batch, N1, N2, D1, D2, l, d, l', K)
SHAPES = [
    ("prefill-2k", 1, 2048, 127, 16, 1, 128, 128, 32, 16, 64, 16),
    ("varlen-4x512", 4, 512, 31, 16, 2, 192, 128, 32, 16, 64, 8),
    ("decode-like", 8, 1, 1000, 32, 2, 128, 128, 64, 16, 64, 16),
]


def build(b, sq, c, n1, n2, d1, d2, l, d, ls, k):
    m = ls // d
    q = torch.randn(b * sq, n1, d1).half()
    key, value = torch.randn(b * c, n2, d1).half(), torch.randn(b * c, n2, d2).half()
    kwargs = dict(actual_seq_qlen=list(accumulate([sq] * b)),
                  actual_cmp_seq_kvlen=list(accumulate([c] * b)),
                  actual_sel_seq_kvlen=list(accumulate([-(-c // m)] * b)))
    return (q, key, value, d1 ** -0.5, n1, l, d, ls, k), kwargs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="cpu: timed runs per shape")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--repeats", type=int, default=20, help="cuda: timed runs per measurement")
    ap.add_argument("--backend", default="triton", help="cuda: the op's back end")
    ap.add_argument("--shapes", help="cuda: comma-separated shape names (default: all)")
    ap.add_argument("--budget-s", type=float, default=0,
                    help="cuda: start no shape after this many seconds")
    ap.add_argument("--json", help="cuda: write the results to this file")
    a = ap.parse_args()
    if a.device == "cuda":
        import bench_nsa_compress_attention_cuda
        return bench_nsa_compress_attention_cuda.main(a)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    for name, b, sq, c, n1, n2, d1, d2, l, d, ls, k in SHAPES:
        args, kwargs = build(b, sq, c, n1, n2, d1, d2, l, d, ls, k)
        op = cann_attention.OPS["npu_nsa_compress_attention"]
        p = op.parse(op.bind(args, kwargs))
        op.check(p)
        t = tiling.plan(p, CPU)
        torch.ops.cann_attention.npu_nsa_compress_attention(*args, **kwargs)        # warm-up
        times = []
        for _ in range(a.repeat):
            start = time.perf_counter()
            torch.ops.cann_attention.npu_nsa_compress_attention(*args, **kwargs)
            times.append(time.perf_counter() - start)
        sec = statistics.median(times)
        flops = 2 * b * sq * n1 * c * (2 * d1 + d2)
        print(f"{name:14s} B{b}-S1_{sq}-C_{c}-N1_{n1}-N2_{n2}-D1_{d1}-D2_{d2}-l{l}-d{d}-ls{ls}-K{k}"
              f"-fp16: {sec * 1e3:8.1f} ms  {flops / sec / 1e9:6.2f} GFLOP/s  "
              f"(block_s1={t.block_s1}, block_c={t.block_c}, rounds={t.num_rounds})")


if __name__ == "__main__":
    main()
