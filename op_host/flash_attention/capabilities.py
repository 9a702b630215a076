"""What each back end of npu_flash_attention runs (read by dispatch, tests, README).

Order is preference: ``auto`` dispatch takes the first back end that supports the call.
"""
from __future__ import annotations

import torch

from ..common.capabilities import BackendCapability, not_built

FP16_BF16 = (torch.float16, torch.bfloat16)
FP16_BF16_FP32 = FP16_BF16 + (torch.float32,)

CAPABILITIES = (
    BackendCapability(
        name="triton",
        device_types=("cuda",),
        dtypes=FP16_BF16_FP32,
        status="planned (no Triton kernel yet)",
        available=not_built("no Triton kernel for npu_flash_attention yet"),
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
        dtypes=FP16_BF16_FP32,
        status="BSND/BNSD/TND query, BSND/TND/PA_BSND keys, GQA, sparse_mode 0-4, chunk_size, "
               "atten_mask, pse_shift, learnable_sink, lse, split-K; executes the plan with "
               "vectorised PyTorch on any device",
    ),
)
