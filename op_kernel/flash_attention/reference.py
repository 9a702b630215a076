"""The readable golden of npu_flash_attention (docs/flash_attention.md, Semantics).

One batch at a time, all heads and rows at once: positions ``qpos = i + L_k - L_q``
(bottom-right), scores ``scale * q.k`` (+ pse_shift, after scaling and before masking),
visibility from this module's own predicates (``visible`` below, written from the doc's
visibility rules; it shares no code with the planner's mask geometry or the emulator's mask
functors, so a bug there cannot hide here), softmax with the unscaled sink in the denominator
only, and the invalid-row rule: rows with no visible key are zeros with (softmax_max,
softmax_sum) = (-2e38, 0), a sink does not make them valid. ``compute_dtype`` runs the same
computation in a lower precision (the oracle's baseline); ``round_p`` rounds the probabilities
to the query dtype before P.V (the flash kernels feed P to the matrix unit in the input dtype,
docs/flash_attention.md "Semantics"). Only tests import this module.
"""
from __future__ import annotations

import math

import torch

SOFTMAX_MIN = -2e38
INT64_MAX = 2**63 - 1


def _clip(tokens: int, reach: int) -> int:
    """pre/next tokens as a plain int in [-reach, reach]: a band edge further away than every
    key of the batch (``reach`` = L_q + L_k + 1) changes nothing, and int64 sums cannot
    overflow (INT64_MAX is the default)."""
    return max(-reach, min(reach, int(tokens)))


# The sparse_mode predicates over local query rows i [Lq, 1] and key indices
# j [1, Lk] of one batch (delta = L_k - L_q; i + delta is the bottom-right position qpos).
def _mode0(i, j, delta, pre, nxt, has_mask):
    """defaultMask: everything (pre / next unused); with an atten_mask also the band
    i - pre <= j <= i + next (origin top-left)."""
    if not has_mask:
        return torch.ones(i.shape[0], j.shape[1], dtype=torch.bool)
    return (i - pre <= j) & (j <= i + nxt)


def _mode1(i, j, delta, pre, nxt, has_mask):
    """allMask: the atten_mask alone decides (pre / next ignored)."""
    return torch.ones(i.shape[0], j.shape[1], dtype=torch.bool)


def _mode2(i, j, delta, pre, nxt, has_mask):
    """leftUpCausal: j <= i (top-left diagonal, whatever the key length)."""
    return j <= i


def _mode3(i, j, delta, pre, nxt, has_mask):
    """rightDownCausal: j <= i + delta, i.e. k <= qpos."""
    return j <= i + delta


def _mode4(i, j, delta, pre, nxt, has_mask):
    """band with bottom-right origin: qpos - pre <= j <= qpos + next."""
    return (i + delta - pre <= j) & (j <= i + delta + nxt)


SPARSE_MODES = {0: _mode0, 1: _mode1, 2: _mode2, 3: _mode3, 4: _mode4}


def visible(b, lq, lk, *, sparse_mode=0, pre_tokens=INT64_MAX, next_tokens=INT64_MAX,
            chunk_size=None, atten_mask=None):
    """[Lq, Lk] bool: key j is visible to local query row i of batch b.

    The sparse_mode predicate AND (chunk_size) ``qpos // C == j // C`` AND (modes 0 / 1 with an
    atten_mask) ``atten_mask[b|0, 0, i, j] == 0``, with ``qpos = i + L_k - L_q``; the key range
    [0, L_k) is the key-length bound. A mask cell outside the tensor counts as masked.
    """
    i = torch.arange(lq, dtype=torch.int64).view(-1, 1)
    j = torch.arange(lk, dtype=torch.int64).view(1, -1)
    delta = lk - lq
    reach = lq + lk + 1
    pre, nxt = _clip(pre_tokens, reach), _clip(next_tokens, reach)
    vis = SPARSE_MODES[int(sparse_mode)](i, j, delta, pre, nxt, atten_mask is not None)
    if chunk_size is not None:
        qpos = i + delta
        vis = vis & (torch.div(qpos, chunk_size, rounding_mode="floor")
                     == torch.div(j, chunk_size, rounding_mode="floor"))
    if atten_mask is not None and int(sparse_mode) in (0, 1):
        m = atten_mask.to(torch.bool)
        m = m.reshape((math.prod(m.shape[:-2]),) + tuple(m.shape[-2:]))   # [1 or B, S1, S2]
        m = m[b if m.shape[0] > 1 else 0]
        rows, cols = min(lq, m.shape[0]), min(lk, m.shape[1])
        keep = torch.zeros(lq, lk, dtype=torch.bool)
        keep[:rows, :cols] = ~m[:rows, :cols]
        vis = vis & keep
    return vis


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
                    return_softmax_lse=False, compute_dtype=torch.float32, round_p=False):
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
        """[L_k(b), N2, D] rows 0..L_k-1 of batch b (through the page table with PA_BSND)."""
        if layout_kv == "PA_BSND":
            bs = key.shape[1]
            j = torch.arange(kv_len[b])
            return tensor[block_table[b, j // bs].long(), j % bs]
        if layout_kv == "TND":
            return tensor[kv_start[b]:kv_start[b] + kv_len[b]]
        return tensor[b, :kv_len[b]]

    rows_total = q_all.shape[0]
    out = torch.zeros(rows_total, n1, d, dtype=torch.float32)
    mx = torch.full((rows_total, n1), SOFTMAX_MIN)
    sm = torch.zeros(rows_total, n1)
    for b in range(batch):
        lq, lk = q_len[b], kv_len[b]
        if lq == 0:
            continue
        vis = visible(b, lq, lk, sparse_mode=sparse_mode, pre_tokens=pre_tokens,
                      next_tokens=next_tokens, chunk_size=chunk_size,
                      atten_mask=atten_mask)                              # [Lq, Lk]
        q = q_all[q_start[b]:q_start[b] + lq].to(compute_dtype).transpose(0, 1)  # [N1,Lq,D]
        k = keys_of(b, key).to(compute_dtype).repeat_interleave(g, dim=1).transpose(0, 1)
        v = keys_of(b, value).to(compute_dtype).repeat_interleave(g, dim=1).transpose(0, 1)
        s = (q @ k.transpose(1, 2)) * scale_value                       # [N1, Lq, Lk]
        if pse_shift is not None:
            s = s + pse_shift[b if pse_shift.shape[0] > 1 else 0, :, :lq, :lk].to(compute_dtype)
        s = s.masked_fill(~vis, float("-inf"))                           # all heads
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
        if round_p:
            e = e.to(query.dtype).to(compute_dtype)
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
