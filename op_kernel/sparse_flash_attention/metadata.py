"""The GPU metadata kernel of npu_sparse_flash_attention: the device schedule in one launch.

It computes on the device, from the call's lengths and page table, exactly the tables of
``op_host/sparse_flash_attention/schedule.device_schedule`` (the reference; the tests compare
every table), so the op reads no value back to the host and a call can be captured in a CUDA
graph and replayed with new lengths.

- The page scan (a paged cache only), one program per batch: it walks the pages the batch's
  keys occupy for the first entry outside the cache (a batch's keys end there). These reads
  grow with the context and the batch, so they run in parallel.
- The schedule, one program (with a paged cache: the page program that arrives last, counted
  at the buffer's head, ``ARRIVALS``): passes over batches, rows, tasks, cuts and pieces with a
  CTA barrier between passes (its scratch lives in the same buffer); each pass reads a few
  entries per batch, row or task, none per key or page. One launch instead of a scan launch
  and a schedule launch: a launch costs ~10 us of host time on the GPU machines.

The tables depend on the lengths and the page table, never on the indices: the reference's
``row_first_neg`` (where a row's -1 padding starts) is found by the attention kernels, each
piece among the entries it can reach (``triton._scan_limit``). So calls that share lengths and
a page table can share one schedule (shared.py: the calls of one captured decode step).

Sizes are the static plan's (``tiling.max_pieces`` ...), so the launches and the buffer never
depend on values. Every table lives in one int64 buffer (``layout``): the head of the call's
workspace in ``triton.run``, which passes the tables' addresses to the kernels; ``build``
returns views. What a launch needs that depends only on (params, plan) is computed once per
pair (``LAUNCHES``).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from cann_attention.op_host.common.layouts import Layout
from cann_attention.op_host.sparse_flash_attention.schedule import (
    TASK_OVERHEAD_STEPS, SparseFlashAttentionSchedule)
from cann_attention.op_host.common.schedule import Schedule

from ..common.per_plan import PerPlanCache
from ..common.triton_launch import Launcher

BLOCK = 512          # elements per pass iteration of the schedule
PAGE_BLOCK = 1024    # page-table entries per load of a page program
SCHEDULE_WARPS = 8   # the schedule's passes are lane-bound: 4 -> 8 warps took an H100's graph-
                     # replayed schedule from 15 to 12 us (decode) and 184 to 113 us (prefill)


# the tables the kernels read, in buffer order (KERNEL_TABLES), then the ones only the tests
# compare, then the schedule's scratch (kv_len: the scan's for a paged cache)
KERNEL_TABLES = ("kv_start", "task_row", "task_batch", "task_head", "task_tau", "task_window",
                 "core_first", "piece_task", "piece_begin", "piece_end",
                 "piece_slot", "split_task", "split_first", "split_count")
LAYOUT_CACHE_SIZE = 64
ARRIVALS = 2         # int64 words at the head of the tables: the page programs' arrival counter
                     # (meta[0]; 0 before and after a launch, so a workspace kept between calls
                     # needs no clearing) and a pad keeping the tables' 16-byte parity


def layout(p, tiling) -> dict[str, int]:
    """Sizes of the tables in the buffer, in order (module doc)."""
    T, P, G, C, R, B = (tiling.num_tasks, tiling.max_pieces, tiling.max_split_tasks,
                        tiling.num_cores, p.num_rows, p.batch)
    return dict(arrivals=ARRIVALS, kv_start=B, task_row=T, task_batch=T, task_head=T, task_tau=T, task_window=T,
                core_first=C + 1, piece_task=P, piece_begin=P, piece_end=P,
                piece_slot=P, split_task=G, split_first=G, split_count=G,
                piece_core=P, task_num_pieces=T, per_core=1,
                # scratch
                q_start=B, q_len=B, q_end=B, kv_len=B, row_steps=R, row_end=R, cum_n=T,
                slot_base=T, bound=C + 1, first_task=C + 1)


class Tables:
    """The tables of one call: views of one int64 buffer (``KERNEL_TABLES`` as attributes);
    ``reference_form()`` gives them as schedule.device_schedule does, for comparisons (without
    ``row_first_neg``, which the attention kernels find: module doc)."""
    __slots__ = KERNEL_TABLES + ("meta", "launch")

    def reference_form(self) -> SparseFlashAttentionSchedule:
        v = self.launch.views(self.meta)
        schedule = Schedule(self.launch.num_cores, v["per_core"][0], v["core_first"],
                            v["piece_task"], v["piece_begin"], v["piece_end"], v["piece_core"],
                            v["piece_slot"], v["task_num_pieces"], v["split_task"],
                            v["split_first"], v["split_count"], self.launch.max_slots)
        return SparseFlashAttentionSchedule(
            v["kv_start"], v["task_row"], v["task_batch"], v["task_head"], v["task_tau"],
            v["task_window"], None, schedule)


@triton.jit
def _scan_max(a, b):
    return tl.maximum(a, b)


@triton.jit
def _search_right(arr, n, x, ITERS: tl.constexpr):
    """For each x: the first i in [0, n] with arr[i] > x (arr[0 .. n) non-decreasing)."""
    lo = tl.zeros_like(x)
    hi = tl.zeros_like(x) + n
    for _ in tl.static_range(ITERS):
        live = lo < hi
        mid = (lo + hi) // 2
        v = tl.load(arr + mid, mask=live, other=0)
        right = live & (v <= x)
        lo = tl.where(right, mid + 1, lo)
        hi = tl.where(live & (v > x), mid, hi)
    return lo


@triton.jit
def _task_line(t, row_steps, row_end, n_rows, row_total, OVERHEAD: tl.constexpr):
    """(start, steps) of tasks t on the line: group g = t // R comes after g whole row lines."""
    g = t // n_rows
    r = t - g * n_rows
    steps = tl.load(row_steps + r)
    end = g * row_total + tl.load(row_end + r)
    return end - steps - OVERHEAD, steps


@triton.jit
def _cores_of(start, steps, per_core, n_cores, OVERHEAD: tl.constexpr):
    """(core of the first step, core of the last step) of tasks on the balanced cut."""
    first = start + OVERHEAD
    last = tl.maximum(first + steps - 1, first)
    return tl.minimum(first // per_core, n_cores - 1), tl.minimum(last // per_core, n_cores - 1)


@triton.jit
def _prefix_ends(lengths, o_b, m_b, carry, total):
    """A block of TND batch ends from inclusive prefix sums: the running maximum (carried
    across blocks in ``carry``), clamped to [0, total]; returns (ends, new carry)."""
    v = tl.load(lengths + o_b, mask=m_b, other=0).to(tl.int64)
    run = tl.maximum(tl.associative_scan(v, 0, _scan_max), carry)
    carry = tl.maximum(carry, tl.max(tl.where(m_b, v, carry), 0))
    return tl.minimum(tl.maximum(run, 0), total), carry


@triton.jit
def _counts(lengths, o_b, m_b, capacity, PRESENT: tl.constexpr):
    """Batches o_b's counts from a BSND / PA_BSND length list, clamped to [0, capacity]; every
    batch has the capacity where the list is absent."""
    if PRESENT:
        n = tl.load(lengths + o_b, mask=m_b, other=0).to(tl.int64)
        return tl.minimum(tl.maximum(n, 0), capacity)
    else:
        return tl.zeros_like(o_b).to(tl.int64) + capacity


@triton.jit
def _paged_len(akv, block_table, b, kv_meta, kv_capacity, page_size, block_num, max_blocks,
               HAS_AKV: tl.constexpr, PAGE_BLOCK: tl.constexpr):
    """Batch b's keys with a paged cache: min(kv_len, first bad page * page_size). Only the
    pages the keys occupy are read (a bad entry past the keys changes nothing)."""
    kv_len = _counts(akv, b, True, kv_capacity, HAS_AKV)
    pages = (kv_len + page_size - 1) // page_size
    row = block_table + b.to(tl.int64) * max_blocks
    first_bad = tl.zeros([], tl.int64) + max_blocks
    for j0 in range(0, pages, PAGE_BLOCK):
        j = j0 + tl.arange(0, PAGE_BLOCK)
        m = j < pages
        page = tl.load(row + j, mask=m, other=0)
        bad = m & ((page < 0) | (page >= block_num))
        first_bad = tl.minimum(first_bad, tl.min(tl.where(bad, j, max_blocks), 0))
    tl.store(kv_meta + b, tl.minimum(kv_len, first_bad * page_size))


@triton.jit
def _batch_pass(aq, akv, meta, o_kv_start, s_q_start, s_q_len, s_q_end, s_kv_len, n_batch,
                n_rows, rows_per_batch, kv_capacity, kv_rows_per_batch, kv_total,
                Q_TND: tl.constexpr, KV_LAYOUT: tl.constexpr, HAS_AQ: tl.constexpr,
                HAS_AKV: tl.constexpr, BLOCK: tl.constexpr):
    """Pass 1: per batch (q_start, q_len, q_end, kv_start, kv_len), safe for any values (a
    paged cache's kv_len is the scan's)."""
    ar = tl.arange(0, BLOCK)
    carry_q = tl.zeros([], tl.int64)
    carry_k = tl.zeros([], tl.int64)
    for b0 in range(0, n_batch, BLOCK):
        o_b = b0 + ar
        m_b = o_b < n_batch
        if Q_TND:
            q_end, carry_q = _prefix_ends(aq, o_b, m_b, carry_q, n_rows)
            tl.store(meta + s_q_end + o_b, q_end, mask=m_b)
        else:
            q_len = _counts(aq, o_b, m_b, rows_per_batch, HAS_AQ)
            tl.store(meta + s_q_len + o_b, q_len, mask=m_b)
            tl.store(meta + s_q_start + o_b, o_b.to(tl.int64) * rows_per_batch, mask=m_b)
            tl.store(meta + s_q_end + o_b, o_b.to(tl.int64) * rows_per_batch + q_len, mask=m_b)
        if KV_LAYOUT == 1:
            kv_end, carry_k = _prefix_ends(akv, o_b, m_b, carry_k, kv_total)
            tl.store(meta + s_kv_len + o_b, kv_end, mask=m_b)
        elif KV_LAYOUT == 2:      # kv_len: the scan's; every batch's keys start its pages
            tl.store(meta + o_kv_start + o_b, tl.zeros([BLOCK], tl.int64), mask=m_b)
        else:
            kv_len = _counts(akv, o_b, m_b, kv_capacity, HAS_AKV)
            tl.store(meta + s_kv_len + o_b, kv_len, mask=m_b)
            tl.store(meta + o_kv_start + o_b, o_b.to(tl.int64) * kv_rows_per_batch, mask=m_b)
    tl.debug_barrier()
    if Q_TND or KV_LAYOUT == 1:   # TND: starts are the previous batch's end, lengths the gaps
        for b1 in range(0, n_batch, BLOCK):
            o_b1 = b1 + ar
            m_b1 = o_b1 < n_batch
            if Q_TND:
                q_end = tl.load(meta + s_q_end + o_b1, mask=m_b1, other=0)
                q_start = tl.load(meta + s_q_end + o_b1 - 1, mask=m_b1 & (o_b1 > 0), other=0)
                tl.store(meta + s_q_start + o_b1, q_start, mask=m_b1)
                tl.store(meta + s_q_len + o_b1, q_end - q_start, mask=m_b1)
            if KV_LAYOUT == 1:
                kv_prev = tl.load(meta + s_kv_len + o_b1 - 1, mask=m_b1 & (o_b1 > 0), other=0)
                tl.store(meta + o_kv_start + o_b1, kv_prev, mask=m_b1)
        tl.debug_barrier()
        if KV_LAYOUT == 1:
            for b2 in range(0, n_batch, BLOCK):
                o_b2 = b2 + ar
                m_b2 = o_b2 < n_batch
                kv_end = tl.load(meta + s_kv_len + o_b2, mask=m_b2, other=0)
                kv_begin = tl.load(meta + o_kv_start + o_b2, mask=m_b2, other=0)
                tl.store(meta + s_kv_len + o_b2, kv_end - kv_begin, mask=m_b2)
            tl.debug_barrier()


@triton.jit
def _row_pass(meta, o_task_row, o_task_batch, o_task_head, o_task_tau, o_task_window,
              s_q_start, s_q_len, s_q_end, s_kv_len, s_row_steps, s_row_end,
              n_batch, n_rows, rows_per_batch, k, sbs, entries, n_groups, head_group,
              Q_TND: tl.constexpr, CAUSAL: tl.constexpr, OVERHEAD: tl.constexpr,
              BLOCK: tl.constexpr, LOG_B: tl.constexpr):
    """Pass 2: per row its batch, tau, window and steps; the tasks' tables; the row line.
    Returns the line's total cost of one head group."""
    ar = tl.arange(0, BLOCK)
    row_total = tl.zeros([], tl.int64)
    for r0 in range(0, n_rows, BLOCK):
        o_r = (r0 + ar).to(tl.int64)
        m_r = o_r < n_rows
        if Q_TND:
            b = _search_right(meta + s_q_end, n_batch, o_r, LOG_B)
            valid = b < n_batch
            b = tl.minimum(b, n_batch - 1)
        else:
            b = o_r // rows_per_batch
        q_start = tl.load(meta + s_q_start + b, mask=m_r, other=0)
        q_len = tl.load(meta + s_q_len + b, mask=m_r, other=0)
        kv_len = tl.load(meta + s_kv_len + b, mask=m_r, other=0)
        s = o_r - q_start
        if not Q_TND:
            valid = s < q_len
        if CAUSAL:
            tau = kv_len - q_len + s + 1
        else:
            tau = kv_len
        tau = tl.where(valid, tl.maximum(tau, 0), 0)
        window = tl.minimum((tau + sbs - 1) // sbs, k)
        steps = (window + entries - 1) // entries
        cost = tl.where(m_r, steps + OVERHEAD, 0)
        tl.store(meta + s_row_steps + o_r, steps, mask=m_r)
        tl.store(meta + s_row_end + o_r, tl.cumsum(cost, 0) + row_total, mask=m_r)
        row_total += tl.sum(cost, 0)
        for grp in range(0, n_groups):
            o_t = grp * n_rows + o_r
            tl.store(meta + o_task_row + o_t, o_r, mask=m_r)
            tl.store(meta + o_task_batch + o_t, b, mask=m_r)
            tl.store(meta + o_task_head + o_t, tl.zeros_like(o_r) + grp * head_group, mask=m_r)
            tl.store(meta + o_task_tau + o_t, tau, mask=m_r)
            tl.store(meta + o_task_window + o_t, window, mask=m_r)
    return row_total


@triton.jit
def _task_pass(meta, o_split_task, o_split_first, o_split_count, o_task_pieces, s_row_steps,
               s_row_end, s_cum_n, s_slot_base, n_rows, n_tasks, row_total, per_core, n_cores,
               OVERHEAD: tl.constexpr, BLOCK: tl.constexpr):
    """Pass 3: per task its pieces on the balanced cut, their prefix sums, the split tasks'
    tables. Returns (pieces, split tasks, the most pieces of a task)."""
    ar = tl.arange(0, BLOCK)
    carry_n = tl.zeros([], tl.int64)
    carry_slot = tl.zeros([], tl.int64)
    carry_split = tl.zeros([], tl.int64)
    max_n = tl.zeros([], tl.int64)
    for t0 in range(0, n_tasks, BLOCK):
        o_t = (t0 + ar).to(tl.int64)
        m_t = o_t < n_tasks
        start, steps = _task_line(o_t, meta + s_row_steps, meta + s_row_end, n_rows, row_total,
                                  OVERHEAD)
        c_first, c_last = _cores_of(start, steps, per_core, n_cores, OVERHEAD)
        n = tl.where(m_t, c_last - c_first + 1, 0)
        tl.store(meta + s_cum_n + o_t, tl.cumsum(n, 0) + carry_n, mask=m_t)
        tl.store(meta + o_task_pieces + o_t, n, mask=m_t)
        split = n > 1
        pieces = tl.where(split, n, 0)
        base = tl.cumsum(pieces, 0) - pieces + carry_slot
        tl.store(meta + s_slot_base + o_t, base, mask=m_t)
        g = tl.cumsum(split.to(tl.int64), 0) - 1 + carry_split
        tl.store(meta + o_split_task + g, o_t, mask=split)
        tl.store(meta + o_split_first + g, base, mask=split)
        tl.store(meta + o_split_count + g, n, mask=split)
        carry_n += tl.sum(n, 0)
        carry_slot += tl.sum(pieces, 0)
        carry_split += tl.sum(split.to(tl.int64), 0)
        max_n = tl.maximum(max_n, tl.max(n, 0))
    return carry_n, carry_split, max_n


@triton.jit
def _whole_cut(meta, s_row_steps, s_row_end, s_bound, s_first_task, n_rows, n_tasks,
               row_total, total, n_cores, OVERHEAD: tl.constexpr, BLOCK_C: tl.constexpr,
               LOG_T: tl.constexpr):
    """Pass 4: the whole-task cut, each cut c * total / C moved to the nearest task boundary.
    Stores each core's first task; returns (first task [C+1], the longest core's cost)."""
    o_c = tl.arange(0, BLOCK_C).to(tl.int64)
    m_c = o_c <= n_cores
    cut = o_c * total // n_cores
    lo = tl.zeros([BLOCK_C], tl.int64)                  # the first task whose end is >= cut
    hi = tl.zeros([BLOCK_C], tl.int64) + n_tasks
    for _ in tl.static_range(LOG_T):
        live = lo < hi
        mid = (lo + hi) // 2
        m_start, m_steps = _task_line(tl.minimum(mid, n_tasks - 1), meta + s_row_steps,
                                      meta + s_row_end, n_rows, row_total, OVERHEAD)
        right = live & (m_start + m_steps + OVERHEAD < cut)
        lo = tl.where(right, mid + 1, lo)
        hi = tl.where(live & ~right, mid, hi)
    after = tl.minimum(lo, n_tasks - 1)
    a_start, a_steps = _task_line(after, meta + s_row_steps, meta + s_row_end, n_rows,
                                  row_total, OVERHEAD)
    end_after = a_start + a_steps + OVERHEAD
    nearer_before = (cut - a_start) < (end_after - cut)
    bound = tl.where(nearer_before, a_start, end_after)
    first_task = tl.where(nearer_before, after, after + 1)
    bound = tl.where(o_c == 0, 0, tl.where(o_c == n_cores, total, bound))
    first_task = tl.where(o_c == 0, 0, tl.where(o_c == n_cores, n_tasks, first_task))
    tl.store(meta + s_bound + o_c, bound, mask=m_c)
    tl.store(meta + s_first_task + o_c, first_task, mask=m_c)
    tl.debug_barrier()
    next_bound = tl.load(meta + s_bound + o_c + 1, mask=o_c < n_cores, other=0)
    return first_task, tl.max(tl.where(o_c < n_cores, next_bound - bound, 0), 0)


@triton.jit
def _write_whole(meta, o_core_first, o_piece_task, o_piece_begin, o_piece_end, o_piece_core,
                 o_piece_slot, o_split_task, o_split_first, o_split_count, o_task_pieces,
                 s_row_steps, s_row_end, s_first_task, first_task, n_rows, n_tasks, row_total,
                 n_cores, n_pieces_max, n_split_max, OVERHEAD: tl.constexpr,
                 BLOCK: tl.constexpr, BLOCK_C: tl.constexpr, LOG_C: tl.constexpr):
    """Pass 5, whole tasks: one piece a task, on the core the cut gives it; no split task."""
    ar = tl.arange(0, BLOCK)
    o_c = tl.arange(0, BLOCK_C).to(tl.int64)
    tl.store(meta + o_core_first + o_c, first_task, mask=o_c <= n_cores)
    for t0 in range(0, n_tasks, BLOCK):
        o_t = (t0 + ar).to(tl.int64)
        tl.store(meta + o_task_pieces + o_t, tl.zeros_like(o_t) + 1, mask=o_t < n_tasks)
    for g0 in range(0, n_split_max, BLOCK):
        o_g = g0 + ar
        zero = tl.zeros([BLOCK], tl.int64)
        tl.store(meta + o_split_task + o_g, zero, mask=o_g < n_split_max)
        tl.store(meta + o_split_first + o_g, zero, mask=o_g < n_split_max)
        tl.store(meta + o_split_count + o_g, zero, mask=o_g < n_split_max)
    for p0 in range(0, n_pieces_max, BLOCK):
        o_p = (p0 + ar).to(tl.int64)
        m_p = o_p < n_pieces_max
        valid = o_p < n_tasks
        t = tl.minimum(o_p, n_tasks - 1)
        start, steps = _task_line(t, meta + s_row_steps, meta + s_row_end, n_rows, row_total,
                                  OVERHEAD)
        core = _search_right(meta + s_first_task, n_cores + 1, o_p, LOG_C) - 1
        tl.store(meta + o_piece_task + o_p, tl.where(valid, t, 0), mask=m_p)
        tl.store(meta + o_piece_begin + o_p, tl.zeros_like(o_p), mask=m_p)
        tl.store(meta + o_piece_end + o_p, tl.where(valid, steps, 0), mask=m_p)
        tl.store(meta + o_piece_core + o_p, tl.where(valid, core, n_cores), mask=m_p)
        tl.store(meta + o_piece_slot + o_p, tl.zeros_like(o_p) - 1, mask=m_p)


@triton.jit
def _write_piece(meta, o_piece_task, o_piece_begin, o_piece_end, o_piece_core, o_piece_slot,
                 o_p, m_p, t, j, n, base, start, steps, per_core, n_cores,
                 OVERHEAD: tl.constexpr):
    """Piece o_p, the j-th of task t's n pieces on the balanced cut (slot base + j if split)."""
    first = start + OVERHEAD
    c_first, c_last = _cores_of(start, steps, per_core, n_cores, OVERHEAD)
    core = c_first + j
    begin = tl.where(j == 0, first, core * per_core) - first
    end = tl.where(core == c_last, first + steps, (core + 1) * per_core) - first
    tl.store(meta + o_piece_task + o_p, t, mask=m_p)
    tl.store(meta + o_piece_begin + o_p, begin, mask=m_p)
    tl.store(meta + o_piece_end + o_p, end, mask=m_p)
    tl.store(meta + o_piece_core + o_p, core, mask=m_p)
    tl.store(meta + o_piece_slot + o_p, tl.where(n > 1, base + j, -1), mask=m_p)


@triton.jit
def _write_balanced(meta, o_core_first, o_piece_task, o_piece_begin, o_piece_end, o_piece_core,
                    o_piece_slot, o_split_task, o_split_first, o_split_count, o_task_pieces,
                    s_row_steps, s_row_end, s_cum_n, s_slot_base, n_rows, n_tasks, row_total,
                    per_core, n_cores, n_pieces, n_split, max_n, n_pieces_max, n_split_max,
                    OVERHEAD: tl.constexpr, BLOCK: tl.constexpr, BLOCK_C: tl.constexpr,
                    LOG_T: tl.constexpr):
    """Pass 5, balanced cut. Core c's pieces are core_first[c] .. core_first[c + 1] - 1, one
    of each of the tasks tf(c), tf(c) + 1, ... (tf(c): the first task whose last core is >= c).
    The pieces are written in rounds, whichever way takes fewer: per core, one piece of every
    core a round (few tasks over many cores: decode), or per task, one piece of every task of a
    block a round (many tasks a core: prefill). The pieces past the call's are padding."""
    ar = tl.arange(0, BLOCK)
    for g0 in range(0, n_split_max, BLOCK):    # split tables past the split tasks: padding
        o_g = g0 + ar
        pad = (o_g >= n_split) & (o_g < n_split_max)
        zero = tl.zeros([BLOCK], tl.int64)
        tl.store(meta + o_split_task + o_g, zero, mask=pad)
        tl.store(meta + o_split_first + o_g, zero, mask=pad)
        tl.store(meta + o_split_count + o_g, zero, mask=pad)
    # tf(c) by binary search, then core_first
    o_c = tl.arange(0, BLOCK_C).to(tl.int64)
    lo = tl.zeros([BLOCK_C], tl.int64)
    hi = tl.zeros([BLOCK_C], tl.int64) + n_tasks
    for _ in tl.static_range(LOG_T):
        live = lo < hi
        mid = (lo + hi) // 2
        m_start, m_steps = _task_line(tl.minimum(mid, n_tasks - 1), meta + s_row_steps,
                                      meta + s_row_end, n_rows, row_total, OVERHEAD)
        m_first, m_last = _cores_of(m_start, m_steps, per_core, n_cores, OVERHEAD)
        right = live & (m_last < o_c)
        lo = tl.where(right, mid + 1, lo)
        hi = tl.where(live & ~right, mid, hi)
    tc = tl.minimum(lo, n_tasks - 1)
    tc_start, tc_steps = _task_line(tc, meta + s_row_steps, meta + s_row_end, n_rows,
                                    row_total, OVERHEAD)
    tc_first, tc_last = _cores_of(tc_start, tc_steps, per_core, n_cores, OVERHEAD)
    tc_pieces = tl.load(meta + o_task_pieces + tc)
    first_piece = tl.load(meta + s_cum_n + tc) - tc_pieces + tl.maximum(o_c - tc_first, 0)
    core_first = tl.where(lo < n_tasks, first_piece, n_pieces)
    tl.store(meta + o_core_first + o_c, core_first, mask=o_c <= n_cores)
    tl.debug_barrier()
    next_first = tl.load(meta + o_core_first + o_c + 1, mask=o_c < n_cores, other=0)
    count = tl.where(o_c < n_cores, next_first - core_first, 0)
    max_count = tl.max(count, 0)
    if max_count < tl.cdiv(n_tasks, BLOCK) * max_n:
        for k in range(0, max_count):           # per core: its k-th piece, of task tf(c) + k
            m_p = k < count
            t = tl.minimum(lo + k, n_tasks - 1)
            start, steps = _task_line(t, meta + s_row_steps, meta + s_row_end, n_rows,
                                      row_total, OVERHEAD)
            c_first, c_last = _cores_of(start, steps, per_core, n_cores, OVERHEAD)
            n = tl.load(meta + o_task_pieces + t, mask=m_p, other=1)
            base = tl.load(meta + s_slot_base + t, mask=m_p, other=0)
            _write_piece(meta, o_piece_task, o_piece_begin, o_piece_end, o_piece_core,
                         o_piece_slot, core_first + k, m_p, t, o_c - c_first, n, base, start,
                         steps, per_core, n_cores, OVERHEAD)
    else:
        for t0 in range(0, n_tasks, BLOCK):     # per task: its j-th piece, at its prefix sum
            t = (t0 + ar).to(tl.int64)
            m_t = t < n_tasks
            n = tl.load(meta + o_task_pieces + t, mask=m_t, other=0)
            p0 = tl.load(meta + s_cum_n + t, mask=m_t, other=0) - n
            base = tl.load(meta + s_slot_base + t, mask=m_t, other=0)
            start, steps = _task_line(tl.minimum(t, n_tasks - 1), meta + s_row_steps,
                                      meta + s_row_end, n_rows, row_total, OVERHEAD)
            for j in range(0, tl.max(n, 0)):
                _write_piece(meta, o_piece_task, o_piece_begin, o_piece_end, o_piece_core,
                             o_piece_slot, p0 + j, j < n, t, j, n, base, start, steps,
                             per_core, n_cores, OVERHEAD)
    for p0 in range(n_pieces, n_pieces_max, BLOCK):
        o_p = (p0 + ar).to(tl.int64)
        m_p = o_p < n_pieces_max
        zero = tl.zeros([BLOCK], tl.int64)
        tl.store(meta + o_piece_task + o_p, zero, mask=m_p)
        tl.store(meta + o_piece_begin + o_p, zero, mask=m_p)
        tl.store(meta + o_piece_end + o_p, zero, mask=m_p)
        tl.store(meta + o_piece_core + o_p, zero + n_cores, mask=m_p)
        tl.store(meta + o_piece_slot + o_p, zero - 1, mask=m_p)


@triton.jit
def _schedule(
    aq, akv, meta,
    o_kv_start, o_task_row, o_task_batch, o_task_head, o_task_tau, o_task_window,
    o_core_first, o_piece_task, o_piece_begin, o_piece_end, o_piece_core,
    o_piece_slot, o_split_task, o_split_first, o_split_count, o_task_pieces, o_per_core,
    s_q_start, s_q_len, s_q_end, s_kv_len, s_row_steps, s_row_end, s_cum_n, s_slot_base,
    s_bound, s_first_task,
    n_batch, n_rows, rows_per_batch, k, sbs, entries, n_groups, head_group, n_cores,
    split_cost, kv_capacity, kv_rows_per_batch, kv_total, n_pieces_max, n_split_max,
    Q_TND: tl.constexpr, KV_LAYOUT: tl.constexpr, HAS_AQ: tl.constexpr,
    HAS_AKV: tl.constexpr, CAUSAL: tl.constexpr, OVERHEAD: tl.constexpr,
    BLOCK: tl.constexpr, BLOCK_C: tl.constexpr, LOG_B: tl.constexpr, LOG_T: tl.constexpr,
    LOG_C: tl.constexpr,
):
    """The schedule's passes (module doc), in one program."""
    _batch_pass(aq, akv, meta, o_kv_start, s_q_start, s_q_len, s_q_end, s_kv_len, n_batch,
                n_rows, rows_per_batch, kv_capacity, kv_rows_per_batch, kv_total, Q_TND,
                KV_LAYOUT, HAS_AQ, HAS_AKV, BLOCK)
    row_total = _row_pass(meta, o_task_row, o_task_batch, o_task_head, o_task_tau,
                          o_task_window, s_q_start, s_q_len, s_q_end, s_kv_len,
                          s_row_steps, s_row_end, n_batch, n_rows, rows_per_batch, k, sbs,
                          entries, n_groups, head_group, Q_TND, CAUSAL, OVERHEAD, BLOCK,
                          LOG_B)
    tl.debug_barrier()
    n_tasks = n_rows * n_groups
    total = row_total * n_groups
    per_core = tl.maximum((total + n_cores - 1) // n_cores, 1)
    n_pieces, n_split, max_n = _task_pass(meta, o_split_task, o_split_first, o_split_count,
                                   o_task_pieces, s_row_steps, s_row_end, s_cum_n,
                                   s_slot_base, n_rows, n_tasks, row_total, per_core,
                                   n_cores, OVERHEAD, BLOCK)
    tl.debug_barrier()
    first_task, whole_longest = _whole_cut(meta, s_row_steps, s_row_end, s_bound,
                                           s_first_task, n_rows, n_tasks, row_total, total,
                                           n_cores, OVERHEAD, BLOCK_C, LOG_T)
    use_whole = ((split_cost >= 0) & (n_split > 0)
                 & (whole_longest <= per_core + OVERHEAD + split_cost))
    if use_whole:
        tl.store(meta + o_per_core, whole_longest)
        _write_whole(meta, o_core_first, o_piece_task, o_piece_begin, o_piece_end,
                     o_piece_core, o_piece_slot, o_split_task, o_split_first, o_split_count,
                     o_task_pieces, s_row_steps, s_row_end, s_first_task, first_task,
                     n_rows, n_tasks, row_total, n_cores, n_pieces_max, n_split_max,
                     OVERHEAD, BLOCK, BLOCK_C, LOG_C)
    else:
        tl.store(meta + o_per_core, per_core)
        _write_balanced(meta, o_core_first, o_piece_task, o_piece_begin, o_piece_end,
                        o_piece_core, o_piece_slot, o_split_task, o_split_first,
                        o_split_count, o_task_pieces, s_row_steps, s_row_end, s_cum_n,
                        s_slot_base, n_rows, n_tasks, row_total, per_core, n_cores,
                        n_pieces, n_split, max_n, n_pieces_max, n_split_max, OVERHEAD, BLOCK,
                        BLOCK_C, LOG_T)


@triton.jit
def _sfa_metadata_kernel(
    aq, akv, block_table, meta,
    o_kv_start, o_task_row, o_task_batch, o_task_head, o_task_tau, o_task_window,
    o_core_first, o_piece_task, o_piece_begin, o_piece_end, o_piece_core,
    o_piece_slot, o_split_task, o_split_first, o_split_count, o_task_pieces, o_per_core,
    s_q_start, s_q_len, s_q_end, s_kv_len, s_row_steps, s_row_end, s_cum_n, s_slot_base,
    s_bound, s_first_task,
    n_batch, n_rows, rows_per_batch, k, sbs, entries, n_groups, head_group, n_cores,
    split_cost, kv_capacity, kv_rows_per_batch, kv_total, n_pieces_max, n_split_max,
    page_size, max_blocks,
    Q_TND: tl.constexpr, KV_LAYOUT: tl.constexpr, HAS_AQ: tl.constexpr,
    HAS_AKV: tl.constexpr, CAUSAL: tl.constexpr, OVERHEAD: tl.constexpr,
    BLOCK: tl.constexpr, BLOCK_C: tl.constexpr, LOG_B: tl.constexpr, LOG_T: tl.constexpr,
    LOG_C: tl.constexpr, PAGE_BLOCK: tl.constexpr,
):
    """The metadata launch (module doc): with a paged cache, program b walks batch b's pages
    and the last program to arrive (the counter at ``meta[0]``) runs the schedule and sets the
    counter back to 0; else one program runs the schedule."""
    last = True
    if KV_LAYOUT == 2:
        _paged_len(akv, block_table, tl.program_id(0), meta + s_kv_len, kv_capacity,
                   page_size, kv_total, max_blocks, HAS_AKV, PAGE_BLOCK)
        tl.debug_barrier()                  # every lane's store before the release
        last = tl.atomic_add(meta, 1, sem="acq_rel") == n_batch - 1
        if last:
            tl.debug_barrier()              # every lane's loads after the acquire
            tl.store(meta, 0)
    if last:
        _schedule(aq, akv, meta, o_kv_start, o_task_row, o_task_batch, o_task_head,
                  o_task_tau, o_task_window, o_core_first, o_piece_task, o_piece_begin,
                  o_piece_end, o_piece_core, o_piece_slot, o_split_task, o_split_first,
                  o_split_count, o_task_pieces, o_per_core, s_q_start, s_q_len, s_q_end,
                  s_kv_len, s_row_steps, s_row_end, s_cum_n, s_slot_base, s_bound,
                  s_first_task, n_batch, n_rows, rows_per_batch, k, sbs, entries,
                  n_groups, head_group, n_cores, split_cost, kv_capacity,
                  kv_rows_per_batch, kv_total, n_pieces_max, n_split_max, Q_TND,
                  KV_LAYOUT, HAS_AQ, HAS_AKV, CAUSAL, OVERHEAD, BLOCK, BLOCK_C, LOG_B,
                  LOG_T, LOG_C)


def _log2_ceil(n: int) -> int:
    return max(1, (n + 1).bit_length())


class _Launch:
    """Everything about a call's metadata launches that depends only on (params, plan)."""

    def __init__(self, p, tiling):
        self.sizes = layout(p, tiling)
        offsets, at = {}, 0
        for name, size in self.sizes.items():
            offsets[name] = at
            at += size
        self.offsets, self.total = offsets, at
        self.nbytes = -(-8 * at // 16) * 16     # what the tables take of a call's workspace
        self.table_bytes = tuple(8 * offsets[n] for n in KERNEL_TABLES)
        self.num_cores, self.max_slots = tiling.num_cores, tiling.max_slots
        R, T, C, B = p.num_rows, tiling.num_tasks, tiling.num_cores, p.batch
        self.paged = p.kv_layout is Layout.PA_BSND
        o = offsets
        kv_capacity, block_num = p.s2, p.key.shape[0]
        self.ints = (
            o["kv_start"], o["task_row"], o["task_batch"], o["task_head"], o["task_tau"],
            o["task_window"], o["core_first"], o["piece_task"], o["piece_begin"],
            o["piece_end"], o["piece_core"], o["piece_slot"], o["split_task"],
            o["split_first"], o["split_count"], o["task_num_pieces"], o["per_core"],
            o["q_start"], o["q_len"], o["q_end"], o["kv_len"], o["row_steps"], o["row_end"],
            o["cum_n"], o["slot_base"], o["bound"], o["first_task"],
            B, R, p.s1 if p.q_layout is Layout.BSND else R, p.k, p.sparse_block_size,
            tiling.entries_per_step, tiling.groups, tiling.head_group, C, tiling.split_cost,
            kv_capacity, p.key.shape[1], block_num, tiling.max_pieces, tiling.max_split_tasks,
            p.block_size if self.paged else 1, p.block_table.shape[1] if self.paged else 1)
        self.kernel = Launcher(
            _sfa_metadata_kernel, (B if self.paged else 1,), Q_TND=p.q_layout is Layout.TND,
            KV_LAYOUT={Layout.BSND: 0, Layout.TND: 1, Layout.PA_BSND: 2}[p.kv_layout],
            HAS_AQ=p.actual_seq_lengths_query is not None,
            HAS_AKV=p.actual_seq_lengths_kv is not None, CAUSAL=p.sparse_mode == 3,
            OVERHEAD=TASK_OVERHEAD_STEPS, BLOCK=BLOCK, BLOCK_C=triton.next_power_of_2(C + 1),
            LOG_B=_log2_ceil(B), LOG_T=_log2_ceil(T), LOG_C=_log2_ceil(C + 1),
            PAGE_BLOCK=PAGE_BLOCK, num_warps=SCHEDULE_WARPS)

    def launch(self, t, block_table, at: int, meta, aligned=None) -> None:
        """Build the tables of the call ``t`` (``block_table``: its contiguous page table, or
        None) at address ``at``, in one launch; the buffer's arrival counter (``ARRIVALS``)
        must be 0. ``meta()`` gives the tables as an int64 tensor, needed only where the
        kernel goes through Triton's binding (triton_launch)."""
        aq, akv = t.actual_seq_lengths_query, t.actual_seq_lengths_kv

        def args(m):        # the tables' buffer also stands in for absent inputs
            return (aq if aq is not None else m, akv if akv is not None else m,
                    block_table if block_table is not None else m, m, *self.ints)
        self.kernel(args(at), lambda: args(meta()), aligned)

    def views(self, meta) -> dict:
        return {name: meta[self.offsets[name]:self.offsets[name] + size]
                for name, size in self.sizes.items()}


LAUNCHES = PerPlanCache(_Launch, LAYOUT_CACHE_SIZE)


def build(p, tiling, t) -> Tables:
    """The device schedule of a call, computed on the device, in a buffer of its own (the
    tests read it; ``triton.run`` builds it in its workspace or shares one: shared.py)."""
    launch = LAUNCHES.get(p, tiling)
    meta = torch.zeros(launch.total, dtype=torch.int64, device=t.sparse_indices.device)
    launch.launch(t, t.block_table.contiguous() if launch.paged else None, meta.data_ptr(),
                  lambda: meta)
    tables = Tables()
    for name in KERNEL_TABLES:
        setattr(tables, name, meta[launch.offsets[name]:][:launch.sizes[name]])
    tables.meta, tables.launch = meta, launch
    return tables
