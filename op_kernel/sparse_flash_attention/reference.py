"""The readable golden of npu_sparse_flash_attention (docs/sparse_flash_attention.md, Semantics).

fp32 by default, every edge case of the doc: the scan window W, termination at the first
negative entry, blocks past the boundary skipped and straddling blocks clipped, duplicates kept,
value read from key, zero output and (softmax_max, softmax_sum) = (-2e38, 0) for rows that see
nothing. ``compute_dtype`` runs the same computation in a lower precision (the oracle's
baseline); ``round_p`` rounds the probabilities to the input dtype before P.V (as the kernels
feed P to the matrix unit). Only tests import this module.
"""
from __future__ import annotations

import math

import torch

SOFTMAX_MIN = -2e38


def _lengths(actual, layout, default, batch):
    """(start row, length) per batch: counts for BSND / PA_BSND, prefix sums for TND."""
    if layout == "TND":
        ends = [int(x) for x in actual.tolist()]
        starts = [0] + ends[:-1]
        return starts, [e - s for s, e in zip(starts, ends)]
    lens = [int(x) for x in actual.tolist()] if actual is not None else [default] * batch
    return [b * (default or 0) for b in range(batch)], lens


def sparse_flash_attention(query, key, value, sparse_indices, scale_value, sparse_block_size=1,
                           *, block_table=None, actual_seq_lengths_query=None,
                           actual_seq_lengths_kv=None, query_rope=None, key_rope=None,
                           layout_query="BSND", layout_kv="BSND", sparse_mode=3,
                           pre_tokens=2**63 - 1, next_tokens=2**63 - 1, attention_mode=2,
                           return_softmax_lse=False, sinks=None,
                           compute_dtype=torch.float32, round_p=False):
    # pre_tokens / next_tokens / attention_mode have one legal value each (checked by the op)
    del value, pre_tokens, next_tokens, attention_mode  # V is read from key (value never is)
    sbs = sparse_block_size
    n1 = query.shape[-2]
    if layout_query == "TND":
        batch, s1 = actual_seq_lengths_query.numel(), query.shape[0]
        q_all = torch.cat([query, query_rope], -1)                      # [T1, N1, 576]
        idx_all = sparse_indices[:, 0, :]
    else:
        batch, s1 = query.shape[0], query.shape[1]
        q_all = torch.cat([query, query_rope], -1).flatten(0, 1)         # [B*S1, N1, 576]
        idx_all = sparse_indices[:, :, 0, :].flatten(0, 1)
    q_start, q_len = _lengths(actual_seq_lengths_query, layout_query, s1, batch)
    if layout_kv == "PA_BSND":
        kv_default, kv_layout_for_lengths = None, "BSND"
    else:
        kv_default = key.shape[0] if layout_kv == "TND" else key.shape[1]
        kv_layout_for_lengths = layout_kv
    kv_start, kv_len = _lengths(actual_seq_lengths_kv, kv_layout_for_lengths, kv_default, batch)

    def kv_rows(b, positions):
        """[len(positions), 576] keys of batch b at logical positions (PA_BSND: via block_table)."""
        if layout_kv == "PA_BSND":
            bs = key.shape[1]
            pages = block_table[b, [p // bs for p in positions]].long()
            offs = torch.tensor([p % bs for p in positions])
            return torch.cat([key[pages, offs, 0], key_rope[pages, offs, 0]], -1)
        if layout_kv == "TND":
            rows = [kv_start[b] + p for p in positions]
            return torch.cat([key[rows, 0], key_rope[rows, 0]], -1)
        return torch.cat([key[b, positions, 0], key_rope[b, positions, 0]], -1)

    rows_total = q_all.shape[0]
    out = torch.zeros(rows_total, n1, query.shape[-1], dtype=torch.float32)
    mx = torch.full((rows_total, n1), SOFTMAX_MIN)
    sm = torch.zeros(rows_total, n1)
    k_entries = idx_all.shape[-1]
    for b in range(batch):
        for s in range(q_len[b]):
            row = q_start[b] + s
            tau = kv_len[b] if sparse_mode == 0 else kv_len[b] - q_len[b] + s + 1
            positions = []
            if tau > 0:
                window = min(k_entries, math.ceil(tau / sbs))
                for i in idx_all[row, :window].tolist():
                    if i < 0:
                        break                                   # -1 (any negative) terminates
                    start = i * sbs
                    if start >= tau:
                        continue                                # past the boundary: skipped
                    positions.extend(range(start, min(start + sbs, tau)))   # clipped
            if not positions:
                continue                                        # zeros, (-2e38, 0)
            kx = kv_rows(b, positions).to(compute_dtype)        # [P, 576]
            v = kx[:, :query.shape[-1]]                         # value = key (first 512)
            z = (q_all[row].to(compute_dtype) @ kx.T) * scale_value   # [N1, P]
            m = z.max(dim=-1).values
            if sinks is not None:
                m = torch.maximum(m, sinks.to(compute_dtype))
            e = torch.exp(z - m[:, None])
            l = e.sum(-1)
            if sinks is not None:
                l = l + torch.exp(sinks.to(compute_dtype) - m)
            if round_p:
                e = e.to(query.dtype).to(compute_dtype)
            out[row] = ((e @ v) / l[:, None]).float()
            mx[row], sm[row] = m.float(), l.float()
    out = out.to(query.dtype).reshape(query.shape)
    if not return_softmax_lse:
        empty = torch.empty(0)
        return out, empty, empty
    if layout_query == "TND":
        shape = (1, query.shape[0], n1)
    else:
        shape = (query.shape[0], 1, query.shape[1], n1)
    return out, mx.reshape(shape), sm.reshape(shape)
