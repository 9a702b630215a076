"""Per-batch sequence lengths: CANN passes them as counts or as inclusive prefix sums."""
from __future__ import annotations

from itertools import accumulate

from .layouts import Layout


def counts_from_prefix_sums(prefix: tuple[int, ...]) -> tuple[int, ...]:
    """[c0, c0+c1, ...] (inclusive, no leading 0) -> [c0, c1, ...]."""
    return tuple(b - a for a, b in zip((0,) + prefix[:-1], prefix))


def starts_from_counts(counts: tuple[int, ...]) -> tuple[int, ...]:
    """[c0, c1, ...] -> exclusive prefix sums [0, c0, c0+c1, ...] (one per batch)."""
    return (0,) + tuple(accumulate(counts))[:-1] if counts else ()


def check_counts(check, arg: str, counts: tuple[int, ...], upper: int, upper_name: str) -> None:
    """Counts must lie in [0, upper] (the message names the first that does not)."""
    if all(0 <= value <= upper for value in counts):
        return
    b, value = next((b, v) for b, v in enumerate(counts) if not 0 <= v <= upper)
    check.fail(arg, f"every length in [0, {upper_name}={upper}]", f"{value} at batch {b}")


def check_prefix_sums(check, arg: str, prefix: tuple[int, ...], total: int, total_name: str) -> None:
    """Prefix sums must be non-negative, non-decreasing and end at most at ``total``."""
    previous = (0,) + tuple(prefix[:-1])
    if not all(value >= before for value, before in zip(prefix, previous)):
        b, value, before = next((b, v, w) for b, (v, w) in enumerate(zip(prefix, previous))
                                if v < w)
        check.fail(arg, "non-decreasing, non-negative inclusive prefix sums",
                   f"{value} after {before} at batch {b}")
    if prefix:
        check.require(prefix[-1] <= total, arg, f"a last prefix sum <= {total_name}={total}",
                      prefix[-1])


def batch_lengths(layout, lengths, default: int, batch: int) -> tuple[int, ...]:
    """Per-batch lengths of one side: prefix sums for TND, counts (or ``default``) otherwise.

    ``lengths`` is the TensorMeta of ``actual_seq_lengths_*`` (values read on the host) or None.
    """
    if layout is Layout.TND:
        return counts_from_prefix_sums(lengths.values)
    return lengths.values if lengths is not None else (default,) * batch


def batch_row_starts(layout, lens: tuple[int, ...], stride: int, batch: int) -> tuple[int, ...]:
    """First row of each batch in the flattened (rows, ...) view: packed for TND, b * stride."""
    if layout is Layout.TND:
        return starts_from_counts(lens)
    return tuple(b * stride for b in range(batch))


def key_capacity(layout, key, block_table) -> int:
    """Key rows per batch: S2 (BSND), T2 (TND), max_blocks * block_size (PA_BSND)."""
    if layout is Layout.BSND:
        return key.shape[1]
    if layout is Layout.TND:
        return key.shape[0]
    return block_table.shape[1] * key.shape[1]
