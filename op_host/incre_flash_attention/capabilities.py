"""What each back end of npu_incre_flash_attention runs (read by dispatch, tests, README).

Order is preference: ``auto`` dispatch takes the first back end that supports the call.
"""
from __future__ import annotations

import torch

from ..common.capabilities import BackendCapability, ascendc_not_built, triton_not_built

FP16_BF16 = (torch.float16, torch.bfloat16)

CAPABILITIES = (
    triton_not_built("npu_incre_flash_attention"),
    ascendc_not_built(),
    BackendCapability(
        name="emulate",
        device_types=("cpu", "cuda", "npu"),
        dtypes=FP16_BF16,
        status="BSH/BNSD/BSND, GQA, paged KV (both key layouts), int8 antiquant, int8 "
               "post-quant, masks, pse_shift, left padding, split-KV plan; vectorised PyTorch",
    ),
)
