"""The back-end registry of npu_nsa_compress_attention (read by dispatch, tests, the docs).

``auto`` dispatch takes the back end of highest priority whose verifier accepts the call.
"""
from __future__ import annotations

import torch

from ..common.platform import ASCEND_A3
from ..common.capabilities import (
    Backend, ascendc_not_built, by_priority, triton_importable)
from .tiling import plan

FP16_BF16 = (torch.float16, torch.bfloat16)
# fp32 / fp64: CPU only (check.py refuses them on other devices), for gradient checks
WITH_CPU_FLOATS = FP16_BF16 + (torch.float32, torch.float64)

BACKENDS = by_priority(
    Backend(
        name="triton", priority=20, device_types=("cuda",), dtypes=FP16_BF16,
        status="our Triton kernel (op_kernel/nsa_compress_attention/triton.py): one launch, "
               "persistent programs run the plan's tasks (a KV head's G query heads x a tile "
               "of query rows); scores on tensor cores, fp32 online softmax, then a second "
               "pass over the tokens for the importance scores (trapezoidal taps in the "
               "emulator's order, pairwise sum over the group, topk_mask) and a streamed "
               "block top-k (sorted int64 keys, ties to the smaller block); no host reads "
               "(CUDA-graph capturable after a warm-up call); scope: everything the op "
               "accepts in float16 / bfloat16 (TND, every (l, d, l'), G 1..64, D1 / D2 up to "
               "768, both masks bool or uint8). Runs in CI under Triton's interpreter (float16) "
               "and as sm_90 builds; on an H100 (2026-12-08, 976cd1b) its GPU tests (bf16, "
               "capture) and compute-sanitizer memcheck passed",
        runner="nsa_compress_attention.triton:run", plan=plan,
        available=triton_importable),
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
