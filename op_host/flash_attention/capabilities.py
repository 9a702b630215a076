"""What each back end of npu_flash_attention runs (read by dispatch, tests, README).

Order is preference: ``auto`` dispatch takes the first back end that supports the call.
"""
from __future__ import annotations

import torch

from ..common.capabilities import BackendCapability, ascendc_not_built, triton_not_built

FP16_BF16 = (torch.float16, torch.bfloat16)
FP16_BF16_FP32 = FP16_BF16 + (torch.float32,)

CAPABILITIES = (
    triton_not_built("npu_flash_attention"),
    ascendc_not_built(),
    BackendCapability(
        name="emulate",
        device_types=("cpu", "cuda", "npu"),
        dtypes=FP16_BF16_FP32,
        status="BSND/BNSD/TND query, BSND/TND/PA_BSND keys, GQA, sparse_mode 0-4, chunk_size, "
               "atten_mask, pse_shift, learnable_sink, lse, split-K; executes the plan with "
               "vectorised PyTorch on any device",
    ),
)
