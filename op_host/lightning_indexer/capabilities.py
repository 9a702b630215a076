"""The back-end registry of npu_lightning_indexer (read by dispatch, tests, the docs).

``auto`` dispatch takes the back end of highest priority whose verifier accepts the call.
"""
from __future__ import annotations

import torch

from ..common.platform import ASCEND_A3
from ..common.capabilities import (
    Backend, ascendc_op_package, by_priority, torch_npu_builtin, triton_importable)
from .tiling import GPU_MAX_SPARSE_COUNT, plan

FP16_BF16 = (torch.float16, torch.bfloat16)


def _triton_rule(p) -> str | None:
    """Why the Triton kernel cannot run the call (None: it can)."""
    if p.sparse_count > GPU_MAX_SPARSE_COUNT:
        return (f"sparse_count {p.sparse_count} > {GPU_MAX_SPARSE_COUNT}: the kernel's final "
                f"sort holds {GPU_MAX_SPARSE_COUNT} keys at most")
    return None


BACKENDS = by_priority(
    Backend(
        name="triton", priority=20, device_types=("cuda",), dtypes=FP16_BF16,
        status="our Triton kernel (op_kernel/lightning_indexer/triton.py): persistent programs "
               "walk query rows (rows of calls with fewer rows than SMs cut into pieces and "
               "merged), score each step of keys on tensor cores and keep the row's top-k by a "
               "threshold-filtered streaming selection (radix-select compactions, one sort of "
               "K per row), no logits in memory, no host reads (CUDA-graph capturable); scope: "
               "BSND/TND query, BSND/TND/PA_BSND key, actual lengths, weights of the query "
               "dtype or float32, sparse_mode 0/3, sparse_count 1..2048 and 3072..8192, "
               "return_value. Runs in "
               "CI under Triton's interpreter and as sm_90 builds. On an H100 (2026-12-08, "
               "976cd1b) this kernel passed its GPU tests (matrix, tie order, malformed values, "
               "split rows, every sparse_count, direct launches, capture); compute-sanitizer "
               "memcheck last ran on its predecessor (35551ce), so on CUDA tensors by name only "
               "(cann_attention.use(backend='triton')) until it runs on this one",
        runner="lightning_indexer.triton:run", plan=plan, named_only_on=("cuda",),
        available=triton_importable, rule=_triton_rule),
    Backend(
        name="ascendc", priority=30, device_types=("cpu",), dtypes=FP16_BF16,
        status="CPU: our AscendC kernel compiled with g++ against the AscendC twin and run as a "
               "mixed launch (one AIC and two AIV threads a block), by name only; each core "
               "runs the plan's balanced pieces, split rows merged after a SyncAll; scope: "
               "BSND/TND query, BSND/TND/PA_BSND key, actual lengths, weights of the query "
               "dtype or float32, N1 <= 64, sparse_mode 0/3, sparse_count 1..2048 and "
               "3072..8192, return_value. NPU: the same kernel in our op package, called through the C++ "
               "NPU binding where both are installed (never run: no NPU here)",
        runner="lightning_indexer.ascendc_twin:run", plan=plan, emulates=True,
        named_only_on=("cpu",), platform=ASCEND_A3,
        on_device=(("npu", ascendc_op_package(
            "npu_lightning_indexer", FP16_BF16,
            status="our op package's aclnnCannAttentionLightningIndexer through the C++ NPU "
                   "binding (torch_npu loaded, package installed); never run",
            rule=lambda p: _twin().unsupported(p))),),
        available=lambda: _twin().no_compiler(), rule=lambda p: _twin().unsupported(p)),
    torch_npu_builtin("npu_lightning_indexer", FP16_BF16),
    Backend(
        name="emulate", priority=0, device_types=("cpu", "cuda", "npu"), dtypes=FP16_BF16,
        status="BSND/TND query, BSND/TND/PA_BSND key, sparse_mode 0/3, sparse_count 1..2048 "
               "and 3072..8192, return_value; chunked scoring with a running top-k merge along "
               "the plan, vectorised PyTorch from values read on the host",
        runner="lightning_indexer.emulate:run", plan=plan, emulates=True,
        named_only_on=("npu",),
        platform=ASCEND_A3),
)


def _twin():
    """The twin runner's module, imported on first use (it imports nothing heavy, but the
    registry stays free of op_kernel imports at package import)."""
    from cann_attention.op_kernel.lightning_indexer import ascendc_twin
    return ascendc_twin
