"""CPU benchmark of npu_incre_flash_attention (the emulator executing the CPU plan).

Decode shapes (Q_S = 1). Bytes = the KV bytes read (2 * B * N2 * L * D * itemsize) + query and
output, as docs/performance.md counts decode (less the int8 scales); FLOPs = 4 * B * N1 * L * D
(QK^T and PV). Reports the median of ``--repeat`` runs after one warm-up.

    python benchmarks/bench_incre_flash_attention.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import torch

import cann_attention  # noqa: F401


@dataclass(frozen=True)
class Shape:
    b: int
    n1: int
    n2: int
    d: int
    s: int
    kv: str            # "bf16" or "int8"
    block_size: int    # 0: contiguous BSH cache

    @property
    def id(self) -> str:
        pa = f"-PA_bs{self.block_size}" if self.block_size else ""
        return f"B{self.b}-S1_1-S2_{self.s}-N1_{self.n1}-N2_{self.n2}-D{self.d}-{self.kv}{pa}"


SHAPES = [Shape(1, 32, 8, 128, 4096, "bf16", 0), Shape(8, 32, 8, 128, 2048, "bf16", 0),
          Shape(8, 32, 8, 128, 2048, "bf16", 128), Shape(8, 32, 8, 128, 2048, "int8", 128),
          Shape(4, 64, 8, 128, 8192, "int8", 128)]


def inputs(sh: Shape):
    q = torch.randn(sh.b, 1, sh.n1 * sh.d).to(torch.bfloat16)
    kw = dict(num_heads=sh.n1, num_key_value_heads=sh.n2, scale_value=sh.d ** -0.5,
              actual_seq_lengths=[sh.s] * sh.b)
    if sh.block_size:
        pages = sh.s // sh.block_size
        shape = (sh.b * pages, sh.block_size, sh.n2 * sh.d)
        kw.update(block_table=torch.randperm(sh.b * pages).to(torch.int32).reshape(sh.b, pages),
                  block_size=sh.block_size)
    else:
        shape = (sh.b, sh.s, sh.n2 * sh.d)
    if sh.kv == "int8":
        k = torch.randint(-127, 128, shape, dtype=torch.int8)
        v = torch.randint(-127, 128, shape, dtype=torch.int8)
        kw["antiquant_scale"] = torch.full((2, sh.n2 * sh.d), 0.01, dtype=torch.bfloat16)
    else:
        k, v = torch.randn(shape).to(torch.bfloat16), torch.randn(shape).to(torch.bfloat16)
    return (q, k, v), kw


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'shape':48s} {'ms':>9s} {'GFLOP/s':>9s} {'GB/s':>8s}")
    for sh in SHAPES:
        (q, k, v), kw = inputs(sh)
        op = torch.ops.cann_attention.npu_incre_flash_attention
        op(q, k, v, **kw)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            op(q, k, v, **kw)
            times.append(time.perf_counter() - t0)
        t = statistics.median(times)
        flops = 4 * sh.b * sh.n1 * sh.s * sh.d
        nbytes = 2 * sh.b * sh.n2 * sh.s * sh.d * k.element_size() + 2 * q.numel() * 2
        print(f"{sh.id:48s} {t * 1e3:9.2f} {flops / t / 1e9:9.2f} {nbytes / t / 1e9:8.2f}")


if __name__ == "__main__":
    main()
