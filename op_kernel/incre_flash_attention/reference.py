"""The readable golden of npu_incre_flash_attention (docs/incre_flash_attention.md, Semantics).

fp32 by default: per batch and query head, dequantise the window's keys and values, score
``scale * q.K + pse``, replace masked logits by -1e12, softmax, weight the values; zero output
for empty windows (L_b = 0 or a left-padding start below 0). ``compute_dtype`` runs the same
computation in a lower precision (the oracle's baseline); ``round_p`` rounds the probabilities to
the query dtype before P.V. Post-quant follows the doc's "Post-quant" item (``emulate_npu`` = the
NPU's fp16 path). Only tests import this module.
"""
from __future__ import annotations

import torch

MASKED = -1e12


def _heads_first(x, layout, n, d):
    """Contiguous KV (or query) in any layout -> [B, n, S, D]."""
    if layout == "BSH":
        return x.reshape(x.shape[0], x.shape[1], n, d).permute(0, 2, 1, 3)
    if layout == "BSND":
        return x.permute(0, 2, 1, 3)
    return x


def _paged_rows(cache, table, b, positions, n, d, bs, layout):
    """[len(positions), D] rows of KV head n of batch b from a paged cache (block_table)."""
    pos = torch.tensor(positions, dtype=torch.int64)
    blk = table[b, pos // bs].long()               # physical block of each logical position
    if cache.dim() == 3:                           # (block_num, block_size, kvH)
        return cache[blk, pos % bs, n * d:(n + 1) * d]
    if layout == "BNSD":                           # (block_num, kvN, block_size, D)
        return cache[blk, n, pos % bs]
    return cache[blk, pos % bs, n]                 # (block_num, block_size, kvN, D)


def _quant_params(t, per_channel_shape):
    return t.reshape(per_channel_shape if t.numel() > 1 else ()).float()


def _round_half_away(x):
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


def _fp16_half_away(x):
    """Nearest fp16 value, ties away from zero (for |x| in the fp16 normal/subnormal range)."""
    x = x.double()
    lo = x.to(torch.float16).double()                      # nearest, ties to even
    up = torch.nextafter(lo.to(torch.float16).float(),
                         torch.sign(x).float() * float("inf")).double()
    tie = (x - lo).abs() == (up - lo).abs() / 2
    towards_zero = lo.abs() < x.abs()
    return torch.where(tie & towards_zero, up, lo)


def postquant(o, scale, offset, emulate_npu=False):
    """o: fp32 [N, D] -> int8 (the doc's "Post-quant" item)."""
    s = _quant_params(scale, o.shape)
    off = _quant_params(offset, o.shape) if offset is not None else torch.zeros(())
    if not emulate_npu:
        y = torch.round(o * s + off)                       # half to even
    elif scale.numel() == 1:
        y = (o.half() * s.half()) + off.half()
        y = torch.round(y.float())
    else:
        y = _round_half_away(_fp16_half_away(o * s + off))
    return y.clamp(-128, 127).to(torch.int8)


def incre_flash_attention(query, key, value, attn_mask=None, actual_seq_lengths=None,
                          pse_shift=None, quant_scale2=None, quant_offset2=None,
                          antiquant_scale=None, antiquant_offset=None, block_table=None,
                          num_heads=1, input_layout="BSH", scale_value=1.0,
                          num_key_value_heads=0, block_size=0, kv_padding_size=None,
                          emulate_npu=False, compute_dtype=torch.float32, round_p=False):
    n = num_heads
    n2 = num_key_value_heads or n
    g = n // n2
    bsz = query.shape[0]
    d = query.shape[-1] // n if input_layout == "BSH" else query.shape[-1]
    q = query.reshape(bsz, n, d)
    paged = block_table is not None
    if paged:
        s = block_table.shape[1] * block_size
    else:
        k_all = _heads_first(key, input_layout, n2, d)
        v_all = _heads_first(value, input_layout, n2, d)
        s = k_all.shape[2]
    lens = [s] * bsz if actual_seq_lengths is None else [int(x) for x in actual_seq_lengths]
    if len(lens) == 1:
        lens = lens * bsz
    left = (kv_padding_size is not None and len(kv_padding_size) > 0
            and actual_seq_lengths is not None and not paged)
    if antiquant_scale is not None:
        shape = (2, 1, 1) if antiquant_scale.numel() == 2 else (2, n2, d)
        aq_s = antiquant_scale.reshape(shape).float().expand(2, n2, d)
        aq_o = (antiquant_offset.reshape(shape).float().expand(2, n2, d)
                if antiquant_offset is not None else torch.zeros(2, n2, d))
    mask = attn_mask.reshape(bsz, -1) if attn_mask is not None else None

    out = torch.zeros(bsz, n, d, dtype=torch.float32)
    valid = [True] * bsz
    for b in range(bsz):
        length = lens[b]
        start = 0
        if left:
            start = s - max(int(kv_padding_size[0]), 0) - length
        if length == 0 or start < 0:
            valid[b] = False
            continue
        ps = list(range(start, start + length))
        for h in range(n):
            kvh = h // g
            if paged:
                k = _paged_rows(key, block_table, b, ps, kvh, d, block_size, input_layout)
                v = _paged_rows(value, block_table, b, ps, kvh, d, block_size, input_layout)
            else:
                k, v = k_all[b, kvh, ps], v_all[b, kvh, ps]
            k, v = k.float(), v.float()
            if antiquant_scale is not None:
                k = (k + aq_o[0, kvh]) * aq_s[0, kvh]
                v = (v + aq_o[1, kvh]) * aq_s[1, kvh]
            k, v, qh = k.to(compute_dtype), v.to(compute_dtype), q[b, h].to(compute_dtype)
            scores = scale_value * (k @ qh)
            if pse_shift is not None:
                scores = scores + pse_shift[b if pse_shift.shape[0] == bsz else 0, h, 0,
                                            ps].to(compute_dtype)
            if mask is not None:
                masked = max(MASKED, torch.finfo(compute_dtype).min)   # fp16 baseline: no inf
                scores = torch.where(mask[b, ps] != 0,
                                     torch.tensor(masked, dtype=compute_dtype), scores)
            e = torch.exp(scores - scores.max())
            total = e.sum()
            if round_p:
                e = e.to(query.dtype).to(compute_dtype)
            out[b, h] = ((e @ v) / total).float()
    if quant_scale2 is None:
        return out.to(query.dtype).reshape(query.shape)
    res = torch.zeros(bsz, n, d, dtype=torch.int8)
    for b in range(bsz):
        if valid[b]:
            res[b] = postquant(out[b], quant_scale2, quant_offset2, emulate_npu)
    return res.reshape(query.shape)
