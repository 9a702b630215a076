"""The back-end registry of npu_sparse_flash_attention (read by dispatch, tests, the docs).

``auto`` dispatch takes the back end of highest priority whose verifier accepts the call and
skips back ends marked ``auto=False`` (they run only when named in ``cann_attention.use``).
"""
from __future__ import annotations

import torch

from ..common.platform import ASCEND_A3
from ..common.capabilities import (
    Backend, ascendc_not_built, by_priority, torch_npu_builtin, triton_importable)
from .tiling import plan

FP16_BF16 = (torch.float16, torch.bfloat16)

BACKENDS = by_priority(
    Backend(
        name="triton", priority=20, device_types=("cuda",), dtypes=FP16_BF16,
        status="all layouts, sparse_block_size 1..128, sparse_mode 0/3, lse, sinks, N1 1..128; "
               "one persistent program per SM runs the schedule two metadata kernels build on "
               "the device (a parallel scan, then one program that cuts the work; no host "
               "reads: CUDA-graph capturable); the plan picks the kernel: "
               "the warp-specialised Gluon kernel on Hopper (steps of 64 keys), the Triton "
               "kernel otherwise; split tasks merged by a log-sum-exp kernel. Runs in CI under "
               "Triton's interpreter and as sm_90 builds; the device schedule ran on an H100 "
               "(capture, no-sync, metadata tests) at fb02fbb, and capture, direct launches "
               "and compute-sanitizer memcheck on an H200 at ef3b290",
        runner="sparse_flash_attention.triton:run", plan=plan, available=triton_importable),
    ascendc_not_built(),
    torch_npu_builtin("npu_sparse_flash_attention", FP16_BF16),
    Backend(
        name="emulate", priority=0, device_types=("cpu", "cuda", "npu"), dtypes=FP16_BF16,
        status="all layouts, sparse_block_size 1..128, sparse_mode 0/3, lse, sinks; executes "
               "the plan of any platform with vectorised PyTorch from values read on the host",
        runner="sparse_flash_attention.emulate:run", plan=plan, emulates=True,
        named_only_on=("npu",),
        platform=ASCEND_A3),
)
