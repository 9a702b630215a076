"""plan_engine(params, platform) -> EnginePlan: which library engine serves a call on CUDA.

The ``library`` back end of npu_flash_attention runs well-kept PyTorch engines rather than a
kernel of ours (docs/flash_attention.md, "CUDA: library engines"). This module decides, from
shapes, dtypes and attributes only (never from values inside tensors), which engine serves a
checked call, and records the decision so the plan says which engine runs:

- ``"sdpa"``: ``torch.nn.functional.scaled_dot_product_attention`` under
  ``torch.nn.attention.sdpa_kernel(<sdpa_backends>)``. Only for dense calls whose mask SDPA
  expresses exactly and that want neither statistics nor a sink (SDPA's public function returns
  no log-sum-exp): BSND / BNSD query with BSND keys, no ``actual_seq_lengths_*`` tensors, no
  ``chunk_size``, and a mask of: nothing (mode 0 without atten_mask; mode 3 with S1 = 1),
  top-left causal (mode 2, or mode 3 with S1 = S2: SDPA's ``is_causal``), bottom-right causal
  with S1 < S2 (mode 3: ``causal_lower_right``), or a materialized tensor mask (mode 1, mode 0
  with a band that covers every key, optionally with mode 2 / 3 geometry, ``pse_shift`` of the
  query's dtype).
- ``"flex"``: ``torch.nn.attention.flex_attention`` for everything else:
  bands (mode 4, mode 0 with a band), chunks, per-batch lengths as device tensors, TND, rows that
  see nothing (mode 3 with S1 > S2), ``pse_shift`` as a score_mod, sinks and statistics from the
  returned log-sum-exp (and row max). Its block mask comes from the mask geometry of
  ``common.mask_spec`` (the tiles the host planner classifies), built once per static signature.
  Paged keys (PA_BSND) go to FlexAttention too: the run first gathers the pages of the page
  table into a dense copy of each batch's key capacity (``gather_pages``; entries clamped into
  the cache, so a malformed table reads no memory outside it). That costs a read and a write
  of the pages a call addresses on top of the attention: correct on the GPU, not fast for
  decode, where npu_incre_flash_attention's split-KV kernel reads pages in place.
- ``None`` with ``reason``: head dims above ``FLEX_MAX_HEAD_DIM`` for calls SDPA cannot take.

``sdpa_backends`` names ``torch.nn.attention.SDPBackend`` members (strings, so this host module
imports no op_kernel code): FLASH_ATTENTION (fp16 / bf16, D <= 256, no tensor mask), CUDNN_ATTENTION (fp16 / bf16,
D <= 128), EFFICIENT_ATTENTION (any float dtype, tensor masks). SDPA picks among the allowed
ones in its own priority order. GQA goes to SDPA natively (``enable_gqa``) only where flash
surely takes the call (no mask, or a square causal one); otherwise K / V heads are repeated
(``expand_kv``), since the efficient kernel has no GQA.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..common.layouts import Layout
from ..common.mask_spec import SparseMode, TileStatus, band_tile_status
from ..common.platform import H100, PlatformInfo, PlatformKind
from .params import FlashAttentionParams

FLEX_BLOCK = 128             # FlexAttention's default block (rows and keys of one tile)
FLEX_MAX_HEAD_DIM = 256      # conservative, unverified: FlexAttention's Triton tiles above it
FLASH_MAX_HEAD_DIM = 256     # FlashAttention-2 in SDPA
CUDNN_MAX_HEAD_DIM = 128     # cuDNN SDPA on every architecture it supports
HALF = (torch.float16, torch.bfloat16)


@dataclass(frozen=True)
class FlexBlocks:
    """The block mask's static description: block sizes, grid and each tile's status.

    ``status`` is int8 [num_q_blocks, num_kv_blocks] of ``TileStatus``: EMPTY tiles are never
    visited, FULL tiles skip the mask_mod, PARTIAL tiles evaluate it. ``exact`` says whether the
    geometry is known on the host (dense calls without length tensors); otherwise only tiles
    that are empty for every possible length are EMPTY and nothing is FULL.
    """
    q_len: int
    kv_len: int
    block_q: int
    block_kv: int
    status: torch.Tensor
    exact: bool


@dataclass(frozen=True)
class EnginePlan:
    engine: str | None                     # "sdpa", "flex", or None (no engine serves)
    reason: str                            # why this engine, or why none serves
    sdpa_backends: tuple[str, ...] = ()    # SDPBackend member names allowed (sdpa)
    sdpa_mask: str = "none"                # none | causal | causal_lower_right | tensor (sdpa)
    expand_kv: bool = False                # repeat K / V heads instead of enable_gqa (sdpa)
    blocks: FlexBlocks | None = None       # the block mask's tiles (flex)
    lengths: str = "static"                # static | counts | prefix_sums (flex)
    compiled: bool = False                 # torch.compile(flex_attention) (flex; GPU plans)
    row_max: str = "none"                  # none | flex | dense: where softmax_max comes from
    gather_pages: bool = False             # paged keys gathered to dense per call (flex)
    platform: PlatformInfo | None = None


def _mode(p: FlashAttentionParams) -> SparseMode:
    return SparseMode(p.sparse_mode)


def _reads_mask(p: FlashAttentionParams) -> bool:
    return p.atten_mask is not None and _mode(p) in (SparseMode.DEFAULT, SparseMode.ALL_MASK)


def _sdpa_mask(p: FlashAttentionParams) -> tuple[str | None, str]:
    """The SDPA mask kind of a dense static call, or (None, why SDPA cannot express it)."""
    mode, s1, s2 = _mode(p), p.s1, p.s2
    tensor = _reads_mask(p) or p.pse_shift is not None
    if p.pse_shift is not None and p.pse_shift.dtype != p.query.dtype:
        return None, "pse_shift of another dtype than the query (SDPA's mask has the query dtype)"
    if mode is SparseMode.BAND:
        return None, "sparse_mode 4 (a band)"
    if mode is SparseMode.DEFAULT and _reads_mask(p):
        if p.pre_tokens < s1 - 1 or p.next_tokens < s2 - 1:
            return None, "sparse_mode 0 with a band that hides keys"
    if mode is SparseMode.RIGHT_DOWN_CAUSAL and s1 > s2:
        return None, "sparse_mode 3 with S1 > S2 (rows that see no key)"
    causal = mode is SparseMode.LEFT_UP_CAUSAL or (mode is SparseMode.RIGHT_DOWN_CAUSAL
                                                  and s1 > 1)
    if tensor:
        return "tensor", "a materialized mask"
    if not causal:
        return "none", "no mask"
    if mode is SparseMode.LEFT_UP_CAUSAL or s1 == s2:
        return "causal", "top-left causal (is_causal)"
    return "causal_lower_right", "bottom-right causal (causal_lower_right)"


def _sdpa_refusal(p: FlashAttentionParams) -> str | None:
    """Why SDPA cannot serve the call as a whole (None: its mask decides)."""
    for why, refused in (
            ("statistics wanted", p.return_softmax_lse),
            ("a sink", p.learnable_sink is not None),
            ("chunk_size", p.chunk_size is not None),
            ("TND layout", p.q_layout is Layout.TND or p.kv_layout is Layout.TND),
            ("paged keys", p.kv_layout is Layout.PA_BSND),
            ("per-batch length tensors", p.actual_seq_lengths_query is not None
             or p.actual_seq_lengths_kv is not None)):
        if refused:
            return why
    return None


def _sdpa_plan(p: FlashAttentionParams, platform: PlatformInfo) -> tuple[EnginePlan | None,
                                                                          str]:
    """(the SDPA plan of a call SDPA expresses exactly, "") or (None, why not)."""
    refusal = _sdpa_refusal(p)
    if refusal is not None:
        return None, refusal
    mask, why = _sdpa_mask(p)
    if mask is None:
        return None, why
    half, d = p.query.dtype in HALF, p.d
    backends = []
    if half and d <= FLASH_MAX_HEAD_DIM and mask != "tensor":
        backends.append("FLASH_ATTENTION")
    if half and d <= CUDNN_MAX_HEAD_DIM:
        backends.append("CUDNN_ATTENTION")
    backends.append("EFFICIENT_ATTENTION")
    # GQA natively (enable_gqa) only where flash surely takes the call: no mask or a square
    # causal one (flash refuses non-square is_causal; the efficient kernel has no GQA)
    flash_sure = "FLASH_ATTENTION" in backends and (
        mask == "none" or (mask == "causal" and p.s1 == p.s2))
    expand = p.group > 1 and not flash_sure
    return EnginePlan("sdpa", f"SDPA: dense call, {why}", sdpa_backends=tuple(backends),
                      sdpa_mask=mask, expand_kv=expand, platform=platform), ""


def flex_blocks(p: FlashAttentionParams, block: int = FLEX_BLOCK) -> FlexBlocks:
    """The block mask's tiles, from the mask geometry (``MaskSpec.tile_status``).

    Dense calls without length tensors know every batch's delta = S2 - S1 and key length S2:
    the classification is exact. With length tensors or TND, the host knows neither lengths
    nor (TND) where each sequence starts, so every tile is PARTIAL (the mask_mod decides),
    except that modes whose band does not depend on the lengths in local coordinates (mode 2,
    mode 0 with a mask: ``i - pre <= k <= i + next`` and ``k <= i``) still drop the tiles
    that band hides, for BSND / BNSD queries.
    """
    tnd = p.q_layout is Layout.TND
    q_len = p.query.shape[0] if tnd else p.s1
    kv_len = (p.key.shape[0] if p.kv_layout is Layout.TND
              else p.batch * p.s2 if tnd else p.s2)      # PA_BSND with TND: B gathered runs
    nq, nk = -(-q_len // block), -(-kv_len // block)
    qb = torch.arange(nq, dtype=torch.int64)[:, None] * block
    kb = torch.arange(nk, dtype=torch.int64)[None, :] * block
    q_lo, q_hi = qb, torch.clamp(qb + block, max=q_len)
    k_lo, k_hi = kb, torch.clamp(kb + block, max=kv_len)
    static = (not tnd and p.actual_seq_lengths_query is None
              and p.actual_seq_lengths_kv is None)
    spec = p.mask_spec
    if static:
        delta = torch.tensor(kv_len - q_len, dtype=torch.int64)
        status = spec.tile_status(q_lo + delta, q_hi + delta, k_lo, k_hi, delta,
                                  torch.tensor(kv_len))
        return FlexBlocks(q_len, kv_len, block, block, status, exact=True)
    partial = torch.full((nq, nk), int(TileStatus.PARTIAL), dtype=torch.int8)
    local_band = _mode(p) is SparseMode.LEFT_UP_CAUSAL or (
        _mode(p) is SparseMode.DEFAULT and p.atten_mask is not None)
    if local_band and not tnd:
        zero = torch.tensor(0, dtype=torch.int64)   # local rows: qpos - delta = i
        lo, hi = spec.band_offsets(zero)
        band = band_tile_status(q_lo, q_hi, k_lo, k_hi, lo, hi)
        partial = torch.minimum(band, partial)
    return FlexBlocks(q_len, kv_len, block, block, partial, exact=False)


def plan_engine(p: FlashAttentionParams, platform: PlatformInfo) -> EnginePlan:
    """The engine that serves a checked call on ``platform`` (pure: shapes and attributes)."""
    sdpa, not_sdpa = _sdpa_plan(p, platform)
    if sdpa is not None:
        return sdpa
    if p.d > FLEX_MAX_HEAD_DIM:
        return EnginePlan(None, f"head dim D={p.d} > {FLEX_MAX_HEAD_DIM} in a call that SDPA "
                          "cannot express (a conservative limit for FlexAttention's tiles)",
                          platform=platform)
    gpu = platform.kind is PlatformKind.GPU
    paged = p.kv_layout is Layout.PA_BSND
    lengths = ("prefix_sums" if p.q_layout is Layout.TND else
               "counts" if (p.actual_seq_lengths_query is not None
                            or p.actual_seq_lengths_kv is not None) else "static")
    row_max = "none" if not p.return_softmax_lse else "flex" if gpu else "dense"
    why = (f"FlexAttention (not SDPA: {not_sdpa}): " + ", ".join(
        w for w, on in (("statistics", p.return_softmax_lse),
                        ("sink", p.learnable_sink is not None),
                        (f"lengths as {lengths}", lengths != "static"),
                        ("chunk", p.chunk_size is not None),
                        (f"sparse_mode {p.sparse_mode}", True),
                        ("atten_mask", _reads_mask(p)),
                        ("pse_shift score_mod", p.pse_shift is not None),
                        ("pages gathered to dense keys", paged)) if on))
    return EnginePlan("flex", why, blocks=flex_blocks(p), lengths=lengths, compiled=gpu,
                      row_max=row_max, gather_pages=paged, platform=platform)


def unserved(p: FlashAttentionParams) -> str | None:
    """The registry rule: why no engine serves the call (None: one does). Decided for a GPU
    platform (the back end runs on CUDA tensors only)."""
    plan = plan_engine(p, H100)
    return None if plan.engine is not None else f"no library engine serves the call: {plan.reason}"
