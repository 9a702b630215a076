"""One int64 sort key per fp32 score, for the Triton top-k selections.

``sort_key(score, index) = ordered(score) * 2**31 + (2**31 - 1 - index)``: ``ordered`` maps the
fp32 bits to an order-preserving non-negative integer (-0 as +0), so descending keys are the
scores in descending order with ties to the smaller index, and keys of distinct indices are
distinct (indices below 2**31). The lightning indexer's and the NSA block top-k's kernels use it.
"""
from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def sort_key(score, index):
    """The int64 sort key of fp32 ``score`` at ``index`` (module doc)."""
    score = tl.where(score == 0.0, 0.0, score)
    bits = score.to(tl.int32, bitcast=True).to(tl.int64)
    ordered = tl.where(bits >= 0, bits + 2147483648, -bits - 1)
    return ordered * 2147483648 + (2147483647 - index.to(tl.int64))
