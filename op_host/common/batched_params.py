"""Derived properties shared by the params classes of the ops with batched query and key sides.

A params class (a frozen dataclass of TensorMetas and plain values) mixes these in and names
its own fields through two class attributes: ``KV_LAYOUT_FIELD`` (``"layout_kv"`` or
``"layout_key"``) and ``KV_LENGTHS_FIELD`` (``"actual_seq_lengths_kv"`` or
``"actual_seq_lengths_key"``). Valid after the op's check; the two checks at the end are
parts of the ops' checks.
"""
from __future__ import annotations

from .layouts import Layout
from .paging import check_used_pages
from .seqlens import (
    batch_lengths,
    batch_row_starts,
    check_counts,
    check_prefix_sums,
    key_capacity,
)


class BatchedRows:
    """Layouts, batch count, key capacity and per-batch lengths / row starts of both sides.

    Needs fields ``query``, ``key``, ``block_table``, ``layout_query``,
    ``actual_seq_lengths_query`` and the two named above, and a property ``s1``.
    """
    KV_LAYOUT_FIELD = "layout_kv"
    KV_LENGTHS_FIELD = "actual_seq_lengths_kv"

    @property
    def q_layout(self) -> Layout:
        return Layout(self.layout_query)

    @property
    def kv_layout(self) -> Layout:
        return Layout(getattr(self, self.KV_LAYOUT_FIELD))

    @property
    def batch(self) -> int:
        if self.q_layout is Layout.TND:
            return self.actual_seq_lengths_query.numel
        return self.query.shape[0]

    @property
    def block_size(self) -> int:
        return self.key.shape[1]

    @property
    def s2(self) -> int:
        """Key capacity per batch: S2 (BSND), T2 (TND), max_blocks * block_size (PA_BSND)."""
        return key_capacity(self.kv_layout, self.key, self.block_table)

    @property
    def q_lens(self) -> tuple[int, ...]:
        return batch_lengths(self.q_layout, self.actual_seq_lengths_query, self.s1, self.batch)

    @property
    def q_row_starts(self) -> tuple[int, ...]:
        return batch_row_starts(self.q_layout, self.q_lens, self.s1, self.batch)

    @property
    def kv_lens(self) -> tuple[int, ...]:
        return batch_lengths(self.kv_layout, getattr(self, self.KV_LENGTHS_FIELD), self.s2,
                             self.batch)

    @property
    def kv_row_starts(self) -> tuple[int, ...]:
        """First row of each batch in the flattened key (BSND, TND); unused for PA_BSND."""
        return batch_row_starts(self.kv_layout, self.kv_lens, self.key.shape[1], self.batch)


class BsndTndRows(BatchedRows):
    """For queries laid out BSND or TND (N1 and D the last two dimensions)."""

    @property
    def n1(self) -> int:
        return self.query.shape[-2]

    @property
    def s1(self) -> int:
        """Query rows per batch slot (BSND) or in total (TND)."""
        return self.query.shape[1] if self.q_layout is Layout.BSND else self.query.shape[0]

    @property
    def num_rows(self) -> int:
        """Query rows of the flattened (rows, N1, D) view: B * S1 (BSND) or T1 (TND)."""
        return self.query.numel // (self.n1 * self.query.shape[-1])


def check_batch_lengths(check, p: BatchedRows, tnd_ends_at_total: bool = False) -> None:
    """(P) Both sides' per-batch lengths lie inside the tensors: counts <= S1 / S2 (or the
    paged capacity), TND prefix sums non-decreasing up to T (exactly T where
    ``tnd_ends_at_total``)."""
    sides = (("actual_seq_lengths_query", p.q_layout, p.query.shape[0], "T1", p.s1, "S1"),
             (p.KV_LENGTHS_FIELD, p.kv_layout, p.key.shape[0], "T2", p.s2,
              "max_blocks_per_seq*block_size" if p.kv_layout is Layout.PA_BSND else "S2"))
    for arg, layout, total, total_name, cap, cap_name in sides:
        lengths = getattr(p, arg)
        if layout is Layout.TND:
            check_prefix_sums(check, arg, lengths.values, total, total_name)
            if tnd_ends_at_total:
                check.require(lengths.values[-1] == total, arg,
                              f"a last element == {total_name}={total}", lengths.values[-1])
        elif lengths is not None:
            check_counts(check, arg, lengths.values, cap, cap_name)


def check_block_table_shape(check, block_table, kv_layout: Layout, batch: int | None,
                            layout_arg: str = "layout_kv") -> None:
    """(P) A block_table exactly when the keys are PA_BSND (``layout_arg`` names the key
    layout argument in messages), of rank 2 (B, max_blocks_per_seq) with a nonzero second
    dim and, when the batch is known, B rows."""
    bt = block_table
    if kv_layout is not Layout.PA_BSND:
        check.require(bt is None, "block_table", f"None when {layout_arg} is {kv_layout.value}",
                      f"a tensor of shape {bt.shape}" if bt is not None else None)
        return
    check.require(bt is not None, "block_table", f"a tensor when {layout_arg} is PA_BSND",
                  "None")
    check.require(bt.rank == 2, "block_table", "rank 2 (B, max_blocks_per_seq)",
                  f"shape {bt.shape}")
    check.require(bt.shape[1] > 0, "block_table", "shape[1] > 0", f"shape {bt.shape}")
    if batch is not None:
        check.require(bt.shape[0] == batch, "block_table", f"shape[0] == B={batch}",
                      f"shape {bt.shape}")


def check_cache_contiguous(check, arg: str, meta) -> None:
    """(P) A cache is read in place: a non-contiguous one would be copied whole on every call,
    so it is refused (make it contiguous once, where it is allocated)."""
    check.require(meta.contiguous, arg, "a contiguous tensor (a cache is read in place, never "
                  "copied per call)", f"a non-contiguous tensor of shape {meta.shape}")


def check_block_table_entries(check, p: BatchedRows, block_table,
                              block_num_name: str = "block_num") -> None:
    """(P) Page-table entries that will be read lie inside the cache (common/paging.py)."""
    if p.kv_layout is Layout.PA_BSND:
        check_used_pages(check, block_table, p.kv_lens, p.block_size, p.key.shape[0],
                         p.KV_LENGTHS_FIELD, block_num_name)
