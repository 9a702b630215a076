"""The back-end registry of npu_nsa_compress_attention (read by dispatch, tests, the docs).

``auto`` dispatch takes the back end of highest priority whose verifier accepts the call.
"""
from __future__ import annotations

import torch

from ..common.platform import ASCEND_A3
from ..common.capabilities import Backend, ascendc_not_built, by_priority, triton_not_built
from .tiling import plan

FP16_BF16 = (torch.float16, torch.bfloat16)
# fp32 / fp64: CPU only (check.py refuses them on other devices), for gradient checks
WITH_CPU_FLOATS = FP16_BF16 + (torch.float32, torch.float64)

BACKENDS = by_priority(
    triton_not_built("npu_nsa_compress_attention"),
    ascendc_not_built(),
    Backend(
        name="emulate", priority=0, device_types=("cpu", "cuda", "npu"), dtypes=WITH_CPU_FLOATS,
        status="TND, every (l, d, l') the op accepts, G 1..64, masks, importance scores and "
               "block top-k; executes the plan with vectorised PyTorch; float32 / float64 on CPU "
               "only",
        runner="nsa_compress_attention.emulate:run", plan=plan, emulates=True,
        named_only_on=("npu",),
        platform=ASCEND_A3),
)
