"""The Triton kernel of npu_lightning_indexer: scores and their top-k in one launch, no logits.

Persistent programs (one per SM) walk tasks: a task is a query row, or, where the plan cuts the
rows of a call with fewer rows than SMs (``row_splits``, tiling.gpu_row_splits), one piece of a
row's keys. For its row a task finds, on the device, the batch, the visible keys and their
addresses (no value is read back to the host, so the call can be captured in a CUDA graph),
then streams its keys in steps of ``block_s2`` (the plan's): per step the [N1, block_s2]
products of the row's query heads with the keys on tensor cores (fp32 accumulation), ReLU, the
head weights and the sum over heads give the step's scores, which never leave the program as a
matrix.

The top-k is a threshold-filtered streaming selection (docs/lightning_indexer.md, GPU kernel).
Every score becomes one int64 sort key, ``ordered(score) * 2**31 + (2**31 - 1 - index)``
(topk_merge.py: descending keys are the op's order, ties to the smaller index, padding -1
last), so keys are distinct and "the best K" is exact. A task keeps the keys that may still be
among its best K in its slice of the workspace (``CAP`` = 2 * max(K_PAD, block_s2) keys, 32 KB
at sparse_count 2048, reused from task to task): a step appends only the keys above the
threshold (a cumulative sum gives each survivor its slot), and when the slice could not take
another step, a compaction keeps the best K and raises the threshold to the K-th best key. The
compaction finds that key by a radix select from the top (``_kth_largest``: 21 rounds, each
counting the keys at or above 8 candidates for the next 3 bits; reductions only), not by a sort:
Triton's bitonic ``tl.sort`` of 2048 / 4096 int64 keys measured 34 / 88 us per program on an
H100 (2026-12-08), the cost that dominated the first version of this kernel, which sorted at
every overflow. Only the end of a row sorts, once, its best K (K_PAD keys) into the op's order.
A row's survivors are about K * (1 + ln(n_vis / K)) for random scores, not n_vis.
A split row's pieces leave their best K (unordered) in a list each; ``_select_kernel`` streams
a row's lists through the same selection. ``topk_rows`` runs the selection alone on an fp32
matrix (the benchmark times it beside other top-k kernels).
A plan's launches are prepared once (``_Launch``, per (params, plan)): after a call's first
launch through Triton's binding, later calls launch the compiled kernels directly
(common/triton_launch.py), so a call's host work is its outputs, its workspace and two launches.
Rationale over a two-pass radix select of the full logits: a select needs the scores twice
(written to memory or recomputed), where streaming needs them once and writes no logits; the
output must be sorted anyway, which the final sort of K keys does.

Malformed values (value checks off on device tensors) never read out of bounds: lengths are
clamped into the tensors, TND prefix sums are made non-decreasing (a running maximum), and keys
from the first page-table entry outside [0, block_count) onwards are not visible (a scan of the
row's pages before its steps). Rows that see no key get -1 / -inf, as the other back ends.

Scores are fp32 sums in the tensor cores' and the head reduction's order, not the reference's
exactly rounded ones: indices equal the reference's where scores differ by more than a few fp32
ulps, and two keys closer than that may come in the other order (values then differ by that
rounding). Every sparse_count the op accepts is served (up to the plan's GPU_MAX_SPARSE_COUNT,
8192): above 2048 the buffer is read in chunks of SELECT_CHUNK keys by the compaction, and the
final sort holds K_PAD keys (8192 at most).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from cann_attention.op_host.common.layouts import Layout
from cann_attention.op_host.lightning_indexer.params import D, output_shapes

from ..common.per_plan import PerPlanCache
from ..common.triton_sort_key import sort_key
from ..common.triton_launch import Launcher, alignment
from ..common.workspace import workspace

LENGTHS_BLOCK = 128         # entries of a length list per load
PAGES_BLOCK = 256           # page-table entries per load of the page scan
NUM_WARPS = 8
NUM_STAGES = 3            # the key loads' pipeline depth (Triton's default on Hopper)
PROGRAMS_PER_SM = 1       # the scoring alone ran faster at 2 (design data), untried with the selection
MERGE_BLOCK = 1024        # keys per step of the merge of split rows
TOPK_BLOCK = 1024         # scores per step of topk_rows
SELECT_CHUNK = 4096       # keys a compaction holds at a time (the whole buffer up to K = 2048)
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
def _kth_largest(my, count, K: tl.constexpr, CAP: tl.constexpr, CH: tl.constexpr):
    """The K-th largest of the ``count`` keys at ``my`` (distinct int64 sort keys, so exactly K
    are >= it) when count >= K, else 0. A radix select from the top: each of 21 rounds picks
    the next 3 bits by counting the keys at or above 8 candidates (keys are below 2**63), so
    only reductions, no sort. The keys are read in chunks of CH (all at once when CH == CAP)."""
    d = tl.arange(0, 8).to(tl.int64)
    t = tl.zeros([], tl.int64)
    o = tl.arange(0, CH)
    if CH == CAP:                        # one chunk, held in registers through the rounds
        v = tl.load(my + o, mask=o < count, other=-1)
        for i in tl.static_range(21):
            cand = t + (d << (60 - 3 * i))
            n_ge = tl.sum((v[:, None] >= cand[None, :]).to(tl.int32), 0)
            t = t + (tl.max(tl.where(n_ge >= K, d, 0), 0) << (60 - 3 * i))
    else:
        for i in tl.static_range(21):
            cand = t + (d << (60 - 3 * i))
            n_ge = tl.zeros([8], tl.int32)
            for c0 in range(0, count, CH):
                v = tl.load(my + c0 + o, mask=c0 + o < count, other=-1)
                n_ge += tl.sum((v[:, None] >= cand[None, :]).to(tl.int32), 0)
            t = t + (tl.max(tl.where(n_ge >= K, d, 0), 0) << (60 - 3 * i))
    return t


@triton.jit
def _compact(my, count, K: tl.constexpr, CAP: tl.constexpr, CH: tl.constexpr):
    """Keep the best K of the ``count`` keys at ``my`` (all of them when fewer), at its head;
    return (the number kept, the new threshold: the K-th best key, -1 while fewer exist). The
    buffer holds only keys (>= 0) in [0, count)."""
    tl.debug_barrier()                   # the candidates' stores, by other threads
    t = _kth_largest(my, count, K, CAP, CH)
    o = tl.arange(0, CH)
    kept = count * 0
    for c0 in range(0, count, CH):       # in place: a key moves only towards the head
        v = tl.load(my + c0 + o, mask=c0 + o < count, other=-1)
        keep = (v >= t) & (v >= 0)
        slot = kept + tl.cumsum(keep.to(tl.int32), 0) - 1
        tl.debug_barrier()               # the chunk is loaded before the head is rewritten
        tl.store(my + slot, v, mask=keep)
        tl.debug_barrier()
        kept += tl.sum(keep.to(tl.int32), 0)
    return kept, tl.where(count >= K, t, -1)


@triton.jit
def _offer(my, skey, keep, count, thr, K: tl.constexpr, CAP: tl.constexpr, CH: tl.constexpr,
           BLOCK: tl.constexpr):
    """Append the keys of ``skey`` [BLOCK] that ``keep`` marks and that beat ``thr``; compact
    when the buffer could not take another block. Returns the new (count, thr)."""
    keep = keep & (skey > thr)
    slot = count + tl.cumsum(keep.to(tl.int32), 0) - 1
    tl.store(my + slot, skey, mask=keep)
    count += tl.sum(keep.to(tl.int32), 0)
    if count > CAP - BLOCK:
        count, thr = _compact(my, count, K, CAP, CH)
    return count, thr


@triton.jit
def _sorted_best(my, count, K: tl.constexpr, K_PAD: tl.constexpr, CAP: tl.constexpr,
                 CH: tl.constexpr):
    """The best K of the ``count`` keys at ``my`` in the op's order (-1 after them), [K_PAD]."""
    count, _ = _compact(my, count, K, CAP, CH)
    o = tl.arange(0, K_PAD)
    v = tl.load(my + o, mask=o < count, other=-1)
    return tl.sort(v, 0, descending=True)


@triton.jit
def _write_rows(best, out_idx, out_val, row, K: tl.constexpr, K_PAD: tl.constexpr,
                VALUES: tl.constexpr):
    """Decode sorted keys [K_PAD] into the row's K indices (and values)."""
    o = tl.arange(0, K_PAD)
    m_k = o < K
    pad = best < 0
    idx = tl.where(pad, -1, 2147483647 - (best & 2147483647))
    tl.store(out_idx + row * K + o, idx.to(tl.int32), mask=m_k)
    if VALUES:
        o_bits = best >> 31
        o_bits = tl.where(o_bits >= 2147483648, o_bits - 2147483648, -o_bits - 1)
        val = o_bits.to(tl.int32).to(tl.float32, bitcast=True)
        val = tl.where(pad, float("-inf"), val)
        tl.store(out_val + row * K + o, val.to(out_val.dtype.element_ty), mask=m_k)


@triton.jit
def _li_kernel(query, key, weights, aq, ak, block_table, out_idx, out_val, ws, lists,
               n_rows, n_batch, s1, s2, total_q, total_k, n_blocks, max_pages, page,
               N1: tl.constexpr, N1P: tl.constexpr, D: tl.constexpr, K: tl.constexpr,
               K_PAD: tl.constexpr, CAP: tl.constexpr, CH: tl.constexpr,
               BLOCK_N: tl.constexpr, SPLITS: tl.constexpr, Q_TND: tl.constexpr,
               K_LAYOUT: tl.constexpr, HAS_AQ: tl.constexpr, HAS_AK: tl.constexpr,
               CAUSAL: tl.constexpr, VALUES: tl.constexpr, LBLOCK: tl.constexpr,
               PBLOCK: tl.constexpr):
    pid = tl.program_id(0)
    my = ws + pid.to(tl.int64) * CAP
    o_h = tl.arange(0, N1P)
    m_h = o_h < N1
    o_d = tl.arange(0, D)
    o_n = tl.arange(0, BLOCK_N)
    o_k = tl.arange(0, K_PAD)
    for t0 in range(pid, n_rows * SPLITS, tl.num_programs(0)):
        task = t0 + pid * 0              # a tensor also under the interpreter
        r = task // SPLITS
        piece = task - r * SPLITS
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
        # the piece's keys: whole steps, the row's steps cut into SPLITS runs
        steps = (n_vis + BLOCK_N - 1) // BLOCK_N
        per = (steps + SPLITS - 1) // SPLITS * BLOCK_N
        j_lo = piece * per
        j_hi = tl.minimum(n_vis, j_lo + per)

        # ---- the row's query heads and weights; its buffer emptied
        row = r.to(tl.int64)
        q = tl.load(query + (row * N1 + o_h[:, None]) * D + o_d[None, :], mask=m_h[:, None],
                    other=0.0)
        w = tl.load(weights + row * N1 + o_h, mask=m_h, other=0.0).to(tl.float32)
        count = r * 0
        thr = tl.full([], -1, tl.int64)
        tl.debug_barrier()               # the last task's keys are read from the buffer
        for j0 in range(j_lo, j_hi, BLOCK_N):
            pos = j0 + o_n
            m_n = pos < j_hi
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
            count, thr = _offer(my, sort_key(score, pos), m_n, count, thr, K, CAP, CH,
                                BLOCK_N)
        if SPLITS == 1:
            _write_rows(_sorted_best(my, count, K, K_PAD, CAP, CH), out_idx, out_val, row, K,
                        K_PAD, VALUES)
        else:                            # the piece's best K, unordered, for the merge
            count, _ = _compact(my, count, K, CAP, CH)
            v = tl.load(my + o_k, mask=o_k < count, other=-1)
            tl.store(lists + task.to(tl.int64) * K_PAD + o_k, v)


@triton.jit
def _select_kernel(src, n_rows, n, out_idx, out_val, ws, K: tl.constexpr, K_PAD: tl.constexpr,
                   CAP: tl.constexpr, CH: tl.constexpr, BLOCK: tl.constexpr,
                   SCORES: tl.constexpr, VALUES: tl.constexpr):
    """The selection over rows of ``n`` entries of ``src``: fp32 scores (SCORES: ``topk_rows``)
    or sort keys, -1 for none (the merge of split rows: a row's pieces' lists, one after the
    other)."""
    pid = tl.program_id(0)
    my = ws + pid.to(tl.int64) * CAP
    o = tl.arange(0, BLOCK)
    for r0 in range(pid, n_rows, tl.num_programs(0)):
        r = r0 + pid * 0
        row = r.to(tl.int64)
        count = r * 0
        thr = tl.full([], -1, tl.int64)
        tl.debug_barrier()               # the last row's keys are read from the buffer
        for j0 in range(0, n, BLOCK):
            pos = j0 + o
            m = pos < n
            if SCORES:
                x = tl.load(src + row * n + pos, mask=m, other=0.0)
                v = sort_key(x, pos)
            else:
                v = tl.load(src + row * n + pos, mask=m, other=-1)
                m = v >= 0
            count, thr = _offer(my, v, m, count, thr, K, CAP, CH, BLOCK)
        _write_rows(_sorted_best(my, count, K, K_PAD, CAP, CH), out_idx, out_val, row, K, K_PAD,
                    VALUES)


def sizes(sparse_count: int, block: int) -> tuple[int, int, int]:
    """(K_PAD, CAP, CH): the final sort's length, a program's buffer of keys (module doc) and
    the chunk its selection reads at a time."""
    k_pad = triton.next_power_of_2(sparse_count)
    cap = 2 * max(k_pad, block)
    return k_pad, cap, min(cap, SELECT_CHUNK)


def _programs(tasks: int, platform) -> int:
    return max(1, min(tasks, platform.num_cores * PROGRAMS_PER_SM))


class _Launch:
    """What launching a plan needs that depends only on (params, plan), made once per pair:
    the grids, the buffer sizes, the kernels' integer arguments and constexprs, and their
    launchers (common/triton_launch.py: after a first launch through Triton's binding, later
    calls launch the compiled kernels directly). A call's workspace (int64 keys) holds each
    program's buffer (CAP keys), then, for split rows, the pieces' lists; the kernels get its
    addresses, views being built only for a first launch."""

    def __init__(self, p, tiling):
        self.rows, self.k, splits = p.num_rows, p.sparse_count, tiling.row_splits
        self.values, self.paged = p.return_value, p.kv_layout is Layout.PA_BSND
        self.idx_shape, self.val_shape = output_shapes(p.query.shape, p.layout_query, self.k,
                                                       p.return_value)
        k_pad, cap, ch = sizes(self.k, tiling.block_s2)
        programs = _programs(self.rows * splits, tiling.platform)
        self.lists_at = programs * cap * 8
        # the lists never empty: an empty view's data_ptr() is 0, and the direct launches
        # pass the views' addresses
        self.nbytes = self.lists_at + (self.rows * splits * k_pad * 8 if splits > 1 else 16)
        self.ints = (self.rows, p.batch, p.s1, p.s2, p.query.shape[0], p.key.shape[0],
                     p.key.shape[0] if self.paged else 0,
                     p.block_table.shape[-1] if self.paged else 0,
                     p.block_size if self.paged else 1)
        self.kernel = Launcher(
            _li_kernel, (programs,), N1=p.n1, N1P=max(16, triton.next_power_of_2(p.n1)), D=D,
            K=self.k, K_PAD=k_pad, CAP=cap, CH=ch, BLOCK_N=tiling.block_s2, SPLITS=splits,
            Q_TND=p.q_layout is Layout.TND, K_LAYOUT=KEY_LAYOUTS[p.kv_layout],
            HAS_AQ=p.actual_seq_lengths_query is not None,
            HAS_AK=p.actual_seq_lengths_key is not None, CAUSAL=p.sparse_mode == 3,
            VALUES=p.return_value, LBLOCK=LENGTHS_BLOCK, PBLOCK=PAGES_BLOCK,
            num_warps=NUM_WARPS, num_stages=NUM_STAGES)
        self.list_keys = splits * k_pad        # a split row's lists, merged by _select_kernel
        self.merge = (Launcher(_select_kernel, (_programs(self.rows, tiling.platform),),
                               K=self.k, K_PAD=k_pad, CAP=cap, CH=ch,
                               BLOCK=min(k_pad, MERGE_BLOCK), SCORES=False,
                               VALUES=p.return_value, num_warps=NUM_WARPS)
                      if splits > 1 else None)


LAUNCHES = PerPlanCache(_Launch)


def clear_cache() -> None:
    """Empty this back end's launches (cann_attention.clear_caches calls it)."""
    LAUNCHES.clear()


def run(p, tiling, t):
    """The indices (and values) of every query row; same outputs as emulate.run. Nothing is
    read back to the host."""
    launch = LAUNCHES.get(p, tiling)
    dev = t.query.device
    out_idx = torch.empty((launch.rows, launch.k), dtype=torch.int32, device=dev)
    out_val = (torch.empty((launch.rows, launch.k), dtype=t.query.dtype, device=dev)
               if launch.values else torch.empty((0,), dtype=t.query.dtype, device=dev))
    if launch.rows == 0:
        return out_idx.reshape(launch.idx_shape), out_val.reshape(launch.val_shape)
    ws = workspace(dev, launch.nbytes, user="lightning_indexer")
    at = ws.data_ptr()
    query, weights = t.query.contiguous(), t.weights.contiguous()
    aq, ak = t.actual_seq_lengths_query, t.actual_seq_lengths_key
    bt = t.block_table.contiguous() if launch.paged else None
    any_int = aq if aq is not None else ak if ak is not None else out_idx   # unused pointers
    val = out_val if launch.values else query
    tensors = (query, t.key, weights, aq if aq is not None else any_int,
               ak if ak is not None else any_int, bt if bt is not None else any_int, out_idx,
               val)
    aligned = alignment(*tensors)

    def views():
        keys = ws[:launch.nbytes].view(torch.int64)
        return keys, keys[launch.lists_at // 8:]
    launch.kernel((*tensors, at, at + launch.lists_at, *launch.ints),
                  lambda: (*tensors, *views(), *launch.ints), aligned)
    if launch.merge is not None:
        rest = (launch.rows, launch.list_keys, out_idx, val)
        launch.merge((at + launch.lists_at, *rest, at),
                     lambda: (views()[1], *rest, views()[0]), aligned)
    return out_idx.reshape(launch.idx_shape), out_val.reshape(launch.val_shape)


def topk_rows(scores: torch.Tensor, k: int, platform=None):
    """(values, int32 indices) of the top ``k`` of each row of a float32 matrix [rows, n], in
    the op's order (score descending, ties to the smaller index; -1 / -inf past n): the
    selection of ``_li_kernel`` alone, as the benchmark times it beside other top-k kernels.
    ``platform``: the GPU's (its SM count sets the programs; default: the current device's)."""
    from cann_attention.op_host.common.platform import platform_for_device
    from cann_attention.op_host.lightning_indexer.tiling import GPU_MAX_SPARSE_COUNT
    if scores.dim() != 2 or not scores.is_floating_point():
        raise ValueError(f"topk_rows: expected a 2-D floating-point matrix, got "
                         f"{tuple(scores.shape)} {scores.dtype}")
    if not 1 <= k <= GPU_MAX_SPARSE_COUNT:
        raise ValueError(f"topk_rows: expected 1 <= k <= {GPU_MAX_SPARSE_COUNT}, got {k}")
    rows, n = scores.shape
    scores = scores.float().contiguous()
    platform = platform or platform_for_device(scores.device)
    k_pad, cap, ch = sizes(k, TOPK_BLOCK)
    programs = _programs(rows, platform)
    out_idx = torch.empty((rows, k), dtype=torch.int32, device=scores.device)
    out_val = torch.empty((rows, k), dtype=torch.float32, device=scores.device)
    nbytes = programs * cap * 8
    ws = workspace(scores.device, nbytes, user="lightning_indexer")[:nbytes].view(torch.int64)
    _select_kernel[(programs,)](scores, rows, n, out_idx, out_val, ws, K=k, K_PAD=k_pad,
                                CAP=cap, CH=ch, BLOCK=TOPK_BLOCK, SCORES=True, VALUES=True,
                                num_warps=NUM_WARPS)
    return out_val, out_idx
