"""Attention masks as functors: one elementwise predicate and one per-tile status each.

Every functor answers two questions (visibility as in docs/flash_attention.md, Semantics):

- ``visible(b, h, q, k)``: a bool tensor, broadcast from int64 index tensors: batch ``b``,
  query head ``h``, **absolute** query position ``q = i + (L_k(b) - L_q(b))`` (bottom-right) and
  key index ``k``. True keeps the score; False removes it (it never enters the softmax).
- ``tile_status(b, q_lo, q_hi, k_lo, k_hi)``: int8 ``TileStatus`` (EMPTY / PARTIAL / FULL) of
  the rectangle of absolute queries ``[q_lo, q_hi)`` x keys ``[k_lo, k_hi)`` of batch ``b``.
  EMPTY tiles are skipped, FULL tiles need no predicate; PARTIAL is always a safe answer.

The reference and the emulator both use these functors; the tile arithmetic comes from
``op_host/common/mask_spec.py`` so the host planner classifies tiles identically.

Combinators follow MAX's names, which are in *masking* polarity (docs/flash_attention.md):
``OrMask(a, b)`` masks where either masks (visibility intersection) and
``AndMask(a, b)`` masks only where both mask (visibility union).
"""
from __future__ import annotations

import abc

import torch

from cann_attention.op_host.common import mask_spec as ms
from cann_attention.op_host.common.mask_spec import UNBOUNDED, MaskSpec, TileStatus


def _per_batch(value, b: torch.Tensor) -> torch.Tensor:
    """A per-batch int64 tensor gathered at ``b``, or a Python int broadcast."""
    if isinstance(value, torch.Tensor):
        return value.to(b.device)[b]
    return torch.full_like(b, int(value))


class MaskFunctor(abc.ABC):
    """Base: subclasses define ``visible`` and may refine ``tile_status``."""

    @abc.abstractmethod
    def visible(self, b, h, q, k) -> torch.Tensor:
        """Boolean tensor broadcast from (batch, head, query position, key position)."""

    def tile_status(self, b, q_lo, q_hi, k_lo, k_hi) -> torch.Tensor:
        return torch.full(torch.broadcast_shapes(b.shape, q_lo.shape, k_lo.shape),
                          int(TileStatus.PARTIAL), dtype=torch.int8, device=b.device)


class NullMask(MaskFunctor):
    """Everything visible (MAX NullMask)."""

    def visible(self, b, h, q, k):
        return torch.ones(torch.broadcast_shapes(b.shape, h.shape, q.shape, k.shape),
                          dtype=torch.bool, device=q.device)

    def tile_status(self, b, q_lo, q_hi, k_lo, k_hi):
        shape = torch.broadcast_shapes(b.shape, q_lo.shape, k_lo.shape)
        return torch.full(shape, int(TileStatus.FULL), dtype=torch.int8, device=b.device)


class BandMask(MaskFunctor):
    """``q + lo <= k <= q + hi``; ``lo``/``hi`` ints or int64 tensors indexed by batch.

    Causal is ``BandMask(-UNBOUNDED, 0)``; sliding-window causal of width W is
    ``BandMask(-(W - 1), 0)``; sliding-window non-causal is ``BandMask(-(W - 1), UNBOUNDED)``.
    """

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def visible(self, b, h, q, k):
        return (k >= q + _per_batch(self.lo, b)) & (k <= q + _per_batch(self.hi, b))

    def tile_status(self, b, q_lo, q_hi, k_lo, k_hi):
        return ms.band_tile_status(q_lo, q_hi, k_lo, k_hi, _per_batch(self.lo, b),
                                   _per_batch(self.hi, b))


def causal_mask() -> BandMask:
    return BandMask(-UNBOUNDED, 0)


def sliding_window_causal_mask(window: int) -> BandMask:
    return BandMask(-(window - 1), 0)


def sliding_window_noncausal_mask(window: int) -> BandMask:
    return BandMask(-(window - 1), UNBOUNDED)


class ChunkedMask(MaskFunctor):
    """``q // chunk == k // chunk``: bidirectional inside a chunk (MAX ChunkedMask)."""

    def __init__(self, chunk: int):
        self.chunk = int(chunk)

    def visible(self, b, h, q, k):
        return torch.div(q, self.chunk, rounding_mode="floor") == torch.div(
            k, self.chunk, rounding_mode="floor")

    def tile_status(self, b, q_lo, q_hi, k_lo, k_hi):
        return ms.chunk_tile_status(q_lo, q_hi, k_lo, k_hi, self.chunk)


class KeyLengthMask(MaskFunctor):
    """``k < lengths[b]``: the end of each key sequence, or a padding mask's valid lengths."""

    def __init__(self, lengths: torch.Tensor):
        self.lengths = lengths.to(torch.int64)

    def visible(self, b, h, q, k):
        return k < _per_batch(self.lengths, b)

    def tile_status(self, b, q_lo, q_hi, k_lo, k_hi):
        return ms.key_length_tile_status(k_lo, k_hi, _per_batch(self.lengths, b))


class MaterializedMask(MaskFunctor):
    """A boolean tensor, **True = masked** (CANN ``atten_mask`` polarity).

    ``masked``: (R, C), (1|B, R, C) or (1|B, 1|N, R, C); a size-1 batch / head dim broadcasts.
    Lookup as MAX's MaterializedMask: ``row = q - start_pos[b]``, ``col = k``;
    outside ``[0, R) x [0, C)`` counts as masked. ``start_pos`` defaults to ``C - R`` (mask rows
    aligned with the last R query positions); the dense op passes ``L_k(b) - L_q(b)`` so that
    ``row`` is the local query row ``i``. Only the in-range indices are ever read.
    """

    def __init__(self, masked: torch.Tensor, start_pos=None):
        m = masked.to(torch.bool)
        if m.dim() == 2:
            m = m[None, None]
        elif m.dim() == 3:                                # (B, R, C): one mask for all heads
            m = m.unsqueeze(1)
        self.masked = m                                   # [Bm, Nm, R, C]
        rows, cols = m.shape[-2:]
        self.start_pos = cols - rows if start_pos is None else start_pos

    def visible(self, b, h, q, k):
        bm, nm, rows, cols = self.masked.shape
        row = q - _per_batch(self.start_pos, b)
        inside = (row >= 0) & (row < rows) & (k >= 0) & (k < cols)
        bi = b if bm > 1 else torch.zeros_like(b)
        hi = h if nm > 1 else torch.zeros_like(h)
        hit = self.masked[bi, hi, row.clamp(0, rows - 1), k.clamp(0, cols - 1)]
        return inside & ~hit


class OrMask(MaskFunctor):
    """Masked where **either** masks: visible iff both are visible (MAX OrMask)."""

    def __init__(self, *masks: MaskFunctor):
        self.masks = masks

    def visible(self, b, h, q, k):
        out = self.masks[0].visible(b, h, q, k)
        for m in self.masks[1:]:
            out = out & m.visible(b, h, q, k)
        return out

    def tile_status(self, b, q_lo, q_hi, k_lo, k_hi):
        return ms.all_of(*(m.tile_status(b, q_lo, q_hi, k_lo, k_hi) for m in self.masks))


class AndMask(MaskFunctor):
    """Masked only where **both** mask: visible iff either is visible (MAX AndMask)."""

    def __init__(self, a: MaskFunctor, b: MaskFunctor):
        self.a, self.b = a, b

    def visible(self, b, h, q, k):
        return self.a.visible(b, h, q, k) | self.b.visible(b, h, q, k)

    def tile_status(self, b, q_lo, q_hi, k_lo, k_hi):
        return ms.any_of(self.a.tile_status(b, q_lo, q_hi, k_lo, k_hi),
                         self.b.tile_status(b, q_lo, q_hi, k_lo, k_hi))


def chunked_causal_mask(chunk: int) -> OrMask:
    """Llama-4 local attention: causal and inside the query's chunk (MAX ChunkedCausalMask)."""
    return OrMask(causal_mask(), ChunkedMask(chunk))


def causal_padding_mask(valid_lengths: torch.Tensor) -> OrMask:
    """Causal and ``k < valid_lengths[b]`` (MAX CausalPaddingMask)."""
    return OrMask(causal_mask(), KeyLengthMask(valid_lengths))


def build_mask(spec: MaskSpec, q_lens: torch.Tensor, kv_lens: torch.Tensor,
               atten_mask: torch.Tensor | None) -> MaskFunctor:
    """The functor of a call of a dense op: sparse_mode band AND chunk AND key length AND
    the materialized ``atten_mask`` (modes 0/1 only; ignored for modes 2/3/4)."""
    delta = (kv_lens - q_lens).to(torch.int64)
    lo, hi = spec.band_offsets(delta)
    parts: list[MaskFunctor] = [BandMask(lo, hi), KeyLengthMask(kv_lens)]
    if spec.chunk_size is not None:
        parts.append(ChunkedMask(spec.chunk_size))
    if atten_mask is not None and spec.sparse_mode in (ms.SparseMode.DEFAULT,
                                                       ms.SparseMode.ALL_MASK):
        parts.append(MaterializedMask(atten_mask, start_pos=delta))
    return OrMask(*parts)
