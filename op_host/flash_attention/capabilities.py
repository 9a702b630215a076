"""The back-end registry of npu_flash_attention (read by dispatch, tests, the docs).

``auto`` dispatch takes the back end of highest priority whose verifier accepts the call.
"""
from __future__ import annotations

import torch

from ..common.platform import ASCEND_A3
from ..common.capabilities import Backend, ascendc_not_built, by_priority, triton_not_built
from .engines import plan_engine, unserved
from .tiling import plan

FP16_BF16 = (torch.float16, torch.bfloat16)
FP16_BF16_FP32 = FP16_BF16 + (torch.float32,)


def _library_missing() -> str | None:
    """None when this torch has FlexAttention with auxiliary outputs (lse, row max)."""
    try:
        from torch.nn.attention.flex_attention import AuxRequest  # noqa: F401
    except ImportError:
        return (f"not available: torch {torch.__version__} has no FlexAttention with "
                "AuxRequest (lse / max_scores)")
    return None


BACKENDS = by_priority(
    triton_not_built("npu_flash_attention"),
    ascendc_not_built(),
    Backend(
        name="library", priority=10, device_types=("cuda",), dtypes=FP16_BF16_FP32,
        status="PyTorch's engines (op_kernel/flash_attention/library.py): SDPA (flash / cuDNN "
               "/ efficient) for dense calls without lengths, statistics or sink whose mask "
               "SDPA expresses (none, causal, lower-right causal, atten_mask / pse_shift "
               "tensor); FlexAttention (compiled; block masks from the mask geometry, cached "
               "per shape) for bands, chunks, length tensors, TND, statistics and sinks (from "
               "its log-sum-exp), paged keys gathered to dense per call; the plan names the "
               "engine; no host reads. Refuses D > 256 outside SDPA. Tested in CI on CPU "
               "tensors (FlexAttention eager); on an H100 (2026-12-08, 976cd1b) its GPU tests "
               "passed (bf16 SDPA and FlexAttention calls, CUDA-graph capture, paged keys)",
        runner="flash_attention.library:run", plan=plan_engine,
        available=_library_missing, rule=unserved),
    Backend(
        name="emulate", priority=0, device_types=("cpu", "cuda", "npu"), dtypes=FP16_BF16_FP32,
        status="BSND/BNSD/TND query, BSND/TND/PA_BSND keys, GQA, sparse_mode 0-4, chunk_size, "
               "atten_mask, pse_shift, learnable_sink, lse, split-K; executes the plan with "
               "vectorised PyTorch from values read on the host",
        runner="flash_attention.emulate:run", plan=plan, emulates=True,
        named_only_on=("npu",),
        platform=ASCEND_A3),
)
