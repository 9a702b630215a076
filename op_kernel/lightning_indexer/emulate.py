"""The CPU back end of npu_lightning_indexer: the plan, executed as the device would.

The schedule gives every core a list of pieces (a task = a query row, or a run of its steps).
Cores run in parallel, so the emulator runs *rounds*: round r processes the r-th piece of every
core in one batch. Within a piece it walks the steps in order: take the next ``block_s2`` key
positions, gather them through the layout's addressing (page-table walk for PA_BSND), compute
the chunk's scores head group by head group (``head_group`` heads per matmul, as the plan
says), and merge the chunk into the row's running top-k list (``topk_merge``): at no time does
it hold more than ``block_s2 + sparse_count`` candidates of a row. A piece that is a whole task
writes its list; a piece of a split task writes its list to a workspace slot, and a final merge
of the slots gives the row's list. Every tile processed is checked against the platform's
buffers.

Score arithmetic (same as the reference, see its docstring): dot products accumulated in fp64
and rounded once to fp32, ReLU and the weight in fp32, the head sum accumulated in fp64 across
head groups and rounded once to fp32.

Out-of-range safety: positions outside [0, n_vis) are never addressed; masked lanes read row 0,
which exists (key is non-empty), and they enter the merge as padding.
"""
from __future__ import annotations

import torch

from cann_attention.op_host.common.layouts import Layout
from cann_attention.op_host.lightning_indexer.params import (
    D, LightningIndexerParams, LightningIndexerTensors, output_shapes)
from cann_attention.op_host.lightning_indexer.tiling import (
    LightningIndexerTiling, schedule, tile_usage)

from . import topk_merge


def _key_rows(p: LightningIndexerParams, t: LightningIndexerTensors, k_start: torch.Tensor,
              batch: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Row of the flattened key for logical position ``pos`` [n, P] of ``batch`` [n]."""
    if p.kv_layout is Layout.PA_BSND:
        page = t.block_table[batch.unsqueeze(-1), pos // p.block_size].to(torch.int64)
        return page * p.block_size + pos % p.block_size
    return k_start[batch].unsqueeze(-1) + pos


def _chunk_scores(q_tile, w_tile, k_tile, head_group):
    """score [n, P] fp32 of q [n, N1, D] (fp64), w [n, N1] (fp32), k [n, P, D] (fp64)."""
    acc = torch.zeros(k_tile.shape[:2], dtype=torch.float64, device=k_tile.device)
    k_t = k_tile.transpose(1, 2)
    for h0 in range(0, q_tile.shape[1], head_group):            # the plan's head groups
        x = torch.matmul(q_tile[:, h0:h0 + head_group], k_t).float()          # [n, hg, P]
        terms = torch.relu(x) * w_tile[:, h0:h0 + head_group].unsqueeze(-1)   # fp32
        acc += terms.double().sum(1)
    return acc.float() + 0.0                                    # rounded once; -0 -> +0


def run(p: LightningIndexerParams, tiling: LightningIndexerTiling, t: LightningIndexerTensors):
    dev = t.query.device
    rows, n1, k = p.num_rows, p.n1, p.sparse_count
    hg, bs2 = tiling.head_group, tiling.block_s2
    q = t.query.reshape(rows, n1, D)
    w = t.weights.reshape(rows, n1)
    key = t.key.reshape(-1, D)
    k_start = torch.tensor(p.kv_row_starts, dtype=torch.int64, device=dev)
    kind, itemsize = tiling.platform.kind, t.query.element_size()

    out_idx = torch.full((rows, k), -1, dtype=torch.int64, device=dev)
    out_val = torch.full((rows, k), float("-inf"), dtype=torch.float32, device=dev)
    work = schedule(p, tiling)
    sched = work.schedule
    ws = topk_merge.empty((sched.num_slots,), k, dev)           # lists of split pieces
    task_row, task_batch, task_nvis = (x.to(dev) for x in
                                       (work.task_row, work.task_batch, work.task_nvis))
    offs = torch.arange(bs2, device=dev)

    for tid, begin, end, slot in sched.rounds(dev):
        row, b = task_row[tid], task_batch[tid]
        hi = torch.minimum(end * bs2, task_nvis[tid])           # exclusive key bound
        q_tile, w_tile = q[row].double(), w[row].float()
        lists = topk_merge.empty((len(tid),), k, dev)
        for step_k in range(int((end - begin).max())):
            pos = (begin + step_k).unsqueeze(-1) * bs2 + offs                   # [n, bs2]
            ok = pos < hi.unsqueeze(-1)
            pos = torch.where(ok, pos, torch.zeros_like(pos))
            k_row = torch.where(ok, _key_rows(p, t, k_start, b, pos), 0)
            k_tile = key[k_row].double()                                         # [n, bs2, D]
            tiling.platform.assert_fits(   # the tile actually processed
                tile_usage(kind, q_tile.shape[1], min(hg, n1), k_tile.shape[1],
                           lists[0].shape[-1], itemsize), "lightning_indexer step")
            score = _chunk_scores(q_tile, w_tile, k_tile, hg)
            idx = torch.where(ok, pos, torch.full_like(pos, -1))
            val = torch.where(ok, score, torch.full_like(score, float("-inf")))
            lists = topk_merge.merge(lists, (topk_merge.sort_keys(score, pos, ok), idx, val), k)
        whole = slot < 0
        out_idx[row[whole]] = lists[1][whole]
        out_val[row[whole]] = lists[2][whole]
        for dst, src in zip(ws, lists):
            dst[slot[~whole]] = src[~whole]

    if sched.num_slots:
        _merge_split_tasks(sched, ws, task_row, k, out_idx, out_val)

    idx_shape, val_shape = output_shapes(t.query.shape, p.layout_query, k, p.return_value)
    indices = out_idx.to(torch.int32).reshape(idx_shape)
    if not p.return_value:
        return indices, torch.empty(val_shape, dtype=t.query.dtype, device=dev)
    return indices, out_val.to(t.query.dtype).reshape(val_shape)


def _merge_split_tasks(sched, ws, task_row, k, out_idx, out_val):
    """Top-k of the union of each split task's piece lists (the workspace merge)."""
    dev = out_idx.device
    is_slot = sched.piece_slot >= 0
    slot_task = sched.piece_task[is_slot]
    slot_of_piece = sched.piece_slot[is_slot]
    tasks, group = torch.unique(slot_task, return_inverse=True)
    first = torch.full((len(tasks),), slot_of_piece.numel(), dtype=torch.int64)
    first.scatter_reduce_(0, group, torch.arange(slot_of_piece.numel()), "amin")
    rank = torch.arange(slot_of_piece.numel()) - first[group]     # piece position in task
    width = int(rank.max()) + 1
    merged = topk_merge.empty((len(tasks), width), k, dev)
    for dst, src in zip(merged, ws):
        dst[group.to(dev), rank.to(dev)] = src[slot_of_piece.to(dev)]
    _, idx, val = topk_merge.merge(tuple(x.flatten(1) for x in merged),
                                   topk_merge.empty((len(tasks),), 0, dev), k)
    rows = task_row[tasks.to(dev)]
    out_idx[rows] = idx
    out_val[rows] = val
