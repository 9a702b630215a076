"""The ``library`` back end of npu_flash_attention: PyTorch's SDPA or FlexAttention runs it.

``run(params, plan, tensors)`` executes the engine that ``op_host/flash_attention/engines.py``
chose (``plan.engine``) and returns the op's outputs (attention_out in the query's layout and
dtype, and softmax_max / softmax_sum in the op's layout when asked) exactly as the emulator
does (docs/flash_attention.md, "CUDA: library engines"):

- **sdpa**: the query and keys as SDPA's (B, N, S, D) views, ``scale=scale_value``, the mask as
  ``is_causal``, ``causal_lower_right`` or a tensor built per call from ``atten_mask`` /
  ``pse_shift`` with tensor operations; rows that a tensor mask hides completely are zeroed.
- **flex**: the same views (TND as one sequence of T rows), a mask_mod that evaluates the
  call's full visibility rule (``mask_mod_of``) with the lengths read *as tensors* in it, a
  score_mod adding ``pse_shift``, a block mask built once per (params, plan, device) from the
  plan's tile statuses, and the statistics and the sink from the returned log-sum-exp.

Nothing here reads a value of a device tensor back to the host, so a call on CUDA tensors can be
captured in a CUDA graph once its block mask is cached. On CPU tensors (tests) FlexAttention runs
eagerly (its CPU compiled kernel returns no lse) and SDPA may also use its math back end.
"""
from __future__ import annotations

import copy
import threading

import torch
import torch.nn.functional as F

from cann_attention.op_host.common.errors import CannAttentionError
from cann_attention.op_host.common.layouts import Layout
from cann_attention.op_host.common.mask_spec import SparseMode, TileStatus
from cann_attention.op_host.flash_attention.engines import EnginePlan, FlexBlocks
from cann_attention.op_host.flash_attention.params import (
    OP, FlashAttentionParams, FlashAttentionTensors)

from ..common.online_softmax import SOFTMAX_MIN
from ..common.per_plan import PerPlanCache


# ---- layouts --------------------------------------------------------------------------------
def _bnsd(p: FlashAttentionParams, t: FlashAttentionTensors):
    """(B, N1, S1, D) query and (B, N2, S2, D) keys / values views (TND: B = 1, S = T)."""
    q, k, v = t.query, t.key, t.value
    if p.q_layout is Layout.TND:
        q = q.transpose(0, 1).unsqueeze(0)
    elif p.q_layout is Layout.BSND:
        q = q.transpose(1, 2)
    if p.kv_layout is Layout.TND:
        k, v = k.transpose(0, 1).unsqueeze(0), v.transpose(0, 1).unsqueeze(0)
    else:
        k, v = k.transpose(1, 2), v.transpose(1, 2)
    return q, k, v


def _gathered_pages(p: FlashAttentionParams, t: FlashAttentionTensors):
    """Keys and values of a paged call as dense (B, N2, S2, D) copies of each batch's key
    capacity S2 = max_blocks * block_size (TND query: packed (1, N2, B * S2, D)), through the
    page table with its entries clamped into the cache (engines.py: ``gather_pages``)."""
    pages = t.block_table.to(torch.int64).clamp(0, t.key.shape[0] - 1)         # (B, blocks)

    def gather(cache):
        x = cache[pages].flatten(1, 2)                                    # (B, S2, N2, D)
        if p.q_layout is Layout.TND:
            return x.flatten(0, 1).transpose(0, 1).unsqueeze(0)
        return x.transpose(1, 2)
    return gather(t.key), gather(t.value)


def _out_layout(p: FlashAttentionParams, out: torch.Tensor) -> torch.Tensor:
    """(B, N1, S1, D) -> the query's layout."""
    if p.q_layout is Layout.TND:
        return out.squeeze(0).transpose(0, 1).contiguous()
    if p.q_layout is Layout.BSND:
        return out.transpose(1, 2).contiguous()
    return out.contiguous()


def _stats_layout(p: FlashAttentionParams, stat: torch.Tensor) -> torch.Tensor:
    """(B, N1, S1) -> (B, N2, S1, G); TND (1, N1, T1) -> (N2, T1, G)."""
    b, _, s = stat.shape
    stat = stat.reshape(b, p.n2, p.group, s).transpose(-1, -2)
    return (stat.squeeze(0) if p.q_layout is Layout.TND else stat).contiguous()


def _no_stats(dev):
    # two tensors: outputs of a custom op must not alias each other
    return (torch.empty((0,), dtype=torch.float32, device=dev),
            torch.empty((0,), dtype=torch.float32, device=dev))


# ---- SDPA -----------------------------------------------------------------------------------
def _sdpa_tensor_mask(p: FlashAttentionParams, t: FlashAttentionTensors, dev):
    """(attn_mask, rows_seen): a bool (visible) or additive float mask broadcast to
    (B, N1, S1, S2), and a bool (B|1, 1, S1, 1) of rows that see a key (None: all do)."""
    s1, s2, mode = p.s1, p.s2, SparseMode(p.sparse_mode)
    i = torch.arange(s1, device=dev)[:, None]
    k = torch.arange(s2, device=dev)[None, :]
    vis = torch.ones(1, 1, s1, s2, dtype=torch.bool, device=dev)
    if mode is SparseMode.LEFT_UP_CAUSAL:
        vis = vis & (k <= i)
    elif mode is SparseMode.RIGHT_DOWN_CAUSAL:
        vis = vis & (k <= i + (s2 - s1))
    rows_seen = None
    if t.atten_mask is not None and mode in (SparseMode.DEFAULT, SparseMode.ALL_MASK):
        vis = vis & (t.atten_mask.reshape(-1, 1, s1, s2) == 0)
        rows_seen = vis.any(-1, keepdim=True)
    if t.pse_shift is None:
        return vis, rows_seen
    bias = t.pse_shift.to(t.query.dtype)
    return bias.masked_fill(~vis, float("-inf")), rows_seen


def _run_sdpa(p: FlashAttentionParams, plan: EnginePlan, t: FlashAttentionTensors):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.attention.bias import causal_lower_right

    q, k, v = _bnsd(p, t)
    dev = q.device
    if plan.expand_kv and p.group > 1:
        k, v = k.repeat_interleave(p.group, 1), v.repeat_interleave(p.group, 1)
    attn_mask, is_causal, rows_seen = None, False, None
    if plan.sdpa_mask == "causal":
        is_causal = True
    elif plan.sdpa_mask == "causal_lower_right":
        attn_mask = causal_lower_right(p.s1, p.s2)
    elif plan.sdpa_mask == "tensor":
        attn_mask, rows_seen = _sdpa_tensor_mask(p, t, dev)
    backends = [getattr(SDPBackend, name) for name in plan.sdpa_backends]
    if dev.type == "cpu":
        backends += [SDPBackend.FLASH_ATTENTION, SDPBackend.MATH]
    with sdpa_kernel(list(dict.fromkeys(backends))):
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=p.scale_value,
            enable_gqa=p.group > 1 and not plan.expand_kv)
    if rows_seen is not None:
        out = torch.where(rows_seen, out, torch.zeros((), dtype=out.dtype, device=dev))
    return (_out_layout(p, out),) + _no_stats(dev)


# ---- the visibility rule as FlexAttention functions ----------------------------------------
def _lengths(values: torch.Tensor | None, cap: int, batch: int, dev):
    """Per-batch counts as int64 on ``dev``, clamped into [0, cap] (malformed values never
    address outside the tensors); ``cap`` for every batch when None."""
    if values is None:
        return torch.full((batch,), cap, dtype=torch.int64, device=dev)
    return values.to(dev, torch.int64).clamp(0, cap)


def _prefix_sums(values: torch.Tensor, total: int, dev):
    """TND ends made non-decreasing inside [0, total]: (starts, counts), int64 [B]."""
    ends = torch.cummax(values.to(dev, torch.int64).clamp(0, total), 0).values
    starts = torch.cat([ends.new_zeros(1), ends[:-1]])
    return starts, ends - starts


def mask_mod_of(p: FlashAttentionParams, lengths: str, t: FlashAttentionTensors, dev):
    """The call's visibility rule (docs/flash_attention.md, Semantics) as a FlexAttention
    ``mask_mod(b, h, q_idx, kv_idx)``.

    A closure over this call's tensors (lengths, row starts, atten_mask) and the plan's
    constants, so every call hands FlexAttention the same code with new tensors (compiled once
    per static signature; values are never read back). Written with tensor operations only:
    it runs inside FlexAttention (one index at a time under vmap, or compiled) and densely on
    broadcast index grids. Indices are promoted to int64 before adding the band offsets (up to
    2^62).
    """
    spec, batch = p.mask_spec, p.batch
    if lengths == "prefix_sums":
        t1 = t.query.shape[0]
        q_start, q_len = _prefix_sums(t.actual_seq_lengths_query, t1, dev)
        q_doc = torch.searchsorted(q_start + q_len, torch.arange(t1, device=dev), right=True)
        if p.kv_layout is Layout.PA_BSND:          # B gathered runs of S2 keys (counts)
            k_len = _lengths(t.actual_seq_lengths_kv, p.s2, batch, dev)
            k_start = torch.arange(batch, device=dev) * p.s2
            pos = torch.arange(batch * p.s2, device=dev)
            run = pos // p.s2                        # keys past a batch's length: no batch
            k_doc = torch.where(pos - k_start[run] < k_len[run], run, batch)
        else:
            t2 = t.key.shape[0]
            k_start, k_len = _prefix_sums(t.actual_seq_lengths_kv, t2, dev)
            k_doc = torch.searchsorted(k_start + k_len, torch.arange(t2, device=dev),
                                       right=True)
    else:
        q_len = _lengths(t.actual_seq_lengths_query, p.s1, batch, dev)
        k_len = _lengths(t.actual_seq_lengths_kv, p.s2, batch, dev)
        q_start = k_start = q_doc = k_doc = None
    lo, hi = spec.band_offsets(k_len - q_len)
    masked = None
    if t.atten_mask is not None and SparseMode(p.sparse_mode) in (SparseMode.DEFAULT,
                                                                  SparseMode.ALL_MASK):
        # (1|B, S1, S2'): S' = S2, or with paged keys at least the longest batch's keys
        masked = t.atten_mask.reshape(-1, p.s1, t.atten_mask.shape[-1]) != 0
    chunk = spec.chunk_size
    mask_batch = 0 if masked is None else int(masked.shape[0] > 1)

    def rule(seq, i, j, ok):
        """AND of the band, the chunk and the atten_mask at local row i, key j of batch seq."""
        qpos = i + k_len[seq] - q_len[seq]
        ok = ok & (j >= qpos + lo[seq]) & (j <= qpos + hi[seq])
        if chunk is not None:
            ok = ok & (torch.div(qpos, chunk, rounding_mode="floor")
                       == torch.div(j, chunk, rounding_mode="floor"))
        if masked is not None:      # keys past S' are past every batch's length (clamped read)
            ok = ok & ~masked[seq * mask_batch, i, j.clamp(max=masked.shape[-1] - 1)]
        return ok

    def packed_mask_mod(b, h, q_idx, kv_idx):          # TND: one sequence of T rows
        q_idx, kv_idx = q_idx.to(torch.int64), kv_idx.to(torch.int64)
        doc = q_doc[q_idx]                              # batch of the row; B past the end
        seq = doc.clamp(max=batch - 1)
        ok = (doc == k_doc[kv_idx]) & (doc < batch)
        return rule(seq, q_idx - q_start[seq], kv_idx - k_start[seq], ok)

    def dense_mask_mod(b, h, q_idx, kv_idx):
        q_idx, kv_idx = q_idx.to(torch.int64), kv_idx.to(torch.int64)
        return rule(b, q_idx, kv_idx, (q_idx < q_len[b]) & (kv_idx < k_len[b]))

    return packed_mask_mod if lengths == "prefix_sums" else dense_mask_mod


def pse_score_mod(pse: torch.Tensor | None):
    """``score + pse_shift[b or 0, h, i, k]`` (after scaling; fp32), or None without one."""
    if pse is None:
        return None
    broadcast, last = int(pse.shape[0] > 1), pse.shape[-1] - 1

    def score_mod(score, b, h, q_idx, kv_idx):   # keys past S' (paged): invisible, clamped
        return score + pse[b * broadcast, h, q_idx, kv_idx.clamp(max=last)].to(torch.float32)
    return score_mod


# ---- FlexAttention --------------------------------------------------------------------------
def _block_lists(selected: torch.Tensor):
    """(num [1, 1, nq] int32, indices [1, 1, nq, nk] int32) of the selected tiles per row."""
    num = selected.sum(-1, dtype=torch.int32)
    order = torch.argsort((~selected).to(torch.int8), dim=-1, stable=True).to(torch.int32)
    return num[None, None], order[None, None].contiguous()


def build_block_mask(blocks: FlexBlocks, device):
    """The BlockMask of the plan's tiles (no mask_mod: each call sets its own)."""
    from torch.nn.attention.flex_attention import BlockMask
    partial = blocks.status == TileStatus.PARTIAL
    full = blocks.status == TileStatus.FULL
    kv_num, kv_idx = _block_lists(partial)
    full_num, full_idx = _block_lists(full)
    mask = BlockMask.from_kv_blocks(
        kv_num, kv_idx, full_num, full_idx, BLOCK_SIZE=(blocks.block_q, blocks.block_kv),
        seq_lengths=(blocks.q_len, blocks.kv_len))
    return mask.to(device)


class _PerDevice:
    """Block masks of one (params, plan) pair, one per device."""

    def __init__(self, p, plan):
        self.blocks, self.masks, self.lock = plan.blocks, {}, threading.Lock()

    def get(self, device):
        hit = self.masks.get(device)
        if hit is None:
            hit = build_block_mask(self.blocks, device)
            with self.lock:
                self.masks[device] = hit
        return hit


BLOCK_MASKS = PerPlanCache(_PerDevice, size=64)
_COMPILED = {}


def _flex_function(compiled: bool):
    """flex_attention, compiled once per process where the plan asks (GPU plans)."""
    from torch.nn.attention.flex_attention import flex_attention
    if not compiled:
        return flex_attention
    fn = _COMPILED.get("flex")
    if fn is None:
        fn = _COMPILED.setdefault("flex", torch.compile(flex_attention, dynamic=False))
    return fn


def clear_cache() -> None:
    """Forget the cached block masks and the compiled FlexAttention (cann_attention.clear_caches
    calls it)."""
    BLOCK_MASKS.clear()
    _COMPILED.clear()


def _dense_row_max(p, q, k, mask_mod, score_mod):
    """Row max of the visible scores from a dense evaluation of the same rule (CPU only:
    FlexAttention returns no max there). (B, N1, S1) fp32, -inf for rows that see nothing."""
    kk = k.float().repeat_interleave(p.group, 1)
    s = torch.matmul(q.float(), kk.transpose(-1, -2)) * p.scale_value
    dev = q.device
    b = torch.arange(s.shape[0], device=dev)[:, None, None, None]
    h = torch.arange(s.shape[1], device=dev)[None, :, None, None]
    i = torch.arange(s.shape[2], device=dev)[None, None, :, None]
    j = torch.arange(s.shape[3], device=dev)[None, None, None, :]
    if score_mod is not None:
        s = score_mod(s, b, h, i, j)
    return s.masked_fill(~mask_mod(b, h, i, j), float("-inf")).amax(-1)


def _run_flex(p: FlashAttentionParams, plan: EnginePlan, t: FlashAttentionTensors):
    from torch.nn.attention.flex_attention import AuxRequest

    q, k, v = _bnsd(p, t)
    if plan.gather_pages:
        k, v = _gathered_pages(p, t)
    dev = q.device
    mask_mod = mask_mod_of(p, plan.lengths, t, dev)
    block_mask = copy.copy(BLOCK_MASKS.get(p, plan).get(dev))
    block_mask.mask_mod = mask_mod
    score_mod = pse_score_mod(t.pse_shift)
    sink = t.learnable_sink
    want_lse = p.return_softmax_lse or sink is not None
    aux = AuxRequest(lse=True, max_scores=plan.row_max == "flex") if want_lse else None
    result = _flex_function(plan.compiled)(
        q, k, v, score_mod=score_mod, block_mask=block_mask, scale=p.scale_value,
        enable_gqa=p.group > 1, return_aux=aux)
    if aux is None:
        return (_out_layout(p, result),) + _no_stats(dev)
    out, aux_out = result
    lse = aux_out.lse.float()                                   # (B, N1, S1), -inf: no key
    seen = torch.isfinite(lse)
    if sink is not None:
        sig = sink.to(dev, torch.float32)[None, :, None]
        out = (out.float() * torch.sigmoid(lse - sig).unsqueeze(-1)).to(out.dtype)
    out = _out_layout(p, out)
    if not p.return_softmax_lse:
        return (out,) + _no_stats(dev)
    if plan.row_max == "flex":
        m = aux_out.max_scores.float()
    else:
        m = _dense_row_max(p, q, k, mask_mod, score_mod)
    if sink is not None:
        m = torch.maximum(m, sig)
        l = torch.exp(lse - m) + torch.exp(sig - m)
    else:
        l = torch.exp(lse - m)
    m = torch.where(seen, m, torch.full_like(m, SOFTMAX_MIN))
    l = torch.where(seen, l, torch.zeros_like(l))
    return out, _stats_layout(p, m), _stats_layout(p, l)


def run(p: FlashAttentionParams, plan: EnginePlan, t: FlashAttentionTensors):
    """The outputs of a checked call, computed by the engine ``plan`` names."""
    if plan.engine == "sdpa":
        return _run_sdpa(p, plan, t)
    if plan.engine == "flex":
        return _run_flex(p, plan, t)
    raise CannAttentionError(OP, "backend", f"expected a call that a library engine serves, got "
                             f"{plan.reason}")
