"""The data-dependent part of a sparse_flash_attention plan, computed where the data lives.

``device_schedule(p, tiling, tensors)`` turns the call's lengths, page table and indices into the
tables the kernels run from, with tensor operations on the tensors' device whose sizes depend
only on the static plan: nothing is read back to the host, so a GPU call can be captured in a
CUDA graph and replayed with new lengths. It is the reference of the GPU metadata kernel
(op_kernel/sparse_flash_attention/metadata.py, tested equal) and what the emulator runs.

Malformed values never lead a kernel outside a tensor; they are made safe here, and the result
is the one docs/sparse_flash_attention.md states for value checks switched off:
- lengths are clamped into [0, the tensor's capacity]; TND prefix sums are made non-decreasing
  (a running maximum) and clamped to T;
- with a paged cache, a batch's keys end at its first page-table entry (among the pages its
  length uses) that lies outside [0, block_num): later positions are not visible;
- index entries past the visible range are skipped and a negative entry ends the row's scan,
  as for well-formed input.

Tables (int64; T tasks = rows x head groups, task t = g * rows + r):
- ``kv_start`` [B]: first key row of each batch in the flattened cache (BSND, TND);
- ``task_row``, ``task_batch``, ``task_head``, ``task_tau`` (exclusive bound on visible
  positions), ``task_window`` (index entries the kernel may scan) [T];
- ``row_first_neg`` [R]: position of the first negative index entry of each row (K if none);
  a task scans min(window, first_neg) entries;
- ``schedule``: the per-core pieces and split-task tables (common/schedule.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..common.layouts import Layout
from ..common.schedule import Schedule, partition
from .params import SparseFlashAttentionParams

TASK_OVERHEAD_STEPS = 1           # cost of loading a query tile and writing its output


@dataclass(frozen=True)
class SparseFlashAttentionSchedule:
    kv_start: torch.Tensor
    task_row: torch.Tensor
    task_batch: torch.Tensor
    task_head: torch.Tensor
    task_tau: torch.Tensor
    task_window: torch.Tensor
    row_first_neg: torch.Tensor
    schedule: Schedule


def _ceil_div(a: torch.Tensor, b: int) -> torch.Tensor:
    return torch.div(a + b - 1, b, rounding_mode="floor")


def _prefix_ends(lengths: torch.Tensor, total: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(starts, ends) of TND batches from inclusive prefix sums: non-decreasing, in [0, total]."""
    ends = torch.clamp(torch.cummax(lengths.to(torch.int64), 0).values, 0, total)
    return torch.cat([ends.new_zeros(1), ends[:-1]]), ends


def batch_lengths(p: SparseFlashAttentionParams, t) -> tuple[torch.Tensor, ...]:
    """(q_start, q_len, q_end, kv_start, kv_len) [B] each, safe for any length values."""
    dev, B = t.sparse_indices.device, p.batch
    arange = torch.arange(B, device=dev)
    if p.q_layout is Layout.TND:
        q_start, q_end = _prefix_ends(t.actual_seq_lengths_query, p.num_rows)
        q_len = q_end - q_start
    else:
        aq = t.actual_seq_lengths_query
        q_len = (torch.clamp(aq.to(torch.int64), 0, p.s1) if aq is not None
                 else torch.full((B,), p.s1, dtype=torch.int64, device=dev))
        q_start = arange * p.s1
        q_end = q_start + q_len
    akv = t.actual_seq_lengths_kv
    if p.kv_layout is Layout.TND:
        kv_start, kv_end = _prefix_ends(akv, p.key.shape[0])
        kv_len = kv_end - kv_start
    else:
        kv_len = (torch.clamp(akv.to(torch.int64), 0, p.s2) if akv is not None
                  else torch.full((B,), p.s2, dtype=torch.int64, device=dev))
        kv_start = arange * p.key.shape[1] if p.kv_layout is Layout.BSND else arange * 0
    if p.kv_layout is Layout.PA_BSND:
        bt = t.block_table
        bad = (bt < 0) | (bt >= p.key.shape[0])
        first_bad = torch.where(bad.any(1), bad.to(torch.int8).argmax(1),
                                torch.full_like(kv_len, bt.shape[1]))
        kv_len = torch.minimum(kv_len, first_bad * p.block_size)
    return q_start, q_len, q_end, kv_start, kv_len


def row_visibility(p: SparseFlashAttentionParams, t) -> tuple[torch.Tensor, ...]:
    """(batch, tau, kv_start) of every query row [R]: tau = 0 for rows that see nothing."""
    q_start, q_len, q_end, kv_start, kv_len = batch_lengths(p, t)
    r = torch.arange(p.num_rows, device=q_len.device)
    if p.q_layout is Layout.TND:
        b = torch.searchsorted(q_end, r, right=True)
        valid = b < p.batch
        b = torch.clamp(b, max=p.batch - 1)
    else:
        b = r // p.s1
        valid = (r - q_start[b]) < q_len[b]
    s = r - q_start[b]
    tau = kv_len[b] - q_len[b] + s + 1 if p.sparse_mode == 3 else kv_len[b]
    tau = torch.where(valid, torch.clamp(tau, min=0), torch.zeros_like(tau))
    return b, tau, kv_start


def first_negative(sparse_indices: torch.Tensor, rows: int) -> torch.Tensor:
    """[R] position of the first negative entry of each index row (K where there is none)."""
    negative = sparse_indices.reshape(rows, -1) < 0
    k = negative.shape[1]
    return torch.where(negative.any(1), negative.to(torch.int8).argmax(1),
                       torch.full((rows,), k, dtype=torch.int64, device=negative.device))


def device_schedule(p: SparseFlashAttentionParams, tiling, t) -> SparseFlashAttentionSchedule:
    """The tables of module doc, on the device of ``t.sparse_indices``, without host reads."""
    batch, tau, kv_start = row_visibility(p, t)
    window = torch.minimum(_ceil_div(tau, p.sparse_block_size),
                           torch.full_like(tau, p.k))
    steps = _ceil_div(window, tiling.entries_per_step)
    groups, rows = tiling.groups, p.num_rows
    dev = tau.device
    schedule = partition(steps.repeat(groups), tiling.num_cores, TASK_OVERHEAD_STEPS,
                         tiling.split_cost if tiling.split_cost >= 0 else None)
    return SparseFlashAttentionSchedule(
        kv_start=kv_start,
        task_row=torch.arange(rows, device=dev).repeat(groups),
        task_batch=batch.repeat(groups),
        task_head=torch.repeat_interleave(torch.arange(groups, device=dev) * tiling.head_group,
                                          rows),
        task_tau=tau.repeat(groups), task_window=window.repeat(groups),
        row_first_neg=first_negative(t.sparse_indices, rows), schedule=schedule)
