"""Every validation rule of npu_nsa_compress_attention (docs/nsa_compress_attention.md, Errors),
before any computation.

The numbers in the comments only label the rules. Order: tensor dtypes, layout and ranks, the
integer attributes, heads, head dims, the length lists, then the rules that need the lengths
(select_block_count against Sel, the UB limit on max C) and finally the masks. The project's
own choices (docs/nsa_compress_attention.md, Semantics, last item) are marked P here:
- P: compress_block_size % compress_stride == 0 (the kernel would floor Nw = l/d).
- P: G must be a power of two (the pairwise tree sum over a group's heads needs it); upstream's
  documented "128 % G == 0, G < 128" gives the same set.
- P: decreasing prefix sums are refused (the kernel's tiling clamps negative lengths to 0);
  prefix sums beyond the tensors are refused (no out-of-bounds read).
- P: actual_sel_seq_kvlen must hold the same number of batches.
- P: float32 / float64 inputs are accepted on CPU only (gradient checks and references); the
  NPU accepts fp16 / bf16.
D1 and D2 need not be multiples of 16 (the tiling pads them, as CANN's does).
"""
from __future__ import annotations

import torch

from ..common.errors import dtype_name
from ..common.seqlens import check_prefix_sums, counts_from_prefix_sums
from .params import CHECK, NsaCompressAttentionParams

FLOAT_DTYPES = (torch.float16, torch.bfloat16)
CPU_FLOAT_DTYPES = FLOAT_DTYPES + (torch.float32, torch.float64)
MASK_DTYPES = (torch.bool, torch.uint8)
COMPRESS_STRIDES = (16, 32, 48, 64)
MAX_BLOCK = 128
MAX_SELECT_BLOCK_COUNT = 32
MAX_HEAD_DIM = 768
MAX_CMP_LEN = 14000
GROUP_SIZES = (1, 2, 4, 8, 16, 32, 64)


def check(p: NsaCompressAttentionParams) -> None:
    c = CHECK
    q, k, v = p.query, p.key, p.value
    # 16. dtypes: fp16 / bf16, all equal (P: also fp32 / fp64 on CPU)
    if q.device is not None and q.device.type == "cpu":
        c.require_type(q.dtype in CPU_FLOAT_DTYPES, "query",
                       "dtype float16 or bfloat16 (float32 or float64: CPU only)",
                       dtype_name(q.dtype))
    else:
        c.require_type(q.dtype in FLOAT_DTYPES, "query", "dtype float16 or bfloat16",
                       dtype_name(q.dtype))
    c.require_type(k.dtype == q.dtype, "key", f"dtype {dtype_name(q.dtype)} (= query)",
                   dtype_name(k.dtype))
    c.require_type(v.dtype == q.dtype, "value", f"dtype {dtype_name(q.dtype)} (= query)",
                   dtype_name(v.dtype))
    # 7. layout TND: 3-D tensors ("Get unsupported layout" for anything else)
    for name, meta in (("query", q), ("key", k), ("value", v)):
        c.require(meta.rank == 3, name, "a 3-D tensor (T, N, D): only layout TND is supported",
                  f"shape {meta.shape}")
    c.require(q.shape[0] > 0, "query", "T1 (query.shape[0]) > 0", f"shape {q.shape}")
    # 1.-5. compression / selection attributes
    l, d, ls = p.compress_block_size, p.compress_stride, p.select_block_size
    c.require(l % 16 == 0 and 16 <= l <= MAX_BLOCK, "compress_block_size",
              f"a multiple of 16 in [16, {MAX_BLOCK}]", l)
    c.require(d in COMPRESS_STRIDES, "compress_stride", "16, 32, 48 or 64", d)
    c.require(ls % 16 == 0 and 16 <= ls <= MAX_BLOCK, "select_block_size",
              f"a multiple of 16 in [16, {MAX_BLOCK}]", ls)
    c.require(l >= d, "compress_block_size", f">= compress_stride={d}", l)
    c.require(ls >= l, "select_block_size", f">= compress_block_size={l}", ls)
    c.require(ls % d == 0, "select_block_size", f"a multiple of compress_stride={d}", ls)
    c.require(l % d == 0, "compress_block_size",
              f"a multiple of compress_stride={d} (project rule: l/d must be an integer)", l)
    kk = p.select_block_count
    c.require(1 <= kk <= MAX_SELECT_BLOCK_COUNT, "select_block_count",
              f"a value in [1, {MAX_SELECT_BLOCK_COUNT}]", kk)
    # 8. / 9. heads
    n1, n2 = q.shape[1], k.shape[1]
    c.require(n2 > 0, "key", "N2 (key.shape[1]) > 0", n2)
    c.require(v.shape[1] == n2, "value", f"N2 (value.shape[1]) == {n2} (= key)", v.shape[1])
    c.require(n1 > 0 and n1 % n2 == 0, "query",
              f"N1 (query.shape[1]) a positive multiple of N2={n2}", n1)
    c.require(n1 // n2 in GROUP_SIZES, "query",
              f"G = N1 / N2 in {{1, 2, 4, ..., 64}} (a power of two < 128), N1={n1}, N2={n2}",
              f"G={n1 // n2}")
    c.require(p.head_num == n1, "head_num", f"the query head count N1={n1}", p.head_num)
    # 10. head dims
    d1, d2 = q.shape[2], v.shape[2]
    c.require(k.shape[2] == d1, "key", f"D1 (key.shape[2]) == {d1} (= query)", k.shape[2])
    c.require(0 < d1 <= MAX_HEAD_DIM, "query", f"D1 (query.shape[2]) in (0, {MAX_HEAD_DIM}]",
              d1)
    c.require(0 < d2 <= d1, "value", f"D2 (value.shape[2]) in (0, D1={d1}]", d2)
    c.require(v.shape[0] == k.shape[0], "value", f"T2 (value.shape[0]) == {k.shape[0]} (= key)",
              v.shape[0])
    # 17. / 11. the length lists: required, one entry per batch
    aq, ac, asel = p.actual_seq_qlen, p.actual_cmp_seq_kvlen, p.actual_sel_seq_kvlen
    for name, lst in (("actual_seq_qlen", aq), ("actual_cmp_seq_kvlen", ac),
                      ("actual_sel_seq_kvlen", asel)):
        c.require(lst is not None, name, "a list of prefix sums (required for layout TND)",
                  "None")
        c.require(len(lst) > 0, name, "at least one batch", "an empty list")
    c.require(len(ac) == len(aq), "actual_cmp_seq_kvlen",
              f"{len(aq)} entries (= actual_seq_qlen): VarLen scene, q is not equal kv",
              len(ac))
    c.require(len(asel) == len(aq), "actual_sel_seq_kvlen",
              f"{len(aq)} entries (= actual_seq_qlen)", len(asel))
    # 17. (P) / 12. prefix sums non-decreasing and inside the tensors
    check_prefix_sums(c, "actual_seq_qlen", aq, q.shape[0], "T1 (query.shape[0])")
    check_prefix_sums(c, "actual_cmp_seq_kvlen", ac, k.shape[0], "T2 (key.shape[0])")
    check_prefix_sums(c, "actual_sel_seq_kvlen", asel, 2**63 - 1, "INT64_MAX")
    # 14. Sel[b] == ceil(C[b] / M)
    m_blocks = ls // d
    cmp_lens = counts_from_prefix_sums(ac)
    sel_lens = counts_from_prefix_sums(asel)
    for b, (cb, sb) in enumerate(zip(cmp_lens, sel_lens)):
        want = -(-cb // m_blocks)
        c.require(sb == want, "actual_sel_seq_kvlen",
                  f"Sel[{b}] = ceil(C[{b}] / M) = ceil({cb} / {m_blocks}) = {want}", sb)
    # 13. UB limit on the compressed length
    max_c = max(cmp_lens)
    c.require(max_c <= MAX_CMP_LEN, "actual_cmp_seq_kvlen",
              f"every compressed length C[b] <= {MAX_CMP_LEN}", f"max C = {max_c}")
    # 6. select_block_count <= min_b ceil(C[b] / M)
    min_sel = min(-(-cb // m_blocks) for cb in cmp_lens)
    c.require(kk <= min_sel, "select_block_count",
              f"<= min_b ceil(C[b] / M) = {min_sel} (M = select_block_size / compress_stride"
              f" = {m_blocks})", kk)
    # 15. masks: dtype and exact shape
    max_sq = max(counts_from_prefix_sums(aq))
    max_sel = -(-max_c // m_blocks)
    for name, meta, want in (("atten_mask", p.atten_mask, (max_sq, max_c)),
                             ("topk_mask", p.topk_mask, (max_sq, max_sel))):
        if meta is None:
            continue
        c.require_type(meta.dtype in MASK_DTYPES, name, "dtype bool or uint8",
                       dtype_name(meta.dtype))
        c.require(meta.shape == want, name,
                  f"shape {want} (max Sq, max {'C' if name == 'atten_mask' else 'ceil(C / M)'})",
                  meta.shape)


def check_values(p: NsaCompressAttentionParams, tensors) -> None:
    """No rule reads a value inside a tensor: the lengths are host lists, checked by ``check``."""
