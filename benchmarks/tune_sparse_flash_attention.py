"""Tuning sweep of the SFA Triton kernel's GPU tile (a development script, not a benchmark).

Times the kernel (CUDA events, median of 20 after warm-up) on a few PERF.md shapes for each
(scores variant, block_s2, stages) by overriding the GPU rows of the tile tables in
op_host/sparse_flash_attention/tiling.py, and prints the compiled kernel's registers and
spills. ``--once SHAPE`` runs one call of the default plan (for ncu / compute-sanitizer).

    python benchmarks/tune_sparse_flash_attention.py [--once prefill|decode]
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_sparse_flash_attention import Shape, build, cuda_time  # noqa: E402

from cann_attention.dispatch import platform_for  # noqa: E402
from cann_attention.op_host.common.platform import PlatformKind  # noqa: E402
from cann_attention.op_host.sparse_flash_attention import check, params, tiling  # noqa: E402
from cann_attention.op_kernel.sparse_flash_attention import triton as sfa_triton  # noqa: E402

SHAPES = {
    "prefill": Shape("prefill", 1, 4096, 32768, 128),
    "prefill16": Shape("prefill", 1, 4096, 32768, 16),
    "decode": Shape("decode", 128, 2, 32768, 128, paged=True),
}


def prepare(shape):
    args, kwargs, flops, _ = build(shape, "cuda")
    p = params.parse(*args, **kwargs)
    check.check(p)
    t = params.SparseFlashAttentionTensors(args[0], args[1], args[2], args[3],
                                           kwargs["query_rope"], kwargs["key_rope"],
                                           kwargs.get("block_table"), None)
    return p, t, flops


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--once", choices=tuple(SHAPES))
    a = ap.parse_args()
    if a.once:
        p, t, _ = prepare(SHAPES[a.once])
        plan = tiling.plan(p, platform_for(t.query.device))
        sfa_triton.run(p, plan, t)
        torch.cuda.synchronize()
        sfa_triton.run(p, plan, t)
        torch.cuda.synchronize()
        return
    gpu = PlatformKind.GPU
    for name, shape in SHAPES.items():
        p, t, flops = prepare(shape)
        for variant, bs2, stages in itertools.product(sfa_triton.VARIANTS, (64, 32), (2, 3)):
            tiling.MAX_BLOCK_S2[gpu] = bs2
            tiling.STAGES[gpu] = (stages, 1)
            plan = tiling.plan(p, platform_for(t.query.device))
            if variant.startswith("gluon") and not sfa_triton.gluon_serves(plan, t, variant):
                continue
            ms = cuda_time(lambda: sfa_triton.run(p, plan, t, variant), 20)
            print(f"{name:<10} {variant:<9} block_s2={plan.block_s2:<3} "
                  f"stages={plan.stages} hg={plan.head_group:<3} {ms:8.3f} ms "
                  f"{flops / ms / 1e9:6.1f} TFLOPS", flush=True)
    try:   # Triton internals (3.x): the compiled variants of the kernel on device 0
        for key, kernel in sfa_triton._sfa_kernel.device_caches[0][0].items():
            print("compiled:", str(key)[-160:], "regs", kernel.n_regs, "spills",
                  kernel.n_spills)
    except (AttributeError, IndexError, KeyError, TypeError) as e:
        print("compiled-kernel report unavailable:", e)


if __name__ == "__main__":
    main()
