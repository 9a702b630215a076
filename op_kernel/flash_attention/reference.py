"""The readable golden of npu_flash_attention: spec/flash_attention.md section 10.

One batch at a time, all heads and rows at once: positions ``qpos = i + L_k - L_q`` (section
2.1), scores ``scale * q.k`` (+ pse_shift, after scaling and before masking), the visibility of
the shared mask functor (``op_kernel/common/masks.py``; the same predicates as the emulator),
softmax with the unscaled sink in the denominator only (section 6), and the invalid-row rule
(section 8 / 9.4): rows with no visible key are zeros with (softmax_max, softmax_sum) =
(-2e38, 0), a sink does not make them valid. ``compute_dtype`` runs the same computation in a
lower precision (the oracle's baseline). Only tests import this module.
"""
from __future__ import annotations

import torch

from cann_attention.op_host.common.mask_spec import INT64_MAX, MaskSpec

from ..common.masks import build_mask

SOFTMAX_MIN = -2e38


def _lengths(actual, layout, default, batch):
    """(start row, length) per batch: counts for BSND / PA_BSND, prefix sums for TND."""
    if layout == "TND":
        ends = [int(x) for x in actual.tolist()]
        starts = [0] + ends[:-1]
        return starts, [e - s for s, e in zip(starts, ends)]
    lens = [int(x) for x in actual.tolist()] if actual is not None else [default] * batch
    return [b * default for b in range(batch)], lens


def flash_attention(query, key, value, scale_value, *, atten_mask=None, pse_shift=None,
                    block_table=None, actual_seq_lengths_query=None, actual_seq_lengths_kv=None,
                    learnable_sink=None, layout_query="BSND", layout_kv="BSND", sparse_mode=0,
                    pre_tokens=INT64_MAX, next_tokens=INT64_MAX, chunk_size=None,
                    return_softmax_lse=False, compute_dtype=torch.float32):
    if layout_query == "BNSD":
        query = query.transpose(1, 2)                         # -> BSND
    n1, d = query.shape[-2], query.shape[-1]
    n2 = key.shape[-2]
    g = n1 // n2
    if layout_query == "TND":
        batch, s1, q_all = actual_seq_lengths_query.numel(), query.shape[0], query
    else:
        batch, s1, q_all = query.shape[0], query.shape[1], query.flatten(0, 1)
    q_start, q_len = _lengths(actual_seq_lengths_query, layout_query, s1, batch)
    if layout_kv == "PA_BSND":
        kv_start, kv_len = _lengths(actual_seq_lengths_kv, "BSND", 0, batch)
    else:
        s2 = key.shape[0] if layout_kv == "TND" else key.shape[1]
        kv_start, kv_len = _lengths(actual_seq_lengths_kv, layout_kv, s2, batch)

    def keys_of(b, tensor):
        """[L_k(b), N2, D] rows 0..L_k-1 of batch b (section 10: paged lookup)."""
        if layout_kv == "PA_BSND":
            bs = key.shape[1]
            j = torch.arange(kv_len[b])
            return tensor[block_table[b, j // bs].long(), j % bs]
        if layout_kv == "TND":
            return tensor[kv_start[b]:kv_start[b] + kv_len[b]]
        return tensor[b, :kv_len[b]]

    spec = MaskSpec(sparse_mode, pre_tokens, next_tokens, chunk_size, atten_mask is not None)
    mask = build_mask(spec, torch.tensor(q_len), torch.tensor(kv_len), atten_mask)
    rows_total = q_all.shape[0]
    out = torch.zeros(rows_total, n1, d, dtype=torch.float32)
    mx = torch.full((rows_total, n1), SOFTMAX_MIN)
    sm = torch.zeros(rows_total, n1)
    heads = torch.arange(n1)
    for b in range(batch):
        lq, lk = q_len[b], kv_len[b]
        if lq == 0:
            continue
        qpos = torch.arange(lq) + (lk - lq)
        vis = mask.visible(torch.tensor(b).view(1, 1, 1), heads.view(-1, 1, 1),
                           qpos.view(1, -1, 1), torch.arange(lk).view(1, 1, -1))  # [N1,Lq,Lk]
        q = q_all[q_start[b]:q_start[b] + lq].to(compute_dtype).transpose(0, 1)  # [N1,Lq,D]
        k = keys_of(b, key).to(compute_dtype).repeat_interleave(g, dim=1).transpose(0, 1)
        v = keys_of(b, value).to(compute_dtype).repeat_interleave(g, dim=1).transpose(0, 1)
        s = (q @ k.transpose(1, 2)) * scale_value                       # [N1, Lq, Lk]
        if pse_shift is not None:
            s = s + pse_shift[b if pse_shift.shape[0] > 1 else 0, :, :lq, :lk].to(compute_dtype)
        s = s.masked_fill(~vis, float("-inf"))
        m = s.amax(dim=-1) if lk else torch.full((n1, lq), float("-inf"), dtype=compute_dtype)
        valid = torch.isfinite(m)                                        # some key visible
        if learnable_sink is not None:
            sink = learnable_sink.to(compute_dtype).view(-1, 1)
            m = torch.maximum(m, sink)
        m_safe = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
        e = torch.exp(s - m_safe.unsqueeze(-1))
        l = e.sum(-1)
        if learnable_sink is not None:
            l = l + torch.exp(sink - m_safe)
        o = (e @ v) / torch.where(valid, l, torch.ones_like(l)).unsqueeze(-1)
        o = torch.where(valid.unsqueeze(-1), o, torch.zeros_like(o))
        rows = slice(q_start[b], q_start[b] + lq)
        out[rows] = o.transpose(0, 1).float()
        mx[rows] = torch.where(valid, m.float(), torch.full((), SOFTMAX_MIN)).T
        sm[rows] = torch.where(valid, l.float(), torch.zeros(())).T

    out = out.to(query.dtype).reshape(query.shape)
    if layout_query == "BNSD":
        out = out.transpose(1, 2)
    if not return_softmax_lse:
        empty = torch.empty(0)
        return out, empty, empty
    if layout_query == "TND":
        shape, perm = (rows_total, n2, g), (1, 0, 2)
    else:
        shape, perm = (batch, s1, n2, g), (0, 2, 1, 3)
    return out, mx.reshape(shape).permute(perm), sm.reshape(shape).permute(perm)
