"""What each back end of npu_sparse_flash_attention runs (read by dispatch, tests, README).

Order is preference: ``auto`` dispatch takes the first back end that supports the call and
skips back ends marked ``auto=False`` (they run only when named in ``cann_attention.use``).
"""
from __future__ import annotations

import torch

from ..common.capabilities import BackendCapability, ascendc_not_built, triton_importable

FP16_BF16 = (torch.float16, torch.bfloat16)

CAPABILITIES = (
    BackendCapability(
        name="triton",
        device_types=("cuda",),
        dtypes=FP16_BF16,
        status="all layouts, sparse_block_size 1..128, sparse_mode 0/3, lse, sinks, "
               "N1 1..128; one persistent program per SM runs the plan's schedule (the "
               "warp-specialised Gluon kernel on Hopper for 64-key steps, any N1; the Triton "
               "kernel otherwise), "
               "split tasks merged by a log-sum-exp kernel",
        available=triton_importable,
    ),
    ascendc_not_built(),
    BackendCapability(
        name="emulate",
        device_types=("cpu", "cuda", "npu"),
        dtypes=FP16_BF16,
        status="all layouts, sparse_block_size 1..128, sparse_mode 0/3, lse, sinks; "
               "executes the plan with vectorised PyTorch on any device",
    ),
)
