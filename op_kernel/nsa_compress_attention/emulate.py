"""The CPU back end of npu_nsa_compress_attention: the plan, executed as the device would.

Cores run in parallel, so the emulator runs *rounds*: round r processes the r-th task of every
core in one batch (a task = batch b, KV head n2, a tile of query rows, all G heads of the group).
Per task, two passes over the compressed-key chunks of the plan (tiling.py):

1. attention pass: gather the chunk's keys/values, fp32 scores, atten_mask by replacement with
   -FLT_MAX (True = masked), padded tokens -inf, fp32 online softmax with P rounded to the input
   dtype before P.V (common/online_softmax.py). A fully masked row has max -FLT_MAX, so every
   exp(0) = 1 and P is uniform over the batch's tokens, as in the kernel.
2. importance pass with the carried final statistics: recompute the scores over the chunk's
   importance window (halo Nw - 2 before, one token after), P = exp(S - max) / sum in fp32,
   trapezoidal taps, pairwise sum over G, topk_mask -> +FLT_MAX, merge into the running stable
   top-k (topk.py). Blocks past Sel[b] score -inf and are never chosen (K <= Sel[b]).

softmax_max / softmax_sum are written in the kernel's flat order: index
N1 * t0(b) + h * Sq[b] + i, each value replicated 8 times. Output rows beyond sum(Sq) are zero.
Every tile processed is checked against the platform's buffers, with D1 and D2 padded to 16 as
the plan's tiles hold them (the products use the real columns: the padding is zeros).

Precision: fp32 (P rounded to fp16 / bf16 inputs before P.V); fp64 throughout for fp64 inputs
(CPU only), whose statistics are fp64 too (params.compute_dtype).
"""
from __future__ import annotations

import torch

from cann_attention.op_host.nsa_compress_attention.params import (
    FLT_MAX, STAT_REPLICAS, NsaCompressAttentionParams, NsaCompressAttentionTensors,
    compute_dtype, output_shapes)
from cann_attention.op_host.nsa_compress_attention.tiling import (
    NsaCompressAttentionTiling, TileShape, tile_usage)

from ..common import online_softmax as osm
from . import topk as tk


class _Round:
    """Index tensors of the tasks of one round (n tasks, block_s1 rows each, G heads)."""

    def __init__(self, p, tiling, tasks, lens, dev):
        q_lens, q_starts, c_lens, c_starts = lens
        self.n = len(tasks)
        self.b = tiling.task_batch[tasks].to(dev)
        self.kv = tiling.task_kv_head[tasks].to(dev)
        rows = tiling.task_rows[tasks].to(dev)
        self.chunks = int(tiling.task_chunks[tasks].max())
        i = tiling.task_row0[tasks].to(dev)[:, None] + torch.arange(tiling.block_s1, device=dev)
        self.row_ok = torch.arange(tiling.block_s1, device=dev)[None, :] < rows[:, None]
        self.i = torch.where(self.row_ok, i, 0)                                 # [n, bs1]
        self.t = q_starts[self.b][:, None] + self.i                             # query token
        self.heads = self.kv[:, None] * p.g + torch.arange(p.g, device=dev)     # [n, G]
        self.sq = q_lens[self.b]
        self.c_len = c_lens[self.b]
        self.c0 = c_starts[self.b]
        self.sel = -(-self.c_len // p.m_blocks)


def _scores(p, tiling, t, rd, q_tile, tokens):
    """Scores [n, G*bs1, W] (q_tile's dtype) of the round's query tiles against window
    ``tokens`` [n, W].

    Tokens outside [0, C[b]) are never addressed (they read row 0 of the batch's slot and score
    -inf); the tile is checked against the platform's buffers.
    """
    ok = (tokens >= 0) & (tokens < rd.c_len[:, None])
    rows = torch.where(ok, rd.c0[:, None] + tokens, 0)
    k_tile = t.key[rows, rd.kv[:, None]].to(q_tile.dtype)                      # [n, W, D1]
    v_tile = t.value[rows, rd.kv[:, None]].to(q_tile.dtype)                    # [n, W, D2]
    shape = TileShape(rows=q_tile.shape[1], block_s1=rd.i.shape[1], width=tokens.shape[1],
                      blocks_per_chunk=tiling.blocks_per_chunk, d1=p.d1_align, d2=p.d2_align,
                      topk=p.select_block_count, itemsize=t.query.element_size())
    tiling.platform.assert_fits(tile_usage(tiling.platform.kind, shape),
                                "nsa_compress_attention step")
    s = torch.matmul(q_tile, k_tile.transpose(1, 2)) * p.scale_value           # [n, R, W]
    s = s.unflatten(1, (p.g, -1))                                              # [n, G, bs1, W]
    if t.atten_mask is not None:
        col = torch.where(ok, tokens, 0)
        masked = t.atten_mask[rd.i[:, :, None], col[:, None, :]].bool()       # [n, bs1, W]
        s = s.masked_fill(masked[:, None], -FLT_MAX)
    s = s.masked_fill(~ok[:, None, None, :], float("-inf"))
    return s.flatten(1, 2), ok, v_tile


def run(p: NsaCompressAttentionParams, tiling: NsaCompressAttentionTiling,
        t: NsaCompressAttentionTensors):
    dev = t.query.device
    cd = compute_dtype(t.query.dtype)
    p_dtype = None if cd == t.query.dtype else t.query.dtype     # P rounded before P.V
    out_shape, idx_shape, stat_shape, _ = output_shapes(t.query.shape, t.key.shape,
                                                        t.value.shape, p.select_block_count)
    out = torch.zeros(out_shape, dtype=t.query.dtype, device=dev)
    topk = torch.zeros(idx_shape, dtype=torch.int32, device=dev)
    stat_max = torch.zeros(out_shape[0] * p.n1, dtype=cd, device=dev)
    stat_sum = torch.zeros_like(stat_max)
    lens = tuple(torch.tensor(x, dtype=torch.int64, device=dev)
                 for x in (p.q_lens, p.q_starts, p.cmp_lens, p.cmp_starts))
    bs1, bc, bpc, k = tiling.block_s1, tiling.block_c, tiling.blocks_per_chunk, p.select_block_count
    width = tiling.importance_width
    positions = tk.tap_positions(p.m_blocks, p.nw, bpc, dev)                  # [L, Bc]
    offs_c = torch.arange(bc, device=dev)
    offs_w = torch.arange(width, device=dev) - tiling.importance_halo
    offs_j = torch.arange(bpc, device=dev)

    order = torch.argsort(tiling.task_rank, stable=True)
    counts = torch.bincount(tiling.task_rank, minlength=tiling.num_rounds).tolist()
    for tasks in torch.split(order, counts):
        rd = _Round(p, tiling, tasks, lens, dev)
        q_tile = t.query[rd.t[:, None, :], rd.heads[:, :, None]].to(cd)      # [n, G, bs1, D1]
        q_tile = q_tile.flatten(1, 2)                                          # [n, R, D1]
        # ---- pass 1: chunked online softmax for the output and the final statistics --------
        m, l, acc = (x.to(cd) for x in osm.init_state((rd.n, p.g * bs1), p.d2, dev))
        for step in range(rd.chunks):
            tokens = step * bc + offs_c[None, :].expand(rd.n, -1)
            s, _, v_tile = _scores(p, tiling, t, rd, q_tile, tokens)
            m, l, acc = osm.update(m, l, acc, s, v_tile, p_dtype)
        o, m, l = osm.finalize(m, l, acc)
        ok = rd.row_ok[:, None, :].expand(-1, p.g, -1)                       # [n, G, bs1]
        tok = rd.t[:, None, :].expand(-1, p.g, -1)[ok]
        head = rd.heads[:, :, None].expand(-1, -1, bs1)[ok]
        out[tok, head] = o.unflatten(1, (p.g, bs1))[ok].to(out.dtype)
        flat = (p.n1 * lens[1][rd.b][:, None, None] + rd.heads[:, :, None] * rd.sq[:, None, None]
                + rd.i[:, None, :])[ok]
        stat_max[flat] = m.unflatten(1, (p.g, bs1))[ok]
        stat_sum[flat] = l.unflatten(1, (p.g, bs1))[ok]
        # ---- pass 2: importance with the carried statistics, streaming top-k ---------------
        cand_val = torch.full((rd.n, bs1, k), float("-inf"), dtype=cd, device=dev)
        cand_idx = torch.zeros((rd.n, bs1, k), dtype=torch.int64, device=dev)
        for step in range(rd.chunks):
            tokens = step * bc + offs_w[None, :].expand(rd.n, -1)
            s, win_ok, _ = _scores(p, tiling, t, rd, q_tile, tokens)
            prob = torch.exp(s - m[..., None]) / l[..., None]                  # [n, R, W]
            prob = torch.where(win_ok[:, None, :], prob, 0.0)
            imp = tk.chunk_importance(prob, positions, p.weights)             # [n, R, Bc]
            imp = tk.group_tree_sum(imp.unflatten(1, (p.g, bs1)), 1)         # [n, bs1, Bc]
            blocks = step * bpc + offs_j[None, :].expand(rd.n, -1)            # [n, Bc]
            blk_ok = blocks < rd.sel[:, None]
            if t.topk_mask is not None:
                forced = t.topk_mask[rd.i[:, :, None],
                                     torch.where(blk_ok, blocks, 0)[:, None, :]].bool()
                imp = imp.masked_fill(forced, FLT_MAX)
            imp = imp.masked_fill(~blk_ok[:, None, :], float("-inf"))
            cand_val, cand_idx = tk.merge_topk(cand_val, cand_idx, imp,
                                               blocks[:, None, :].expand(-1, bs1, -1), k)
        rows_ok = rd.row_ok
        topk[rd.t[rows_ok], rd.kv[:, None].expand(-1, bs1)[rows_ok]] = \
            cand_idx[rows_ok].to(torch.int32)

    stats = tuple(x.view(out_shape[0], p.n1, 1).expand(stat_shape).contiguous()
                  for x in (stat_max, stat_sum))
    assert stat_shape[-1] == STAT_REPLICAS
    return (out, topk) + stats
