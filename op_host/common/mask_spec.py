"""Mask predicates as integer geometry: what the host planner knows about a mask.

Masks of the dense attention ops (docs/flash_attention.md, Semantics) are built from three
shapes, all evaluated at the *absolute* query position ``qpos = i + (L_k - L_q)`` (query rows
aligned with the last L_q keys: bottom-right) and the key index ``k``:

- a **band** ``qpos + lo <= k <= qpos + hi`` (causal, sliding windows, sparse_mode 2/3/4 and the
  top-left band of mode 0; ``lo``/``hi`` may depend on the batch);
- a **chunk** ``qpos // C == k // C``;
- a **key length** ``k < L_k(b)`` (the sequence end, or a padding mask's valid length).

A materialized mask (a tensor) has no geometry the host can see without reading data: its
tiles are "partial" unless the geometry already says "empty".

This module is pure integer arithmetic on int64 tensors so that the planner (op_host) can
classify tiles without importing op_kernel; ``op_kernel/common/masks.py`` builds its mask
functors on these functions, so the plan and the kernels agree on every tile.

Tile status of a rectangle of queries ``[q_lo, q_hi)`` x keys ``[k_lo, k_hi)`` (absolute,
half-open, both non-empty): EMPTY (nothing visible: the tile is skipped), FULL (everything
visible: no predicate needs evaluating) or PARTIAL. Combinations are conservative: a PARTIAL
answer is always allowed; EMPTY and FULL must be exact.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import torch

UNBOUNDED = 2**62   # "no bound" for band offsets; sums of two stay inside int64
INT64_MAX = 2**63 - 1


class TileStatus(enum.IntEnum):
    EMPTY = 0
    PARTIAL = 1
    FULL = 2


class SparseMode(enum.IntEnum):
    """CANN sparse_mode values supported by the dense ops (docs/flash_attention.md, Semantics)."""
    DEFAULT = 0          # no mask, or atten_mask + top-left band (pre/next)
    ALL_MASK = 1         # atten_mask only
    LEFT_UP_CAUSAL = 2   # k <= i
    RIGHT_DOWN_CAUSAL = 3  # k <= i + delta
    BAND = 4             # i + delta - pre <= k <= i + delta + next


def clamp_offset(value: int) -> int:
    return max(-UNBOUNDED, min(UNBOUNDED, int(value)))


def band_tile_status(q_lo, q_hi, k_lo, k_hi, lo, hi) -> torch.Tensor:
    """Status of ``qpos + lo <= k <= qpos + hi`` over the tiles (int64 tensors, broadcast)."""
    q_last, k_last = q_hi - 1, k_hi - 1
    empty = (q_last + hi < k_lo) | (q_lo + lo > k_last)
    # every row must have lo(q) <= k_lo and hi(q) >= k_last; also catch an empty band (lo > hi)
    full = (q_last + lo <= k_lo) & (q_lo + hi >= k_last) & (lo <= hi)
    return _status(empty, full)


def chunk_tile_status(q_lo, q_hi, k_lo, k_hi, chunk: int) -> torch.Tensor:
    """Status of ``qpos // chunk == k // chunk`` (positions < 0 never share a key's chunk)."""
    cq0, cq1 = torch.div(q_lo, chunk, rounding_mode="floor"), torch.div(q_hi - 1, chunk,
                                                                         rounding_mode="floor")
    ck0, ck1 = k_lo // chunk, (k_hi - 1) // chunk
    empty = (cq1 < ck0) | (cq0 > ck1)
    full = (cq0 == cq1) & (ck0 == ck1) & (cq0 == ck0)
    return _status(empty, full)


def key_length_tile_status(k_lo, k_hi, kv_len) -> torch.Tensor:
    """Status of ``k < kv_len``."""
    return _status(k_lo >= kv_len, k_hi <= kv_len)


def all_of(*statuses: torch.Tensor) -> torch.Tensor:
    """Visibility intersection (MAX's OrMask: masked if either masks): the minimum status."""
    out = statuses[0]
    for s in statuses[1:]:
        out = torch.minimum(out, s)
    return out


def any_of(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Visibility union (MAX's AndMask): FULL if either is FULL, EMPTY if both are EMPTY."""
    full = (a == TileStatus.FULL) | (b == TileStatus.FULL)
    empty = (a == TileStatus.EMPTY) & (b == TileStatus.EMPTY)
    return _status(empty, full)


def _status(empty: torch.Tensor, full: torch.Tensor) -> torch.Tensor:
    out = torch.full(torch.broadcast_shapes(empty.shape, full.shape), int(TileStatus.PARTIAL),
                     dtype=torch.int8, device=empty.device)
    out = torch.where(full, torch.full_like(out, int(TileStatus.FULL)), out)
    return torch.where(empty, torch.full_like(out, int(TileStatus.EMPTY)), out)


@dataclass(frozen=True)
class MaskSpec:
    """The mask of one call of a dense op, from CANN's arguments (sparse_mode, pre_tokens,
    next_tokens, chunk_size, atten_mask; docs/flash_attention.md, Semantics).

    ``band_offsets(delta)`` gives the band in absolute-position terms: visible iff
    ``qpos + lo <= k <= qpos + hi`` where ``delta = L_k(b) - L_q(b)`` per batch.
    """
    sparse_mode: int
    pre_tokens: int
    next_tokens: int
    chunk_size: int | None
    has_atten_mask: bool

    def band_offsets(self, delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mode = SparseMode(self.sparse_mode)
        free = torch.full_like(delta, UNBOUNDED)
        pre, nxt = clamp_offset(self.pre_tokens), clamp_offset(self.next_tokens)
        if mode is SparseMode.DEFAULT and self.has_atten_mask:   # top-left band origin
            return -pre - delta, nxt - delta
        if mode is SparseMode.LEFT_UP_CAUSAL:
            return -free, -delta
        if mode is SparseMode.RIGHT_DOWN_CAUSAL:
            return -free, torch.zeros_like(delta)
        if mode is SparseMode.BAND:                              # bottom-right band origin
            return torch.full_like(delta, -pre), torch.full_like(delta, nxt)
        return -free, free

    def tile_status(self, q_lo, q_hi, k_lo, k_hi, delta, kv_len) -> torch.Tensor:
        """Status of the tiles (absolute positions; ``delta``/``kv_len`` per tile's batch)."""
        lo, hi = self.band_offsets(delta)
        parts = [band_tile_status(q_lo, q_hi, k_lo, k_hi, lo, hi),
                 key_length_tile_status(k_lo, k_hi, kv_len)]
        if self.chunk_size is not None:
            parts.append(chunk_tile_status(q_lo, q_hi, k_lo, k_hi, self.chunk_size))
        status = all_of(*parts)
        if self.has_atten_mask and self.sparse_mode in (SparseMode.DEFAULT, SparseMode.ALL_MASK):
            status = torch.minimum(status, torch.full_like(status, int(TileStatus.PARTIAL)))
        return status
