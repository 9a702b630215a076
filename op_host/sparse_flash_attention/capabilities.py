"""The back-end registry of npu_sparse_flash_attention (read by dispatch, tests, the docs).

``auto`` dispatch takes the back end of highest priority whose verifier accepts the call and
skips back ends marked ``auto=False`` (they run only when named in ``cann_attention.use``).
"""
from __future__ import annotations

import torch

from ..common.platform import ASCEND_A3
from ..common.capabilities import (
    Backend, ascendc_op_package, by_priority, torch_npu_builtin, triton_importable)
from .tiling import plan

FP16_BF16 = (torch.float16, torch.bfloat16)

BACKENDS = by_priority(
    Backend(
        name="triton", priority=20, device_types=("cuda",), dtypes=FP16_BF16,
        status="all layouts, sparse_block_size 1..128, sparse_mode 0/3, lse, sinks, N1 1..128; "
               "one persistent program per SM runs the schedule the metadata kernel builds on "
               "the device from the lengths and page table in one launch (a parallel page-table "
               "scan whose last program cuts the work; no host reads: CUDA-graph capturable; "
               "the calls of one captured step share it); the plan picks the kernel: "
               "the warp-specialised Gluon kernel on Hopper (steps of 64 keys), the Triton "
               "kernel otherwise; split tasks merged by a log-sum-exp kernel. Runs in CI under "
               "Triton's interpreter and as sm_90 builds (Triton 3.6 and newer); on an H100 "
               "at 0da9d0e its capture, metadata, shared-schedule, workspace, launcher, "
               "binding and Triton kernel tests, the first 27 Gluon layout tests and "
               "compute-sanitizer memcheck passed (the other Gluon tests last on an H200 at "
               "34e7b2b; the Gluon kernels have not changed since)",
        runner="sparse_flash_attention.triton:run", plan=plan, available=triton_importable),
    Backend(
        name="ascendc", priority=30, device_types=("cpu",), dtypes=FP16_BF16,
        status="CPU: our AscendC kernel compiled with g++ against the AscendC twin and run as a "
               "mixed launch (one AIC and two AIV threads a block), by name only, on the Ascend "
               "plan's tiles; scope: all layouts, sparse_block_size 1..128, sparse_mode 0/3, "
               "lse, sinks, N1 1..128; runs the plan's schedule (each block computes the "
               "balanced cut, split tasks merged after SyncAll). NPU: the same kernel in our op package, called through the "
               "C++ NPU binding where both are installed (never run: no NPU here)",
        runner="sparse_flash_attention.ascendc_twin:run", plan=plan, emulates=True,
        named_only_on=("cpu",), platform=ASCEND_A3,
        on_device=(("npu", ascendc_op_package(
            "npu_sparse_flash_attention", FP16_BF16,
            status="our op package's aclnnCannAttentionSparseFlashAttention through the C++ NPU "
                   "binding (torch_npu loaded, package installed); never run",
            rule=lambda p: _twin().unsupported(p))),),
        available=lambda: _twin().no_compiler(), rule=lambda p: _twin().unsupported(p)),
    torch_npu_builtin("npu_sparse_flash_attention", FP16_BF16),
    Backend(
        name="emulate", priority=0, device_types=("cpu", "cuda", "npu"), dtypes=FP16_BF16,
        status="all layouts, sparse_block_size 1..128, sparse_mode 0/3, lse, sinks; executes "
               "the plan of any platform with vectorised PyTorch from values read on the host",
        runner="sparse_flash_attention.emulate:run", plan=plan, emulates=True,
        named_only_on=("npu",),
        platform=ASCEND_A3),
)


def _twin():
    """The twin runner's module, imported on first use (the registry stays free of op_kernel
    imports at package import)."""
    from cann_attention.op_kernel.sparse_flash_attention import ascendc_twin
    return ascendc_twin
