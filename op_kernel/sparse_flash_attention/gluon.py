"""Gluon (Triton's explicit-layout dialect) kernel of npu_sparse_flash_attention for Hopper.

Same plan, same tables, same arguments and same outputs as ``triton._sfa_kernel``; only the
inside of a step differs. It exists because Triton cannot be told how two warpgroups share a
64-head tile (triton.py's module doc); here the layouts are written out:

- one CTA of 8 warps (two warpgroups) per SM plays core c of the plan, as in triton.py;
- the query tile [64, 512 + 64] sits in shared memory for the whole task; the gathered key tile
  [64 keys, 512 + 64] is copied by ``cp.async`` (one 16-byte vector per copy, rows picked by the
  page-table walk) into two shared-memory stages, so step s + 1 is in flight while step s runs;
- scores S = Q.K^T [64 heads, 64 keys]: each warpgroup computes 32 of the 64 keys (warps
  [4, 2]), so Q.K^T is computed once; the row max across the two halves goes through shared
  memory (the reduction's own scratch);
- the probabilities, rounded to the input dtype, become the register A operand of P.V; the
  accumulator [64, 512] is split by columns, 256 per warpgroup (128 fp32 registers a thread);
  V is the first 512 columns of the same key tile.

Served plans: head_group 64, block_s2 64, D 512, rope 64, fp16/bf16, with Triton >= 3.6 on an
sm_90 GPU; the plan (op_host tiling ``gluon_serves``) picks this kernel only when asked for by
name, since gluon_ws.py is faster.

The position rule (``_entries``, ``_positions``, ``_key_rows``) and the finishing epilogue
(``_finish``), both shared with gluon_ws.py, repeat those of triton.py in Gluon's terms: a
Gluon function cannot call a Triton-language one (Gluon tensors carry layouts), so the kernels
share the rule, not the code; the GPU tests compare each with the emulator.
"""
from __future__ import annotations

from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import (
    async_copy, fence_async_shared, warpgroup_mma, warpgroup_mma_wait)

HG = 64
BLOCK = 64
NUM_WARPS = 8
LIMIT_BLOCK = gl.constexpr(2048)   # index entries per load of a piece's first-negative search
# names that changed between Triton releases (3.6 on the GPU machines, newer in CI)
thread_barrier = getattr(gl, "thread_barrier", None) or gl.barrier        # all threads meet
async_load = (getattr(async_copy, "async_load", None)                     # cp.async, 16 B
              or async_copy.async_copy_global_to_shared)



@gluon.jit
def _sfa_gluon_kernel(
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
    # register layouts
    s_layout: gl.constexpr = gl.NVMMADistributedLayout(
        version=[3, 0], warps_per_cta=[4, 2], instr_shape=[16, BLOCK_S2 // 2, 16])
    o_layout: gl.constexpr = gl.NVMMADistributedLayout(
        version=[3, 0], warps_per_cta=[4, 2], instr_shape=[16, DV // 2, 16])
    p_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)
    wide: gl.constexpr = gl.BlockedLayout([1, 8], [1, 32], [8, 1], [1, 0])      # [*, 512] copies
    narrow: gl.constexpr = gl.BlockedLayout([1, 8], [4, 8], [8, 1], [1, 0])     # [*, 64] copies
    limit_layout: gl.constexpr = gl.BlockedLayout([LIMIT_BLOCK // 256], [32], [8], [0])
    # shared memory: query tile, two stages of the key tile
    smem: gl.constexpr = gl.NVMMASharedLayout(swizzle_byte_width=128, element_bitwidth=16,
                                              rank=2)
    qn_s = gl.allocate_shared_memory(dtype, [HG, DV], smem)
    qr_s = gl.allocate_shared_memory(dtype, [HG, DR], smem)
    kn_s = gl.allocate_shared_memory(dtype, [2, BLOCK_S2, DV], smem)
    kr_s = gl.allocate_shared_memory(dtype, [2, BLOCK_S2, DR], smem)

    core = gl.program_id(0)
    o_hw = gl.arange(0, HG, layout=gl.SliceLayout(1, wide))
    o_hn = gl.arange(0, HG, layout=gl.SliceLayout(1, narrow))
    o_dw = gl.arange(0, DV, layout=gl.SliceLayout(0, wide))
    o_rn = gl.arange(0, DR, layout=gl.SliceLayout(0, narrow))
    o_pw = gl.arange(0, BLOCK_S2, layout=gl.SliceLayout(1, wide))
    o_ho = gl.arange(0, HG, layout=gl.SliceLayout(1, o_layout))
    o_do = gl.arange(0, DV, layout=gl.SliceLayout(0, o_layout))
    for i_piece in range(gl.load(core_first + core), gl.load(core_first + core + 1)):
        i_task = gl.load(piece_task + i_piece)
        step_begin = gl.load(piece_begin + i_piece)
        step_end = gl.load(piece_end + i_piece)
        slot = gl.load(piece_slot + i_piece)
        row = gl.load(task_row + i_task)
        batch = gl.load(task_batch + i_task)
        head0 = gl.load(task_head + i_task)
        tau = gl.load(task_tau + i_task)
        limit = _scan_limit(idx + row * k_entries, gl.load(task_window + i_task),
                            step_end * ENTRIES, limit_layout)
        kv_base = gl.load(kv_start + batch)
        q0 = row * n1 + head0

        thread_barrier()             # the previous piece's last matmuls read these buffers
        async_load(
            qn_s, q_nope + (q0 + o_hw)[:, None].to(gl.int64) * DV + o_dw[None, :])
        async_load(
            qr_s, q_rope + (q0 + o_hn)[:, None].to(gl.int64) * DR + o_rn[None, :])
        buf0 = (step_begin % 2).to(gl.int32)
        _gather(idx, key, key_rope, block_table, kn_s.index(buf0), kr_s.index(buf0),
                step_begin, row, batch, tau, limit, kv_base, k_entries, bt_stride, page_size,
                o_pw, o_dw, o_rn, BLOCK_S2, SBS, ENTRIES, DV, DR, PAGED, PAGE_SHIFT, wide,
                narrow)

        b_m = gl.full([HG], float("-inf"), gl.float32, layout=gl.SliceLayout(1, s_layout))
        b_l = gl.zeros([HG], gl.float32, layout=gl.SliceLayout(1, s_layout))
        b_acc = gl.zeros([HG, DV], gl.float32, layout=o_layout)
        for step in range(step_begin, step_end):
            buf = (step % 2).to(gl.int32)
            async_copy.wait_group(0)      # this step's keys (own copies), then everyone's
            thread_barrier()
            fence_async_shared()          # cp.async wrote them; the tensor cores read them
            kn = kn_s.index(buf)
            b_s = gl.zeros([HG, BLOCK_S2], gl.float32, layout=s_layout)
            b_s = warpgroup_mma(qn_s, kn.permute((1, 0)), b_s, use_acc=False, is_async=True)
            b_s = warpgroup_mma(qr_s, kr_s.index(buf).permute((1, 0)), b_s, is_async=True)
            # while Q.K^T runs: the next step's gather into the other stage (its last reader,
            # the previous P.V, finished before the barrier above) and this step's mask
            _gather(idx, key, key_rope, block_table, kn_s.index(1 - buf), kr_s.index(1 - buf),
                    step + 1, row, batch, tau, gl.where(step + 1 < step_end, limit, 0), kv_base,
                    k_entries, bt_stride, page_size, o_pw, o_dw, o_rn,
                    BLOCK_S2, SBS, ENTRIES, DV, DR, PAGED, PAGE_SHIFT, wide, narrow)
            o_p = gl.arange(0, BLOCK_S2, layout=gl.SliceLayout(0, s_layout))
            m_pos = _visible(idx, step, o_p, row, tau, limit, k_entries, SBS, ENTRIES)
            b_s = warpgroup_mma_wait(0, deps=(b_s,))
            b_s = gl.where(m_pos[None, :], b_s * scale, float("-inf"))
            b_m_new = gl.maximum(b_m, gl.max(b_s, 1))
            b_base = gl.where(b_m_new == float("-inf"), 0.0, b_m_new)
            b_alpha = gl.exp(b_m - b_base)
            b_p = gl.exp(b_s - b_base[:, None])
            b_l = b_l * b_alpha + gl.sum(b_p, 1)
            b_m = b_m_new
            b_pa = gl.convert_layout(b_p.to(dtype), p_layout)
            b_acc = b_acc * gl.convert_layout(b_alpha, gl.SliceLayout(1, o_layout))[:, None]
            b_acc = warpgroup_mma(b_pa, kn, b_acc, is_async=True)
            b_acc = warpgroup_mma_wait(0, deps=(b_acc,))
        async_copy.wait_group(0)

        _finish(gl.convert_layout(b_m, gl.SliceLayout(1, o_layout)),
                gl.convert_layout(b_l, gl.SliceLayout(1, o_layout)), b_acc, sinks, out, smax,
                ssum, ws_m, ws_l, ws_acc, slot, q0, head0, o_ho, o_do, HG, DV, True, HAS_SINKS)


@gluon.jit
def _finish(b_m, b_l, b_acc, sinks, out, smax, ssum, ws_m, ws_l, ws_acc, slot, q0, head0,
            o_ho, o_do, HG: gl.constexpr, DV: gl.constexpr, STATS: gl.constexpr,
            HAS_SINKS: gl.constexpr):
    """Write a finished state of heads head0 + o_ho (rows q0 + o_ho), output columns o_do of
    DV, and, if STATS, the row statistics: to workspace slot ``slot`` for a piece of a split
    task, else normalised with triton._finish's rule (sinks join the sum only; a row that saw
    no key gives zeros and SOFTMAX_MIN / 0). b_m, b_l must be in the row layout of b_acc.
    Only rows o_ho < HG (the plan's head group) are heads of the task; a tile's other rows
    are written nowhere."""
    m_h = o_ho < HG
    m_hd = m_h[:, None] & (o_do < DV)[None, :]
    if slot >= 0:
        if STATS:
            gl.store(ws_m + slot * HG + o_ho, b_m, mask=m_h)
            gl.store(ws_l + slot * HG + o_ho, b_l, mask=m_h)
        gl.store(ws_acc + (slot * HG + o_ho)[:, None].to(gl.int64) * DV + o_do[None, :], b_acc,
                 mask=m_hd)
    else:
        b_empty = b_l <= 0
        if HAS_SINKS:
            b_sink = gl.load(sinks + head0 + o_ho, mask=m_h, other=0.0)
            b_ms = gl.maximum(b_m, b_sink)
            b_sc = gl.exp(b_m - b_ms)
            b_l = b_l * b_sc + gl.exp(b_sink - b_ms)
            b_acc = b_acc * b_sc[:, None]
            b_m = b_ms
        b_out = b_acc / gl.where(b_empty, 1.0, b_l)[:, None]
        b_out = gl.where(b_empty[:, None], 0.0, b_out)
        gl.store(out + (q0 + o_ho)[:, None].to(gl.int64) * DV + o_do[None, :],
                 b_out.to(out.dtype.element_ty), mask=m_hd)
        if STATS:
            gl.store(smax + q0 + o_ho, gl.where(b_empty, -2e38, b_m), mask=m_h)
            gl.store(ssum + q0 + o_ho, gl.where(b_empty, 0.0, b_l), mask=m_h)


@gluon.jit
def _scan_limit(idx_row, window, end, layout: gl.constexpr):
    """triton._scan_limit in Gluon's terms: min(window, the row's first negative entry among
    [0, min(window, end))), LIMIT_BLOCK entries a load spread as ``layout`` says."""
    n = gl.minimum(window, end)
    first = window
    for e0 in range(0, n, LIMIT_BLOCK):
        o_e = e0 + gl.arange(0, LIMIT_BLOCK, layout=layout)
        b_e = gl.load(idx_row + o_e, mask=o_e < n, other=0)
        first = gl.minimum(first, gl.min(gl.where(b_e < 0, o_e, window), 0))
    return first


@gluon.jit
def _entries(idx, step, o_p, row, limit, k_entries, SBS: gl.constexpr, ENTRIES: gl.constexpr):
    """The sparse_indices entries of a step's positions, as stored (0 past the scan limit).
    Split from ``_positions`` so that a kernel can load them a step ahead."""
    o_e = step * ENTRIES + o_p // SBS
    return gl.load(idx + row * k_entries + o_e, mask=o_e < limit, other=0)


@gluon.jit
def _positions(b_ent, step, o_p, tau, limit, SBS: gl.constexpr, ENTRIES: gl.constexpr):
    """Key positions of a step from its entries, and which of them are visible (the rule of
    triton.py: inside the scan limit, before the boundary tau)."""
    o_e = step * ENTRIES + o_p // SBS
    o_pos = b_ent.to(gl.int64) * SBS + o_p % SBS
    return o_pos, (o_e < limit) & (o_pos < tau)


@gluon.jit
def _visible(idx, step, o_p, row, tau, limit, k_entries, SBS: gl.constexpr,
             ENTRIES: gl.constexpr):
    b_ent = _entries(idx, step, o_p, row, limit, k_entries, SBS, ENTRIES)
    o_pos, m_pos = _positions(b_ent, step, o_p, tau, limit, SBS, ENTRIES)
    return m_pos


@gluon.jit
def _gather(idx, key, key_rope, block_table, kn_dst, kr_dst, step, row, batch, tau, limit,
            kv_base, k_entries, bt_stride, page_size, o_pw, o_dw, o_rn,
            BLOCK_S2: gl.constexpr, SBS: gl.constexpr, ENTRIES: gl.constexpr,
            DV: gl.constexpr, DR: gl.constexpr, PAGED: gl.constexpr, PAGE_SHIFT: gl.constexpr,
            wide: gl.constexpr, narrow: gl.constexpr):
    """Issue the cp.async copies of step ``step``'s key rows (masked rows are zero-filled)."""
    b_ent = _entries(idx, step, o_pw, row, limit, k_entries, SBS, ENTRIES)
    o_kv, m_pos = _key_rows(b_ent, block_table, step, o_pw, batch, tau, limit, kv_base,
                            bt_stride, page_size, SBS, ENTRIES, PAGED, PAGE_SHIFT)
    async_load(
        kn_dst, key + o_kv[:, None] * DV + o_dw[None, :], mask=m_pos[:, None])
    # the rope part's rows again in its own layout (recomputing beats a layout conversion,
    # which costs shared-memory round trips and barriers)
    o_pn = gl.arange(0, BLOCK_S2, layout=gl.SliceLayout(1, narrow))
    b_ent = _entries(idx, step, o_pn, row, limit, k_entries, SBS, ENTRIES)
    o_kv, m_pos = _key_rows(b_ent, block_table, step, o_pn, batch, tau, limit, kv_base,
                            bt_stride, page_size, SBS, ENTRIES, PAGED, PAGE_SHIFT)
    async_load(
        kr_dst, key_rope + o_kv[:, None] * DR + o_rn[None, :], mask=m_pos[:, None])
    async_copy.commit_group()


@gluon.jit
def _key_rows(b_ent, block_table, step, o_p, batch, tau, limit, kv_base, bt_stride, page_size,
              SBS: gl.constexpr, ENTRIES: gl.constexpr, PAGED: gl.constexpr,
              PAGE_SHIFT: gl.constexpr):
    """Cache rows of a step's positions from their entries (page-table walk for PA_BSND; 0
    where masked). PAGE_SHIFT = log2(page_size) for a power-of-two page, else -1: a runtime
    64-bit division costs the gathering threads ~25 instructions and a branch per row."""
    o_pos, m_pos = _positions(b_ent, step, o_p, tau, limit, SBS, ENTRIES)
    if PAGED:
        if PAGE_SHIFT >= 0:
            o_page = o_pos >> PAGE_SHIFT
            o_in = o_pos & ((1 << PAGE_SHIFT) - 1)
        else:
            o_page = o_pos // page_size
            o_in = o_pos % page_size
        b_page = gl.load(block_table + batch * bt_stride + o_page, mask=m_pos,
                         other=0).to(gl.int64)
        o_kv = b_page * page_size + o_in
    else:
        o_kv = kv_base + o_pos
    return gl.where(m_pos, o_kv, 0), m_pos
