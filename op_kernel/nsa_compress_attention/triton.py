"""The Triton kernel of npu_nsa_compress_attention: attention, statistics, importance and block
top-k in one launch (NVIDIA GPUs; CPU through Triton's interpreter).

The kernel runs the plan (tiling.py) as the emulator does. Persistent programs, one per core of
the plan: program c runs the tasks of core c (``task_core``) in order. A task is one KV head of
one batch and a tile of ``block_s1`` query rows with all G heads of the group, so its matrix
rows are the G x BS1 (head, row) pairs, g-major (BS1 = block_s1, raised so that G x BS1 >= 16,
tl.dot's smallest M; the extra rows are masked). Per task, two passes over the batch's C[b]
compressed tokens in the plan's chunks of ``block_c`` tokens:

1. Attention: scores Q.K^T on tensor cores (fp32 accumulation), atten_mask by replacement with
   -FLT_MAX, padded tokens -inf, fp32 online softmax, P rounded to the input dtype before P.V.
   attention_out and the row statistics (max, sum; the kernel's flat order, 8 copies) are
   written at the end. Where D2 exceeds the plan's accumulator slice (256 columns), the pass
   runs once per slice of the output columns (the scores are recomputed).
2. Importance and top-k, with the final statistics: per chunk the scores are recomputed over
   the chunk's importance window (tiling.py: Nw - 2 tokens before the chunk, one after), held
   as two tiles: the chunk's tokens shifted by one (block j's own M tokens, M(j+1) - t for
   t < M) and the Nw - 1 tokens before them (the taps t >= M of the chunk's first block), so
   a window of block_c + Nw - 1 tokens costs a block_c tile and a 16-token tile, not a tile of
   twice the width. P = exp(S - max) / sum is exact in fp32, and each selection block's
   importance is built from P with the trapezoidal taps by ``tl.gather``, in the emulator's
   order (w_0 P[M(j+1)] first, then t = 1, 2, ...), not by a matmul: an fp32 product on tensor
   cores would round differently per column, so blocks whose probabilities are exactly equal
   would stop being exact ties. The G heads' importances are summed as a pairwise tree
   (reshape, pairs summed), topk_mask forces +FLT_MAX, and the chunk is merged into the
   running top-k.

Top-k. Each block becomes one int64 sort key, ``ordered(score) * 2**31 + (2**31 - 1 - j)``, so
keys are distinct and descending keys are the op's order (score descending, ties to the smaller
block index; invalid blocks -1). A row keeps its best NB keys (NB = the power of two >=
max(select_block_count, blocks_per_chunk)); a chunk's NB keys are joined to them, the 2 NB keys
sorted (tl.sort, bitonic) and the first NB kept. select_block_count <= 32 and a chunk holds at
most 64 blocks on a GPU plan, so the sort is of 128 keys at most. Fused rather than a second
kernel: a second kernel would need every row's Sel[b] importances in memory (up to 14000 per
row and KV head) and a second read of them, where the streamed merge needs neither; the
importance needs the final statistics, so it cannot join pass 1, but pass 2 reuses the task's
query tile and mask row.

Tiles: the dimensions Triton needs as powers of two are padded and masked: the chunk (block_c,
not a power of two when M is not; at least 16), the halo (Nw - 1 tokens, 16), the head dims
(D1 in slices of 64 beyond 256, D2 in slices of 256). Every load is masked: rows past the task's rows,
tokens outside [0, C[b]), columns past D1 / D2, mask entries outside (Sq[b], C[b]) /
(Sq[b], Sel[b]). The lengths are host lists, so the task table (batch offsets and lengths per
task) comes from the plan, uploaded once per (params, plan) and device; nothing is read back to
the host, and after a first (warm-up) call a call can be captured in a CUDA graph.
Rows of the outputs past the last prefix sum are zeroed by the host (slices of the outputs).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from cann_attention.op_host.nsa_compress_attention.params import (
    STAT_REPLICAS, compute_dtype, output_shapes)

from ..common.per_plan import PerPlanCache
from ..common.triton_sort_key import sort_key
from ..common.triton_launch import Launcher, alignment

NEG_FLT_MAX = tl.constexpr(-3.4028234663852886e38)   # a masked score (Semantics, step 1)
FLT_MAX = tl.constexpr(3.4028234663852886e38)        # a forced block (Semantics, step 6)
ACC_SLICE = 256          # output columns one pass 1 accumulates (tiling.ACC_SLICE)
D1_RESIDENT = 256        # D1 up to this: one query tile per task; beyond, slices of D1_SLICE
D1_SLICE = 64
TASK_FIELDS = 8          # q0, Sq, c0, C, kv head, row0, rows, unused
NUM_STAGES = 2           # the loads' pipeline depth: at 3 (Triton's default on Hopper) a
#                          64-row task with D1 = 192 needs 245,760 B of shared memory, over the
#                          H100's 232,448 (seen on an H100, 2026-12-08); 2 stages: 196,608 B


@triton.jit
def _scores(query, key, atten_mask, b_q, p_q, m_r, i_row, kv, c0, o_c, m_c, scale, n2,
            max_c, D1: tl.constexpr, DK: tl.constexpr, NK: tl.constexpr,
            HAS_AM: tl.constexpr):
    """[R, len(o_c)] fp32 scores of the task's rows against its batch's tokens ``o_c``
    (``m_c``: inside [0, C[b]) and the tile): masked by atten_mask (-FLT_MAX), padding -inf.
    ``b_q``: the query tile when NK == 1, else the rows' addresses ``p_q`` are read per slice."""
    o_k = tl.arange(0, DK)
    p_k = ((c0 + tl.where(m_c, o_c, 0)).to(tl.int64) * n2 + kv) * D1                # [W]
    if NK == 1:
        b_k = tl.load(key + p_k[:, None] + o_k[None, :],
                      mask=m_c[:, None] & (o_k[None, :] < D1), other=0.0)          # [W, DK]
        b_s = tl.dot(b_q, tl.trans(b_k))                                            # [R, W]
    else:
        b_s = tl.zeros([m_r.shape[0], o_c.shape[0]], tl.float32)
        for k0 in tl.static_range(0, NK * DK, DK):
            m_k = (k0 + o_k) < D1
            b_qk = tl.load(query + p_q[:, None] + k0 + o_k[None, :],
                           mask=m_r[:, None] & m_k[None, :], other=0.0)            # [R, DK]
            b_k = tl.load(key + p_k[:, None] + k0 + o_k[None, :],
                          mask=m_c[:, None] & m_k[None, :], other=0.0)             # [W, DK]
            b_s += tl.dot(b_qk, tl.trans(b_k))
    b_s = b_s * scale
    if HAS_AM:
        b_am = tl.load(atten_mask + i_row.to(tl.int64)[:, None] * max_c + o_c[None, :],
                       mask=m_r[:, None] & m_c[None, :], other=0)                   # [R, W]
        b_s = tl.where(b_am != 0, NEG_FLT_MAX, b_s)
    return tl.where(m_c[None, :], b_s, float("-inf"))


@triton.jit
def _importance(b_p, b_h, o_j, M: tl.constexpr, NW: tl.constexpr, NB: tl.constexpr):
    """[R, NB] importance of the chunk's blocks ``o_j`` (local) from the fp32 probabilities of
    the chunk's tokens shifted by one, b_p [R, BCP] (token s * block_c + 1 + x at x), and of
    the Nw - 1 tokens before them, b_h [R, HP]: w_0 P[M(j+1)] + w_1 P[M(j+1) - 1] + ... in the
    emulator's order. Only taps t >= M of block 0 reach into b_h."""
    L: tl.constexpr = M + NW - 1
    rows: tl.constexpr = b_p.shape[0]
    last: tl.constexpr = b_p.shape[1] - 1
    b_imp = tl.zeros([rows, NB], tl.float32)
    for t in tl.static_range(L):
        w = tl.minimum(tl.minimum(t + 1, L - t), NW).to(tl.float32)
        pos = M * (o_j + 1) - t - 1                  # in [-(Nw - 1), BCP) for the real blocks
        b_tap = tl.gather(b_p, tl.broadcast_to(tl.minimum(tl.maximum(pos, 0), last)[None, :],
                                               [rows, NB]), 1)
        if t >= M:
            halo = tl.minimum(tl.maximum(pos + NW - 1, 0), b_h.shape[1] - 1)
            b_halo = tl.gather(b_h, tl.broadcast_to(halo[None, :], [rows, NB]), 1)
            b_tap = tl.where(pos[None, :] < 0, b_halo, b_tap)
        if t == 0:
            b_imp = w * b_tap
        else:
            b_imp = b_imp + w * b_tap
    return b_imp


@triton.jit
def _nsa_kernel(query, key, value, atten_mask, topk_mask, tasks, core_first,
                out, topk, stat_max, stat_sum, scale, n1, n2, max_c, max_sel,
                G: tl.constexpr, BS1: tl.constexpr, BC: tl.constexpr, BCP: tl.constexpr,
                HP: tl.constexpr, BPC: tl.constexpr, NB: tl.constexpr,
                M: tl.constexpr, NW: tl.constexpr, D1: tl.constexpr, D2: tl.constexpr,
                DK: tl.constexpr, NK: tl.constexpr, DV: tl.constexpr, NV: tl.constexpr,
                K: tl.constexpr, STATS: tl.constexpr, HAS_AM: tl.constexpr,
                HAS_TM: tl.constexpr):
    """Program c runs the tasks core_first[c] .. core_first[c + 1] - 1 (module doc)."""
    R: tl.constexpr = G * BS1
    i_core = tl.program_id(0)
    o_r = tl.arange(0, R)
    o_i = o_r % BS1                               # row of the tile; head g = o_r // BS1
    o_s = tl.arange(0, BS1)
    o_k = tl.arange(0, DK)
    o_v = tl.arange(0, DV)
    o_b = tl.arange(0, BCP)
    o_h = tl.arange(0, HP)
    o_n = tl.arange(0, NB)
    for i_task in range(tl.load(core_first + i_core), tl.load(core_first + i_core + 1)):
        p_task = tasks + i_task * 8                   # TASK_FIELDS int64 per task
        q0 = tl.load(p_task)
        sq = tl.load(p_task + 1)
        c0 = tl.load(p_task + 2)
        c_len = tl.load(p_task + 3)
        kv = tl.load(p_task + 4)
        row0 = tl.load(p_task + 5)
        rows = tl.load(p_task + 6)
        m_r = o_i < rows
        i_row = row0 + o_i                                     # query row within the batch
        head = kv * G + o_r // BS1
        p_q = ((q0 + i_row).to(tl.int64) * n1 + head) * D1                          # [R]
        if NK == 1:
            b_q = tl.load(query + p_q[:, None] + o_k[None, :],
                          mask=m_r[:, None] & (o_k[None, :] < D1), other=0.0)       # [R, DK]
        else:
            b_q = p_q
        chunks = tl.cdiv(c_len, BC)

        # ---- pass 1: online softmax, attention_out and the statistics --------------------
        b_m = tl.full([R], float("-inf"), tl.float32)
        b_l = tl.zeros([R], tl.float32)
        for v0 in tl.static_range(0, NV * DV, DV):
            b_m = tl.full([R], float("-inf"), tl.float32)
            b_l = tl.zeros([R], tl.float32)
            b_acc = tl.zeros([R, DV], tl.float32)
            m_v = (v0 + o_v) < D2
            for step in range(chunks):
                o_c = step * BC + o_b
                m_c = (o_b < BC) & (o_c < c_len)
                b_s = _scores(query, key, atten_mask, b_q, p_q, m_r, i_row, kv, c0, o_c, m_c,
                              scale, n2, max_c, D1, DK, NK, HAS_AM)              # [R, BCP]
                b_m_new = tl.maximum(b_m, tl.max(b_s, 1))
                b_alpha = tl.exp(b_m - b_m_new)
                b_p = tl.exp(b_s - b_m_new[:, None])
                b_l = b_l * b_alpha + tl.sum(b_p, 1)
                p_v = ((c0 + tl.where(m_c, o_c, 0)).to(tl.int64) * n2 + kv) * D2 + v0
                b_vt = tl.load(value + p_v[:, None] + o_v[None, :],
                               mask=m_c[:, None] & m_v[None, :], other=0.0)     # [BCP, DV]
                b_acc = b_acc * b_alpha[:, None] + tl.dot(b_p.to(b_vt.dtype), b_vt)
                b_m = b_m_new
            b_o = b_acc / b_l[:, None]
            p_o = ((q0 + i_row).to(tl.int64) * n1 + head) * D2 + v0
            tl.store(out + p_o[:, None] + o_v[None, :], b_o.to(out.dtype.element_ty),
                     mask=m_r[:, None] & m_v[None, :])
        o_8 = tl.arange(0, STATS)
        p_st = ((n1 * q0 + head.to(tl.int64) * sq + i_row) * STATS)[:, None] + o_8[None, :]
        tl.store(stat_max + p_st, tl.broadcast_to(b_m[:, None], [R, STATS]), mask=m_r[:, None])
        tl.store(stat_sum + p_st, tl.broadcast_to(b_l[:, None], [R, STATS]), mask=m_r[:, None])

        # ---- pass 2: importance with the final statistics, streamed top-k ----------------
        sel = tl.cdiv(c_len, M)
        b_cand = tl.full([BS1, NB], -1, tl.int64)
        for step in range(chunks):
            o_c = step * BC + 1 + o_b                      # the chunk's tokens, shifted by one
            m_c = (o_b < BC) & (o_c < c_len)
            b_s = _scores(query, key, atten_mask, b_q, p_q, m_r, i_row, kv, c0, o_c, m_c,
                          scale, n2, max_c, D1, DK, NK, HAS_AM)                   # [R, BCP]
            b_p = tl.where(m_c[None, :], tl.exp(b_s - b_m[:, None]) / b_l[:, None], 0.0)
            o_t = step * BC + 2 - NW + o_h                 # the Nw - 1 tokens before them
            m_t = (o_h < NW - 1) & (o_t >= 0) & (o_t < c_len)
            if NW > 1:
                b_st = _scores(query, key, atten_mask, b_q, p_q, m_r, i_row, kv, c0, o_t, m_t,
                               scale, n2, max_c, D1, DK, NK, HAS_AM)               # [R, HP]
                b_h = tl.where(m_t[None, :], tl.exp(b_st - b_m[:, None]) / b_l[:, None], 0.0)
            else:
                b_h = tl.zeros([R, HP], tl.float32)
            b_imp = tl.reshape(_importance(b_p, b_h, o_n, M, NW, NB), [G, BS1, NB])
            for _ in tl.static_range(G.bit_length() - 1):         # pairwise tree over g
                b_imp = tl.sum(tl.reshape(b_imp, [b_imp.shape[0] // 2, 2, BS1, NB]), 1)
            b_imp = tl.reshape(b_imp, [BS1, NB])
            o_j = step * BPC + o_n
            m_j = (o_n < BPC) & (o_j < sel)
            if HAS_TM:
                b_tm = tl.load(topk_mask + (row0 + o_s).to(tl.int64)[:, None] * max_sel
                               + o_j[None, :], mask=(o_s < rows)[:, None] & m_j[None, :],
                               other=0)                                             # [BS1, NB]
                b_imp = tl.where(b_tm != 0, FLT_MAX, b_imp)
            b_key = tl.where(m_j[None, :], sort_key(b_imp, o_j[None, :]), -1)
            b_all = tl.sort(tl.reshape(tl.join(b_cand, b_key), [BS1, 2 * NB]), 1,
                            descending=True)
            b_cand, _ = tl.split(tl.permute(tl.reshape(b_all, [BS1, 2, NB]), (0, 2, 1)))
        b_idx = 2147483647 - (b_cand & 2147483647)
        p_t = ((q0 + row0 + o_s).to(tl.int64) * n2 + kv) * K
        tl.store(topk + p_t[:, None] + o_n[None, :], b_idx.to(tl.int32),
                 mask=(o_s < rows)[:, None] & (o_n < K)[None, :])


def _pow2(x: int, low: int = 16) -> int:
    return max(low, triton.next_power_of_2(x))


def num_warps(rows: int) -> int:
    """Warps of a program whose tiles have ``rows`` matrix rows: 8 where the score and
    accumulator tiles need the register file the plan budgets (tiling.tile_usage, GPU), 4 for
    tiles of 32 rows or fewer (unmeasured)."""
    return 8 if rows > 32 else 4


class _Launch:
    """What launching a plan needs that depends only on (params, plan), made once per pair:
    the task table (per device), the program ranges of the cores, the constexprs and the
    launcher (common/triton_launch.py)."""

    def __init__(self, p, tiling):
        self.shapes = output_shapes(p.query.shape, p.key.shape, p.value.shape,
                                    p.select_block_count)
        self.t1, self.total_q = p.query.shape[0], p.actual_seq_qlen[-1]
        n = tiling.num_tasks
        b = tiling.task_batch
        q_starts = torch.tensor(p.q_starts, dtype=torch.int64)
        q_lens = torch.tensor(p.q_lens, dtype=torch.int64)
        c_starts = torch.tensor(p.cmp_starts, dtype=torch.int64)
        c_lens = torch.tensor(p.cmp_lens, dtype=torch.int64)
        table = torch.zeros((n, TASK_FIELDS), dtype=torch.int64)
        if n:
            table[:, :7] = torch.stack([q_starts[b], q_lens[b], c_starts[b], c_lens[b],
                                        tiling.task_kv_head, tiling.task_row0,
                                        tiling.task_rows], 1)
        cores = tiling.platform.num_cores
        per_core = torch.bincount(tiling.task_core, minlength=cores)
        self.core_first = torch.cat([torch.zeros(1, dtype=torch.int64), per_core.cumsum(0)])
        self.table = table
        self.on_device: dict = {}
        self.programs = max(1, int((per_core > 0).nonzero().max()) + 1) if n else 0
        d1, d2 = p.d1, p.d2
        dk = _pow2(d1) if _pow2(d1) <= D1_RESIDENT else D1_SLICE
        dv = min(_pow2(d2), ACC_SLICE)
        g = p.g
        bs1 = max(tiling.block_s1, -(-16 // g))
        self.ints = (p.scale_value, p.n1, p.n2, p.max_c, p.max_sel)
        self.kernel = Launcher(
            _nsa_kernel, (max(self.programs, 1),), G=g,
            BS1=bs1, BC=tiling.block_c,
            BCP=_pow2(tiling.block_c), HP=_pow2(p.nw - 1), BPC=tiling.blocks_per_chunk,
            NB=_pow2(max(tiling.blocks_per_chunk, p.select_block_count), 2), M=p.m_blocks,
            NW=p.nw, D1=d1, D2=d2, DK=dk, NK=-(-d1 // dk), DV=dv, NV=-(-d2 // dv),
            K=p.select_block_count, STATS=STAT_REPLICAS, HAS_AM=p.atten_mask is not None,
            HAS_TM=p.topk_mask is not None, num_warps=num_warps(g * bs1),
            num_stages=NUM_STAGES)

    def tables(self, device):
        """(task table, core ranges) on ``device``, uploaded on its first call there."""
        key = str(device)
        hit = self.on_device.get(key)
        if hit is None:
            hit = (self.table.to(device), self.core_first.to(device))
            self.on_device[key] = hit
        return hit


LAUNCHES = PerPlanCache(_Launch)


def _mask(m):
    """A bool / uint8 mask as uint8 (a view for bool), contiguous."""
    if m is None:
        return None
    m = m.contiguous()
    return m.view(torch.uint8) if m.dtype == torch.bool else m


def run(p, tiling, t):
    """(attention_out, topk_indices_out, softmax_max_out, softmax_sum_out): the emulator's
    outputs (emulate.run), from one launch. Nothing is read back to the host."""
    launch = LAUNCHES.get(p, tiling)
    dev = t.query.device
    out_shape, idx_shape, stat_shape, _ = launch.shapes
    stat_dtype = compute_dtype(t.query.dtype)
    out = torch.empty(out_shape, dtype=t.query.dtype, device=dev)
    topk = torch.empty(idx_shape, dtype=torch.int32, device=dev)
    stat_max = torch.empty(stat_shape, dtype=stat_dtype, device=dev)
    stat_sum = torch.empty(stat_shape, dtype=stat_dtype, device=dev)
    if launch.total_q < launch.t1:           # rows past the batches: zero (module doc)
        n_stat = launch.total_q * stat_shape[1]
        for x in (out, topk):
            x[launch.total_q:].zero_()
        for x in (stat_max, stat_sum):
            x.view(-1, stat_shape[2])[n_stat:].zero_()
    if launch.programs == 0:
        return out, topk, stat_max, stat_sum
    query, key, value = t.query.contiguous(), t.key.contiguous(), t.value.contiguous()
    am, tm = _mask(t.atten_mask), _mask(t.topk_mask)
    tasks, core_first = launch.tables(dev)
    tensors = (query, key, value, am if am is not None else tasks,
               tm if tm is not None else tasks, tasks, core_first, out, topk, stat_max,
               stat_sum)
    launch.kernel((*tensors, *launch.ints), aligned=alignment(*tensors))
    return out, topk, stat_max, stat_sum
