"""Every validation rule of npu_sparse_flash_attention (docs/sparse_flash_attention.md, Errors).

Rule numbers in the comments label the rules. Rule 1 (argument types) is applied while parsing.
After CANN's rules come the project's own (marked P): they refuse what CANN leaves to the caller
and what would otherwise let a kernel read outside a tensor or copy a cache per call. ``check``
reads no value (shapes, dtypes, attributes); ``check_values`` holds the rules on values inside
tensors (lengths, page-table entries), which the pipeline runs on CPU tensors always and on
device tensors when ``config.value_checks`` is on.
"""
from __future__ import annotations

import torch

from ..common import batched_params
from ..common.errors import dtype_name
from ..common.layouts import Layout
from .params import CHECK, DR, INT64_MAX, D, SparseFlashAttentionParams

FLOAT_DTYPES = (torch.float16, torch.bfloat16)
SPARSE_BLOCK_SIZES = (1, 2, 4, 8, 16, 32, 64, 128)
HEAD_COUNTS = (1, 2, 4, 8, 16, 32, 64, 128)
MAX_PAGE_SIZE = 1024


def check(p: SparseFlashAttentionParams) -> None:
    c = CHECK
    q, k, v = p.query, p.key, p.value
    # 2. dtypes of query/key/value: fp16 or bf16, all equal
    c.require_type(q.dtype in FLOAT_DTYPES, "query", "dtype float16 or bfloat16",
                   dtype_name(q.dtype))
    c.require_type(k.dtype == q.dtype, "key", f"dtype {dtype_name(q.dtype)} (= query)",
                   dtype_name(k.dtype))
    c.require_type(v.dtype == q.dtype, "value", f"dtype {dtype_name(q.dtype)} (= query)",
                   dtype_name(v.dtype))
    # 3. layouts
    q_layout = Layout.parse(p.layout_query, (Layout.BSND, Layout.TND), c, "layout_query")
    kv_layout = Layout.parse(p.layout_kv, (Layout.BSND, Layout.TND, Layout.PA_BSND), c,
                             "layout_kv")
    # 4. sparse_block_size
    c.require(p.sparse_block_size in SPARSE_BLOCK_SIZES, "sparse_block_size",
              "a power of 2 in [1, 128]", p.sparse_block_size)
    # 5. ranks and empty tensors
    want_rank = 4 if q_layout is Layout.BSND else 3
    c.require(q.rank == want_rank, "query", f"rank {want_rank} for layout {q_layout.value}",
              f"shape {q.shape}")
    c.require(all(s > 0 for s in q.shape), "query", "no zero dimension", f"shape {q.shape}")
    c.require(k.numel > 0, "key", "a non-empty tensor", f"shape {k.shape}")
    c.require(p.sparse_indices.numel > 0, "sparse_indices", "a non-empty tensor",
              f"shape {p.sparse_indices.shape}")
    # 6. / 7. sparse_mode, pre_tokens, next_tokens
    c.require(p.sparse_mode in (0, 3), "sparse_mode", "0 or 3", p.sparse_mode)
    c.require(p.pre_tokens == INT64_MAX, "pre_tokens", f"{INT64_MAX} (the default)",
              p.pre_tokens)
    c.require(p.next_tokens == INT64_MAX, "next_tokens", f"{INT64_MAX} (the default)",
              p.next_tokens)
    # 8. attention_mode and the rope pair
    if p.attention_mode == 0 and (p.query_rope is not None or p.key_rope is not None):
        c.fail("attention_mode", "query_rope and key_rope to be None in MHA/GQA mode "
               "(attention_mode=0); only attention_mode=2 is supported", "rope tensors")
    c.require(p.attention_mode == 2, "attention_mode", "2 (MLA-absorb)", p.attention_mode)
    c.require((p.query_rope is None) == (p.key_rope is None), "query_rope/key_rope",
              "both given or both None",
              "only " + ("query_rope" if p.key_rope is None else "key_rope"))
    c.require(p.query_rope is not None, "query_rope", "a tensor (required when attention_mode=2)",
              "None")
    # 9. layout pair
    if kv_layout is not Layout.PA_BSND:
        c.require(kv_layout is q_layout, "layout_kv",
                  f"PA_BSND or the query layout {q_layout.value}", kv_layout.value)
    # batch size (needs actual_seq_lengths_query for TND; rule 16 reports it missing)
    batch = None
    if q_layout is Layout.BSND:
        batch = q.shape[0]
    elif p.actual_seq_lengths_query is not None:
        batch = p.actual_seq_lengths_query.numel
    # 10. / 11. paged cache and block_table
    if kv_layout is Layout.PA_BSND:
        c.require(k.rank == 4, "key", "rank 4 (block_num, block_size, 1, 512) for PA_BSND",
                  f"shape {k.shape}")
    bt = p.block_table
    batched_params.check_block_table_shape(c, bt, kv_layout, batch)
    if kv_layout is Layout.PA_BSND:
        block_size = k.shape[1]
        c.require(0 < block_size <= MAX_PAGE_SIZE, "key",
                  f"block_size (key.shape[1]) in (0, {MAX_PAGE_SIZE}]", block_size)
        c.require(block_size % 16 == 0, "key", "block_size (key.shape[1]) a multiple of 16",
                  block_size)
        c.require(block_size % p.sparse_block_size == 0, "sparse_block_size",
                  f"a divisor of block_size={block_size}", p.sparse_block_size)
        c.require(k.shape[0] > 0, "key", "block_num (key.shape[0]) > 0", k.shape[0])
    # 12. heads and batch
    kv_rank = 3 if kv_layout is Layout.TND else 4
    c.require(k.rank == kv_rank, "key", f"rank {kv_rank} for layout {kv_layout.value}",
              f"shape {k.shape}")
    n1, n2 = q.shape[-2], k.shape[-2]
    c.require(n2 == 1, "key", "N2 (key.shape[-2]) == 1", n2)
    c.require(n1 in HEAD_COUNTS, "query", "N1 (query.shape[-2]) in {1, 2, 4, ..., 128}", n1)
    if batch is not None:
        c.require(batch > 0, "actual_seq_lengths_query", "B > 0", batch)
    # 13. head dims
    c.require(q.shape[-1] == D, "query", f"D (last dim) == {D}", q.shape[-1])
    c.require(k.shape[-1] == D, "key", f"D (last dim) == {D}", k.shape[-1])
    c.require(v.rank > 0, "value", "a dimension at index -1", f"shape {v.shape}")
    c.require(v.shape[-1] == q.shape[-1], "value", f"D (last dim) == {q.shape[-1]} (= query)",
              v.shape[-1])
    qr, kr = p.query_rope, p.key_rope
    c.require(qr.rank > 0, "query_rope", "a dimension at index -1", f"shape {qr.shape}")
    c.require(qr.shape[-1] == DR, "query_rope", f"Dr (last dim) == {DR}", qr.shape[-1])
    c.require(qr.rank == q.rank, "query_rope", f"rank {q.rank} (= query)", qr.rank)
    # 14. shape consistency
    c.require(v.shape == k.shape, "value", f"shape {k.shape} (= key)", v.shape)
    want_kr = k.shape[:-1] + (DR,)
    c.require(kr.shape == want_kr, "key_rope", f"shape {want_kr}", kr.shape)
    want_qr = q.shape[:-1] + (DR,)
    c.require(qr.shape == want_qr, "query_rope", f"shape {want_qr}", qr.shape)
    want_idx = q.shape[:-2] + (1,)
    si = p.sparse_indices
    c.require(si.shape[:-1] == want_idx and si.rank == q.rank, "sparse_indices",
              f"shape {want_idx + ('K',)}", si.shape)
    # 15. dtype consistency
    c.require_type(kr.dtype == k.dtype, "key_rope", f"dtype {dtype_name(k.dtype)} (= key)",
                   dtype_name(kr.dtype))
    c.require_type(qr.dtype == q.dtype, "query_rope", f"dtype {dtype_name(q.dtype)} (= query)",
                   dtype_name(qr.dtype))
    for name, meta in (("sparse_indices", si), ("block_table", bt),
                       ("actual_seq_lengths_query", p.actual_seq_lengths_query),
                       ("actual_seq_lengths_kv", p.actual_seq_lengths_kv)):
        if meta is not None:
            c.require_type(meta.dtype == torch.int32, name, "dtype int32",
                           dtype_name(meta.dtype))
    # 16. required lengths
    aq, akv = p.actual_seq_lengths_query, p.actual_seq_lengths_kv
    if q_layout is Layout.TND:
        c.require(aq is not None, "actual_seq_lengths_query",
                  "a tensor when layout_query is TND", "None")
    if kv_layout in (Layout.TND, Layout.PA_BSND):
        c.require(akv is not None, "actual_seq_lengths_kv",
                  f"a tensor when layout_kv is {kv_layout.value}", "None")
    # 17. length vectors: non-empty, one entry per batch
    for name, meta in (("actual_seq_lengths_query", aq), ("actual_seq_lengths_kv", akv)):
        if meta is not None:
            c.require(meta.rank == 1 and meta.numel > 0, name, "a non-empty 1-D tensor",
                      f"shape {meta.shape}")
            c.require(meta.numel == batch, name, f"{batch} elements (B)", meta.numel)
    if q_layout is Layout.TND and bt is not None:
        c.require(bt.shape[0] == batch, "block_table", f"shape[0] == B={batch}",
                  f"shape {bt.shape}")
    # 18. (none) CANN's tiling refuses return_softmax_lse with PA_BSND; vllm-ascend's build of
    # the op returns the statistics there (its decode context parallelism merges them), and
    # they depend on the query layout only, so lse is accepted with every key layout.
    _check_project_rules(p)


def _check_project_rules(p: SparseFlashAttentionParams) -> None:
    """(P) Caches read in place, sinks well formed."""
    c = CHECK
    for name, meta in (("key", p.key), ("value", p.value), ("key_rope", p.key_rope)):
        batched_params.check_cache_contiguous(c, name, meta)
    if p.sinks is not None:
        c.require(p.sinks.shape == (p.n1,), "sinks", f"shape ({p.n1},) (N1)", p.sinks.shape)
        c.require_type(p.sinks.dtype == torch.float32, "sinks", "dtype float32",
                       dtype_name(p.sinks.dtype))


def check_values(p: SparseFlashAttentionParams, tensors) -> None:
    """(P) The rules on values inside tensors (``p`` carries the lengths' values): lengths
    inside the tensors, page-table entries that will be read inside the cache."""
    batched_params.check_batch_lengths(CHECK, p)
    if tensors.block_table is not None:
        batched_params.check_block_table_entries(CHECK, p, tensors.block_table)
