"""Triton back end of npu_sparse_flash_attention (NVIDIA GPUs; CPU through Triton's interpreter).

A call launches three kernels and reads nothing back: ``metadata.build`` computes the schedule
on the device from the lengths, page table and indices; the plan's kernel (its ``variant``)
runs it on a persistent grid, program ``c`` playing core ``c`` and running that core's pieces (a
task's run of steps) in order; ``_merge_kernel`` merges the split tasks. Per step it reads ``ENTRIES`` index entries, expands them to ``BLOCK_S2``
positions (``SBS`` per entry), masks positions past the task's scan limit (window W and the
first negative entry) and past the boundary tau, translates positions to key rows (page-table
walk for PA_BSND), and runs the fp32 online softmax with P rounded to the input dtype before
P.V; value is read from key. A piece that is a whole task writes the output and statistics; a
piece of a split task writes (m, l, acc) to its workspace slot, and ``_merge_kernel`` merges
the slots with the emulator's log-sum-exp rule. Masked lanes load zeros and never address
memory; the metadata clamps malformed lengths and page tables (schedule.py), so every address
the kernels form lies inside its tensor.

Scores through a scratch tile (variant ``scratch``, the default with 8 warps off Hopper). Triton
gives a matmul whose result feeds another matmul all warps along M. The score tile has M =
head_group = 64 rows, one warpgroup's worth, so with 8 warps both warpgroups would compute the
same Q.K^T (seen in the SASS: twice the HGMMA instructions). Writing the fp32 scores (nope and
rope parts apart, so neither product feeds the other) to a per-core scratch tile and reading
them back after a barrier cuts that chain, so the two warpgroups split the keys of Q.K^T
instead. The barrier also stops Triton's software pipelining of the key loads (the variant is
still faster with 8 warps).

Variants (the plan's tiling key, chosen in op_host from the platform's features):
``gluon-ws`` (gluon_ws.py: a producer warpgroup gathers keys, two consumer warpgroups compute,
paced by mbarriers; plans of 64-key steps, any head group up to 64) and ``gluon`` (gluon.py: two
warpgroups in step, meeting at CTA barriers; plans of 64 heads x 64 keys), both with the same
tables and arguments, Hopper only; ``scratch`` and ``registers`` (this file's kernel with and
without the scratch tile).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from cann_attention.op_host.common.layouts import Layout
from cann_attention.op_host.common.platform import platform_for_device
from cann_attention.op_host.sparse_flash_attention.params import D, lse_shape
from cann_attention.op_host.sparse_flash_attention.tiling import GPU_VARIANTS

from ..common import online_softmax as osm
from ..common.per_plan import PerPlanCache
from . import metadata

osm_min = tl.constexpr(osm.SOFTMAX_MIN)
MERGE_HEADS = 16        # heads per program of the split-task merge


@triton.jit
def _sfa_kernel(
    q_nope, q_rope, idx, key, key_rope, block_table, kv_start, sinks,
    core_first, piece_task, piece_begin, piece_end, piece_slot,
    task_row, task_batch, task_head, task_tau, task_window, row_first_neg,
    out, smax, ssum, ws_m, ws_l, ws_acc, scratch,
    scale, n1, k_entries, bt_stride, page_size,
    HG: tl.constexpr, HG_PAD: tl.constexpr, BLOCK_S2: tl.constexpr, SBS: tl.constexpr,
    ENTRIES: tl.constexpr, DV: tl.constexpr, DR: tl.constexpr, PAGED: tl.constexpr,
    HAS_SINKS: tl.constexpr, VIA_SCRATCH: tl.constexpr,
):
    """Program c runs the pieces core_first[c] .. core_first[c + 1] - 1 of the schedule."""
    core = tl.program_id(0)
    scratch += core * (4 * HG_PAD * BLOCK_S2)
    for i_piece in range(tl.load(core_first + core), tl.load(core_first + core + 1)):
        i_task = tl.load(piece_task + i_piece)
        step_begin = tl.load(piece_begin + i_piece)
        step_end = tl.load(piece_end + i_piece)
        slot = tl.load(piece_slot + i_piece)
        row = tl.load(task_row + i_task)
        batch = tl.load(task_batch + i_task)
        head0 = tl.load(task_head + i_task)
        tau = tl.load(task_tau + i_task)
        limit = tl.minimum(tl.load(task_window + i_task), tl.load(row_first_neg + row))

        o_h = tl.arange(0, HG_PAD)
        m_h = o_h < HG
        o_d = tl.arange(0, DV)
        o_r = tl.arange(0, DR)
        o_p = tl.arange(0, BLOCK_S2)
        p_q = (row * n1 + head0 + o_h)[:, None]
        b_qn = tl.load(q_nope + p_q * DV + o_d[None, :], mask=m_h[:, None],
                       other=0.0)                                           # [HG_PAD, DV]
        b_qr = tl.load(q_rope + p_q * DR + o_r[None, :], mask=m_h[:, None],
                       other=0.0)                                           # [HG_PAD, DR]

        b_m = tl.full([HG_PAD], float("-inf"), tl.float32)
        b_l = tl.zeros([HG_PAD], tl.float32)
        b_acc = tl.zeros([HG_PAD, DV], tl.float32)
        kv_base = tl.load(kv_start + batch)
        for step in range(step_begin, step_end):
            o_e = step * ENTRIES + o_p // SBS                                   # [BLOCK_S2]
            m_e = o_e < limit
            b_blk = tl.load(idx + row * k_entries + o_e, mask=m_e, other=0).to(tl.int64)
            o_pos = b_blk * SBS + o_p % SBS
            m_pos = m_e & (o_pos < tau)            # skip blocks past tau, clip straddling ones
            if PAGED:
                b_page = tl.load(block_table + batch * bt_stride + o_pos // page_size, mask=m_pos,
                                 other=0).to(tl.int64)
                o_kv = b_page * page_size + o_pos % page_size
            else:
                o_kv = kv_base + o_pos
            o_kv = tl.where(m_pos, o_kv, 0)
            b_kn = tl.load(key + o_kv[:, None] * DV + o_d[None, :], mask=m_pos[:, None],
                           other=0.0)                                           # [BLOCK_S2, DV]
            b_kr = tl.load(key_rope + o_kv[:, None] * DR + o_r[None, :], mask=m_pos[:, None],
                           other=0.0)                                           # [BLOCK_S2, DR]
            if VIA_SCRATCH:   # two buffers by step parity: a barrier separates reuse (module doc)
                p_sc = (scratch + (step % 2) * 2 * HG_PAD * BLOCK_S2 + o_h[:, None] * BLOCK_S2
                        + o_p[None, :])
                tl.store(p_sc, tl.dot(b_qn, tl.trans(b_kn)))
                tl.store(p_sc + HG_PAD * BLOCK_S2, tl.dot(b_qr, tl.trans(b_kr)))
                tl.debug_barrier()
                b_s = tl.load(p_sc) + tl.load(p_sc + HG_PAD * BLOCK_S2)
            else:
                b_s = (tl.dot(b_qn, tl.trans(b_kn))
                       + tl.dot(b_qr, tl.trans(b_kr)))                      # [HG_PAD, BLOCK_S2]
            b_s = tl.where(m_pos[None, :], b_s * scale, float("-inf"))
            b_m_new = tl.maximum(b_m, tl.max(b_s, 1))
            b_base = tl.where(b_m_new == float("-inf"), 0.0, b_m_new)
            b_alpha = tl.exp(b_m - b_base)
            b_p = tl.exp(b_s - b_base[:, None])                                 # [HG_PAD, BLOCK_S2]
            b_l = b_l * b_alpha + tl.sum(b_p, 1)
            b_acc = b_acc * b_alpha[:, None] + tl.dot(b_p.to(b_kn.dtype), b_kn)
            b_m = b_m_new

        if slot >= 0:                                   # piece of a split task: to the workspace
            tl.store(ws_m + slot * HG + o_h, b_m, mask=m_h)
            tl.store(ws_l + slot * HG + o_h, b_l, mask=m_h)
            tl.store(ws_acc + (slot * HG + o_h)[:, None] * DV + o_d[None, :], b_acc,
                     mask=m_h[:, None])
        else:
            _finish(b_m, b_l, b_acc, sinks, out, smax, ssum, row * n1 + head0, head0, o_h, m_h,
                    HAS_SINKS, DV)


@triton.jit
def _finish(b_m, b_l, b_acc, sinks, out, smax, ssum, q0, head0, o_h, m_h,
            HAS_SINKS: tl.constexpr, DV: tl.constexpr):
    """Normalise a finished state of heads head0 + o_h and write rows q0 + o_h of the output
    and statistics (online_softmax.finalize: sinks join the sum only; a row that saw no key
    gives zeros and SOFTMAX_MIN / 0)."""
    b_empty = b_l <= 0
    if HAS_SINKS:
        b_sink = tl.load(sinks + head0 + o_h, mask=m_h, other=0.0)
        b_ms = tl.maximum(b_m, b_sink)
        b_sc = tl.exp(b_m - b_ms)
        b_l = b_l * b_sc + tl.exp(b_sink - b_ms)
        b_acc = b_acc * b_sc[:, None]
        b_m = b_ms
    b_out = b_acc / tl.where(b_empty, 1.0, b_l)[:, None]
    b_out = tl.where(b_empty[:, None], 0.0, b_out)
    o_d = tl.arange(0, DV)
    tl.store(out + (q0 + o_h)[:, None] * DV + o_d[None, :], b_out.to(out.dtype.element_ty),
             mask=m_h[:, None])
    tl.store(smax + q0 + o_h, tl.where(b_empty, osm_min, b_m), mask=m_h)
    tl.store(ssum + q0 + o_h, tl.where(b_empty, 0.0, b_l), mask=m_h)


@triton.jit
def _merge_kernel(ws_m, ws_l, ws_acc, split_task, split_first, split_count, task_row, task_head,
                  sinks, out, smax, ssum, n1, HG: tl.constexpr, HEADS: tl.constexpr,
                  DV: tl.constexpr, HAS_SINKS: tl.constexpr):
    """Program (g, j): heads j*HEADS .. of split task g (the grid covers the plan's most split
    tasks; a program past the call's split tasks has count 0 and writes nothing). Its pieces'
    states sit in workspace slots split_first[g] .. + split_count[g]; merged by the
    log-sum-exp rule of online_softmax.combine, then finished like a whole task."""
    g = tl.program_id(0)
    count = tl.load(split_count + g)
    o_h = tl.program_id(1) * HEADS + tl.arange(0, HEADS)
    m_h = o_h < tl.where(count > 0, HG, 0)
    o_d = tl.arange(0, DV)
    first = tl.load(split_first + g)
    i_task = tl.load(split_task + g)
    b_m = tl.full([HEADS], float("-inf"), tl.float32)
    for i in range(count):
        b_m = tl.maximum(b_m, tl.load(ws_m + (first + i) * HG + o_h, mask=m_h,
                                      other=float("-inf")))
    b_base = tl.where(b_m == float("-inf"), 0.0, b_m)
    b_l = tl.zeros([HEADS], tl.float32)
    b_acc = tl.zeros([HEADS, DV], tl.float32)
    for i in range(count):
        p_slot = (first + i) * HG + o_h
        b_w = tl.exp(tl.load(ws_m + p_slot, mask=m_h, other=float("-inf")) - b_base)
        b_l += tl.load(ws_l + p_slot, mask=m_h, other=0.0) * b_w
        b_acc += tl.load(ws_acc + p_slot[:, None] * DV + o_d[None, :], mask=m_h[:, None],
                         other=0.0) * b_w[:, None]
    head0 = tl.load(task_head + i_task)
    _finish(b_m, b_l, b_acc, sinks, out, smax, ssum, tl.load(task_row + i_task) * n1 + head0,
            head0, o_h, m_h, HAS_SINKS, DV)


def page_shift(p) -> int:
    """The Gluon kernels' PAGE_SHIFT: log2 of a power-of-two PA_BSND page (their page-table
    walk shifts and masks), else -1 (it divides; also for contiguous caches, where unused)."""
    page = p.block_size if p.kv_layout is Layout.PA_BSND else 0
    return page.bit_length() - 1 if page and page & (page - 1) == 0 else -1


def run(p, tiling, t):
    """Launch the metadata kernel, the plan's kernel and the split-task merge; same outputs as
    emulate. Nothing is read back to the host, so the call can be captured in a CUDA graph and
    replayed while the tensors of ``t`` keep their addresses (their values may change)."""
    launch = LAUNCHES.get(p, tiling)
    launch.refuse_unserved(t.query.device)
    work = metadata.build(p, tiling, t)
    buffers = launch.buffers(t)
    launch.main_kernel(t, work, buffers)
    launch.merge(t, work, buffers)
    return launch.outputs(t, buffers)


def kernel_only(p, tiling, t):
    """For benchmarks: a function launching the plan's kernel alone, over tables built once."""
    launch = LAUNCHES.get(p, tiling)
    launch.refuse_unserved(t.query.device)
    work = metadata.build(p, tiling, t)
    buffers = launch.buffers(t)
    return lambda: launch.main_kernel(t, work, buffers)


class _Launch:
    """What launching a plan needs that depends only on (params, plan), made once per pair."""

    def __init__(self, p, tiling):
        self.p, self.tiling = p, tiling
        hg = tiling.head_group
        self.variant, self.grid = tiling.variant, (tiling.num_cores,)
        self.rows_n1_d = (p.num_rows, p.n1, D)
        self.slots = max(tiling.max_slots, 1)
        self.scratch = (tiling.num_cores * 4 * max(16, hg) * tiling.block_s2
                        if tiling.variant == "scratch" else 1)
        self.paged = p.kv_layout is Layout.PA_BSND
        self.idx_shape = (p.num_rows, p.k)
        # smax, ssum, ws_m, ws_l, ws_acc, scratch; each a multiple of 4 floats, so every view
        # starts 16-byte aligned like a tensor of its own
        sizes = (p.num_rows * p.n1, p.num_rows * p.n1, self.slots * hg, self.slots * hg,
                 self.slots * hg * D, self.scratch)
        self.f32_sizes = [-(-n // 4) * 4 for n in sizes]
        self.f32_total = sum(self.f32_sizes)
        self.scalars = (p.scale_value, p.n1, p.k,
                        p.block_table.shape[-1] if self.paged else p.k,
                        p.block_size if self.paged else 1)
        self.shapes = dict(HG=hg, BLOCK_S2=tiling.block_s2, SBS=p.sparse_block_size,
                           ENTRIES=tiling.entries_per_step, DV=D, DR=p.key_rope.shape[-1],
                           PAGED=self.paged, HAS_SINKS=p.sinks is not None)
        if self.variant.startswith("gluon"):
            self.shapes["PAGE_SHIFT"] = page_shift(p)
        else:
            self.shapes.update(HG_PAD=max(16, hg), VIA_SCRATCH=self.variant == "scratch",
                               num_stages=tiling.stages)
        self.num_warps = tiling.num_warps
        self.merge_grid = (tiling.max_split_tasks, -(-hg // MERGE_HEADS))
        self.merge_shapes = dict(HG=hg, HEADS=min(MERGE_HEADS, triton.next_power_of_2(hg)),
                                 DV=D, HAS_SINKS=p.sinks is not None)
        self.lse_shape = lse_shape(p.query.shape, p.layout_query, p.return_softmax_lse)

    def refuse_unserved(self, dev) -> None:
        if self.variant not in GPU_VARIANTS or (self.variant.startswith("gluon")
                                                and not _hopper(dev)):
            raise ValueError(f"kernel variant {self.variant!r} does not run on {dev}")

    def buffers(self, t) -> dict:
        """Outputs, the split-task workspace (for the plan's most slots) and the scratch tile:
        the output in the query's dtype, everything fp32 as views of one allocation."""
        dev = t.query.device
        rows, n1, d = self.rows_n1_d
        f32 = torch.empty(self.f32_total, dtype=torch.float32, device=dev)
        smax, ssum, ws_m, ws_l, ws_acc, scratch = f32.split(self.f32_sizes)
        return dict(out=torch.empty(rows, n1, d, dtype=t.query.dtype, device=dev), smax=smax,
                    ssum=ssum, ws_m=ws_m, ws_l=ws_l, ws_acc=ws_acc, scratch=scratch)

    def main_kernel(self, t, work, b) -> None:
        idx = t.sparse_indices.reshape(self.idx_shape)
        block_table = t.block_table if self.paged else idx   # any int tensor when unused
        sinks = t.sinks if t.sinks is not None else b["ssum"]
        tensors = (t.query.contiguous(), t.query_rope.contiguous(), idx.contiguous(), t.key,
                   t.key_rope, block_table.contiguous(), work.kv_start, sinks)
        plan_args = (work.core_first, work.piece_task, work.piece_begin, work.piece_end,
                     work.piece_slot, work.task_row, work.task_batch, work.task_head,
                     work.task_tau, work.task_window, work.row_first_neg,
                     b["out"], b["smax"], b["ssum"], b["ws_m"], b["ws_l"], b["ws_acc"])
        if self.variant == "gluon-ws":
            from .gluon_ws import PRODUCER_WARPS, _sfa_gluon_ws_kernel
            _sfa_gluon_ws_kernel[self.grid](*tensors, *plan_args, *self.scalars, **self.shapes,
                                            num_warps=PRODUCER_WARPS.value)
        elif self.variant == "gluon":
            from .gluon import _sfa_gluon_kernel
            _sfa_gluon_kernel[self.grid](*tensors, *plan_args, *self.scalars, **self.shapes,
                                         num_warps=self.num_warps)
        else:
            _sfa_kernel[self.grid](*tensors, *plan_args, b["scratch"], *self.scalars,
                                   **self.shapes, num_warps=self.num_warps)

    def merge(self, t, work, b) -> None:
        """The split-task merge over the plan's most split tasks (programs past the call's
        split tasks exit at once)."""
        if not self.merge_grid[0]:
            return
        sinks = t.sinks if t.sinks is not None else b["ssum"]
        _merge_kernel[self.merge_grid](
            b["ws_m"], b["ws_l"], b["ws_acc"], work.split_task, work.split_first,
            work.split_count, work.task_row, work.task_head, sinks, b["out"], b["smax"],
            b["ssum"], self.p.n1, **self.merge_shapes)

    def outputs(self, t, b):
        shape = self.lse_shape
        if not self.p.return_softmax_lse:
            dev = t.query.device
            return (b["out"].view(t.query.shape), torch.empty(shape, device=dev),
                    torch.empty(shape, device=dev))
        rows_n1 = self.rows_n1_d[0] * self.rows_n1_d[1]
        return (b["out"].view(t.query.shape), b["smax"][:rows_n1].view(shape),
                b["ssum"][:rows_n1].view(shape))


LAUNCHES = PerPlanCache(_Launch)


def _hopper(device) -> bool:
    """Whether the Gluon kernels run on ``device``: the platform read off it (once) has Gluon."""
    return device.type == "cuda" and "gluon" in platform_for_device(device).features


def clear_cache() -> None:
    """Empty this back end's caches (cann_attention.clear_caches calls it)."""
    metadata.LAUNCHES.clear()
    LAUNCHES.clear()
