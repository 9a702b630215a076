"""int8 post-quantisation of the attention output, shared by the back ends.

Default (a project choice, docs/incre_flash_attention.md, Semantics):
``clip(rint(o * s + off), -128, 127)`` in fp32 with round-half-to-even. ``emulate_npu=True``
reproduces the NPU's arithmetic exactly:

- per-tensor (AscendC ``AscendQuant``): o -> fp16; fp16 multiply by the fp16-rounded scale; fp16
  add of the fp16-rounded offset; int8 with round-half-to-even; saturation to [-128, 127].
- per-channel: fp32 multiply and add; fp32 -> fp16 with round-half-away-from-zero
  (``CAST_ROUND``); fp16 -> int8 with round-half-away-from-zero; saturation.
"""
from __future__ import annotations

import torch

INT8_MIN, INT8_MAX = -128, 127
FP16_MIN_EXP = -14        # smallest normal exponent of fp16
FP16_MANTISSA_BITS = 10


def _saturate(y: torch.Tensor) -> torch.Tensor:
    return y.clamp(INT8_MIN, INT8_MAX).to(torch.int8)


def round_half_away(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


def to_fp16_half_away(x: torch.Tensor) -> torch.Tensor:
    """fp32 -> fp16 value (returned in fp64) rounded half away from zero (finite range)."""
    x = x.double().clamp(-65504.0, 65504.0)
    mag = x.abs()
    exp = torch.floor(torch.log2(torch.where(mag > 0, mag, torch.ones_like(mag))))
    ulp = torch.exp2(torch.clamp(exp, min=FP16_MIN_EXP) - FP16_MANTISSA_BITS)
    return torch.sign(x) * torch.floor(mag / ulp + 0.5) * ulp


def quantize(out: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor | None,
             emulate_npu: bool = False) -> torch.Tensor:
    """int8 of the fp32 output ``out`` [..., N, D]; ``scale`` / ``offset`` have 1 or N*D values."""
    per_channel = scale.numel() > 1
    shape = out.shape[-2:] if per_channel else ()
    s = scale.reshape(shape).to(out.device)
    off = (offset.reshape(shape).to(out.device) if offset is not None
           else torch.zeros((), dtype=s.dtype, device=out.device))
    if not emulate_npu:
        return _saturate(torch.round(out.float() * s.float() + off.float()))
    if not per_channel:
        y = out.to(torch.float16) * s.to(torch.float16)        # fp16 arithmetic, fp16 result
        y = y + off.to(torch.float16)
        return _saturate(torch.round(y.float()))
    y = out.float() * s.float() + off.float()
    return _saturate(round_half_away(to_fp16_half_away(y)))


def quantize_output(out: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor | None,
                    emulate_npu: bool, empty: torch.Tensor | None) -> torch.Tensor:
    """int8 attention_out of the fp32 output ``out`` [B, N, D]: ``quantize``, with the rows of
    batches whose window is empty (``empty``: bool [B] on out's device, None: none) set to 0,
    as the kernel writes no output there."""
    result = quantize(out, scale, offset, emulate_npu)
    return result if empty is None else result.masked_fill(empty.view(-1, 1, 1), 0)
