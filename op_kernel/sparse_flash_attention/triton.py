"""Triton back end of npu_sparse_flash_attention (NVIDIA GPUs; CPU through Triton's interpreter).

The kernel executes the plan of op_host/sparse_flash_attention/tiling.py on a persistent grid:
program ``c`` plays core ``c`` of the plan's schedule and runs that core's pieces (a task's run
of steps) in order. Per step it reads ``ENTRIES`` index entries, expands them to ``BLOCK_S2``
positions (``SBS`` per entry), masks positions past the task's scan limit (window W and the
first negative entry) and past the boundary tau, translates positions to key rows (page-table
walk for PA_BSND), and runs the fp32 online softmax with P rounded to the input dtype before
P.V; value is read from key. A piece that is a whole task writes the output and statistics; a
piece of a split task writes (m, l, acc) to its workspace slot, and ``_merge_kernel`` merges
the slots with the emulator's log-sum-exp rule. Masked lanes load zeros and never address
memory.

Scores through a scratch tile (variant ``scratch``, the default with 8 warps off Hopper). Triton
gives a matmul whose result feeds another matmul all warps along M. The score tile has M =
head_group = 64 rows, one warpgroup's worth, so with 8 warps both warpgroups would compute the
same Q.K^T (seen in the SASS: twice the HGMMA instructions). Writing the fp32 scores (nope and
rope parts apart, so neither product feeds the other) to a per-core scratch tile and reading
them back after a barrier cuts that chain, so the two warpgroups split the keys of Q.K^T
instead. The barrier also stops Triton's software pipelining of the key loads; BENCHMARKS.md has
the measured trade-off.

Variants (``VARIANTS``): ``gluon-ws`` (gluon_ws.py: a producer warpgroup gathers keys, two
consumer warpgroups compute, paced by mbarriers; plans of 64-key steps, any head group up to
64) and ``gluon`` (gluon.py: two warpgroups in step, meeting at CTA barriers; plans of 64 heads
x 64 keys), both with the same plan and arguments, Hopper only; ``scratch`` and
``registers`` (this file's kernel with and without the scratch tile). ``default_variant``
picks gluon-ws where it serves, else the scratch variant with 8 warps and the registers one
with 4.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

import torch
import triton
import triton.language as tl

from cann_attention.op_host.common.layouts import Layout
from cann_attention.op_host.sparse_flash_attention.params import D, lse_shape

from ..common import online_softmax as osm

VARIANTS = ("gluon-ws", "gluon", "scratch", "registers")
osm_min = tl.constexpr(osm.SOFTMAX_MIN)
MERGE_HEADS = 16        # heads per program of the split-task merge
DEVICE_PLAN_CACHE_SIZE = 32   # device copies of recent plans (``cached_device_plan``)
_DEVICE_PLANS: OrderedDict = OrderedDict()
_DEVICE_PLANS_LOCK = threading.Lock()     # calls may come from several threads


@triton.jit
def _sfa_kernel(
    q_nope, q_rope, idx, key, key_rope, block_table, kv_start, sinks,
    core_first, piece_task, piece_begin, piece_end, piece_slot,
    task_row, task_batch, task_head, task_tau, task_limit,
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
        limit = tl.load(task_limit + i_task)

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
def _merge_kernel(ws_m, ws_l, ws_acc, split_first, split_count, split_row, split_head, sinks,
                  out, smax, ssum, n1, HG: tl.constexpr, HEADS: tl.constexpr,
                  DV: tl.constexpr, HAS_SINKS: tl.constexpr):
    """Program (g, j): heads j*HEADS .. of split task g. Its pieces' states sit in workspace
    slots split_first[g] .. + split_count[g]; merged by the log-sum-exp rule of
    online_softmax.combine, then finished like a whole task."""
    g = tl.program_id(0)
    o_h = tl.program_id(1) * HEADS + tl.arange(0, HEADS)
    m_h = o_h < HG
    o_d = tl.arange(0, DV)
    first = tl.load(split_first + g)
    count = tl.load(split_count + g)
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
    head0 = tl.load(split_head + g)
    _finish(b_m, b_l, b_acc, sinks, out, smax, ssum, tl.load(split_row + g) * n1 + head0,
            head0, o_h, m_h, HAS_SINKS, DV)


def scan_limits(p, task_row, task_window, sparse_indices) -> torch.Tensor:
    """Per task: index entries scanned, min(window W, position of the first negative entry)."""
    rows, k = p.num_rows, p.k
    negative = sparse_indices.reshape(rows, k) < 0
    first_neg = torch.where(negative.any(1), negative.to(torch.int8).argmax(1),
                            torch.full((rows,), k, device=negative.device))
    return torch.minimum(task_window, first_neg[task_row])


def device_plan(p, tiling, device) -> dict[str, torch.Tensor]:
    """The plan's integer tables on ``device``, packed into one host-to-device copy.

    ``core_first``: the pieces of core c are core_first[c] .. core_first[c + 1] - 1;
    ``split_*``: per task the schedule split, its workspace slots (consecutive: a task's pieces
    are), its query row and first head; ``idle_rows``: query rows without a task;
    ``kv_start``: the first key row of each batch in the flattened cache (BSND, TND).
    """
    sched = tiling.schedule
    counts = torch.bincount(sched.piece_core, minlength=sched.num_cores)
    core_first = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
    split_tasks, split_group = torch.unique(sched.piece_task[sched.piece_slot >= 0],
                                            return_inverse=True)
    visited = torch.zeros(p.num_rows, dtype=torch.bool)
    visited[tiling.task_row] = True
    split_count = torch.bincount(split_group, minlength=split_tasks.numel())
    parts = dict(core_first=core_first, piece_task=sched.piece_task,
                 piece_begin=sched.piece_step_begin, piece_end=sched.piece_step_end,
                 piece_slot=sched.piece_slot, task_row=tiling.task_row,
                 task_batch=tiling.task_batch, task_head=tiling.task_head,
                 task_tau=tiling.task_tau, task_window=tiling.task_window,
                 split_first=torch.cumsum(split_count, 0) - split_count,
                 split_count=split_count, split_row=tiling.task_row[split_tasks],
                 split_head=tiling.task_head[split_tasks],
                 idle_rows=torch.nonzero(~visited).flatten(),
                 kv_start=torch.tensor(p.kv_row_starts, dtype=torch.int64))
    flat = torch.cat([v.to(torch.int64).flatten() for v in parts.values()]).to(device)
    return dict(zip(parts, flat.split([v.numel() for v in parts.values()])))


def cached_device_plan(p, tiling, device) -> dict[str, torch.Tensor]:
    """``device_plan``, kept for the last ``DEVICE_PLAN_CACHE_SIZE`` plans: ``tiling.plan``
    returns the same tiling object for equal calls (it is memoised), so the layers of a model
    after the first skip the tables' build and host-to-device copy. The tables are only read
    by the kernels."""
    key = (id(tiling), str(device))     # an entry holds its tiling: the id is not reused
    with _DEVICE_PLANS_LOCK:
        hit = _DEVICE_PLANS.get(key)
        if hit is not None:
            _DEVICE_PLANS.move_to_end(key)
            return hit[1]
    dp = device_plan(p, tiling, device)
    with _DEVICE_PLANS_LOCK:
        _DEVICE_PLANS[key] = (tiling, dp)
        while len(_DEVICE_PLANS) > DEVICE_PLAN_CACHE_SIZE:
            _DEVICE_PLANS.popitem(last=False)
    return dp


def page_shift(p) -> int:
    """The Gluon kernels' PAGE_SHIFT: log2 of a power-of-two PA_BSND page (their page-table
    walk shifts and masks), else -1 (it divides; also for contiguous caches, where unused)."""
    page = p.block_size if p.kv_layout is Layout.PA_BSND else 0
    return page.bit_length() - 1 if page and page & (page - 1) == 0 else -1


def gluon_serves(tiling, t, variant: str) -> bool:
    """Whether a Gluon kernel (``gluon-ws``: gluon_ws.py, ``gluon``: gluon.py) runs this call:
    a Hopper GPU, a Triton with Gluon, a plan the kernel serves."""
    if t.query.device.type != "cuda" or torch.cuda.get_device_capability(t.query.device)[0] != 9:
        return False
    try:
        from . import gluon, gluon_ws
    except ImportError:           # a Triton without the Gluon dialect
        return False
    module = gluon_ws if variant == "gluon-ws" else gluon
    return module.supports(tiling, t.key.shape[-1], t.key_rope.shape[-1])


def default_variant(tiling, t) -> str:
    """The first of ``VARIANTS`` that serves the call (module doc)."""
    # gluon-ws serves every plan gluon.py serves and those with fewer heads; on the H100 and
    # H200 sweeps it is the fastest variant but at small-batch decode, where gluon.py is
    # <= 4.3 us ahead
    if gluon_serves(tiling, t, "gluon-ws"):
        return "gluon-ws"
    return "scratch" if tiling.num_warps > 4 else "registers"


def prepare(p, tiling, t, variant: str | None = None):
    """Host part of a call: the plan's tables on the device and the output buffers.

    Returns ``launch``, a function of no arguments that enqueues the device work (kernel,
    split-task merge) without synchronising with the host, so it can be captured in a CUDA
    graph and replayed as long as the tensors of ``t`` keep their addresses.
    ``variant`` (one of ``VARIANTS``; default ``default_variant``) picks the kernel.
    """
    dev = t.query.device
    rows, n1, k = p.num_rows, p.n1, p.k
    hg = tiling.head_group
    sched = tiling.schedule
    variant = variant or default_variant(tiling, t)
    if variant not in VARIANTS or (variant.startswith("gluon")
                                   and not gluon_serves(tiling, t, variant)):
        raise ValueError(f"kernel variant {variant!r} does not serve this call")
    via_scratch = variant == "scratch"
    dp = cached_device_plan(p, tiling, dev)
    idx = t.sparse_indices.reshape(rows, k).contiguous()
    out = torch.empty(rows, n1, D, dtype=t.query.dtype, device=dev)
    smax = torch.empty(rows, n1, dtype=torch.float32, device=dev)
    ssum = torch.empty(rows, n1, dtype=torch.float32, device=dev)
    slots = max(sched.num_slots, 1)
    ws_m = torch.empty((slots, hg), dtype=torch.float32, device=dev)
    ws_l = torch.empty((slots, hg), dtype=torch.float32, device=dev)
    ws_acc = torch.empty((slots, hg, D), dtype=torch.float32, device=dev)
    paged = p.kv_layout is Layout.PA_BSND
    shift = page_shift(p)                                         # the Gluon kernels' walk
    block_table = t.block_table.contiguous() if paged else idx   # any int tensor when unused
    sinks = t.sinks if t.sinks is not None else ssum
    hg_pad, block_s2 = max(16, hg), tiling.block_s2
    scratch = torch.empty(sched.num_cores * 4 * hg_pad * block_s2 if via_scratch else 1,
                          dtype=torch.float32, device=dev)
    tensors = (t.query.contiguous(), t.query_rope.contiguous(), idx, t.key.contiguous(),
               t.key_rope.contiguous(), block_table, dp["kv_start"], sinks)
    shape = lse_shape(t.query.shape, p.layout_query, p.return_softmax_lse)

    def launch():
        if dp["idle_rows"].numel():     # rows with no task (tau <= 0): zeros (spec section 8)
            out[dp["idle_rows"]] = 0
            smax[dp["idle_rows"]] = osm.SOFTMAX_MIN
            ssum[dp["idle_rows"]] = 0
        if sched.num_pieces:
            plan_args = (dp["core_first"], dp["piece_task"], dp["piece_begin"],
                         dp["piece_end"], dp["piece_slot"], dp["task_row"], dp["task_batch"],
                         dp["task_head"], dp["task_tau"],
                         scan_limits(p, dp["task_row"], dp["task_window"], idx),
                         out, smax, ssum, ws_m, ws_l, ws_acc)
            scalars = (p.scale_value, n1, k, block_table.shape[-1], p.block_size if paged else 1)
            shapes = dict(HG=hg, BLOCK_S2=block_s2, SBS=p.sparse_block_size,
                          ENTRIES=tiling.entries_per_step, DV=D, DR=t.key_rope.shape[-1],
                          PAGED=paged, HAS_SINKS=t.sinks is not None)
            if variant == "gluon-ws":
                from .gluon_ws import PRODUCER_WARPS, _sfa_gluon_ws_kernel
                _sfa_gluon_ws_kernel[(sched.num_cores,)](
                    *tensors, *plan_args, *scalars, **shapes, PAGE_SHIFT=shift,
                    num_warps=PRODUCER_WARPS.value)
            elif variant == "gluon":
                from .gluon import _sfa_gluon_kernel
                _sfa_gluon_kernel[(sched.num_cores,)](
                    *tensors, *plan_args, *scalars, **shapes, PAGE_SHIFT=shift,
                    num_warps=tiling.num_warps)
            else:
                _sfa_kernel[(sched.num_cores,)](
                    *tensors, *plan_args, scratch, *scalars, **shapes, HG_PAD=hg_pad,
                    VIA_SCRATCH=via_scratch, num_warps=tiling.num_warps,
                    num_stages=tiling.stages)
        if sched.num_slots:
            _merge_kernel[(dp["split_count"].numel(), -(-hg // MERGE_HEADS))](
                ws_m, ws_l, ws_acc, dp["split_first"], dp["split_count"], dp["split_row"],
                dp["split_head"], sinks, out, smax, ssum, n1, HG=hg,
                HEADS=min(MERGE_HEADS, triton.next_power_of_2(hg)), DV=D,
                HAS_SINKS=t.sinks is not None)
        if not p.return_softmax_lse:
            return (out.reshape(t.query.shape), torch.empty(shape, device=dev),
                    torch.empty(shape, device=dev))
        return out.reshape(t.query.shape), smax.reshape(shape), ssum.reshape(shape)

    return launch


def run(p, tiling, t, variant: str | None = None):
    """Launch the kernel over the plan, then merge split tasks; same outputs as emulate."""
    return prepare(p, tiling, t, variant)()
