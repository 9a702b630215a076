"""The back-end registry of npu_incre_flash_attention (read by dispatch, tests, the docs).

``auto`` dispatch takes the back end of highest priority whose verifier accepts the call.
"""
from __future__ import annotations

import torch

from ..common.platform import ASCEND_A3
from ..common.capabilities import Backend, ascendc_not_built, by_priority, triton_importable
from .tiling import plan

FP16_BF16 = (torch.float16, torch.bfloat16)

BACKENDS = by_priority(
    Backend(
        name="triton", priority=20, device_types=("cuda",), dtypes=FP16_BF16,
        status="our Triton split-KV kernel (op_kernel/incre_flash_attention/triton.py): one "
               "program per piece of the plan's schedule, the combine fused (the last piece "
               "of a split task merges its slots), no host reads (CUDA-graph capturable); "
               "scope: the whole contract (BSH/BNSD/BSND, GQA up to 64 query heads per KV "
               "head, contiguous and paged caches in every layout the op accepts, int8 "
               "antiquant per channel / per tensor dequantised in registers, int8 post-quant "
               "output, bool/int8/uint8 masks (-1e12), pse_shift, left padding). Runs in CI "
               "under Triton's interpreter (fp16) and as sm_90 builds; on an H100 (2026-12-08, "
               "976cd1b) its test matrix in bf16 and fp16, the capture test and "
               "compute-sanitizer memcheck passed",
        runner="incre_flash_attention.triton:run", plan=plan,
        available=triton_importable),
    ascendc_not_built(),
    Backend(
        name="emulate", priority=0, device_types=("cpu", "cuda", "npu"), dtypes=FP16_BF16,
        status="BSH/BNSD/BSND, GQA, paged KV (both key layouts), int8 antiquant, int8 "
               "post-quant, masks, pse_shift, left padding, split-KV plan; vectorised PyTorch",
        runner="incre_flash_attention.emulate:run", plan=plan, emulates=True,
        named_only_on=("npu",),
        platform=ASCEND_A3),
)
