"""The back-end registry of npu_flash_attention (read by dispatch, tests, the docs).

``auto`` dispatch takes the back end of highest priority whose verifier accepts the call.
"""
from __future__ import annotations

import torch

from ..common.platform import ASCEND_A3
from ..common.capabilities import Backend, ascendc_not_built, by_priority, triton_not_built
from .tiling import plan

FP16_BF16 = (torch.float16, torch.bfloat16)
FP16_BF16_FP32 = FP16_BF16 + (torch.float32,)

BACKENDS = by_priority(
    triton_not_built("npu_flash_attention"),
    ascendc_not_built(),
    Backend(
        name="emulate", priority=0, device_types=("cpu", "cuda", "npu"), dtypes=FP16_BF16_FP32,
        status="BSND/BNSD/TND query, BSND/TND/PA_BSND keys, GQA, sparse_mode 0-4, chunk_size, "
               "atten_mask, pse_shift, learnable_sink, lse, split-K; executes the plan with "
               "vectorised PyTorch from values read on the host",
        runner="flash_attention.emulate:run", plan=plan, emulates=True,
        named_only_on=("npu",),
        platform=ASCEND_A3),
)
