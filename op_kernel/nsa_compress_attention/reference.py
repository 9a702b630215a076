"""The readable golden of npu_nsa_compress_attention (docs/nsa_compress_attention.md, Semantics).

fp32 by default. Per batch b, KV head n2 and query head h = n2*G + g:
scores S = scale * Q K^T, masked scores *replaced* by -FLT_MAX (True = masked), softmax P,
attention_out = P V, importance Is_h[:, j] = sum_t w_t * P[:, M(j+1) - t] (1-based block shift,
trapezoidal weights, accumulated in the kernel's order t = 0, 1, ...), the pairwise-tree sum over
the G heads of the group, topk_mask -> +FLT_MAX (True = force), and a stable descending sort
(ties to the smaller block index). softmax_max / softmax_sum are written in the kernel's flat
order (Semantics, Statistics): per batch, head-major, each value replicated 8 times.

``compute_dtype`` runs the same computation in a lower precision (the oracle's baseline);
in fp16 the mask value is the dtype's lowest finite number instead of -FLT_MAX.
``output_fp32`` returns attention_out in fp32 instead of the query dtype (the oracle's expected).
``round_p`` rounds the unnormalised probabilities exp(S - m) to the query dtype before P.V and
divides by l afterwards, as the kernel feeds P to the matrix unit (Semantics, step 3);
the importance scores always use the fp32 P.
Rows of the outputs beyond sum(Sq) are zero. Only tests import this module.
"""
from __future__ import annotations

import torch

FLT_MAX = 3.4028234663852886e38


def importance_weights(m_blocks: int, nw: int) -> list[int]:
    """w_t = min(t+1, L-t, Nw) for t in [0, L), L = M + Nw - 1 (Semantics, step 4)."""
    taps = m_blocks + nw - 1
    return [min(t + 1, taps - t, nw) for t in range(taps)]


def block_importance(p: torch.Tensor, m_blocks: int, nw: int, sel: int) -> torch.Tensor:
    """[rows, C] probabilities -> [rows, sel] importance; tokens outside [0, C) count 0."""
    c = p.shape[-1]
    out = torch.zeros(p.shape[:-1] + (sel,), dtype=p.dtype)
    for t, w in enumerate(importance_weights(m_blocks, nw)):
        for j in range(sel):
            token = m_blocks * (j + 1) - t
            if 0 <= token < c:
                out[..., j] = out[..., j] + w * p[..., token]
    return out


def group_tree_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over dim 0 (size G, a power of two) by adjacent pairs, then pairs of pairs."""
    while x.shape[0] > 1:
        x = x[0::2] + x[1::2]
    return x[0]


def nsa_compress_attention(query, key, value, scale_value, head_num, compress_block_size,
                           compress_stride, select_block_size, select_block_count, *,
                           topk_mask=None, atten_mask=None, actual_seq_qlen,
                           actual_cmp_seq_kvlen, actual_sel_seq_kvlen=None,
                           compute_dtype=torch.float32, output_fp32=False, round_p=False):
    del head_num, actual_sel_seq_kvlen   # = N1; the kernel derives Sel from C
    t1, n1, _ = query.shape
    n2, d2 = key.shape[1], value.shape[2]
    g_size = n1 // n2
    m_blocks = select_block_size // compress_stride
    nw = compress_block_size // compress_stride
    q_ends, c_ends = list(actual_seq_qlen), list(actual_cmp_seq_kvlen)
    q_starts, c_starts = [0] + q_ends[:-1], [0] + c_ends[:-1]

    lowest = max(-FLT_MAX, torch.finfo(compute_dtype).min)    # -FLT_MAX in fp32
    out = torch.zeros(t1, n1, d2, dtype=torch.float32)
    topk = torch.zeros(t1, n2, select_block_count, dtype=torch.int32)
    stat_max = torch.zeros(t1 * n1, dtype=torch.float32)      # the kernel's flat order
    stat_sum = torch.zeros(t1 * n1, dtype=torch.float32)
    for b in range(len(q_ends)):
        q0, sq = q_starts[b], q_ends[b] - q_starts[b]
        c0, cb = c_starts[b], c_ends[b] - c_starts[b]
        sel = -(-cb // m_blocks)
        if sq == 0:
            continue
        for kv in range(n2):
            k_c = key[c0:c0 + cb, kv].to(compute_dtype)            # [C, D1]
            v_c = value[c0:c0 + cb, kv].to(compute_dtype)          # [C, D2]
            per_head = []
            for g in range(g_size):
                h = kv * g_size + g
                q = query[q0:q0 + sq, h].to(compute_dtype)          # [Sq, D1]
                s = scale_value * (q @ k_c.T)                      # [Sq, C]
                if atten_mask is not None:
                    s = s.masked_fill(atten_mask[:sq, :cb].bool(), lowest)   # replaced
                m = s.max(dim=-1).values
                e = torch.exp(s - m[:, None])
                l = e.sum(dim=-1)
                p = e / l[:, None]
                if round_p:
                    e_low = e.to(query.dtype).to(compute_dtype)
                    out[q0:q0 + sq, h] = ((e_low @ v_c) / l[:, None]).float()
                else:
                    out[q0:q0 + sq, h] = (p @ v_c).float()
                flat = n1 * q0 + h * sq + torch.arange(sq)
                stat_max[flat], stat_sum[flat] = m.float(), l.float()
                per_head.append(block_importance(p.float(), m_blocks, nw, sel))
            imp = group_tree_sum(torch.stack(per_head))            # [Sq, Sel]
            if topk_mask is not None:
                imp = imp.masked_fill(topk_mask[:sq, :sel].bool(), FLT_MAX)
            order = torch.sort(imp, dim=-1, descending=True, stable=True).indices
            topk[q0:q0 + sq, kv] = order[:, :select_block_count].to(torch.int32)
    stats = (x.view(t1, n1, 1).expand(t1, n1, 8).contiguous() for x in (stat_max, stat_sum))
    return (out if output_fp32 else out.to(query.dtype), topk) + tuple(stats)
