"""Score modifications of Modular MAX's flash attention, as CANN ``pse_shift`` tensors.

CANN's inference attention has no ALiBi generator, so the dense op takes ALiBi as an additive
``pse_shift`` (docs/flash_attention.md, Semantics). These helpers build it with MAX's exact slopes.
"""
from __future__ import annotations

import torch


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """fp32 [num_heads]: ``2^(-8(h+1)/P)`` for h < P (P = largest power of two <= num_heads),
    then the odd-indexed slopes of the 2P series ``2^(-8(2(h-P)+1)/(2P))``."""
    p = 1 << (num_heads.bit_length() - 1)
    h = torch.arange(num_heads, dtype=torch.float64)
    first = 2.0 ** (-8.0 * (h + 1) / p)
    rest = 2.0 ** (-8.0 * (2 * (h - p) + 1) / (2 * p))
    return torch.where(h < p, first, rest).to(torch.float32)


def alibi_pse_shift(num_heads: int, s1: int, s2: int, *, max_prompt_len: int | None = None,
                    dtype=torch.float32) -> torch.Tensor:
    """(1, num_heads, s1, s2) additive bias of MAX's AlibiScoreMod for a dense call.

    Query row i sits at absolute position ``q = i + s2 - s1`` (bottom-right). MAX adds
    ``-(max_prompt_len - 1 - k) * slope_h`` where ``q >= k`` and nothing elsewhere;
    ``max_prompt_len`` defaults to ``q + 1`` per row, i.e. the textbook ``-(q - k) * slope_h``
    (the same softmax whenever keys ``k > q`` are masked).
    """
    slopes = alibi_slopes(num_heads).view(-1, 1, 1).double()
    q = torch.arange(s1, dtype=torch.float64).view(-1, 1) + (s2 - s1)
    k = torch.arange(s2, dtype=torch.float64).view(1, -1)
    anchor = q if max_prompt_len is None else torch.full_like(q, max_prompt_len - 1.0)
    bias = torch.where(q >= k, -(anchor - k) * slopes, torch.zeros(()).double())
    return bias.unsqueeze(0).to(dtype)
