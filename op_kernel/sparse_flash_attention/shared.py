"""Device schedules shared by the calls of one captured step (FlashMLA's once-per-step metadata,
without a new API).

A decode step calls npu_sparse_flash_attention once per layer with the same lengths and page
table; only the queries, the indices and the cache differ, and the schedule (metadata.py)
depends on none of them. Inside a CUDA graph capture, the first call of the step with a given
(plan, ``actual_seq_lengths_query``, ``actual_seq_lengths_kv``, ``block_table``) builds the
tables in a buffer of their own, kept here; the later calls of the same capture, on the same
stream, with the same tensors read that buffer and launch only the attention kernel and the
merge. On every replay the first call's metadata launches run again on that replay's values,
before the later calls (one stream, captured in order), so each call reads the schedule of the
values it sees.

Same tensors means the same storage at the same version: a write through PyTorch between two
calls (``copy_``, ``fill_``, an in-place op on any view) bumps the version and the next call
builds its own tables. A kernel that writes those tensors behind PyTorch's back between two
calls of one captured step would go unseen: turn the sharing off for it
(``cann_attention.use(share_schedules=False)``). Eager calls never share. An entry holds the
tensors it was keyed on, so their addresses cannot be reused by other tensors while it lives;
entries are few (``CACHE_SIZE``, oldest dropped first) and ``cann_attention.clear_caches()``
empties them.
"""
from __future__ import annotations

import threading

import torch

from ..common.capture import current_capture

CACHE_SIZE = 64
_LOCK = threading.Lock()
_entries: dict = {}


def _stamp(x):
    return None if x is None else (x.data_ptr(), x._version)


def tables_buffer(tables, t, block_table, share: bool) -> tuple[torch.Tensor | None, bool]:
    """(buffer, build) for a call with metadata launch ``tables`` (metadata.LAUNCHES' entry):
    the int64 buffer holding its tables (None: the head of the call's own workspace) and
    whether the call must launch the metadata kernel into it."""
    if not share:
        return None, True
    device = t.sparse_indices.device
    capture = current_capture(device)
    if capture is None:
        return None, True
    aq, akv = t.actual_seq_lengths_query, t.actual_seq_lengths_kv
    key = (capture, id(tables), _stamp(aq), _stamp(akv), _stamp(block_table))
    hit = _entries.get(key)
    if hit is not None and hit[0] is tables:
        return hit[1], False
    new = torch.zeros if tables.paged else torch.empty     # a paged build counts arrivals
    buffer = new(tables.total, dtype=torch.int64, device=device)
    with _LOCK:
        _entries[key] = (tables, buffer, (aq, akv, block_table))
        while len(_entries) > CACHE_SIZE:
            del _entries[next(iter(_entries))]
    return buffer, True


def clear() -> None:
    with _LOCK:
        _entries.clear()


def entries() -> int:
    """How many shared schedules are kept (tests)."""
    return len(_entries)
