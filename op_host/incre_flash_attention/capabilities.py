"""The back-end registry of npu_incre_flash_attention (read by dispatch, tests, the docs).

``auto`` dispatch takes the back end of highest priority whose verifier accepts the call.
"""
from __future__ import annotations

import torch

from ..common.platform import ASCEND_A3
from ..common.capabilities import Backend, ascendc_not_built, by_priority, triton_not_built
from .tiling import plan

FP16_BF16 = (torch.float16, torch.bfloat16)

BACKENDS = by_priority(
    triton_not_built("npu_incre_flash_attention"),
    ascendc_not_built(),
    Backend(
        name="emulate", priority=0, device_types=("cpu", "cuda", "npu"), dtypes=FP16_BF16,
        status="BSH/BNSD/BSND, GQA, paged KV (both key layouts), int8 antiquant, int8 "
               "post-quant, masks, pse_shift, left padding, split-KV plan; vectorised PyTorch",
        runner="incre_flash_attention.emulate:run", plan=plan, emulates=True,
        named_only_on=("npu",),
        platform=ASCEND_A3),
)
