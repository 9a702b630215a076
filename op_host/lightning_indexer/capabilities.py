"""What each back end of npu_lightning_indexer runs (read by dispatch, tests, README).

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
        status="planned (Triton kernel for Hopper)",
        available=not_built("no Triton kernel for npu_lightning_indexer yet"),
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
        status="BSND/TND query, BSND/TND/PA_BSND key, sparse_mode 0/3, sparse_count 1..2048 "
               "and 3072..8192, return_value; chunked scoring with a running top-k merge along "
               "the plan, vectorised PyTorch on any device",
    ),
)
