"""The CPU back end of npu_sparse_flash_attention: the plan, executed as the device would.

It runs from values on the host (the pipeline hands it params with the lengths' values): the
schedule is ``schedule.device_schedule``, the reference of the GPU metadata kernel. The schedule
gives every core a list of pieces (a task, or a run of a task's steps). Cores run
in parallel, so the emulator runs *rounds*: round r processes the r-th piece of every core in
one batch. Within a piece it walks the steps in order: read ``entries_per_step`` index entries,
apply the window / -1 termination / skip-and-clip rules, gather the key rows through the
layout's addressing (page table walk for PA_BSND), compute the fp32 scores, and update the fp32
online softmax, rounding P to the input dtype before P.V as the NPU kernel does. Value is read
from key, never from ``value``. A piece that is a whole task writes its output; a piece of a split
task writes (m, l, acc) to its workspace slot, and the combine merges the slots at the end.
Every tile processed is checked against the platform's buffers.

Out-of-range safety: positions outside [0, tau) are never addressed; masked lanes read row 0,
which exists (key is non-empty), and their scores are -inf.
"""
from __future__ import annotations

import torch

from cann_attention.op_host.common.layouts import Layout
from cann_attention.op_host.sparse_flash_attention.params import (
    D, SparseFlashAttentionParams, SparseFlashAttentionTensors, lse_shape)
from cann_attention.op_host.sparse_flash_attention.schedule import device_schedule
from cann_attention.op_host.sparse_flash_attention.tiling import (
    SparseFlashAttentionTiling, step_usage)

from ..common import online_softmax as osm


def _kv_rows(p: SparseFlashAttentionParams, t: SparseFlashAttentionTensors,
             kv_start: torch.Tensor, batch: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Row of the flattened key for logical position ``pos`` of ``batch`` (any layout)."""
    if p.kv_layout is Layout.PA_BSND:
        page = t.block_table[batch.unsqueeze(-1), pos // p.block_size].to(torch.int64)
        return page * p.block_size + pos % p.block_size
    return kv_start[batch].unsqueeze(-1) + pos


def run(p: SparseFlashAttentionParams, tiling: SparseFlashAttentionTiling,
        t: SparseFlashAttentionTensors):
    dev = t.query.device
    rows, n1, k = p.num_rows, p.n1, p.k
    hg, eps, sbs = tiling.head_group, tiling.entries_per_step, p.sparse_block_size
    q_nope_all = t.query.reshape(rows, n1, D)
    q_rope_all = t.query_rope.reshape(rows, n1, -1)
    idx = t.sparse_indices.reshape(rows, k)
    key = t.key.reshape(-1, D)
    key_rope = t.key_rope.reshape(-1, t.key_rope.shape[-1])
    work = device_schedule(p, tiling, t)
    sched = work.schedule
    gathered_rows = int((sched.piece_step_end - sched.piece_step_begin).sum()) * tiling.block_s2
    if key.shape[0] < gathered_rows:
        # Widening fp16/bf16 to fp32 is exact: convert the cache once instead of every tile
        # when the tiles would gather more rows than the cache holds (prefill).
        key, key_rope = key.float(), key_rope.float()
    first_neg = work.row_first_neg
    kv_start = work.kv_start
    sinks = t.sinks.to(dev) if t.sinks is not None else None

    out = torch.zeros(rows, n1, D, dtype=t.query.dtype, device=dev)
    smax = torch.full((rows, n1), osm.SOFTMAX_MIN, dtype=torch.float32, device=dev)
    ssum = torch.zeros(rows, n1, dtype=torch.float32, device=dev)
    ws = osm.init_state((sched.max_slots, hg), D, dev)      # workspace of split tasks

    task = {name: getattr(work, f"task_{name}")
            for name in ("row", "batch", "head", "tau", "window")}
    heads = torch.arange(hg, device=dev)
    offs_e = torch.arange(eps, device=dev)
    offs_b = torch.arange(sbs, device=dev)
    itemsize = t.query.element_size()

    def write(task_ids, m, l, acc):
        o, mm, ll = osm.finalize(m, l, acc, None if sinks is None else
                                 sinks[task["head"][task_ids].unsqueeze(-1) + heads])
        r = task["row"][task_ids].unsqueeze(-1)
        h = task["head"][task_ids].unsqueeze(-1) + heads
        out[r, h] = o.to(out.dtype)
        smax[r, h] = mm
        ssum[r, h] = ll

    for tid, begin, end, slot in sched.rounds(dev):
        row, b, tau = task["row"][tid], task["batch"][tid], task["tau"][tid]
        limit = torch.minimum(task["window"][tid], first_neg[row])
        q_heads = (row.unsqueeze(-1), task["head"][tid].unsqueeze(-1) + heads)
        q_nope, q_rope = q_nope_all[q_heads].float(), q_rope_all[q_heads].float()  # [n, hg, *]
        m, l, acc = osm.init_state((len(tid), hg), D, dev)
        for step_k in range(int((end - begin).max())):
            step = begin + step_k
            e = step.unsqueeze(-1) * eps + offs_e                            # [n, eps]
            ok = (step < end).unsqueeze(-1) & (e < limit.unsqueeze(-1))
            block = idx[row.unsqueeze(-1), e.clamp(max=k - 1)].to(torch.int64)
            ok &= block * sbs < tau.unsqueeze(-1)                          # skip past boundary
            pos = (block * sbs).unsqueeze(-1) + offs_b                     # [n, eps, sbs]
            ok = (ok.unsqueeze(-1) & (pos < tau.view(-1, 1, 1))).flatten(1)  # clip
            pos = torch.where(ok, pos.flatten(1), torch.zeros_like(ok, dtype=torch.int64))
            kv_row = torch.where(ok, _kv_rows(p, t, kv_start, b, pos), 0)
            masked = ~ok.unsqueeze(-1)                       # masked loads give zeros
            k_nope = key[kv_row].masked_fill_(masked, 0).float()             # [n, P, 512]
            k_rope = key_rope[kv_row].masked_fill_(masked, 0).float()        # [n, P, 64]
            tiling.platform.assert_fits(step_usage(tiling, q_nope.shape[1], k_nope.shape[1],
                                                   itemsize), "sparse_flash_attention step")
            scores = torch.baddbmm(torch.bmm(q_rope, k_rope.transpose(1, 2)), q_nope,
                                   k_nope.transpose(1, 2)) * p.scale_value
            scores = scores.masked_fill_(~ok.unsqueeze(1), float("-inf"))    # [n, hg, P]
            m, l, acc = osm.update(m, l, acc, scores, k_nope, t.query.dtype)  # V = key
        whole = osm.route_pieces(slot, m, l, acc, ws)
        write(tid[whole], m[whole], l[whole], acc[whole])

    if sched.num_slots:
        write(*osm.merge_slots(sched, ws, dev))

    shape = lse_shape(t.query.shape, p.layout_query, p.return_softmax_lse)
    if not p.return_softmax_lse:
        smax = torch.empty(shape, dtype=torch.float32, device=dev)
        ssum = torch.empty(shape, dtype=torch.float32, device=dev)
    return out.reshape(t.query.shape), smax.reshape(shape), ssum.reshape(shape)
