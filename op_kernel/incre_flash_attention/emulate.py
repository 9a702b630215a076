"""The CPU back end of npu_incre_flash_attention: the plan, executed as the device would.

The schedule gives every core a list of pieces (a whole task, or a run of a task's steps: one
split of the split-KV plan). Cores run in parallel, so the emulator runs *rounds*: round r
processes the r-th piece of every core in one batch. Within a piece it walks the steps in
order: address ``block_s2`` KV positions of the window (page-table walk for paged caches), load
that chunk of K and V, dequantise *the chunk only* when the cache is int8, compute the fp32
scores ``scale * q.K`` + pse, replace masked logits by -1e12 (not -inf), and update the fp32
online softmax, rounding P to the query dtype before P.V as the NPU's cube unit is fed. A piece
that is its whole task writes its output; a split writes (m, l, acc) to its workspace slot, and
``online_softmax.combine`` merges the slots at the end. Every tile processed is checked against
the platform's buffers.

Out-of-range safety: positions outside the window are never addressed; padded lanes of a tail
chunk read the window's first position (which exists: a task's window is never empty) and
their scores are -inf, so they take no part in the softmax (unlike masked positions, -1e12).
"""
from __future__ import annotations

import torch

from cann_attention.op_host.common.layouts import Layout
from cann_attention.op_host.incre_flash_attention.params import (
    MASKED_LOGIT, IncreFlashAttentionParams, IncreFlashAttentionTensors)
from cann_attention.op_host.incre_flash_attention.tiling import (
    IncreFlashAttentionTiling, tile_usage)

from ..common import online_softmax as osm
from .postquant import quantize_output


def _kv4(p: IncreFlashAttentionParams, kv: torch.Tensor) -> torch.Tensor:
    """A view (rows, S or block_size, kvN, D) of a cache tensor, without copying: a 3-D cache
    splits kvH; a 4-D one is (rows, kvN, S or block_size, D) with BNSD, else already the view
    (BSND, or a paged (block_num, block_size, kvN, D) cache with BSH / BSND)."""
    if kv.dim() == 3:
        return kv.unflatten(2, (p.n2, p.head_dim))
    return kv.permute(0, 2, 1, 3) if p.layout is Layout.BNSD else kv


def _antiquant(p: IncreFlashAttentionParams, t: IncreFlashAttentionTensors, dev):
    """(scale, offset) as fp32 (2, kvN or 1, D or 1): index 0 key, 1 value."""
    if not p.antiquant:
        return None, None
    shape = (2, 1, 1) if p.antiquant_per_tensor else (2, p.n2, p.head_dim)
    scale = t.antiquant_scale.reshape(shape).to(dev, torch.float32)
    offset = (t.antiquant_offset.reshape(shape).to(dev, torch.float32)
              if t.antiquant_offset is not None else torch.zeros_like(scale))
    return scale, offset


def run(p: IncreFlashAttentionParams, tiling: IncreFlashAttentionTiling,
        t: IncreFlashAttentionTensors) -> torch.Tensor:
    dev = t.query.device
    b_, n2, g, d, bs2 = p.batch, p.n2, p.group, p.head_dim, tiling.block_s2
    q = t.query.reshape(b_, n2, g, d)
    key, value = _kv4(p, t.key), _kv4(p, t.value)
    aq_scale, aq_offset = _antiquant(p, t, dev)
    mask = t.attn_mask.reshape(b_, -1) if t.attn_mask is not None else None
    pse = t.pse_shift[:, :, 0, :] if t.pse_shift is not None else None     # [1|B, N, S'']
    table = t.block_table.to(dev, torch.int64) if p.paged else None
    out = torch.zeros(b_, n2, g, d, dtype=torch.float32, device=dev)

    sched = tiling.schedule
    ws = osm.init_state((sched.num_slots, g), d, dev)
    task_b, task_n = tiling.task_batch.to(dev), tiling.task_kv_head.to(dev)
    task_start, task_len = tiling.task_start.to(dev), tiling.task_len.to(dev)
    offs = torch.arange(bs2, device=dev)
    heads = torch.arange(g, device=dev)
    eq, ekv = t.query.element_size(), t.key.element_size()

    def load(cache, which, b, n, pos):
        """[n_tasks, bs2, D] fp32 chunk of ``cache`` at absolute positions ``pos``."""
        if table is not None:
            page = table[b.unsqueeze(-1), pos // p.block_size]
            chunk = cache[page, pos % p.block_size, n.unsqueeze(-1)]
        else:
            chunk = cache[b.unsqueeze(-1), pos, n.unsqueeze(-1)]
        chunk = chunk.float()
        if aq_scale is not None:          # dequantise this chunk only
            sc = aq_scale[which].expand(n2, d)[n].unsqueeze(1)
            off = aq_offset[which].expand(n2, d)[n].unsqueeze(1)
            chunk = (chunk + off) * sc
        return chunk

    for tid, begin, end, slot in sched.rounds(dev):
        b, n, start, length = task_b[tid], task_n[tid], task_start[tid], task_len[tid]
        q_tile = q[b, n].float()                                             # [n, G, D]
        h = n.unsqueeze(-1) * g + heads                                       # [n, G]
        m, l, acc = osm.init_state((len(tid), g), d, dev)
        for step_k in range(int((end - begin).max())):
            step = begin + step_k
            rel = step.unsqueeze(-1) * bs2 + offs                             # [n, bs2]
            ok = (step < end).unsqueeze(-1) & (rel < length.unsqueeze(-1))
            pos = start.unsqueeze(-1) + torch.where(ok, rel, torch.zeros_like(rel))
            k_tile = load(key, 0, b, n, pos)
            v_tile = load(value, 1, b, n, pos)
            tiling.platform.assert_fits(tile_usage(tiling.platform.kind, g, k_tile.shape[1], d,
                                                   eq, ekv), "incre_flash_attention step")
            scores = torch.matmul(q_tile, k_tile.transpose(1, 2)) * p.scale_value  # [n, G, bs2]
            if pse is not None:
                bp = b if pse.shape[0] == b_ else torch.zeros_like(b)
                scores = scores + pse[bp.view(-1, 1, 1), h.unsqueeze(-1),
                                      pos.unsqueeze(1)].float()
            if mask is not None:
                masked = mask[b.unsqueeze(-1), pos] != 0                       # [n, bs2]
                scores = scores.masked_fill(masked.unsqueeze(1), MASKED_LOGIT)
            scores = scores.masked_fill(~ok.unsqueeze(1), float("-inf"))
            m, l, acc = osm.update(m, l, acc, scores, v_tile, t.query.dtype)
        whole = osm.route_pieces(slot, m, l, acc, ws)
        o, _, _ = osm.finalize(m[whole], l[whole], acc[whole])
        out[b[whole], n[whole]] = o

    if sched.num_slots:
        split_tasks, *state = osm.merge_slots(sched, ws, dev)
        o, _, _ = osm.finalize(*state)
        out[task_b[split_tasks], task_n[split_tasks]] = o

    out = out.reshape(b_, n2 * g, d)
    if p.post_quant:
        empty = torch.tensor([n == 0 for n in p.window_lens], device=dev)
        result = quantize_output(out, t.quant_scale2, t.quant_offset2, p.emulate_npu, empty)
    else:
        result = out.to(t.query.dtype)
    return result.reshape(t.query.shape)
