"""Every validation rule of npu_incre_flash_attention (docs/incre_flash_attention.md, Errors).

MindSpore's TypeError / ValueError / RuntimeError split is kept where MindSpore states it:
dtype and Python-type errors are ``TypeError``, MindSpore's four ValueError rules (length of
actual_seq_lengths, input_layout, num_heads vs Q_H, num_heads vs num_key_value_heads) are
``ValueError``, everything else is ``RuntimeError`` (all three are ``CannAttentionError``).
After CANN's rules come the project's own (marked P): lengths inside the cache, page tables that
cover the lengths, the caches read in place, and page-table entries inside the cache
(``check_values``, the one rule on values inside a tensor).
"""
from __future__ import annotations

import torch

from ..common.batched_params import check_cache_contiguous
from ..common.errors import dtype_name
from ..common.layouts import Layout
from ..common.paging import check_used_pages
from ..common.seqlens import check_counts
from .params import CHECK, IncreFlashAttentionParams

FLOAT_DTYPES = (torch.float16, torch.bfloat16)
MASK_DTYPES = (torch.bool, torch.int8, torch.uint8)
LAYOUTS = (Layout.BSH, Layout.BNSD, Layout.BSND)
MAX_BATCH = 65536
MAX_HEADS = 256
MAX_KV_HEADS = 256
MAX_GROUP = 64
MAX_HEAD_DIM = 512
MAX_PAGE_SIZE = 512
MAX_BLOCKS_PER_SEQ = 16384
MAX_KVH_PAGED = 65535
INT32_MAX = 2**31 - 1


def check(p: IncreFlashAttentionParams) -> None:
    c = CHECK
    q, k, v = p.query, p.key, p.value
    # dtypes of query / key / value (TypeError)
    c.require_type(q.dtype in FLOAT_DTYPES, "query", "dtype float16 or bfloat16", dtype_name(q.dtype))
    c.require_type(v.dtype == k.dtype, "value", f"dtype {dtype_name(k.dtype)} (= key)", dtype_name(v.dtype))
    c.require_type(k.dtype in (q.dtype, torch.int8), "key",
                   f"dtype {dtype_name(q.dtype)} (= query) or int8", dtype_name(k.dtype))
    if k.dtype == torch.int8:
        c.require(p.antiquant_scale is not None, "antiquant_scale",
                  "a tensor when key/value are int8", "None")
    elif p.antiquant_scale is not None:
        c.fail("key", "dtype int8 when antiquant_scale is given", dtype_name(k.dtype))
    # input_layout (ValueError)
    c.require_value(p.input_layout in tuple(x.value for x in LAYOUTS), "input_layout",
                    "one of BSH/BNSD/BSND", repr(p.input_layout))
    layout = p.layout
    # heads: num_heads > 0 is a RuntimeError, divisibility a ValueError
    c.require(p.num_heads > 0, "num_heads", "> 0", p.num_heads)
    c.require(p.num_key_value_heads >= 0, "num_key_value_heads", ">= 0 (0 means num_heads)",
              p.num_key_value_heads)
    c.require_value(p.num_heads % p.n2 == 0, "num_heads",
                    f"a multiple of num_key_value_heads={p.n2}", p.num_heads)
    c.require(p.num_heads <= MAX_HEADS, "num_heads", f"<= {MAX_HEADS}", p.num_heads)
    c.require(p.n2 <= MAX_KV_HEADS, "num_key_value_heads", f"<= {MAX_KV_HEADS}", p.n2)
    c.require(p.group <= MAX_GROUP, "num_heads",
              f"num_heads / num_key_value_heads <= {MAX_GROUP}", p.group)
    # query shape
    want_rank = 3 if layout is Layout.BSH else 4
    c.require(q.rank == want_rank, "query", f"rank {want_rank} for input_layout {layout.value}",
              f"shape {q.shape}")
    c.require(q.numel > 0, "query", "a non-empty tensor", f"shape {q.shape}")
    s_axis = 2 if layout is Layout.BNSD else 1
    c.require(q.shape[s_axis] == 1, "query", f"Q_S (dim {s_axis}) == 1 for input_layout "
              f"{layout.value}", f"shape {q.shape}")
    if layout is Layout.BSH:
        c.require_value(q.shape[2] % p.num_heads == 0, "num_heads",
                        f"a divisor of Q_H={q.shape[2]}", p.num_heads)
    else:
        n_axis = 1 if layout is Layout.BNSD else 2
        c.require(q.shape[n_axis] == p.num_heads, "query",
                  f"N (dim {n_axis}) == num_heads={p.num_heads}", f"shape {q.shape}")
    d = p.head_dim
    c.require(d <= MAX_HEAD_DIM, "query", f"head dim D <= {MAX_HEAD_DIM}", d)
    c.require(p.batch <= MAX_BATCH, "query", f"B <= {MAX_BATCH}", p.batch)
    # key / value shape
    c.require(v.shape == k.shape, "value", f"shape {k.shape} (= key)", v.shape)
    if p.paged:
        _check_paged(p, layout, d)
    else:
        _check_contiguous_kv(p, layout, d)
    _check_lengths(p)
    for name, meta in (("key", p.key), ("value", p.value)):
        check_cache_contiguous(c, name, meta)
    _check_mask(p)
    _check_pse(p, d)
    _check_antiquant(p, layout, d)
    _check_quant(p, d)
    c.require(p.inner_precise in (0, 1), "inner_precise",
              f"precision mode[{p.inner_precise}] should be 0 or 1", p.inner_precise)


def _check_contiguous_kv(p: IncreFlashAttentionParams, layout: Layout, d: int) -> None:
    c, k = CHECK, p.key
    want = {Layout.BSH: ("(B, S, kvH)", 3), Layout.BNSD: ("(B, kvN, S, D)", 4),
            Layout.BSND: ("(B, S, kvN, D)", 4)}[layout]
    c.require(k.rank == want[1], "key", f"rank {want[1]} {want[0]} for input_layout "
              f"{layout.value}", f"shape {k.shape}")
    c.require(k.shape[0] == p.batch, "key", f"batch (dim 0) == B={p.batch}", f"shape {k.shape}")
    if layout is Layout.BSH:
        c.require(k.shape[2] == p.n2 * d, "key", f"kvH (dim 2) == num_key_value_heads*D="
                  f"{p.n2 * d}", f"shape {k.shape}")
    else:
        n_axis = 1 if layout is Layout.BNSD else 2
        c.require(k.shape[n_axis] == p.n2, "key", f"kvN (dim {n_axis}) == "
                  f"num_key_value_heads={p.n2}", f"shape {k.shape}")
        c.require(k.shape[3] == d, "key", f"D (dim 3) == {d} (= query)", f"shape {k.shape}")


def _check_paged(p: IncreFlashAttentionParams, layout: Layout, d: int) -> None:
    c, k, bt = CHECK, p.key, p.block_table
    c.require_type(bt.dtype == torch.int32, "block_table", "dtype int32", dtype_name(bt.dtype))
    c.require(bt.rank == 2, "block_table", "rank 2 (B, max_block_num_per_seq)",
              f"shape {bt.shape}")
    c.require(bt.shape[0] == p.batch, "block_table", f"shape[0] == B={p.batch}",
              f"shape {bt.shape}")
    c.require(0 < bt.shape[1] <= MAX_BLOCKS_PER_SEQ, "block_table",
              f"max_block_num_per_seq (shape[1]) in [1, {MAX_BLOCKS_PER_SEQ}]", f"shape {bt.shape}")
    bs = p.block_size
    c.require(bs != 0, "block_size", "!= 0 when block_table is given", bs)
    align = 32 if k.dtype == torch.int8 else 16
    c.require(bs > 0 and bs % align == 0, "block_size",
              f"a positive multiple of {align} for {dtype_name(k.dtype)} key/value", bs)
    c.require(bs <= MAX_PAGE_SIZE, "block_size", f"<= {MAX_PAGE_SIZE}", bs)
    c.require(p.actual_seq_lengths is not None, "actual_seq_lengths",
              "a list when block_table is given (page attention)", "None")
    if k.rank == 3:
        c.require(k.shape[1] == bs, "key", f"block_size (dim 1) == block_size={bs}",
                  f"shape {k.shape}")
        c.require(k.shape[2] == p.n2 * d, "key",
                  f"kvH (dim 2) == num_key_value_heads*D={p.n2 * d}", f"shape {k.shape}")
    elif k.rank == 4 and layout is Layout.BNSD:
        c.require(k.shape[1:] == (p.n2, bs, d), "key",
                  f"(block_num, {p.n2}, {bs}, {d}) (block_num, kvN, block_size, D)",
                  f"shape {k.shape}")
    elif k.rank == 4:   # (P) BSH / BSND: vLLM's cache shape, the 3-D layout with kvH split
        c.require(k.shape[1:] == (bs, p.n2, d), "key",
                  f"(block_num, {bs}, {p.n2}, {d}) (block_num, block_size, kvN, D) for "
                  f"input_layout {layout.value} ((block_num, kvN, block_size, D) needs BNSD)",
                  f"shape {k.shape}")
    else:
        c.fail("key", "rank 3 (block_num, block_size, kvH) or 4 ((block_num, kvN, block_size, D) "
               "with BNSD, (block_num, block_size, kvN, D) with BSH / BSND) when block_table "
               "is given", f"shape {k.shape}")
    if not p.paged_bnsd:
        c.require(p.n2 * d <= MAX_KVH_PAGED, "key", f"kvH <= {MAX_KVH_PAGED} for the paged "
                  "layout (block_num, block_size, kvH)", p.n2 * d)
    c.require(k.shape[0] > 0, "key", "block_num (dim 0) > 0", f"shape {k.shape}")
    c.require(k.numel <= INT32_MAX, "key", "a number of elements that fits in int32", k.numel)


def _check_lengths(p: IncreFlashAttentionParams) -> None:
    c, asl = CHECK, p.actual_seq_lengths
    if asl is not None:
        c.require_value(len(asl) in (1, p.batch), "actual_seq_lengths",
                        f"length 1 or B={p.batch}", len(asl))
        cap = "max_block_num_per_seq*block_size" if p.paged else "S"
        check_counts(c, "actual_seq_lengths", asl, p.s2, cap)
    if p.paged:   # (P) enough blocks for the lengths: block_num >= sum_b ceil(L_b / block_size)
        need = sum(-(-n // p.block_size) for n in p.kv_lens)
        c.require(p.key.shape[0] >= need, "key", f"block_num (dim 0) >= sum_b ceil(L_b / "
                  f"block_size) = {need}", p.key.shape[0])
    if p.kv_padding_size is not None:
        c.require(len(p.kv_padding_size) <= 1, "kv_padding_size", "shape () or (1,)",
                  f"{len(p.kv_padding_size)} values")


def _check_mask(p: IncreFlashAttentionParams) -> None:
    c, m = CHECK, p.attn_mask
    if m is None:
        return
    c.require_type(m.dtype in MASK_DTYPES, "attn_mask", "dtype bool, int8 or uint8",
                   dtype_name(m.dtype))
    ok = (m.rank in (2, 3, 4) and m.shape[0] == p.batch
          and all(x == 1 for x in m.shape[1:-1]))
    c.require(ok, "attn_mask", f"shape (B, S'), (B, 1, S') or (B, 1, 1, S') with B={p.batch}",
              f"shape {m.shape}")
    c.require(m.shape[-1] >= p.s2, "attn_mask", f"S' (last dim) >= {p.s2} (max KV length)",
              f"shape {m.shape}")


def _check_pse(p: IncreFlashAttentionParams, d: int) -> None:
    c, pse = CHECK, p.pse_shift
    if pse is None:
        return
    c.require_type(pse.dtype in FLOAT_DTYPES, "pse_shift", "dtype float16 or bfloat16",
                   dtype_name(pse.dtype))
    c.require_type(pse.dtype == p.query.dtype, "pse_shift",
                   f"dtype {dtype_name(p.query.dtype)} (= query)", dtype_name(pse.dtype))
    c.require(pse.rank == 4, "pse_shift", "rank 4 (1 or B, N, 1, S)", f"shape {pse.shape}")
    c.require(pse.shape[0] in (1, p.batch) and pse.shape[1] == p.n1 and pse.shape[2] == 1,
              "pse_shift", f"shape (1 or {p.batch}, {p.n1}, 1, S)", f"shape {pse.shape}")
    c.require(pse.shape[3] >= p.s2, "pse_shift", f"S (last dim) >= {p.s2} (max KV length)",
              f"shape {pse.shape}")
    c.require(d % 16 == 0, "pse_shift", "head dim D a multiple of 16 when pse_shift is given", d)


def antiquant_shape(layout: Layout, n2: int, d: int) -> tuple[int, ...]:
    """Per-channel antiquant scale/offset shape (index 0 key, 1 value)."""
    if layout is Layout.BNSD:
        return (2, n2, 1, d)
    if layout is Layout.BSND:
        return (2, n2, d)
    return (2, n2 * d)


def _check_antiquant(p: IncreFlashAttentionParams, layout: Layout, d: int) -> None:
    c, sc, off = CHECK, p.antiquant_scale, p.antiquant_offset
    if sc is None:
        c.require(off is None, "antiquant_offset", "None when antiquant_scale is None",
                  "a tensor")
        return
    c.require_type(sc.dtype == p.query.dtype, "antiquant_scale",
                   f"dtype {dtype_name(p.query.dtype)} (= query)", dtype_name(sc.dtype))
    want = antiquant_shape(layout, p.n2, d)
    c.require(sc.shape in (want, (2,)), "antiquant_scale",
              f"The shape of antiquant parameter {want} (per-channel) or (2,) (per-tensor)",
              f"shape {sc.shape}")
    if off is not None:
        c.require_type(off.dtype == sc.dtype, "antiquant_offset",
                       f"dtype {dtype_name(sc.dtype)} (= antiquant_scale)", dtype_name(off.dtype))
        c.require(off.shape == sc.shape, "antiquant_offset",
                  f"The shape of antiquant parameter {sc.shape} (= antiquant_scale)",
                  f"shape {off.shape}")


def _check_quant(p: IncreFlashAttentionParams, d: int) -> None:
    c = CHECK
    allowed = (torch.float32, torch.bfloat16) if p.query.dtype == torch.bfloat16 else (
        torch.float32,)
    names = " or ".join(dtype_name(x) for x in allowed)
    if p.quant_scale1 is not None:
        c.require_type(p.quant_scale1.dtype == torch.float32, "quant_scale1", "dtype float32",
                       dtype_name(p.quant_scale1.dtype))
    for name in ("quant_scale2", "quant_offset2"):
        meta = getattr(p, name)
        if meta is not None:
            c.require_type(meta.dtype in allowed, name, f"a {names} tensor", dtype_name(meta.dtype))
    for name in ("dequant_scale1", "quant_scale1", "dequant_scale2"):
        c.require(getattr(p, name) is None, name,
                  "None (not enabled: IFA supports no int8 query)", "a tensor")
    sc, off = p.quant_scale2, p.quant_offset2
    if sc is None:
        c.require(off is None, "quant_offset2", "None when quant_scale2 is None", "a tensor")
        return
    nd = p.n1 * d
    c.require(sc.numel in (1, nd), "quant_scale2",
              f"1 element (per-tensor) or N*D={nd} elements (per-channel)", f"shape {sc.shape}")
    if off is not None:
        c.require_type(off.dtype == sc.dtype, "quant_offset2",
                       f"dtype {dtype_name(sc.dtype)} (= quant_scale2)", dtype_name(off.dtype))
        c.require(off.shape == sc.shape, "quant_offset2", f"shape {sc.shape} (= quant_scale2)",
                  f"shape {off.shape}")
    if sc.numel > 1:
        c.require(not p.paged, "quant_scale2", "per-tensor (1 element) when block_table is given "
                  "(per-channel post-quant cannot be combined with page attention)",
                  f"shape {sc.shape}")


def check_values(p: IncreFlashAttentionParams, tensors) -> None:
    """(P) The rule on values inside tensors: page-table entries that will be read lie inside
    the cache (common/paging.py)."""
    if p.paged:
        check_used_pages(CHECK, tensors.block_table, p.kv_lens, p.block_size, p.key.shape[0],
                         "actual_seq_lengths")