"""What each back end of npu_incre_flash_attention runs (read by dispatch, tests, README).

Order is preference: ``auto`` dispatch takes the first back end that supports the call.
"""
from __future__ import annotations

import torch

from ..common.capabilities import BackendCapability, not_built

FP16_BF16 = (torch.float16, torch.bfloat16)

CAPABILITIES = (
    BackendCapability(
        name="triton",
        device_types=("cuda",),
        dtypes=FP16_BF16,
        status="planned (issue: Triton kernel for Hopper)",
        available=not_built("no Triton kernel for npu_incre_flash_attention yet"),
    ),
    BackendCapability(
        name="ascendc",
        device_types=("npu",),
        dtypes=FP16_BF16,
        status="not built: needs the CANN toolchain",
        available=not_built("the AscendC kernel is not built in this package"),
    ),
    BackendCapability(
        name="emulate",
        device_types=("cpu", "cuda", "npu"),
        dtypes=FP16_BF16,
        status="BSH/BNSD/BSND, GQA, paged KV (both key layouts), int8 antiquant, int8 "
               "post-quant, masks, pse_shift, left padding, split-KV plan; vectorised PyTorch",
    ),
)
