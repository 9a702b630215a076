"""Every validation rule of npu_lightning_indexer (docs/lightning_indexer.md, Errors).

Messages keep CANN's wording where CANN has one (e.g. "under non-PA conditions, layout_query
and layout_key should be equal"). Output-tensor rules (indices int32, values of the query dtype,
indices N2 dim == 1, last dim == sparse_count) hold by construction: the op allocates its
outputs from ``params.output_shapes``. After CANN's rules come the project's own (marked P):
they refuse what would let a kernel read outside a tensor (lengths beyond the tensors,
page-table entries outside the cache) and the head-count limit of the A2/A3 documentation
(N1 <= 64).
"""
from __future__ import annotations

import torch

from ..common import batched_params
from ..common.errors import dtype_name
from ..common.layouts import Layout
from .params import CHECK, INT64_MAX, D, LightningIndexerParams

FLOAT_DTYPES = (torch.float16, torch.bfloat16)
MAX_SPARSE_COUNT = 2048
EXTRA_SPARSE_COUNTS = (3072, 4096, 5120, 6144, 7168, 8192)   # newer torch_npu docs
MAX_N1 = 64
MAX_PAGE_SIZE = 1024


def valid_sparse_count(k: int) -> bool:
    return 1 <= k <= MAX_SPARSE_COUNT or k in EXTRA_SPARSE_COUNTS


def check(p: LightningIndexerParams) -> None:
    c = CHECK
    q, k, w = p.query, p.key, p.weights
    # layouts, then the non-PA layout pair
    q_layout = Layout.parse(p.layout_query, (Layout.BSND, Layout.TND), c, "layout_query")
    k_layout = Layout.parse(p.layout_key, (Layout.PA_BSND, Layout.BSND, Layout.TND), c,
                            "layout_key")
    if k_layout is not Layout.PA_BSND:
        c.require(k_layout is q_layout, "layout_key",
                  "under non-PA conditions, layout_query and layout_key should be equal "
                  f"(layout_key {q_layout.value} or PA_BSND)", k_layout.value)
    # sparse_count, sparse_mode, pre/next tokens, return_value
    c.require(valid_sparse_count(p.sparse_count), "sparse_count",
              f"a value in [1, {MAX_SPARSE_COUNT}] or one of {list(EXTRA_SPARSE_COUNTS)}",
              p.sparse_count)
    c.require(p.sparse_mode in (0, 3), "sparse_mode",
              "0 or 3 (input attr sparse_mode only supported 0 or 3)", p.sparse_mode)
    c.require(p.pre_tokens == INT64_MAX, "pre_tokens", f"{INT64_MAX} (the default)",
              p.pre_tokens)
    c.require(p.next_tokens == INT64_MAX, "next_tokens", f"{INT64_MAX} (the default)",
              p.next_tokens)
    if p.return_value:
        c.require(k_layout is not Layout.PA_BSND, "return_value",
                  "False when layout_key is PA_BSND", True)
    # dtypes
    c.require_type(q.dtype in FLOAT_DTYPES, "query", "dtype float16 or bfloat16",
                   dtype_name(q.dtype))
    c.require_type(k.dtype == q.dtype, "key", f"dtype {dtype_name(q.dtype)} (= query)",
                   dtype_name(k.dtype))
    c.require_type(w.dtype in (q.dtype, torch.float32), "weights",
                   f"dtype {dtype_name(q.dtype)} (= query) or float32", dtype_name(w.dtype))
    for name, meta in (("actual_seq_lengths_query", p.actual_seq_lengths_query),
                       ("actual_seq_lengths_key", p.actual_seq_lengths_key),
                       ("block_table", p.block_table)):
        if meta is not None:
            c.require_type(meta.dtype == torch.int32, name, "dtype int32",
                           dtype_name(meta.dtype))
    # ranks and empty tensors
    q_rank = 4 if q_layout is Layout.BSND else 3
    k_rank = 3 if k_layout is Layout.TND else 4
    c.require(q.rank == q_rank, "query", f"rank {q_rank} for layout_query {q_layout.value}",
              f"shape {q.shape}")
    c.require(all(s > 0 for s in q.shape), "query", "no zero dimension", f"shape {q.shape}")
    c.require(k.rank == k_rank, "key", f"rank {k_rank} for layout_key {k_layout.value}",
              f"shape {k.shape}")
    c.require(w.rank == q_rank - 1, "weights",
              f"rank {q_rank - 1} ({'(B, S1, N1)' if q_rank == 4 else '(T1, N1)'})",
              f"shape {w.shape}")
    # batch size (TND: from actual_seq_lengths_query, reported missing below)
    aq, ak, bt = p.actual_seq_lengths_query, p.actual_seq_lengths_key, p.block_table
    batch = q.shape[0] if q_layout is Layout.BSND else (aq.numel if aq is not None else None)
    # paged cache
    batched_params.check_block_table_shape(c, bt, k_layout, batch, "layout_key")
    if k_layout is Layout.PA_BSND:
        c.require(ak is not None, "actual_seq_lengths_key",
                  "a tensor when layout_key is PA_BSND", "None")
        block_size = k.shape[1]
        c.require(0 < block_size <= MAX_PAGE_SIZE, "key",
                  f"block_size (key.shape[1]) in (0, {MAX_PAGE_SIZE}]", block_size)
        c.require(block_size % 16 == 0, "key", "block_size (key.shape[1]) a multiple of 16",
                  block_size)
        c.require(k.shape[0] > 0, "key", "block_count (key.shape[0]) > 0", k.shape[0])
    # required lengths
    if k_layout is Layout.TND:
        c.require(ak is not None, "actual_seq_lengths_key",
                  "a tensor when layout_key is TND", "None")
    if q_layout is Layout.TND:
        c.require(aq is not None, "actual_seq_lengths_query",
                  "a tensor when layout_query is TND", "None")
    # heads and head dims
    n2 = k.shape[-2]
    c.require(n2 == 1, "key", "N2 (key.shape[-2]) == 1 (only support 1)", n2)
    # CANN's N1 % N2 == 0 holds for every N1 once N2 == 1: nothing left to check
    c.require(q.shape[-1] == D, "query", f"head_dim (last dim) == {D}", q.shape[-1])
    c.require(k.shape[-1] == D, "key", f"head_dim (last dim) == {D} (= query)", k.shape[-1])
    # length vectors: non-empty, one entry per batch
    for name, meta in (("actual_seq_lengths_query", aq), ("actual_seq_lengths_key", ak)):
        if meta is not None:
            c.require(meta.rank == 1 and meta.numel > 0, name, "a non-empty 1-D tensor",
                      f"shape {meta.shape}")
            c.require(meta.numel == batch, name, f"{batch} elements (B)", meta.numel)
    if k_layout is Layout.BSND:
        c.require(k.shape[0] == batch, "key", f"shape[0] == B={batch}", f"shape {k.shape}")
    # weights shape
    want_w = q.shape[:-1]
    c.require(w.shape == want_w, "weights",
              f"shape {want_w} (query shape without D; weights N1 == query N1)", w.shape)
    _check_project_rules(p)


def _check_project_rules(p: LightningIndexerParams) -> None:
    """(P) N1 within the documented limit; the key cache read in place."""
    c = CHECK
    c.require(p.n1 <= MAX_N1, "query", f"N1 (query.shape[-2]) <= {MAX_N1}", p.n1)
    batched_params.check_cache_contiguous(c, "key", p.key)


def check_values(p: LightningIndexerParams, tensors) -> None:
    """(P) The rules on values inside tensors (``p`` carries the lengths' values): lengths
    inside the tensors, page-table entries that will be read inside the cache."""
    batched_params.check_batch_lengths(CHECK, p)
    if tensors.block_table is not None:
        batched_params.check_block_table_entries(CHECK, p, tensors.block_table, "block_count")
