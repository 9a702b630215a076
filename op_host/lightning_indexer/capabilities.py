"""The back-end registry of npu_lightning_indexer (read by dispatch, tests, the docs).

``auto`` dispatch takes the back end of highest priority whose verifier accepts the call.
"""
from __future__ import annotations

import torch

from ..common.platform import ASCEND_A3
from ..common.capabilities import (
    Backend, ascendc_not_built, by_priority, torch_npu_builtin, triton_not_built)
from .tiling import plan

FP16_BF16 = (torch.float16, torch.bfloat16)

BACKENDS = by_priority(
    triton_not_built("npu_lightning_indexer"),
    ascendc_not_built(),
    torch_npu_builtin("npu_lightning_indexer", FP16_BF16),
    Backend(
        name="emulate", priority=0, device_types=("cpu", "cuda", "npu"), dtypes=FP16_BF16,
        status="BSND/TND query, BSND/TND/PA_BSND key, sparse_mode 0/3, sparse_count 1..2048 "
               "and 3072..8192, return_value; chunked scoring with a running top-k merge along "
               "the plan, vectorised PyTorch from values read on the host",
        runner="lightning_indexer.emulate:run", plan=plan, emulates=True,
        named_only_on=("npu",),
        platform=ASCEND_A3),
)
