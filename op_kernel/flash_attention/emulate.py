"""The CPU back end of npu_flash_attention: the plan, executed as the device would.

The schedule gives every core a list of pieces (a whole task, or a run of a split task's
steps). Cores run in parallel, so the emulator runs *rounds*: round r processes the r-th piece
of every core in one batch. A task is a query tile (``block_s1`` rows x the G heads of one KV
head); a piece walks its steps in order, each step one key tile that the plan did not skip:

1. gather the key / value tile through the layout's addressing (page-table walk for PA_BSND);
   key positions past L_k(b) read row 0 of the batch and are masked, so nothing outside the
   tensors is ever addressed;
2. fp32 scores ``scale * q.k`` (+ ``pse_shift``, after scaling and before masking);
3. the mask functor's predicate on PARTIAL tiles only (FULL tiles are all visible);
4. fp32 online-softmax update, rounding P to the input dtype before P.V as the kernels do.

A whole-task piece finalizes its rows; a piece of a split task writes (m, l, acc) to its
workspace slot, and the log-sum-exp combine merges the slots at the end (split-K). The sink
enters once, in ``online_softmax.finalize`` after the combine. Rows that saw nothing (and rows
of tasks the plan never scheduled) are zeros with (-2e38, 0).
Every tile processed is checked against the platform's buffers.
"""
from __future__ import annotations

import torch

from cann_attention.op_host.common.layouts import Layout
from cann_attention.op_host.common.mask_spec import TileStatus
from cann_attention.op_host.flash_attention.params import (
    FlashAttentionParams, FlashAttentionTensors)
from cann_attention.op_host.flash_attention.tiling import (
    FlashAttentionTiling, schedule, tile_usage)

from ..common import online_softmax as osm
from ..common.masks import build_mask


def canonical_query(p: FlashAttentionParams, query: torch.Tensor) -> torch.Tensor:
    """(rows, N1, D) view of the query (BNSD is transposed to BSND)."""
    if p.q_layout is Layout.BNSD:
        query = query.transpose(1, 2)
    return query.reshape(-1, p.n1, p.d)


def _output_layout(p: FlashAttentionParams, out: torch.Tensor, query_shape) -> torch.Tensor:
    if p.q_layout is Layout.BNSD:
        b, n1, s1, d = query_shape
        return out.reshape(b, s1, n1, d).transpose(1, 2).contiguous()
    return out.reshape(query_shape)


def _stats_layout(p: FlashAttentionParams, stat: torch.Tensor) -> torch.Tensor:
    """[rows, N1] -> (B, N2, S1, G) or (N2, T1, G) (docs/flash_attention.md, Layouts)."""
    g = p.group
    if p.q_layout is Layout.TND:
        return stat.reshape(-1, p.n2, g).permute(1, 0, 2).contiguous()
    return stat.reshape(p.batch, p.s1, p.n2, g).permute(0, 2, 1, 3).contiguous()


def _kv_rows(p, t, kv_start, b, pos):
    """Row of the flattened key for logical position ``pos`` [n, bs2] of batch ``b`` [n]."""
    if p.kv_layout is Layout.PA_BSND:
        page = t.block_table[b.unsqueeze(-1), pos // p.block_size].to(torch.int64)
        return page * p.block_size + pos % p.block_size
    return kv_start[b].unsqueeze(-1) + pos


def run(p: FlashAttentionParams, tiling: FlashAttentionTiling, t: FlashAttentionTensors):
    dev = t.query.device
    g, d, bs1, bs2 = p.group, p.d, tiling.block_s1, tiling.block_s2
    rows = p.num_rows
    q_all = canonical_query(p, t.query)
    key = t.key.reshape(-1, p.n2, d)
    value = t.value.reshape(-1, p.n2, d)
    as_long = dict(dtype=torch.int64, device=dev)
    q_lens = torch.tensor(p.q_lens, **as_long)
    kv_lens = torch.tensor(p.kv_lens, **as_long)
    q_start = torch.tensor(p.q_row_starts, **as_long)
    kv_start = torch.tensor(p.kv_row_starts, **as_long)
    delta = kv_lens - q_lens
    mask = build_mask(p.mask_spec, q_lens, kv_lens, t.atten_mask)
    sinks = t.learnable_sink.to(dev, torch.float32) if t.learnable_sink is not None else None
    pse = t.pse_shift
    p_dtype = None if t.query.dtype == torch.float32 else t.query.dtype

    trash = rows                                   # rows past L_q(b) are written here
    out = torch.zeros(rows + 1, p.n1, d, dtype=t.query.dtype, device=dev)
    smax = torch.full((rows + 1, p.n1), osm.SOFTMAX_MIN, dtype=torch.float32, device=dev)
    ssum = torch.zeros(rows + 1, p.n1, dtype=torch.float32, device=dev)
    work = schedule(p, tiling)
    sched = work.schedule
    ws = osm.init_state((sched.num_slots, g * bs1), d, dev)     # workspace of split tasks

    task_b = work.task_batch.to(dev)
    task_h2 = work.task_kv_head.to(dev)
    task_i0 = work.task_q_begin.to(dev)
    task_off = work.task_step_offset.to(dev)
    step_k0 = work.step_k_begin.to(dev)
    step_status = work.step_status.to(dev)
    offs_g = torch.arange(g, device=dev)
    offs_s1 = torch.arange(bs1, device=dev)
    offs_s2 = torch.arange(bs2, device=dev)
    usage = tile_usage(tiling.platform.kind, g * bs1, bs2, d, t.query.element_size())

    def tile_rows(tid):
        """Batch, query heads [n, G], local rows [n, bs1] and their validity."""
        b = task_b[tid]
        heads = task_h2[tid].unsqueeze(-1) * g + offs_g
        i = task_i0[tid].unsqueeze(-1) + offs_s1
        return b, heads, i, i < q_lens[b].unsqueeze(-1)

    def write(tid, m, l, acc):
        """Finalize flattened [n, G*bs1] states (sink once) and store their valid rows."""
        b, heads, i, row_ok = tile_rows(tid)
        m, l, acc = m.view(-1, g, bs1), l.view(-1, g, bs1), acc.view(-1, g, bs1, d)
        sink = None if sinks is None else sinks[heads].unsqueeze(-1).expand_as(m)
        o, mm, ll = osm.finalize(m, l, acc, sink)
        r = torch.where(row_ok, q_start[b].unsqueeze(-1) + i, torch.full_like(i, trash))
        ri, hi = r[:, None, :], heads[:, :, None]
        out[ri, hi] = o.to(out.dtype)
        smax[ri, hi] = mm
        ssum[ri, hi] = ll

    for tid, begin, end, slot in sched.rounds(dev):
        b, heads, i, row_ok = tile_rows(tid)
        i_c = torch.minimum(i, (q_lens[b] - 1).unsqueeze(-1))
        qpos = i + delta[b].unsqueeze(-1)
        q_tile = q_all[(q_start[b].unsqueeze(-1) + i_c)[:, None, :], heads[:, :, None]]
        q_tile = q_tile.float().flatten(1, 2)                   # [n, G*bs1, D], head-major rows
        n = len(tid)
        m, l, acc = osm.init_state((n, g * bs1), d, dev)
        for step_k in range(int((end - begin).max())):
            step = begin + step_k
            active = step < end
            sidx = task_off[tid] + torch.minimum(step, end - 1)
            kpos = step_k0[sidx].unsqueeze(-1) + offs_s2                       # [n, bs2]
            k_ok = kpos < kv_lens[b].unsqueeze(-1)
            kp = torch.where(k_ok, kpos, torch.zeros_like(kpos))
            kv_row = _kv_rows(p, t, kv_start, b, kp)
            h2 = task_h2[tid].unsqueeze(-1)
            k_tile = key[kv_row, h2].float()                                   # [n, bs2, D]
            v_tile = value[kv_row, h2].float()
            tiling.platform.assert_fits(usage, "flash_attention step")
            scores = torch.bmm(q_tile, k_tile.transpose(1, 2)).view(n, g, bs1, bs2)
            scores = scores * p.scale_value                                    # [n, G, bs1, bs2]
            if pse is not None:
                pb = b if pse.shape[0] > 1 else torch.zeros_like(b)
                scores = scores + pse[pb[:, None, None, None], heads[:, :, None, None],
                                      i_c[:, None, :, None], kp[:, None, None, :]].float()
            vis = (active[:, None, None, None] & row_ok[:, None, :, None]
                   & k_ok[:, None, None, :]).expand_as(scores).clone()
            partial = torch.nonzero(active & (step_status[sidx] == TileStatus.PARTIAL)).flatten()
            if partial.numel():
                vis[partial] &= mask.visible(
                    b[partial, None, None, None], heads[partial, :, None, None],
                    qpos[partial, None, :, None], kpos[partial, None, None, :])
            scores = scores.masked_fill(~vis, float("-inf"))
            m, l, acc = osm.update(m, l, acc, scores.view(n, g * bs1, bs2), v_tile, p_dtype)
        whole = osm.route_pieces(slot, m, l, acc, ws)
        write(tid[whole], m[whole], l[whole], acc[whole])

    if sched.num_slots:
        write(*osm.merge_slots(sched, ws, dev))

    out = _output_layout(p, out[:rows], t.query.shape)
    if not p.return_softmax_lse:
        # two tensors: outputs of a custom op must not alias each other
        return (out, torch.empty((0,), dtype=torch.float32, device=dev),
                torch.empty((0,), dtype=torch.float32, device=dev))
    return out, _stats_layout(p, smax[:rows]), _stats_layout(p, ssum[:rows])
