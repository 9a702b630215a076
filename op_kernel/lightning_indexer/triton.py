"""The Triton kernel of npu_lightning_indexer: scores and their top-k in one launch, no logits.

One persistent program per SM walks query rows (row r, r + programs, ...). For a row it finds,
on the device, its batch, its visible keys and the addresses of those keys (no value is read
back to the host, so the call can be captured in a CUDA graph), then streams the visible keys
in steps of ``block_s2`` (the plan's): per step the [N1, block_s2] products of the row's query
heads with the keys on tensor cores (fp32 accumulation), ReLU, the head weights and the sum
over heads give the step's scores, which never leave the program as a matrix.

The top-k is a threshold-filtered streaming merge (docs/lightning_indexer.md, GPU kernel):
every score becomes one int64 sort key, ``ordered(score) * 2**31 + (2**31 - 1 - index)``
(topk_merge.py: descending keys are the op's order, ties to the smaller index, padding -1
last), and the program keeps in its slice of the workspace the row's best ``K_PAD`` keys
(K = sparse_count rounded up to a power of two) followed by a candidate area. A step appends
only the keys above the K-th best key so far (a cumulative sum gives each survivor its slot);
when the area cannot take another step, one bitonic sort (``tl.sort``) of list and candidates
keeps the best K_PAD and raises the threshold. So a row never writes more than its candidates
(for random scores about K * ln(n_vis / K) of them, not n_vis) and its workspace slice is
2 * max(K_PAD, block_s2) keys (32 KB at sparse_count 2048), reused from row to row. Rationale
for this over a radix select: the output must be sorted (score descending, index ascending),
which a radix select would still need a sort for, and a select needs the scores twice (held or
recomputed: two passes over the keys), where this needs them once.

Not yet done: a row is one program's work, so a call with fewer rows than SMs leaves SMs idle
(decode at B=1 streams the whole context through one SM); splitting rows across programs (the
plan's schedule, pieces merged like the emulator's split tasks) is the next step.

Malformed values (value checks off on device tensors) never read out of bounds: lengths are
clamped into the tensors, TND prefix sums are made non-decreasing (a running maximum), and keys
from the first page-table entry outside [0, block_count) onwards are not visible (a scan of the
row's pages before its steps). Rows that see no key get -1 / -inf, as the other back ends.

Scores are fp32 sums in the tensor cores' and the head reduction's order, not the reference's
exactly rounded ones: indices equal the reference's where scores differ by more than a few fp32
ulps, and two keys closer than that may come in the other order (values then differ by that
rounding). sparse_count above the plan's ``GPU_MAX_SPARSE_COUNT`` is not served yet (the sort
would hold more than 4096 keys); the registry's rule says so and auto dispatch takes another
back end.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from cann_attention.op_host.common.layouts import Layout
from cann_attention.op_host.lightning_indexer.params import D, output_shapes

from ..common.workspace import workspace

LENGTHS_BLOCK = 128         # entries of a length list per load
PAGES_BLOCK = 256           # page-table entries per load of the page scan
NUM_WARPS = 8
KEY_LAYOUTS = {Layout.BSND: 0, Layout.TND: 1, Layout.PA_BSND: 2}


@triton.jit
def _max2(a, b):
    return tl.maximum(a, b)


@triton.jit
def _row_of_prefix(ends, n, r, total, BLOCK: tl.constexpr):
    """(b, start, end) for row r of prefix sums ``ends`` [n] made non-decreasing and clamped
    into [0, total]: the batch holding r (n when r lies past the last end) and its rows."""
    count = r * 0
    start = r * 0
    end = r * 0 + total
    carry = r * 0
    for i0 in range(0, n, BLOCK):
        o = i0 + tl.arange(0, BLOCK)
        m = o < n
        v = tl.minimum(tl.maximum(tl.load(ends + o, mask=m, other=0), 0), total)
        v = tl.maximum(tl.associative_scan(v, 0, _max2), carry)
        low = m & (v <= r)
        count += tl.sum(low.to(tl.int32), 0)
        start = tl.maximum(start, tl.max(tl.where(low, v, 0), 0))
        end = tl.minimum(end, tl.min(tl.where(m & (v > r), v, total), 0))
        carry = tl.maximum(carry, tl.max(tl.where(m, v, 0), 0))
    return count, start, end


@triton.jit
def _prefix_span(ends, b, total, BLOCK: tl.constexpr):
    """(start, end) of batch b in prefix sums ``ends`` made non-decreasing and clamped into
    [0, total]."""
    start = b * 0
    for i0 in range(0, b, BLOCK):
        o = i0 + tl.arange(0, BLOCK)
        m = o < b
        v = tl.minimum(tl.maximum(tl.load(ends + o, mask=m, other=0), 0), total)
        start = tl.maximum(start, tl.max(tl.where(m, v, 0), 0))
    end = tl.maximum(start, tl.minimum(tl.maximum(tl.load(ends + b), 0), total))
    return start, end


@triton.jit
def _visible_pages(block_table, b, lk, max_pages, page, n_blocks, BLOCK: tl.constexpr):
    """Keys of batch b up to the first of its first ceil(lk / page) page-table entries that
    lies outside [0, n_blocks) (module doc)."""
    n_pg = (lk + page - 1) // page
    first_bad = n_pg
    for p0 in range(0, n_pg, BLOCK):
        o = p0 + tl.arange(0, BLOCK)
        m = o < n_pg
        e = tl.load(block_table + b.to(tl.int64) * max_pages + o, mask=m, other=0)
        bad = m & ((e < 0) | (e >= n_blocks))
        first_bad = tl.minimum(first_bad, tl.min(tl.where(bad, o, n_pg), 0))
    return tl.minimum(lk, first_bad * page)


@triton.jit
def _keep_best(my, count, K: tl.constexpr, K_PAD: tl.constexpr, SORT_N: tl.constexpr):
    """Sort the list and the ``count`` candidates behind it, keep the best K_PAD at the head;
    return the sorted keys and the K-th best (the new threshold; -1 while fewer exist)."""
    o = tl.arange(0, SORT_N)
    tl.debug_barrier()                   # the candidates' stores, by other threads
    v = tl.load(my + o, mask=o < K_PAD + count, other=-1)
    v = tl.sort(v, 0, descending=True)
    tl.debug_barrier()                   # every thread has loaded before the head is rewritten
    tl.store(my + o, v, mask=o < K_PAD)
    tl.debug_barrier()
    return v, tl.max(tl.where(o == K - 1, v, -1), 0)


@triton.jit
def _li_kernel(query, key, weights, aq, ak, block_table, out_idx, out_val, ws,
               n_rows, n_batch, s1, s2, total_q, total_k, n_blocks, max_pages, page,
               N1: tl.constexpr, N1P: tl.constexpr, D: tl.constexpr, K: tl.constexpr,
               K_PAD: tl.constexpr, SORT_N: tl.constexpr, BLOCK_N: tl.constexpr,
               Q_TND: tl.constexpr, K_LAYOUT: tl.constexpr, HAS_AQ: tl.constexpr,
               HAS_AK: tl.constexpr, CAUSAL: tl.constexpr, VALUES: tl.constexpr,
               LBLOCK: tl.constexpr, PBLOCK: tl.constexpr):
    pid = tl.program_id(0)
    my = ws + pid.to(tl.int64) * SORT_N
    o_h = tl.arange(0, N1P)
    m_h = o_h < N1
    o_d = tl.arange(0, D)
    o_n = tl.arange(0, BLOCK_N)
    o_s = tl.arange(0, SORT_N)
    for r0 in range(pid, n_rows, tl.num_programs(0)):
        r = r0 + pid * 0                 # a tensor also under the interpreter
        # ---- the row's batch, its query length and its visible keys (clamped: module doc)
        if Q_TND:
            b, q0, q1 = _row_of_prefix(aq, n_batch, r, total_q, LBLOCK)
            lq = q1 - q0
            s = r - q0
        else:
            b = r // s1
            s = r - b * s1
            if HAS_AQ:
                lq = tl.minimum(tl.maximum(tl.load(aq + b), 0), s1)
            else:
                lq = s1
        valid = (b < n_batch) & (s < lq)
        b = tl.minimum(b, n_batch - 1)
        k0 = b * 0
        if K_LAYOUT == 1:
            k0, k1 = _prefix_span(ak, b, total_k, LBLOCK)
            lk = k1 - k0
        elif K_LAYOUT == 0:
            if HAS_AK:
                lk = tl.minimum(tl.maximum(tl.load(ak + b), 0), s2)
            else:
                lk = s2
        else:
            lk = tl.minimum(tl.maximum(tl.load(ak + b), 0), s2)
            lk = _visible_pages(block_table, b, lk, max_pages, page, n_blocks, PBLOCK)
        if CAUSAL:
            n_vis = tl.minimum(tl.maximum(lk - lq + s + 1, 0), lk)
        else:
            n_vis = lk
        n_vis = tl.where(valid, n_vis, 0)

        # ---- the row's query heads and weights; its list emptied
        row = r.to(tl.int64)
        q = tl.load(query + (row * N1 + o_h[:, None]) * D + o_d[None, :], mask=m_h[:, None],
                    other=0.0)
        w = tl.load(weights + row * N1 + o_h, mask=m_h, other=0.0).to(tl.float32)
        tl.debug_barrier()               # the last row's output is read from the list
        tl.store(my + o_s, tl.full([SORT_N], -1, tl.int64), mask=o_s < K_PAD)
        count = r * 0
        thr = tl.full([], -1, tl.int64)
        for j0 in range(0, n_vis, BLOCK_N):
            pos = j0 + o_n
            m_n = pos < n_vis
            if K_LAYOUT == 2:
                pg = tl.load(block_table + b.to(tl.int64) * max_pages + pos // page, mask=m_n,
                             other=0)
                k_row = pg.to(tl.int64) * page + pos % page
            elif K_LAYOUT == 1:
                k_row = (k0 + pos).to(tl.int64)
            else:
                k_row = b.to(tl.int64) * s2 + pos
            kt = tl.load(key + k_row[:, None] * D + o_d[None, :], mask=m_n[:, None], other=0.0)
            x = tl.dot(q, tl.trans(kt))                                   # [N1P, BLOCK_N]
            score = tl.sum(tl.maximum(x, 0.0) * w[:, None], 0)
            score = tl.where(score == 0.0, 0.0, score)                    # -0 -> +0
            bits = score.to(tl.int32, bitcast=True).to(tl.int64)
            ordered = tl.where(bits >= 0, bits + 2147483648, -bits - 1)
            skey = ordered * 2147483648 + (2147483647 - pos.to(tl.int64))
            keep = m_n & (skey > thr)
            slot = count + tl.cumsum(keep.to(tl.int32), 0) - 1
            tl.store(my + K_PAD + slot, skey, mask=keep)
            count += tl.sum(keep.to(tl.int32), 0)
            if count > SORT_N - K_PAD - BLOCK_N:      # no room for another step's keys
                _, thr = _keep_best(my, count, K, K_PAD, SORT_N)
                count = r * 0
        best, _ = _keep_best(my, count, K, K_PAD, SORT_N)

        # ---- the first K keys, decoded
        m_k = o_s < K
        pad = best < 0
        idx = tl.where(pad, -1, 2147483647 - (best & 2147483647))
        tl.store(out_idx + row * K + o_s, idx.to(tl.int32), mask=m_k)
        if VALUES:
            o_bits = best >> 31
            o_bits = tl.where(o_bits >= 2147483648, o_bits - 2147483648, -o_bits - 1)
            val = o_bits.to(tl.int32).to(tl.float32, bitcast=True)
            val = tl.where(pad, float("-inf"), val)
            tl.store(out_val + row * K + o_s, val.to(out_val.dtype.element_ty), mask=m_k)


def sizes(sparse_count: int, block_s2: int) -> tuple[int, int]:
    """(K_PAD, SORT_N): the list's length and a program's workspace keys (module doc)."""
    k_pad = triton.next_power_of_2(sparse_count)
    return k_pad, 2 * max(k_pad, block_s2)


def run(p, tiling, t):
    """The indices (and values) of every query row; same outputs as emulate.run. Nothing is
    read back to the host."""
    dev = t.query.device
    rows, n1, k = p.num_rows, p.n1, p.sparse_count
    idx_shape, val_shape = output_shapes(t.query.shape, p.layout_query, k, p.return_value)
    out_idx = torch.empty((rows, k), dtype=torch.int32, device=dev)
    out_val = (torch.empty((rows, k), dtype=t.query.dtype, device=dev) if p.return_value
               else torch.empty((0,), dtype=t.query.dtype, device=dev))
    if rows == 0:
        return out_idx.reshape(idx_shape), out_val.reshape(val_shape)
    k_pad, sort_n = sizes(k, tiling.block_s2)
    programs = max(1, min(rows, tiling.platform.num_cores))
    nbytes = programs * sort_n * 8
    ws = workspace(dev, nbytes, user="lightning_indexer")[:nbytes].view(torch.int64)
    paged = p.kv_layout is Layout.PA_BSND
    query = t.query.contiguous()
    weights = t.weights.contiguous()
    aq, ak = t.actual_seq_lengths_query, t.actual_seq_lengths_key
    bt = t.block_table if paged else None
    any_int = aq if aq is not None else ak if ak is not None else out_idx
    n_blocks = t.key.shape[0] if paged else 0
    max_pages = bt.shape[-1] if paged else 0
    _li_kernel[(programs,)](
        query, t.key, weights, aq if aq is not None else any_int,
        ak if ak is not None else any_int, bt.contiguous() if paged else any_int,
        out_idx, out_val if p.return_value else query, ws,
        rows, p.batch, p.s1, p.s2, query.shape[0], t.key.shape[0], n_blocks, max_pages,
        p.block_size if paged else 1,
        N1=n1, N1P=max(16, triton.next_power_of_2(n1)), D=D, K=k, K_PAD=k_pad, SORT_N=sort_n,
        BLOCK_N=tiling.block_s2, Q_TND=p.q_layout is Layout.TND,
        K_LAYOUT=KEY_LAYOUTS[p.kv_layout], HAS_AQ=aq is not None, HAS_AK=ak is not None,
        CAUSAL=p.sparse_mode == 3, VALUES=p.return_value, LBLOCK=LENGTHS_BLOCK,
        PBLOCK=PAGES_BLOCK, num_warps=NUM_WARPS)
    return out_idx.reshape(idx_shape), out_val.reshape(val_shape)
