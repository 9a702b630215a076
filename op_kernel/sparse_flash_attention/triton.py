"""Triton back end of npu_sparse_flash_attention (NVIDIA GPUs; CPU through Triton's interpreter).

A call launches three kernels and reads nothing back: the metadata kernel (metadata.py)
computes the schedule on the device from the lengths and page table; the plan's kernel
(its ``variant``) runs it on a persistent grid, program ``c`` playing core ``c`` and running that
core's pieces (a task's run of steps) in order; ``_merge_kernel`` merges the split tasks. Per
step it reads ``ENTRIES`` index entries, expands them to ``BLOCK_S2`` positions (``SBS`` per
entry), masks positions past the task's scan limit (window W and the first negative entry) and
past the boundary tau, translates positions to key rows (page-table
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

from collections import namedtuple

import torch
import triton
import triton.language as tl

from cann_attention.config import current
from cann_attention.op_host.common.layouts import Layout
from cann_attention.op_host.common.platform import platform_for_device
from cann_attention.op_host.sparse_flash_attention.params import D, lse_shape
from cann_attention.op_host.sparse_flash_attention.tiling import GPU_VARIANTS

from ..common import online_softmax as osm
from ..common.per_plan import PerPlanCache
from ..common.triton_launch import Launcher, alignment
from ..common.workspace import workspace
from . import metadata, shared

osm_min = tl.constexpr(osm.SOFTMAX_MIN)
MERGE_HEADS = 16        # heads per program of the split-task merge
MERGE_COLUMNS = 128     # output columns per program of the split-task merge
LIMIT_BLOCK = tl.constexpr(2048)   # index entries per load of a piece's first-negative search


@triton.jit
def _sfa_kernel(
    q_nope, q_rope, idx, key, key_rope, block_table, kv_start, sinks,
    core_first, piece_task, piece_begin, piece_end, piece_slot,
    task_row, task_batch, task_head, task_tau, task_window,
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
        limit = _scan_limit(idx + row * k_entries, tl.load(task_window + i_task),
                            step_end * ENTRIES, LIMIT_BLOCK)

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
                    tl.arange(0, DV), m_h, HAS_SINKS, DV)


@triton.jit
def _scan_limit(idx_row, window, end, BLOCK: tl.constexpr):
    """A piece's scan limit: min(window, the row's first negative entry), looked for among
    the entries the piece can reach, [0, min(window, end)) (module doc: the -1 rule)."""
    n = tl.minimum(window, end)
    first = window
    for e0 in range(0, n, BLOCK):
        o_e = e0 + tl.arange(0, BLOCK)
        b_e = tl.load(idx_row + o_e, mask=o_e < n, other=0)
        first = tl.minimum(first, tl.min(tl.where(b_e < 0, o_e, window), 0))
    return first


@triton.jit
def _finish(b_m, b_l, b_acc, sinks, out, smax, ssum, q0, head0, o_h, m_h, o_d, m_stats,
            HAS_SINKS: tl.constexpr, DV: tl.constexpr):
    """Normalise a finished state of heads head0 + o_h (``b_acc``: its output columns o_d)
    and write rows q0 + o_h of the output (rows m_h), and of the statistics (rows m_stats)
    (online_softmax.finalize: sinks join the sum only; a row that saw no key gives zeros and
    SOFTMAX_MIN / 0)."""
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
    tl.store(out + (q0 + o_h)[:, None] * DV + o_d[None, :], b_out.to(out.dtype.element_ty),
             mask=m_h[:, None])
    tl.store(smax + q0 + o_h, tl.where(b_empty, osm_min, b_m), mask=m_stats)
    tl.store(ssum + q0 + o_h, tl.where(b_empty, 0.0, b_l), mask=m_stats)


@triton.jit
def _merge_kernel(ws_m, ws_l, ws_acc, split_task, split_first, split_count, task_row, task_head,
                  sinks, out, smax, ssum, n1, HG: tl.constexpr, HEADS: tl.constexpr,
                  DV: tl.constexpr, COLUMNS: tl.constexpr, HAS_SINKS: tl.constexpr):
    """Program (g, j, c): heads j*HEADS .. and output columns c*COLUMNS .. of split task g
    (the grid covers the plan's most split tasks; a program past the call's split tasks has
    count 0 and writes nothing). Its pieces' states sit in workspace slots split_first[g] ..
    + split_count[g]; merged by the log-sum-exp rule of online_softmax.combine, then
    finished like a whole task (the statistics by the programs of columns 0). Columns are
    split so that few split tasks still make many programs: at B1 decode (two tasks, each in
    66 pieces) 8 programs reading 2 MB each took 19 us of a 41 us call (H200)."""
    g = tl.program_id(0)
    count = tl.load(split_count + g)
    o_h = tl.program_id(1) * HEADS + tl.arange(0, HEADS)
    m_h = o_h < tl.where(count > 0, HG, 0)
    o_d = tl.program_id(2) * COLUMNS + tl.arange(0, COLUMNS)
    first = tl.load(split_first + g)
    i_task = tl.load(split_task + g)
    b_m = tl.full([HEADS], float("-inf"), tl.float32)
    for i in range(count):
        b_m = tl.maximum(b_m, tl.load(ws_m + (first + i) * HG + o_h, mask=m_h,
                                      other=float("-inf")))
    b_base = tl.where(b_m == float("-inf"), 0.0, b_m)
    b_l = tl.zeros([HEADS], tl.float32)
    b_acc = tl.zeros([HEADS, COLUMNS], tl.float32)
    for i in range(count):
        p_slot = (first + i) * HG + o_h
        b_w = tl.exp(tl.load(ws_m + p_slot, mask=m_h, other=float("-inf")) - b_base)
        b_l += tl.load(ws_l + p_slot, mask=m_h, other=0.0) * b_w
        b_acc += tl.load(ws_acc + p_slot[:, None] * DV + o_d[None, :], mask=m_h[:, None],
                         other=0.0) * b_w[:, None]
    head0 = tl.load(task_head + i_task)
    _finish(b_m, b_l, b_acc, sinks, out, smax, ssum, tl.load(task_row + i_task) * n1 + head0,
            head0, o_h, m_h, o_d, m_h & (tl.zeros_like(o_h) + tl.program_id(2) == 0), HAS_SINKS,
            DV)


def page_shift(p) -> int:
    """The Gluon kernels' PAGE_SHIFT: log2 of a power-of-two PA_BSND page (their page-table
    walk shifts and masks), else -1 (it divides; also for contiguous caches, where unused)."""
    page = p.block_size if p.kv_layout is Layout.PA_BSND else 0
    return page.bit_length() - 1 if page and page & (page - 1) == 0 else -1


def run(p, tiling, t):
    """Launch the metadata kernel (unless the call shares a captured step's schedule:
    shared.py), the plan's kernel and the split-task merge; same outputs as emulate. Nothing is
    read back to the host, so the call can be captured in a CUDA graph and replayed while the
    tensors of ``t`` keep their addresses (their values may change)."""
    launch = LAUNCHES.get(p, tiling)
    call = _Call(launch, t, current().share_schedules)
    call.build_tables()
    launch.main_kernel(call)
    launch.merge(call)
    return call.results()


def kernel_only(p, tiling, t, merge: bool = False):
    """For benchmarks: a function launching the plan's kernel alone (``merge``: and the
    split-task merge), over tables built once."""
    launch = LAUNCHES.get(p, tiling)
    call = _Call(launch, t, False, keep=False)     # its own workspace: the tables stay its own
    call.build_tables()
    if merge:
        return lambda: (launch.main_kernel(call), launch.merge(call))
    return lambda: launch.main_kernel(call)


class _Call:
    """One call's tensors (made contiguous where the kernels assume it), its workspace (the
    kept one of an eager call unless ``keep`` is False: common/workspace.py) and outputs, where
    its tables are (the head of the workspace, or a captured step's shared buffer), the
    addresses the kernels get, and the tensors' alignment key."""
    __slots__ = ("launch", "t", "query", "query_rope", "idx", "block_table", "ws", "at", "out",
                 "lse", "w", "aligned", "tables", "build")

    def __init__(self, launch, t, share: bool, keep: bool = True):
        dev = t.query.device
        launch.refuse_unserved(dev)
        self.launch, self.t = launch, t
        self.query, self.query_rope = t.query.contiguous(), t.query_rope.contiguous()
        self.idx = t.sparse_indices.contiguous()
        self.block_table = t.block_table.contiguous() if launch.paged else None
        self.tables, self.build = shared.tables_buffer(launch.tables, t, self.block_table, share)
        counter = self.build and self.tables is None and launch.paged   # in the workspace
        self.ws = workspace(dev, launch.nbytes, 8 * metadata.ARRIVALS if counter else 0, keep,
                            user="sparse_flash_attention")
        self.at = self.ws.data_ptr()
        self.out = torch.empty(t.query.shape, dtype=t.query.dtype, device=dev)
        self.lse = (torch.empty(2 * launch.rows_n1, dtype=torch.float32, device=dev)
                    if launch.lse else None)
        self.w = launch.addresses(self.at, self.tables_at(), self.lse)
        self.aligned = alignment(self.query, self.query_rope, self.idx, t.key, t.key_rope,
                                 self.block_table, t.sinks, t.actual_seq_lengths_query,
                                 t.actual_seq_lengths_kv, self.out, self.lse)

    def tables_at(self) -> int:
        return self.at if self.tables is None else self.tables.data_ptr()

    def meta_view(self):
        """The tables' int64 buffer."""
        if self.tables is not None:
            return self.tables
        return self.ws[:self.launch.tables.nbytes].view(torch.int64)

    def build_tables(self) -> None:
        """The metadata launches, unless the call reads a schedule built before (shared.py)."""
        if self.build:
            self.launch.tables.launch(self.t, self.block_table, self.tables_at(),
                                      self.meta_view, self.aligned)

    def views(self):
        return self.launch.views(self.ws, self.meta_view().view(torch.uint8), self.lse)

    def results(self):
        shape = self.launch.lse_shape
        if self.lse is None:     # (0,) statistics: one allocation (~5 us on a GPU host) for both
            stats = torch.empty(shape, device=self.out.device)
            return self.out, stats, stats.detach()       # (detach: the cheapest alias)
        n = self.launch.rows_n1
        return self.out, self.lse[:n].view(shape), self.lse[n:].view(shape)


class _Launch:
    """What launching a plan needs that depends only on (params, plan), made once per pair.

    A call gets one workspace (uint8; an eager call's is kept for the next: common/workspace.py):
    the metadata tables (int64, metadata.layout; unused when the call shares a captured step's
    tables: shared.py), then fp32 regions for the split-task states (m, l, acc), the scratch
    tile, and softmax max/sum when the call does not return them. The kernels get the regions' addresses (base + a fixed offset;
    triton_launch.Launcher builds views only on a kernel's first launch), so a call makes no
    per-call views beyond its outputs."""

    def __init__(self, p, tiling):
        self.p = p
        hg = tiling.head_group
        self.variant, self.grid = tiling.variant, (tiling.num_cores,)
        self.tables = metadata.LAUNCHES.get(p, tiling)
        rows_n1 = p.num_rows * p.n1
        slots = max(tiling.max_slots, 1)
        scratch = (tiling.num_cores * 4 * max(16, hg) * tiling.block_s2
                   if tiling.variant == "scratch" else 1)
        self.lse = p.return_softmax_lse
        self.lse_shape = lse_shape(p.query.shape, p.layout_query, p.return_softmax_lse)
        self.rows_n1 = rows_n1
        # fp32 regions after the tables, each 16-byte aligned like a tensor of its own
        names = ("ws_m", "ws_l", "ws_acc", "scratch") + (() if self.lse else ("smax", "ssum"))
        sizes = (slots * hg, slots * hg, slots * hg * D, scratch) + (() if self.lse
                                                                     else (rows_n1, rows_n1))
        self.regions, at = {}, self.tables.nbytes
        for name, n in zip(names, sizes):
            self.regions[name] = (at, n)
            at += -(-4 * n // 16) * 16
        self.nbytes = at
        # (name, byte offset, elements, element size, dtype) of every table, then of every
        # workspace region
        self.table_map = tuple(
            (name, self.tables.table_bytes[i], self.tables.sizes[name], 8, torch.int64)
            for i, name in enumerate(metadata.KERNEL_TABLES))
        self.region_map = tuple((name, off, n, 4, torch.float32)
                                for name, (off, n) in self.regions.items())
        self.table_offsets = tuple(off for _, off, _, _, _ in self.table_map)
        self.region_offsets = tuple(off for _, off, _, _, _ in self.region_map)
        self.Workspace = namedtuple("Workspace", [m[0] for m in self.table_map + self.region_map]
                                    + (["smax", "ssum"] if self.lse else []))
        self.paged = p.kv_layout is Layout.PA_BSND
        self.scalars = (p.scale_value, p.n1, p.k,
                        p.block_table.shape[-1] if self.paged else p.k,
                        p.block_size if self.paged else 1)
        shapes = dict(HG=hg, BLOCK_S2=tiling.block_s2, SBS=p.sparse_block_size,
                      ENTRIES=tiling.entries_per_step, DV=D, DR=p.key_rope.shape[-1],
                      PAGED=self.paged, HAS_SINKS=p.sinks is not None)
        if self.variant == "gluon-ws":
            from .gluon_ws import PRODUCER_WARPS, _sfa_gluon_ws_kernel
            kernel, shapes["PAGE_SHIFT"] = _sfa_gluon_ws_kernel, page_shift(p)
            shapes["num_warps"] = PRODUCER_WARPS.value
        elif self.variant == "gluon":
            from .gluon import _sfa_gluon_kernel
            kernel, shapes["PAGE_SHIFT"] = _sfa_gluon_kernel, page_shift(p)
            shapes["num_warps"] = tiling.num_warps
        else:
            kernel = _sfa_kernel
            shapes.update(HG_PAD=max(16, hg), VIA_SCRATCH=self.variant == "scratch",
                          num_stages=tiling.stages, num_warps=tiling.num_warps)
        self.with_scratch = kernel is _sfa_kernel
        self.kernel = Launcher(kernel, self.grid, **shapes)
        self.merge_kernel = (Launcher(_merge_kernel, (tiling.max_split_tasks,
                                                      -(-hg // MERGE_HEADS), D // MERGE_COLUMNS),
                                      HG=hg, HEADS=min(MERGE_HEADS, triton.next_power_of_2(hg)),
                                      DV=D, COLUMNS=MERGE_COLUMNS, HAS_SINKS=p.sinks is not None)
                             if tiling.max_split_tasks else None)
        self._served: set = set()

    def refuse_unserved(self, dev) -> None:
        if dev in self._served:
            return
        if self.variant not in GPU_VARIANTS or (self.variant.startswith("gluon")
                                                and not _hopper(dev)):
            raise ValueError(f"kernel variant {self.variant!r} does not run on {dev}")
        self._served.add(dev)

    def addresses(self, at: int, tables_at: int, lse):
        """The kernels' workspace arguments (a ``Workspace``) as addresses: the tables at
        ``tables_at`` + offsets, the regions at ``at`` + offsets, softmax max/sum in ``lse``
        when the call returns them."""
        ptr = ([tables_at + off for off in self.table_offsets]
               + [at + off for off in self.region_offsets])
        if lse is not None:
            ptr += (lse.data_ptr(), lse.data_ptr() + 4 * self.rows_n1)
        return self.Workspace._make(ptr)

    def views(self, ws, tables, lse):
        """The same arguments as tensors (views of ``tables``, ``ws`` and ``lse``: uint8, uint8,
        fp32), for a first launch."""
        ptr = [tables[off:off + size * n].view(dtype) for _, off, n, size, dtype in self.table_map]
        ptr += [ws[off:off + size * n].view(dtype) for _, off, n, size, dtype in self.region_map]
        if lse is not None:
            ptr += (lse[:self.rows_n1], lse[self.rows_n1:])
        return self.Workspace._make(ptr)

    def main_kernel(self, c: _Call) -> None:
        """The plan's kernel (``c.w``: the workspace addresses; views on a first launch)."""
        t = c.t
        bt = c.block_table if c.block_table is not None else c.idx   # any int tensor if unused

        def form(w):
            return (c.query, c.query_rope, c.idx, t.key, t.key_rope, bt, w.kv_start,
                    t.sinks if t.sinks is not None else w.ssum, w.core_first, w.piece_task,
                    w.piece_begin, w.piece_end, w.piece_slot, w.task_row, w.task_batch,
                    w.task_head, w.task_tau, w.task_window, c.out, w.smax,
                    w.ssum, w.ws_m, w.ws_l, w.ws_acc, *((w.scratch,) if self.with_scratch else ()),
                    *self.scalars)
        self.kernel(form(c.w), lambda: form(c.views()), c.aligned)

    def merge(self, c: _Call) -> None:
        """The split-task merge over the plan's most split tasks (programs past the call's
        split tasks exit at once)."""
        if self.merge_kernel is None:
            return

        def form(w):
            return (w.ws_m, w.ws_l, w.ws_acc, w.split_task, w.split_first, w.split_count,
                    w.task_row, w.task_head, c.t.sinks if c.t.sinks is not None else w.ssum,
                    c.out, w.smax, w.ssum, self.p.n1)
        self.merge_kernel(form(c.w), lambda: form(c.views()), c.aligned)


LAUNCHES = PerPlanCache(_Launch)


def _hopper(device) -> bool:
    """Whether the Gluon kernels run on ``device``: the platform read off it (once) has Gluon."""
    return device.type == "cuda" and "gluon" in platform_for_device(device).features


def clear_cache() -> None:
    """Empty this back end's caches (cann_attention.clear_caches calls it)."""
    metadata.LAUNCHES.clear()
    LAUNCHES.clear()
    shared.clear()
