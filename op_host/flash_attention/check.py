"""Every validation rule of npu_flash_attention (docs/flash_attention.md, Errors).

Includes the project's choices (docs/flash_attention.md, Semantics, "Choices"). Rule numbers in the
comments are this module's own; docs/flash_attention.md groups the rules by kind. Rule 1 (argument
types) is applied while parsing. The project's own rules (marked P) refuse what would let a kernel
read outside a tensor: lengths beyond the tensors, masks of the wrong shape, page-table entries
outside the cache.
"""
from __future__ import annotations

import math

import torch

from ..common import batched_params
from ..common.errors import dtype_name
from ..common.layouts import Layout
from ..common.mask_spec import SparseMode
from .params import CHECK, FlashAttentionParams

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
INT_DTYPES = (torch.int32, torch.int64)
MASK_DTYPES = (torch.bool, torch.int8, torch.uint8)
MAX_GROUP = 64            # FIA: N1 / N2 <= 64
MAX_HEAD_DIM = 512
HEAD_DIM_ALIGN = 16
MAX_BLOCK_SIZE = 512      # FIA paged-attention limits
BLOCK_SIZE_ALIGN = 16


def check(p: FlashAttentionParams) -> None:
    c = CHECK
    q, k, v = p.query, p.key, p.value
    # 2. dtypes: fp16 / bf16 (fp32 on CPU and GPU back ends), all equal
    c.require_type(q.dtype in FLOAT_DTYPES, "query", "dtype float16, bfloat16 or float32",
                   dtype_name(q.dtype))
    c.require_type(k.dtype == q.dtype, "key", f"dtype {dtype_name(q.dtype)} (= query)", dtype_name(k.dtype))
    c.require_type(v.dtype == q.dtype, "value", f"dtype {dtype_name(q.dtype)} (= query)",
                   dtype_name(v.dtype))
    # 3. layouts and their pairing
    q_layout = Layout.parse(p.layout_query, (Layout.BSND, Layout.TND, Layout.BNSD), c,
                            "layout_query")
    kv_layout = Layout.parse(p.layout_kv, (Layout.BSND, Layout.TND, Layout.PA_BSND), c,
                             "layout_kv")
    dense_kv = Layout.TND if q_layout is Layout.TND else Layout.BSND
    c.require(kv_layout in (dense_kv, Layout.PA_BSND), "layout_kv",
              f"{dense_kv.value} or PA_BSND with layout_query {q_layout.value}", kv_layout.value)
    # 4. scale_value finite
    c.require(math.isfinite(p.scale_value), "scale_value", "a finite number", p.scale_value)
    # 5. sparse_mode, atten_mask requirement, band
    c.require(p.sparse_mode in tuple(int(m) for m in SparseMode), "sparse_mode",
              "one of 0, 1, 2, 3, 4", p.sparse_mode)
    if p.sparse_mode == SparseMode.ALL_MASK:
        c.require(p.atten_mask is not None, "atten_mask", "a tensor when sparse_mode is 1",
                  "None")
    if p.sparse_mode == SparseMode.BAND:
        c.require(p.pre_tokens + p.next_tokens >= 0, "pre_tokens/next_tokens",
                  "pre_tokens + next_tokens >= 0 (a non-empty band) for sparse_mode 4",
                  f"{p.pre_tokens} + {p.next_tokens}")
    # 6. chunk_size
    if p.chunk_size is not None:
        c.require(p.chunk_size >= 1, "chunk_size", "None or an integer >= 1", p.chunk_size)
    # 7. ranks and empty tensors
    q_rank = 3 if q_layout is Layout.TND else 4
    kv_rank = 3 if kv_layout is Layout.TND else 4
    c.require(q.rank == q_rank, "query", f"rank {q_rank} for layout {q_layout.value}",
              f"shape {q.shape}")
    c.require(k.rank == kv_rank, "key", f"rank {kv_rank} for layout {kv_layout.value}",
              f"shape {k.shape}")
    c.require(all(s > 0 for s in q.shape), "query", "no zero dimension", f"shape {q.shape}")
    c.require(all(s > 0 for s in k.shape), "key", "no zero dimension", f"shape {k.shape}")
    # 8. value shape = key shape (D_v = D_qk: MLA is not supported)
    c.require(v.shape == k.shape, "value", f"shape {k.shape} (= key)", v.shape)
    # 9. heads
    n1, n2 = p.n1, p.n2
    c.require(n1 % n2 == 0, "key", f"N2 (key.shape[-2]) dividing N1={n1}", n2)
    c.require(n1 // n2 <= MAX_GROUP, "key", f"N1 / N2 <= {MAX_GROUP}", f"{n1} / {n2}")
    # 10. head dim
    d = q.shape[-1]
    c.require(d % HEAD_DIM_ALIGN == 0 and 0 < d <= MAX_HEAD_DIM, "query",
              f"D (last dim) a multiple of {HEAD_DIM_ALIGN} in [16, {MAX_HEAD_DIM}]", d)
    c.require(k.shape[-1] == d, "key", f"D (last dim) == {d} (= query)", k.shape[-1])
    # 11. length vectors: dtype, presence, one entry per batch
    aq, akv = p.actual_seq_lengths_query, p.actual_seq_lengths_kv
    for name, meta in (("actual_seq_lengths_query", aq), ("actual_seq_lengths_kv", akv)):
        if meta is not None:
            c.require_type(meta.dtype in INT_DTYPES, name, "dtype int32 or int64",
                           dtype_name(meta.dtype))
            c.require(meta.rank == 1 and meta.numel > 0, name, "a non-empty 1-D tensor",
                      f"shape {meta.shape}")
    if q_layout is Layout.TND:
        c.require(aq is not None, "actual_seq_lengths_query", "a tensor when layout_query is TND",
                  "None")
    if kv_layout in (Layout.TND, Layout.PA_BSND):
        c.require(akv is not None, "actual_seq_lengths_kv",
                  f"a tensor when layout_kv is {kv_layout.value}", "None")
    batch = p.batch
    for name, meta in (("actual_seq_lengths_query", aq), ("actual_seq_lengths_kv", akv)):
        if meta is not None:
            c.require(meta.numel == batch, name, f"{batch} elements (B)", meta.numel)
    if kv_layout is Layout.BSND:
        c.require(k.shape[0] == batch, "key", f"shape[0] == B={batch}", f"shape {k.shape}")
    # 12. paged cache
    _check_paged(p, kv_layout, batch)
    for name, meta in (("key", k), ("value", p.value)):
        batched_params.check_cache_contiguous(c, name, meta)
    # 13. lengths inside the tensors: check_values
    # 14. atten_mask / 15. pse_shift
    _check_mask_and_pse(p, q_layout)
    # 16. learnable_sink
    sink = p.learnable_sink
    if sink is not None:
        c.require(sink.shape == (n1,), "learnable_sink", f"shape ({n1},) (N1)", sink.shape)
        c.require_type(sink.dtype in (torch.float32, q.dtype), "learnable_sink",
                       f"dtype float32 or {dtype_name(q.dtype)} (= query)", dtype_name(sink.dtype))


def _check_paged(p: FlashAttentionParams, kv_layout: Layout, batch: int) -> None:
    c, bt = CHECK, p.block_table
    batched_params.check_block_table_shape(c, bt, kv_layout, batch)
    if kv_layout is not Layout.PA_BSND:
        return
    c.require_type(bt.dtype == torch.int32, "block_table", "dtype int32", dtype_name(bt.dtype))
    bs = p.block_size
    c.require(0 < bs <= MAX_BLOCK_SIZE and bs % BLOCK_SIZE_ALIGN == 0, "key",
              f"block_size (key.shape[1]) a multiple of {BLOCK_SIZE_ALIGN} in "
              f"(0, {MAX_BLOCK_SIZE}]", bs)


def _check_key_extents(p: FlashAttentionParams) -> None:
    """The last dim of atten_mask / pse_shift: S2, or with a paged cache >= the longest key
    length (a rule on values: ``p`` must carry them)."""
    if p.q_layout is Layout.TND:        # no mask or pse with TND (refused by check)
        return
    if p.kv_layout is Layout.PA_BSND:
        need = max(p.kv_lens)
        text, ok = f">= max(actual_seq_lengths_kv)={need}", lambda n: n >= need
    else:
        text, ok = f"== S2={p.s2}", lambda n: n == p.s2
    am = p.atten_mask if p.sparse_mode in (SparseMode.DEFAULT, SparseMode.ALL_MASK) else None
    for name, meta in (("atten_mask", am), ("pse_shift", p.pse_shift)):
        if meta is not None:
            CHECK.require(ok(meta.shape[-1]), name, f"last dim {text}", meta.shape[-1])


def _check_mask_and_pse(p: FlashAttentionParams, q_layout: Layout) -> None:
    c = CHECK
    am, pse = p.atten_mask, p.pse_shift
    for name, meta in (("atten_mask", am), ("pse_shift", pse)):
        if meta is not None:
            c.require(q_layout is not Layout.TND, name,
                      "None with layout_query TND (supported with BSND / BNSD only)",
                      f"a tensor of shape {meta.shape}")
    if q_layout is Layout.TND:
        return
    b, n1, s1 = p.batch, p.n1, p.s1
    if am is not None and p.sparse_mode in (SparseMode.DEFAULT, SparseMode.ALL_MASK):
        c.require_type(am.dtype in MASK_DTYPES, "atten_mask", "dtype bool, int8 or uint8",
                       dtype_name(am.dtype))
        lead_ok = am.shape[:-2] in ((), (1,), (b, 1), (1, 1))
        c.require(lead_ok and am.rank >= 2 and am.shape[-2] == s1, "atten_mask",
                  f"shape (S1, S2), (1, S1, S2), ({b}, 1, S1, S2) or (1, 1, S1, S2) with "
                  f"S1={s1}", f"shape {am.shape}")
    if pse is not None:
        c.require_type(pse.dtype in FLOAT_DTYPES, "pse_shift",
                       "dtype float16, bfloat16 or float32", dtype_name(pse.dtype))
        c.require(pse.rank == 4 and pse.shape[0] in (1, b) and pse.shape[1:3] == (n1, s1),
                  "pse_shift", f"shape ({b} or 1, N1={n1}, S1={s1}, S2)", f"shape {pse.shape}")
    if p.kv_layout is not Layout.PA_BSND:
        _check_key_extents(p)


def check_values(p: FlashAttentionParams, tensors) -> None:
    """The rules on values inside tensors (``p`` carries the lengths' values): lengths inside
    the tensors (rule 13), the mask / pse extent of a paged cache, page-table entries that
    will be read inside the cache."""
    batched_params.check_batch_lengths(CHECK, p, tnd_ends_at_total=True)
    if p.kv_layout is Layout.PA_BSND:
        _check_key_extents(p)
    if tensors.block_table is not None:
        batched_params.check_block_table_entries(CHECK, p, tensors.block_table)
