"""Warp-specialised Gluon kernel of npu_sparse_flash_attention for Hopper (variant ``gluon-ws``).

Same plan, tables, arguments and outputs as ``gluon._sfa_gluon_kernel``; what differs is who
does what. gluon.py's two warpgroups run one program and meet at CTA barriers four times a
step, so softmax and matrix work never overlap. Here a CTA has three warpgroups with their own
programs, paced by mbarriers:

- the *producer* (the default partition, few registers) loads the query tile of each piece
  and gathers key blocks with ``cp.async`` through the page-table walk, each block in two
  halves: ``lo`` = nope columns 0..255, ``hi`` = nope columns 256..511 plus the rope part. A
  half is refilled as soon as its last reader releases it, and each copy arrives on the
  half's *ready* barrier when it lands (``cp.async.mbarrier.arrive.noinc``). With a block's
  first half it also publishes which of the block's 64 keys are visible (``vis_s``: the scan
  limit, -1 termination and the boundary tau, the rule of ``gluon._positions``), so the
  consumers read no index;
- two *consumers* (worker partitions, most registers) take the blocks of a piece in pairs:
  consumer 0 the even block (stage 0), consumer 1 the odd one (stage 1). Each computes its own
  block's scores S = Q.K^T [64 heads, 64 keys] and probabilities, and owns one half of the
  output columns: consumer 0 O[:, :256] (V = ``lo``), consumer 1 O[:, 256:] (V = ``hi``). So
  each multiplies both blocks' P with its half of V: its own P from registers, the other's
  from shared memory. The running row max is common: consumer 0 publishes its block's max,
  consumer 1 folds in its own and publishes the result, consumer 0 rescales its P and O to it.

Per pair, in order (each barrier below is an mbarrier; ``free`` arrivals let the producer
refill a half):
  C0: S0 = Q.K0^T (lo half first) | m0 = max(m, rowmax S0), P0, publish m0 | start
      O += P0.V0lo; meanwhile wait m1, rescale P0 and l to it, P0 -> shared (over K0's rope
      part, consumed by then) | P0.V0lo done: free(0, lo); rescale O | wait P1 |
      O += P1.V1lo, free(1, lo)
  C1: S1 = Q.K1^T (hi half first) | wait m0; m1 = max(m0, rowmax S1), P1, publish m1; P1 ->
      shared | O += P1.V1hi, free(1, hi) | wait P0 | O += P0.V0hi, free(0, hi)
A piece's steps are taken two at a time; an odd piece pads with a step past its end, which
the scan limit masks whole (no copy reads memory, its P is 0). The producer loads a piece's
query tile once both consumers are past the previous piece's scores (``Q_FREE``), so the load
overlaps their epilogue. The row sums l of the two consumers are added at the end of a piece;
the finishing rule is gluon.py's.

The split of work between the warpgroups is the one of FlashMLA's public sm90 sparse prefill
kernel (its design, not its code). Why the code looks as it does:
- ``_in_loop``: shared-memory buffers are indexed by a value the compiler cannot hoist, or the
  consumers keep their wgmma descriptors live across the loop and spill them (the largest single
  cost this kernel had);
- the producer publishes which keys of a block are visible, so the consumers load no index;
- consumer 0 hands P0 to consumer 1 while its own P0.V0lo runs;
- the producer loads a pair's index entries a pair ahead and walks power-of-two pages with a
  shift: with 64 heads or fewer, decode is the producer's gather, and every instruction added to
  the producer's loop slows the whole kernel;
- at 128 heads the two head-group tasks of a row gather its keys twice, the second time from L2.
What bounds the kernel now, with the profiler evidence, is in docs/performance.md.

Shared memory: Q 72 KiB + two key stages 144 KiB + P1 8 KiB + row statistics and visible
keys, 225 KiB of Hopper's 227.

Served plans (op_host tiling ``gluon_serves``): 64-key steps (sparse_block_size <= 64), D 512,
rope 64, and a head group of at most 64 heads. A smaller head group (N1 < 64, which the plan
gives as one group of N1 heads) takes the first rows of the 64-row tile; the others hold zeros,
their results are written nowhere, and their share of the matrix work is spent for nothing. With
few heads the gather dominates, so that still beats the Triton kernel on every head count.
"""
from __future__ import annotations

from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import (
    fence_async_shared,
    mbarrier,
    warpgroup_mma,
    warpgroup_mma_wait,
)

from .gluon import (LIMIT_BLOCK, _entries, _finish, _key_rows, _scan_limit, async_copy,
                    async_load)

TILE_M = gl.constexpr(64)    # rows of a tile (the wgmma M); the plan's head group HG <= TILE_M
BLOCK = gl.constexpr(64)
HALF = gl.constexpr(256)      # output columns per consumer, nope columns per key half
PRODUCER_WARPS = gl.constexpr(4)   # the default partition: the kernel is launched with 4 warps
# registers per consumer thread; the producer gets what is left of the 64K file: 72. The
# page-table walk and the index entries loaded a pair ahead need them (at 224 the producer has
# 56 and spills); at 216 neither consumer spills (ptxas, sm_90)
CONSUMER_REGS = gl.constexpr(216)


# barrier slots
Q_READY, Q_FREE = gl.constexpr(0), gl.constexpr(1)
READY, FREE = gl.constexpr(2), gl.constexpr(6)    # + 2 * stage + half (half 0 = lo, 1 = hi)
MAX0, MAX1, P0, P1 = gl.constexpr(10), gl.constexpr(11), gl.constexpr(12), gl.constexpr(13)
L0, L1 = gl.constexpr(14), gl.constexpr(15)
NUM_BARS = gl.constexpr(16)


@gluon.jit
def _bar(bars, i: gl.constexpr):
    return bars.index(i)


@gluon.jit
def _in_loop(i, pair):
    """i (0 or 1), computed from the loop counter ``pair`` (>> 30 is 0 for any count a core
    reaches). A buffer indexed by it gets its wgmma descriptors made inside the loop; indexed by
    a constant they are hoisted out of it, ~40 64-bit values live across the loop, and the
    consumers spilled them to local memory (consumer 1: ~100 local loads and stores a pair)."""
    return i + (pair >> 30)


@gluon.jit
def _pieces(plan):
    """This core's pieces: plan = (core_first, piece_task, piece_begin, piece_end, piece_slot,
    task_row, task_batch, task_head, task_tau, task_window), the tables of metadata.py."""
    core = gl.program_id(0)
    return gl.load(plan[0] + core), gl.load(plan[0] + core + 1)


@gluon.jit
def _piece(plan, i_piece):
    """(step_begin, step_end, slot, row, batch, head0, tau, window) of piece i_piece (the
    producer turns the window into the scan limit: gluon._scan_limit)."""
    i_task = gl.load(plan[1] + i_piece)
    return (gl.load(plan[2] + i_piece), gl.load(plan[3] + i_piece), gl.load(plan[4] + i_piece),
            gl.load(plan[5] + i_task), gl.load(plan[6] + i_task), gl.load(plan[7] + i_task),
            gl.load(plan[8] + i_task), gl.load(plan[9] + i_task))


@gluon.jit
def _producer(q_nope, q_rope, idx, key, key_rope, block_table, kv_start, plan, n1, k_entries,
              bt_stride, page_size, ql_s, qh_s, qr_s, kl_s, kh_s, kr_s, vis_s, bars,
              HG: gl.constexpr, SBS: gl.constexpr, ENTRIES: gl.constexpr, DR: gl.constexpr,
              PAGED: gl.constexpr, PAGE_SHIFT: gl.constexpr):
    # 8 lanes copy 128 contiguous bytes of a key row, a warp 4 rows per instruction; a thread
    # holds 4 rows, walks the page table for them once per block, and every copy of the block
    # uses them (2 lanes a row is slower; 32 lanes a row spills registers)
    rows: gl.constexpr = gl.BlockedLayout([1, 8], [4, 8], [4, 1], [1, 0])
    limit_layout: gl.constexpr = gl.BlockedLayout([LIMIT_BLOCK // 128], [32], [4], [0])
    o_h = gl.arange(0, TILE_M, layout=gl.SliceLayout(1, rows))
    o_d = gl.arange(0, HALF, layout=gl.SliceLayout(0, rows))
    o_r = gl.arange(0, DR, layout=gl.SliceLayout(0, rows))
    first, last = _pieces(plan)
    pair = 0                  # pairs done by this core: the phase of the per-pair barriers
    for i_piece in range(first, last):
        step_begin, step_end, _slot, row, batch, head0, tau, window = _piece(plan, i_piece)
        # before waiting for the consumers: this search overlaps the previous piece's epilogue
        limit = _scan_limit(idx + row * k_entries, window, step_end * ENTRIES, limit_layout)
        kv_base = gl.load(kv_start + batch)
        q0 = row * n1 + head0
        # the query tile, once both consumers are past the previous piece's scores
        mbarrier.wait(_bar(bars, Q_FREE), ((i_piece - first) & 1).to(gl.int32) ^ 1)
        # rows past the head group (HG < TILE_M) are zeros, and nothing of them is written
        m_q = (o_h < HG)[:, None]
        p_q = q_nope + (q0 + o_h)[:, None].to(gl.int64) * (2 * HALF) + o_d[None, :]
        async_load(ql_s.index(0), p_q, mask=m_q)
        async_load(qh_s.index(0), p_q + HALF, mask=m_q)
        async_load(qr_s.index(0), q_rope + (q0 + o_h)[:, None].to(gl.int64) * DR + o_r[None, :],
                   mask=m_q)
        async_copy.mbarrier_arrive(_bar(bars, Q_READY), increment_count=False)
        # a pair's index entries are loaded a pair ahead: the page-table walk of a pair then
        # waits for one load, not two in a row (faster on decode shapes, bound by this gather)
        b_e0 = _entries(idx, step_begin, o_h, row, limit, k_entries, SBS, ENTRIES)
        b_e1 = _entries(idx, step_begin + 1, o_h, row,
                        gl.where(step_begin + 1 < step_end, limit, 0), k_entries, SBS, ENTRIES)
        for step in range(step_begin, step_end, 2):
            ph = (pair & 1) ^ 1
            kv0, m0 = _key_rows(b_e0, block_table, step, o_h, batch, tau, limit, kv_base,
                                bt_stride, page_size, SBS, ENTRIES, PAGED, PAGE_SHIFT)
            kv1, m1 = _key_rows(b_e1, block_table, step + 1, o_h, batch, tau,
                                gl.where(step + 1 < step_end, limit, 0), kv_base, bt_stride,
                                page_size, SBS, ENTRIES, PAGED, PAGE_SHIFT)
            b_e0 = _entries(idx, step + 2, o_h, row, gl.where(step + 2 < step_end, limit, 0),
                            k_entries, SBS, ENTRIES)
            b_e1 = _entries(idx, step + 3, o_h, row, gl.where(step + 3 < step_end, limit, 0),
                            k_entries, SBS, ENTRIES)
            p_k0 = key + kv0[:, None] * (2 * HALF) + o_d[None, :]
            p_k1 = key + kv1[:, None] * (2 * HALF) + o_d[None, :]
            # stage 0 lo, stage 1 hi, stage 0 hi, stage 1 lo: the order the consumers free them
            mbarrier.wait(_bar(bars, FREE + 0), ph)
            async_load(kl_s.index(0), p_k0, mask=m0[:, None])
            async_copy.mbarrier_arrive(_bar(bars, READY + 0), increment_count=False)
            vis_s.index(0).store(m0.to(gl.int8))          # the block's visible keys
            mbarrier.arrive(_bar(bars, READY + 0))
            mbarrier.wait(_bar(bars, FREE + 3), ph)
            async_load(kh_s.index(1), p_k1 + HALF, mask=m1[:, None])
            async_load(kr_s.index(1), key_rope + kv1[:, None] * DR + o_r[None, :],
                       mask=m1[:, None])
            async_copy.mbarrier_arrive(_bar(bars, READY + 3), increment_count=False)
            vis_s.index(1).store(m1.to(gl.int8))
            mbarrier.arrive(_bar(bars, READY + 3))
            mbarrier.wait(_bar(bars, FREE + 1), ph)
            async_load(kh_s.index(0), p_k0 + HALF, mask=m0[:, None])
            async_load(kr_s.index(0), key_rope + kv0[:, None] * DR + o_r[None, :],
                       mask=m0[:, None])
            async_copy.mbarrier_arrive(_bar(bars, READY + 1), increment_count=False)
            mbarrier.wait(_bar(bars, FREE + 2), ph)
            async_load(kl_s.index(1), p_k1, mask=m1[:, None])
            async_copy.mbarrier_arrive(_bar(bars, READY + 2), increment_count=False)
            pair += 1


@gluon.jit
def _consumer(sinks, plan, out, smax, ssum, ws_m, ws_l, ws_acc, scale, n1,
              ql_s, qh_s, qr_s, kl_s, kh_s, kr_s, p1_s, stat_s, vis_s, bars,
              WG: gl.constexpr, HG: gl.constexpr, HAS_SINKS: gl.constexpr):
    dtype: gl.constexpr = ql_s.dtype
    s_layout: gl.constexpr = gl.NVMMADistributedLayout(
        version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, BLOCK, 16])
    o_layout: gl.constexpr = gl.NVMMADistributedLayout(
        version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, HALF, 16])
    p_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)
    rows_s: gl.constexpr = gl.SliceLayout(1, s_layout)
    rows_o: gl.constexpr = gl.SliceLayout(1, o_layout)
    o_ho = gl.arange(0, TILE_M, layout=rows_o)
    o_do = WG * HALF + gl.arange(0, HALF, layout=gl.SliceLayout(0, o_layout))
    first, last = _pieces(plan)
    pair = 0                  # pairs done by this core: the phase of the per-pair barriers
    for i_piece in range(first, last):
        step_begin, step_end, slot, row, _batch, head0, _tau, _window = _piece(plan, i_piece)
        mbarrier.wait(_bar(bars, Q_READY), ((i_piece - first) & 1).to(gl.int32))
        fence_async_shared()
        b_m = gl.full([TILE_M], float("-inf"), gl.float32, layout=rows_s)
        b_l = gl.zeros([TILE_M], gl.float32, layout=rows_s)
        b_acc = gl.zeros([TILE_M, HALF], gl.float32, layout=o_layout)
        for step in range(step_begin, step_end, 2):
            ph = pair & 1
            # this pair's buffers; index 0 or 1 from _in_loop, so that their shared-memory
            # descriptors are made in the loop, not hoisted and spilled (_in_loop)
            s0 = _in_loop(0, pair)
            s1 = _in_loop(1, pair)
            q_lo = ql_s.index(s0)
            q_hi = qh_s.index(s0)
            q_ro = qr_s.index(s0)
            # scores of this consumer's block, the half it does not free first coming second
            b_s = gl.zeros([TILE_M, BLOCK], gl.float32, layout=s_layout)
            if WG == 0:
                mbarrier.wait(_bar(bars, READY + 0), ph)
                fence_async_shared()
                b_s = warpgroup_mma(q_lo, kl_s.index(s0).permute((1, 0)), b_s, use_acc=False,
                                    is_async=True)
                mbarrier.wait(_bar(bars, READY + 1), ph)
                fence_async_shared()
                b_s = warpgroup_mma(q_hi, kh_s.index(s0).permute((1, 0)), b_s, is_async=True)
                b_s = warpgroup_mma(q_ro, kr_s.index(s0).permute((1, 0)), b_s, is_async=True)
            else:
                mbarrier.wait(_bar(bars, READY + 3), ph)
                fence_async_shared()
                b_s = warpgroup_mma(q_hi, kh_s.index(s1).permute((1, 0)), b_s, use_acc=False,
                                    is_async=True)
                b_s = warpgroup_mma(q_ro, kr_s.index(s1).permute((1, 0)), b_s, is_async=True)
                mbarrier.wait(_bar(bars, READY + 2), ph)
                fence_async_shared()
                b_s = warpgroup_mma(q_lo, kl_s.index(s1).permute((1, 0)), b_s, is_async=True)
            m_pos = vis_s.index(_in_loop(WG, pair)).load(gl.SliceLayout(0, s_layout)) != 0
            b_s = warpgroup_mma_wait(0, deps=(b_s,))
            b_s = gl.where(m_pos[None, :], b_s * scale, float("-inf"))
            b_cur = gl.max(b_s, 1)
            if WG == 0:
                b_new = gl.maximum(b_m, b_cur)
                stat_s[0].store(b_new)                    # publish m0
                mbarrier.arrive(_bar(bars, MAX0))
            else:
                mbarrier.wait(_bar(bars, MAX0), ph)
                b_new = gl.maximum(stat_s[0].load(rows_s), b_cur)
                stat_s[1].store(b_new)                    # publish m1 (the pair's max)
                mbarrier.arrive(_bar(bars, MAX1))
            b_base = gl.where(b_new == float("-inf"), 0.0, b_new)
            b_alpha = gl.exp(b_m - b_base)
            b_p = gl.exp(b_s - b_base[:, None])
            b_l = b_l * b_alpha + gl.sum(b_p, 1)
            b_m = b_new
            b_acc = b_acc * gl.convert_layout(b_alpha, rows_o)[:, None]
            if WG == 0:
                b_pa = gl.convert_layout(b_p.to(dtype), p_layout)
                b_acc = warpgroup_mma(b_pa, kl_s.index(s0), b_acc, is_async=True)
                # while P0.V0lo runs: the pair's max from consumer 1; P0 rescaled to it goes
                # to consumer 1 (over K0's rope part, read by now)
                mbarrier.wait(_bar(bars, MAX1), ph)
                b_pm = stat_s[1].load(rows_s)
                b_f = gl.exp(b_m - gl.where(b_pm == float("-inf"), 0.0, b_pm))
                b_m = b_pm
                b_l = b_l * b_f
                kr_s.index(s0).store((b_p * b_f[:, None]).to(dtype))
                fence_async_shared()
                mbarrier.arrive(_bar(bars, P0))
                b_acc = warpgroup_mma_wait(0, deps=(b_acc,))
                mbarrier.arrive(_bar(bars, FREE + 0))
                b_acc = b_acc * gl.convert_layout(b_f, rows_o)[:, None]
                mbarrier.wait(_bar(bars, P1), ph)
                fence_async_shared()
                b_acc = warpgroup_mma(p1_s, kl_s.index(s1), b_acc, is_async=True)
                b_acc = warpgroup_mma_wait(0, deps=(b_acc,))
                mbarrier.arrive(_bar(bars, FREE + 2))
            else:
                b_pb = b_p.to(dtype)
                p1_s.store(b_pb)
                fence_async_shared()
                mbarrier.arrive(_bar(bars, P1))
                b_acc = warpgroup_mma(gl.convert_layout(b_pb, p_layout), kh_s.index(s1), b_acc,
                                      is_async=True)
                b_acc = warpgroup_mma_wait(0, deps=(b_acc,))
                mbarrier.arrive(_bar(bars, FREE + 3))
                mbarrier.wait(_bar(bars, P0), ph)
                fence_async_shared()
                b_acc = warpgroup_mma(kr_s.index(s0), kh_s.index(s0), b_acc, is_async=True)
                b_acc = warpgroup_mma_wait(0, deps=(b_acc,))
                mbarrier.arrive(_bar(bars, FREE + 1))
            pair += 1
        mbarrier.arrive(_bar(bars, Q_FREE))          # both are past this piece's scores
        # the piece's row sums: each consumer summed its own blocks' P
        stat_s[2 + WG].store(b_l)
        mbarrier.arrive(_bar(bars, L0 + WG))
        mbarrier.wait(_bar(bars, L1 - WG), ((i_piece - first) & 1).to(gl.int32))
        b_l = b_l + stat_s[3 - WG].load(rows_s)
        # this consumer's output columns; consumer 0 also writes the statistics
        _finish(gl.convert_layout(b_m, rows_o), gl.convert_layout(b_l, rows_o), b_acc, sinks,
                out, smax, ssum, ws_m, ws_l, ws_acc, slot, row * n1 + head0, head0, o_ho, o_do,
                HG, 2 * HALF, WG == 0, HAS_SINKS)


@gluon.jit
def _sfa_gluon_ws_kernel(
    q_nope, q_rope, idx, key, key_rope, block_table, kv_start, sinks,
    core_first, piece_task, piece_begin, piece_end, piece_slot,
    task_row, task_batch, task_head, task_tau, task_window,
    out, smax, ssum, ws_m, ws_l, ws_acc,
    scale, n1, k_entries, bt_stride, page_size,
    HG: gl.constexpr, BLOCK_S2: gl.constexpr, SBS: gl.constexpr, ENTRIES: gl.constexpr,
    DV: gl.constexpr, DR: gl.constexpr, PAGED: gl.constexpr, PAGE_SHIFT: gl.constexpr,
    HAS_SINKS: gl.constexpr,
):
    dtype: gl.constexpr = q_nope.dtype.element_ty
    smem: gl.constexpr = gl.NVMMASharedLayout(swizzle_byte_width=128, element_bitwidth=16,
                                              rank=2)
    flat: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [0])
    ql_s = gl.allocate_shared_memory(dtype, [1, TILE_M, HALF], smem)     # [1, ...]: _in_loop
    qh_s = gl.allocate_shared_memory(dtype, [1, TILE_M, HALF], smem)
    qr_s = gl.allocate_shared_memory(dtype, [1, TILE_M, DR], smem)
    kl_s = gl.allocate_shared_memory(dtype, [2, BLOCK_S2, HALF], smem)
    kh_s = gl.allocate_shared_memory(dtype, [2, BLOCK_S2, HALF], smem)
    kr_s = gl.allocate_shared_memory(dtype, [2, BLOCK_S2, DR], smem)
    p1_s = gl.allocate_shared_memory(dtype, [TILE_M, BLOCK_S2], smem)
    stat_s = (gl.allocate_shared_memory(gl.float32, [TILE_M], flat),      # m0, m1, l0, l1
              gl.allocate_shared_memory(gl.float32, [TILE_M], flat),
              gl.allocate_shared_memory(gl.float32, [TILE_M], flat),
              gl.allocate_shared_memory(gl.float32, [TILE_M], flat))
    vis_s = gl.allocate_shared_memory(gl.int8, [2, BLOCK_S2], flat)     # visible keys
    bars = gl.allocate_shared_memory(gl.int64, [NUM_BARS, 1], mbarrier.MBarrierLayout())
    copy_threads: gl.constexpr = 32 * PRODUCER_WARPS
    mbarrier.init(bars.index(Q_READY), count=copy_threads)
    mbarrier.init(bars.index(Q_FREE), count=2)
    for i in gl.static_range(4):    # + 1: a stage's first half also brings its visible keys
        mbarrier.init(bars.index(READY + i), count=copy_threads + (i == 0 or i == 3))
        mbarrier.init(bars.index(FREE + i), count=1)
    for i in gl.static_range(MAX0, NUM_BARS):
        mbarrier.init(bars.index(i), count=1)
    plan = (core_first, piece_task, piece_begin, piece_end, piece_slot, task_row, task_batch,
            task_head, task_tau, task_window)
    gl.warp_specialize(
        [(_producer, (q_nope, q_rope, idx, key, key_rope, block_table, kv_start, plan, n1,
                      k_entries, bt_stride, page_size, ql_s, qh_s, qr_s, kl_s, kh_s, kr_s,
                      vis_s, bars, HG, SBS, ENTRIES, DR, PAGED, PAGE_SHIFT)),
         (_consumer, (sinks, plan, out, smax, ssum, ws_m, ws_l, ws_acc, scale, n1, ql_s, qh_s,
                      qr_s, kl_s, kh_s, kr_s, p1_s, stat_s, vis_s, bars, 0, HG, HAS_SINKS)),
         (_consumer, (sinks, plan, out, smax, ssum, ws_m, ws_l, ws_acc, scale, n1, ql_s, qh_s,
                      qr_s, kl_s, kh_s, kr_s, p1_s, stat_s, vis_s, bars, 1, HG, HAS_SINKS))],
        [4, 4], [CONSUMER_REGS, CONSUMER_REGS])
