"""Running top-k lists as one int64 sort key per entry: vectorised merges with an exact tie rule.

The output order of docs/lightning_indexer.md (Semantics) is: score descending, ties to the
smaller key index, padding (-1, -inf) last. Encoding (score, index) into one int64 makes that
order a plain descending ``torch.topk`` on integers, with no reliance on the stability of a
sort:

    key = ordered(score) * 2**31 + (2**31 - 1 - index)      (>= 0 for every real entry)
    key = PAD_KEY = -1                                       (padding, below every real entry)

``ordered`` maps fp32 bit patterns to [0, 2**32) monotonically (the usual sign-flip trick), so
-inf is still above padding. Scores must be normalised so that -0.0 == +0.0 (add 0.0). Since
distinct keys have distinct indices the order is strict: the top-k of a union equals the top-k
of the union of the parts' top-k lists, whatever the grouping. That is what lets the device
kernels (and the emulator) merge per-chunk lists and per-core partial lists.
"""
from __future__ import annotations

import torch

PAD_KEY = -1
_TWO31 = 2**31


def sort_keys(score: torch.Tensor, index: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """int64 keys of fp32 ``score`` / integer ``index`` entries; PAD_KEY where not ``valid``."""
    bits = score.contiguous().view(torch.int32).to(torch.int64)
    ordered = torch.where(bits >= 0, bits + _TWO31, -bits - 1)
    key = ordered * _TWO31 + (_TWO31 - 1 - index.to(torch.int64))
    return torch.where(valid, key, torch.full_like(key, PAD_KEY))


def empty(rows: tuple[int, ...], k: int, device) -> tuple[torch.Tensor, ...]:
    """(key, index, value) of empty lists: PAD_KEY, -1, -inf."""
    shape = rows + (k,)
    return (torch.full(shape, PAD_KEY, dtype=torch.int64, device=device),
            torch.full(shape, -1, dtype=torch.int64, device=device),
            torch.full(shape, float("-inf"), dtype=torch.float32, device=device))


def merge(lists: tuple[torch.Tensor, ...], candidates: tuple[torch.Tensor, ...], k: int):
    """Top-k (key, index, value) of the concatenation of ``lists`` and ``candidates``.

    Both are triples of tensors [..., n]; the result is [..., k] in output order. Padding
    entries carry index -1 and value -inf, so a list shorter than k stays padded.
    """
    keys, idx, val = (torch.cat([a, b], -1) for a, b in zip(lists, candidates))
    top_key, pos = torch.topk(keys, k, dim=-1, largest=True, sorted=True)
    return top_key, idx.gather(-1, pos), val.gather(-1, pos)
