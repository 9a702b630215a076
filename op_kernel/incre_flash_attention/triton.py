"""The Triton kernel of npu_incre_flash_attention: split-KV decode with the combine fused.

The plan (op_host/incre_flash_attention/tiling.py) cuts every task, one (batch b, KV head n)
pair, into pieces of whole ``block_s2``-position steps; a task long enough to be worth it is
cut across several SMs ("flash decoding"), short ones in a large batch stay whole. The kernel
runs one program per piece of the plan (its tables are built once per plan from the host
lengths and stay on the device, so nothing is read back and a call can be captured in a CUDA
graph):

1. load the query tile [G, D] of the task's G = N1 / N2 query heads (rows padded to 16, the
   MMA's M) once;
2. for each step of the piece: address ``block_s2`` positions of the batch's window (a page
   table walk for paged caches; any of the op's cache layouts through its strides), load K and
   V, dequantise an int8 cache in registers (``(x + offset) * scale``, per channel or per
   tensor, index 0 key and 1 value) to the query dtype for the tensor cores, score
   ``scale * q.K`` (fp32) + pse, replace masked logits by -1e12 (not -inf), and update the fp32
   online softmax, P rounded to the query dtype before P.V (as the emulator);
3. a whole task writes its output; a piece of a split task writes its (m, l, acc) to its
   workspace slot, then counts itself in with an atomic on the task's arrival counter: the
   piece that arrives last merges the task's slots by the log-sum-exp rule and writes the
   output (so no second kernel runs), then sets the counter back to 0 for the next call.

int8 post-quantised output: the kernel writes fp32 and ``postquant.quantize_output`` (the
emulator's code) rounds it, so both back ends round identically, ``emulate_npu`` included.

Malformed page-table entries (value checks off on device tensors) are never dereferenced: a
position whose entry is outside [0, block_num) is not read and takes no part in the softmax
(score -inf), and a row that sees no position gives zeros. Lengths are host integers, checked
on the host with the shapes, so they are never malformed here.

Concurrency: the arrival counters live at the head of the call's workspace (common/workspace.py:
one per thread and stream, a fresh zeroed one inside a capture), so two calls only share
counters when their launches are ordered on one stream. They occupy the same ``ARRIVALS`` words
for every plan, which no plan's slots overlap, and each is set back to 0 by the piece that
merges: an eager call finds them zero whatever plan used the workspace before it.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from cann_attention.op_host.common.layouts import Layout
from cann_attention.op_host.incre_flash_attention.params import MASKED_LOGIT as MASKED

from ..common.per_plan import PerPlanCache
from ..common.triton_launch import Launcher, alignment
from ..common.workspace import workspace
from .postquant import quantize_output

NUM_WARPS = 4
NUM_STAGES = 3           # the K/V loads' software pipeline depth
MASKED_LOGIT = tl.constexpr(MASKED)   # masked logits are replaced by -1e12, not -inf
PIECE_FIELDS = tl.constexpr(8)  # batch, KV head, window start, length, first step, end, slot, split
ARRIVALS = 1024          # int32 arrival counters at the workspace's head, one per split task
#                          (a plan has fewer split tasks than SMs); the same bytes for every plan
SPLIT_FIELDS = tl.constexpr(2)  # first slot, pieces


@triton.jit
def _load_rows(cache, row, n, o_d, m_rows, s_n, D: tl.constexpr, AQ: tl.constexpr,
               AQ_CHANNEL: tl.constexpr, AQ_OFFSET: tl.constexpr, aq_scale, aq_offset, which,
               N2D, DTYPE: tl.constexpr):
    """[rows, D_PAD] of ``cache`` at row offsets ``row`` (int64) of KV head n, dequantised to
    DTYPE when the cache is int8 (``which``: 0 key, 1 value; the scale and offset read in
    their own dtype, converted to fp32 here)."""
    m_d = o_d < D
    b_x = tl.load(cache + row[:, None] + n * s_n + o_d[None, :],
                  mask=m_rows[:, None] & m_d[None, :], other=0)
    if AQ:
        b_x = b_x.to(tl.float32)
        if AQ_CHANNEL:
            p_aq = which * N2D + n * D + o_d
            if AQ_OFFSET:
                b_x += tl.load(aq_offset + p_aq, mask=m_d, other=0.0).to(tl.float32)[None, :]
            b_x *= tl.load(aq_scale + p_aq, mask=m_d, other=0.0).to(tl.float32)[None, :]
        else:
            if AQ_OFFSET:
                b_x += tl.load(aq_offset + which).to(tl.float32)
            b_x *= tl.load(aq_scale + which).to(tl.float32)
    return b_x.to(DTYPE)


@triton.jit
def _ifa_kernel(query, key, value, block_table, mask, pse, aq_scale, aq_offset, out,
                ws_m, ws_l, ws_acc, arrivals, pieces, splits,
                scale, n_blocks, s_qb, s_qh, s_kb, s_ks, s_kn, s_vb, s_vs, s_vn, s_tb, s_mb,
                s_pb, s_ph, s_ob, s_oh,
                G: tl.constexpr, G_PAD: tl.constexpr, D: tl.constexpr, D_PAD: tl.constexpr,
                BLOCK_S2: tl.constexpr, BS2_PAD: tl.constexpr, PAGE: tl.constexpr,
                N2: tl.constexpr, PAGED: tl.constexpr, HAS_MASK: tl.constexpr,
                HAS_PSE: tl.constexpr, PSE_B: tl.constexpr, AQ: tl.constexpr,
                AQ_CHANNEL: tl.constexpr, AQ_OFFSET: tl.constexpr):
    """Program i: piece i of the plan (module doc)."""
    p_piece = pieces + tl.program_id(0) * PIECE_FIELDS
    b = tl.load(p_piece).to(tl.int64)
    n = tl.load(p_piece + 1).to(tl.int64)
    start = tl.load(p_piece + 2)
    length = tl.load(p_piece + 3)
    step_begin = tl.load(p_piece + 4)
    step_end = tl.load(p_piece + 5)
    slot = tl.load(p_piece + 6)
    o_g = tl.arange(0, G_PAD)
    m_g = o_g < G
    o_d = tl.arange(0, D_PAD)
    m_d = o_d < D
    o_s = tl.arange(0, BS2_PAD)
    h = n * G + o_g                                                         # query heads
    dtype = query.dtype.element_ty
    b_q = tl.load(query + b * s_qb + h[:, None] * s_qh + o_d[None, :],
                  mask=m_g[:, None] & m_d[None, :], other=0.0)              # [G_PAD, D_PAD]
    b_m = tl.full([G_PAD], float("-inf"), tl.float32)
    b_l = tl.zeros([G_PAD], tl.float32)
    b_acc = tl.zeros([G_PAD, D_PAD], tl.float32)
    for step in range(step_begin, step_end):
        rel = step * BLOCK_S2 + o_s
        m_s = (o_s < BLOCK_S2) & (rel < length)
        pos = start + rel                                                   # absolute positions
        if PAGED:
            page = tl.load(block_table + b * s_tb + pos // PAGE, mask=m_s, other=-1)
            m_s = m_s & (page >= 0) & (page < n_blocks)
            page = page.to(tl.int64)
            k_row = page * s_kb + (pos % PAGE) * s_ks
            v_row = page * s_vb + (pos % PAGE) * s_vs
        else:
            k_row = b * s_kb + pos.to(tl.int64) * s_ks
            v_row = b * s_vb + pos.to(tl.int64) * s_vs
        b_k = _load_rows(key, k_row, n, o_d, m_s, s_kn, D, AQ, AQ_CHANNEL, AQ_OFFSET, aq_scale,
                         aq_offset, 0, N2 * D, dtype)                      # [BS2_PAD, D_PAD]
        b_s = tl.dot(b_q, tl.trans(b_k)) * scale                            # [G_PAD, BS2_PAD]
        if HAS_PSE:
            bp = b if PSE_B else 0
            b_s += tl.load(pse + bp * s_pb + h[:, None] * s_ph + pos[None, :],
                           mask=m_g[:, None] & m_s[None, :], other=0.0).to(tl.float32)
        if HAS_MASK:
            b_masked = tl.load(mask + b * s_mb + pos, mask=m_s, other=0)
            b_s = tl.where(b_masked[None, :] != 0, MASKED_LOGIT, b_s)
        b_s = tl.where(m_s[None, :], b_s, float("-inf"))
        b_m_new = tl.maximum(b_m, tl.max(b_s, 1))
        b_base = tl.where(b_m_new == float("-inf"), 0.0, b_m_new)
        b_alpha = tl.exp(b_m - b_base)
        b_p = tl.exp(b_s - b_base[:, None])
        b_l = b_l * b_alpha + tl.sum(b_p, 1)
        b_v = _load_rows(value, v_row, n, o_d, m_s, s_vn, D, AQ, AQ_CHANNEL, AQ_OFFSET,
                         aq_scale, aq_offset, 1, N2 * D, dtype)
        b_acc = b_acc * b_alpha[:, None] + tl.dot(b_p.to(dtype), b_v)
        b_m = b_m_new
    p_out = out + b * s_ob + h[:, None] * s_oh + o_d[None, :]
    m_out = m_g[:, None] & m_d[None, :]
    if slot < 0:
        tl.store(p_out, (b_acc / tl.where(b_l > 0, b_l, 1.0)[:, None]).to(out.dtype.element_ty),
                 mask=m_out)
    else:
        p_slot = slot * G + o_g
        tl.store(ws_m + p_slot, b_m, mask=m_g)
        tl.store(ws_l + p_slot, b_l, mask=m_g)
        tl.store(ws_acc + p_slot[:, None] * D + o_d[None, :], b_acc, mask=m_out)
        split = tl.load(p_piece + 7)
        first = tl.load(splits + split * SPLIT_FIELDS)
        count = tl.load(splits + split * SPLIT_FIELDS + 1)
        tl.debug_barrier()              # every thread's slot stores precede the release below
        arrived = tl.atomic_add(arrivals + split, 1, sem="acq_rel", scope="gpu")
        tl.debug_barrier()
        if arrived == count - 1:        # the last piece of the task: merge its slots
            _merge(ws_m, ws_l, ws_acc, first, count, o_g, m_g, o_d, m_d, p_out, G, G_PAD,
                   D, D_PAD, out.dtype.element_ty)
            tl.atomic_xchg(arrivals + split, 0, sem="relaxed", scope="gpu")   # for the next call


@triton.jit
def _merge(ws_m, ws_l, ws_acc, first, count, o_g, m_g, o_d, m_d, p_out, G: tl.constexpr,
           G_PAD: tl.constexpr, D: tl.constexpr, D_PAD: tl.constexpr, OUT_DTYPE: tl.constexpr):
    """Log-sum-exp merge of slots first .. first + count - 1 (online_softmax.combine), then
    normalised and written (a row that saw no position: zeros)."""
    b_m = tl.full([G_PAD], float("-inf"), tl.float32)
    for i in range(count):
        b_m = tl.maximum(b_m, tl.load(ws_m + (first + i) * G + o_g, mask=m_g,
                                      other=float("-inf"), cache_modifier=".cg"))
    b_base = tl.where(b_m == float("-inf"), 0.0, b_m)
    b_l = tl.zeros([G_PAD], tl.float32)
    b_acc = tl.zeros([G_PAD, D_PAD], tl.float32)
    for i in range(count):
        p_slot = (first + i) * G + o_g
        b_w = tl.exp(tl.load(ws_m + p_slot, mask=m_g, other=float("-inf"),
                             cache_modifier=".cg") - b_base)
        b_l += tl.load(ws_l + p_slot, mask=m_g, other=0.0, cache_modifier=".cg") * b_w
        b_acc += tl.load(ws_acc + p_slot[:, None] * D + o_d[None, :],
                         mask=m_g[:, None] & m_d[None, :], other=0.0,
                         cache_modifier=".cg") * b_w[:, None]
    tl.store(p_out, (b_acc / tl.where(b_l > 0, b_l, 1.0)[:, None]).to(OUT_DTYPE),
             mask=m_g[:, None] & m_d[None, :])


def _kv_view(p, kv: torch.Tensor) -> torch.Tensor:
    """(rows, positions, kvN, D) view of a cache (emulate._kv4's rule, without copying)."""
    if kv.dim() == 3:
        return kv.unflatten(2, (p.n2, p.head_dim))
    return kv.permute(0, 2, 1, 3) if p.layout is Layout.BNSD else kv


def piece_tables(tiling) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The plan's pieces as the kernel reads them: int32 [pieces, PIECE_FIELDS] (batch, KV
    head, window start, window length, first step, end step, slot or -1, split task or -1),
    int32 [split tasks, SPLIT_FIELDS] (first slot, pieces), and the number of slots."""
    sched = tiling.schedule
    n = sched.num_pieces
    task = sched.piece_task[:n]
    splits = int((sched.split_count > 0).sum())
    split_of_task = torch.full((max(tiling.num_tasks, 1),), -1, dtype=torch.int64)
    split_of_task[sched.split_task[:splits]] = torch.arange(splits)
    pieces = torch.stack([tiling.task_batch[task], tiling.task_kv_head[task],
                          tiling.task_start[task], tiling.task_len[task],
                          sched.piece_step_begin[:n], sched.piece_step_end[:n],
                          sched.piece_slot[:n], split_of_task[task]], dim=1)
    split_table = torch.stack([sched.split_first[:splits], sched.split_count[:splits]], dim=1)
    return pieces.to(torch.int32), split_table.to(torch.int32), sched.num_slots


class _Launch:
    """What launching a plan needs that depends only on (params, plan), made once per pair:
    the piece tables (copied to each device once), the workspace layout, the launcher."""

    def __init__(self, p, tiling):
        self.pieces, self.splits, slots = piece_tables(tiling)
        self.num_pieces, num_splits = self.pieces.shape[0], self.splits.shape[0]
        g, d = p.group, p.head_dim
        if num_splits > ARRIVALS:
            raise ValueError(f"incre_flash_attention: {num_splits} split tasks, more than the "
                             f"{ARRIVALS} arrival counters of the workspace")
        self.counters = 4 * ARRIVALS                            # int32 arrivals (module doc)
        slots = max(slots, 1)         # no empty view: an empty tensor's data_ptr() is 0, and
        #                               the direct launches pass the views' addresses
        self.m_at = self.counters                               # fp32 [slots, G] each
        self.l_at = self.m_at + _aligned(4 * slots * g)
        self.acc_at = self.l_at + _aligned(4 * slots * g)       # fp32 [slots, G, D]
        self.nbytes = self.acc_at + 4 * slots * g * d
        self.on_device: dict = {}
        self.empty = torch.tensor([n == 0 for n in p.window_lens])
        self.any_empty = bool(self.empty.any())
        self.post_quant = p.post_quant
        self.scale, self.n_blocks = float(p.scale_value), p.key.shape[0] if p.paged else 0
        pse_batched = p.pse_shift is not None and p.pse_shift.shape[0] == p.batch
        self.kernel = Launcher(
            _ifa_kernel, (max(self.num_pieces, 1),), G=g,
            G_PAD=max(16, triton.next_power_of_2(g)), D=d,
            D_PAD=max(16, triton.next_power_of_2(d)), BLOCK_S2=tiling.block_s2,
            BS2_PAD=max(16, triton.next_power_of_2(tiling.block_s2)),
            PAGE=p.block_size if p.paged else 1, N2=p.n2, PAGED=p.paged,
            HAS_MASK=p.attn_mask is not None, HAS_PSE=p.pse_shift is not None,
            PSE_B=pse_batched, AQ=p.antiquant, AQ_CHANNEL=not p.antiquant_per_tensor,
            AQ_OFFSET=p.antiquant_offset is not None,
            num_warps=NUM_WARPS, num_stages=NUM_STAGES)

    def tables(self, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(pieces, split tasks, empty windows or None) on ``device``, copied there once (a
        call's first on a device must not be inside a capture, as for any Triton kernel's
        first launch)."""
        hit = self.on_device.get(device)
        if hit is None:
            hit = (self.pieces.to(device), self.splits.to(device),
                   self.empty.to(device) if self.any_empty else None)
            self.on_device[device] = hit
        return hit


def _aligned(nbytes: int) -> int:
    return -(-nbytes // 16) * 16


LAUNCHES = PerPlanCache(_Launch)


def clear_cache() -> None:
    """Empty this back end's launches (cann_attention.clear_caches calls it)."""
    LAUNCHES.clear()


def _antiquant(p, t) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, offset) as the kernel reads them, in their own dtype: (2 * kvN * D,) per channel,
    (2,) per tensor (index 0 key, 1 value); the scale stands in for a missing offset."""
    scale = t.antiquant_scale.reshape(-1).contiguous()
    offset = t.antiquant_offset
    return scale, offset.reshape(-1).contiguous() if offset is not None else scale


def _rows(x: torch.Tensor) -> torch.Tensor:
    """``x`` with unit stride along positions (the kernel adds positions to row pointers); a
    bool mask as uint8 (same bytes)."""
    x = x if x.stride(-1) == 1 else x.contiguous()
    return x.view(torch.uint8) if x.dtype == torch.bool else x


def run(p, tiling, t):
    """attention_out of the call (same values as emulate.run up to the kernels' rounding);
    nothing is read back to the host."""
    launch = LAUNCHES.get(p, tiling)
    dev = t.query.device
    b_, n1, d = p.batch, p.n1, p.head_dim
    out_dtype = torch.float32 if launch.post_quant else t.query.dtype
    alloc = torch.zeros if launch.any_empty else torch.empty   # empty windows: zero rows
    out = alloc((b_, n1, d), dtype=out_dtype, device=dev)
    pieces, splits, empty = launch.tables(dev)
    if launch.num_pieces:
        query = t.query.reshape(b_, n1, d)
        key, value = _kv_view(p, t.key), _kv_view(p, t.value)
        if key.stride(-1) != 1:
            key = key.contiguous()
        if value.stride(-1) != 1:
            value = value.contiguous()
        query = query if query.stride(-1) == 1 else query.contiguous()
        ws = workspace(dev, launch.nbytes, launch.counters, user="incre_flash_attention")
        table = t.block_table if p.paged else pieces
        mask = _rows(t.attn_mask.reshape(b_, -1)) if t.attn_mask is not None else pieces
        pse = _rows(t.pse_shift[:, :, 0, :]) if t.pse_shift is not None else query
        aq_scale, aq_offset = _antiquant(p, t) if p.antiquant else (out, out)
        at = ws.data_ptr()
        ints = (launch.scale, launch.n_blocks, query.stride(0), query.stride(1),
                key.stride(0), key.stride(1), key.stride(2),
                value.stride(0), value.stride(1), value.stride(2),
                table.stride(0), mask.stride(0), pse.stride(0), pse.stride(1),
                out.stride(0), out.stride(1))
        tensors = (query, key, value, table, mask, pse, aq_scale, aq_offset, out)
        wsp = (at + launch.m_at, at + launch.l_at, at + launch.acc_at, at)

        def views():
            flat = ws[:launch.nbytes]
            return (flat[launch.m_at:launch.l_at].view(torch.float32),
                    flat[launch.l_at:launch.acc_at].view(torch.float32),
                    flat[launch.acc_at:].view(torch.float32),
                    flat[:launch.counters].view(torch.int32))
        launch.kernel((*tensors, *wsp, pieces, splits, *ints),
                      lambda: (*tensors, *views(), pieces, splits, *ints),
                      alignment(*tensors, pieces, splits))
    if launch.post_quant:
        return quantize_output(out, t.quant_scale2, t.quant_offset2, p.emulate_npu,
                               empty).reshape(t.query.shape)
    return out.reshape(t.query.shape)
