"""What each back end of npu_lightning_indexer runs (read by dispatch, tests, README).

Order is preference: ``auto`` dispatch takes the first back end that supports the call.
"""
from __future__ import annotations

import torch

from ..common.capabilities import BackendCapability, ascendc_not_built, triton_not_built

FP16_BF16 = (torch.float16, torch.bfloat16)

CAPABILITIES = (
    triton_not_built("npu_lightning_indexer"),
    ascendc_not_built(),
    BackendCapability(
        name="emulate",
        device_types=("cpu", "cuda", "npu"),
        dtypes=FP16_BF16,
        status="BSND/TND query, BSND/TND/PA_BSND key, sparse_mode 0/3, sparse_count 1..2048 "
               "and 3072..8192, return_value; chunked scoring with a running top-k merge along "
               "the plan, vectorised PyTorch on any device",
    ),
)
