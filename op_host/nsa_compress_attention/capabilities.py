"""What each back end of npu_nsa_compress_attention runs (read by dispatch, tests, README).

Order is preference: ``auto`` dispatch takes the first back end that supports the call.
"""
from __future__ import annotations

import torch

from ..common.capabilities import BackendCapability, ascendc_not_built, triton_not_built

FP16_BF16 = (torch.float16, torch.bfloat16)

CAPABILITIES = (
    triton_not_built("npu_nsa_compress_attention"),
    ascendc_not_built(),
    BackendCapability(
        name="emulate",
        device_types=("cpu", "cuda", "npu"),
        dtypes=FP16_BF16,
        status="TND, all (l, d, l') of the spec, G 1..64, masks, top-k; executes the plan "
               "with vectorised PyTorch on any device",
    ),
)
