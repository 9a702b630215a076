"""The MindSpore face: ``import cann_attention.mindspore as ops`` gives MindSpore's functions
(``mindspore.ops.sparse_flash_attention``, ``nsa_compress_attention``, ``incre_flash_attention``;
seeds 000, 002, 004) with their names, signatures and return values, on torch tensors.

- ``sparse_flash_attention``: returns ``(attention_out, softmax_max, softmax_sum)``;
  ``attention_mode`` defaults to 0 as in MindSpore, which refuses it: pass 2.
- ``nsa_compress_attention``: the masks and length lists also by position (MindSpore's own
  documented example passes them so, although its signature marks them keyword-only).
- ``incre_flash_attention``: ``key`` / ``value`` as a tensor, a list of one tensor, or a list of B
  batch-1 tensors (CANN's tensor-list mode: each batch its own S; padded here to the longest S
  with per-batch lengths, ``kv_padding_size`` ignored; docs/incre_flash_attention.md,
  Semantics); ``actual_seq_lengths`` / ``kv_padding_size`` as lists, tuples or int64 tensors.
  One project extension, keyword-only: ``emulate_npu`` (docs/incre_flash_attention.md).

Non-tensor arguments where tensors belong raise TypeError naming the argument, as MindSpore does.
"""
from __future__ import annotations

import torch

from .library import FACES
from .op_host.incre_flash_attention.params import CHECK, check_scalar_types, int_vector

MAX_TENSOR_LIST = 256       # B in tensor-list mode


def _face(name: str):
    return next(f for f in FACES if f.namespace == "mindspore" and f.name == name)


sparse_flash_attention = _face("sparse_flash_attention").python_function()
nsa_compress_attention = _face("nsa_compress_attention").python_function()


def _seq_axis(input_layout: str) -> int:
    return 2 if input_layout == "BNSD" else 1


def _tensor_list(kv, arg: str, batch: int):
    """A tensor, or the list form of MindSpore: one tensor, or B tensors of batch 1."""
    if isinstance(kv, torch.Tensor):
        return kv, None
    CHECK.require_type(isinstance(kv, (list, tuple)) and len(kv) > 0
                       and all(isinstance(x, torch.Tensor) for x in kv), arg,
                       "a tensor or a non-empty list/tuple of tensors", type(kv).__name__)
    if len(kv) == 1:
        return kv[0], None
    CHECK.require(len(kv) == batch, arg, f"a list of 1 or B={batch} tensors", f"{len(kv)} tensors")
    CHECK.require(batch <= MAX_TENSOR_LIST, arg, f"B <= {MAX_TENSOR_LIST} in tensor-list mode",
                  batch)
    return None, list(kv)


def _pad_tensor_list(tensors, arg: str, input_layout: str):
    """Tensor-list mode: batch-1 tensors equal but for S -> one tensor padded to the longest S."""
    axis = _seq_axis(input_layout)
    first = tensors[0]
    for i, x in enumerate(tensors):
        same = (x.dim() == first.dim() and x.dim() > axis and x.shape[0] == 1
                and all(x.shape[j] == first.shape[j] for j in range(x.dim()) if j != axis))
        CHECK.require(same, arg, f"batch-1 tensors of shape {tuple(first.shape)} except the "
                      f"S axis (dim {axis})", f"shape {tuple(x.shape)} at index {i}")
        CHECK.require_type(x.dtype == first.dtype, arg, f"dtype {first.dtype} for every tensor",
                           f"{x.dtype} at index {i}")
    lens = [x.shape[axis] for x in tensors]
    s = max(lens)
    padded = []
    for x in tensors:
        shape = list(x.shape)
        shape[axis] = s - x.shape[axis]
        padded.append(torch.cat([x, x.new_zeros(shape)], axis))
    return torch.cat(padded, 0), lens


def incre_flash_attention(query, key, value, attn_mask=None, actual_seq_lengths=None,
                          pse_shift=None, dequant_scale1=None, quant_scale1=None,
                          dequant_scale2=None, quant_scale2=None, quant_offset2=None,
                          antiquant_scale=None, antiquant_offset=None, block_table=None,
                          num_heads=1, input_layout="BSH", scale_value=1.0,
                          num_key_value_heads=0, block_size=0, inner_precise=1,
                          kv_padding_size=None, *, emulate_npu=False):
    """MindSpore's ``ops.incre_flash_attention`` (seed 004)."""
    check_scalar_types(num_heads, input_layout, scale_value, num_key_value_heads, block_size,
                       inner_precise)
    CHECK.require_type(isinstance(query, torch.Tensor), "query", "a torch.Tensor",
                       type(query).__name__)
    asl = int_vector(actual_seq_lengths, CHECK, "actual_seq_lengths")
    pad = int_vector(kv_padding_size, CHECK, "kv_padding_size")
    key_t, key_list = _tensor_list(key, "key", query.shape[0])
    value_t, value_list = _tensor_list(value, "value", query.shape[0])
    CHECK.require((key_list is None) == (value_list is None), "value",
                  "the same form as key (tensor or list of B tensors)",
                  "a list" if value_list is not None else "a tensor")
    if key_list is not None:
        CHECK.require(block_table is None, "block_table",
                      "None in tensor-list mode (key/value given as B tensors)", "a tensor")
        key_t, s_each = _pad_tensor_list(key_list, "key", input_layout)
        value_t, s_value = _pad_tensor_list(value_list, "value", input_layout)
        CHECK.require(s_value == s_each, "value", f"the S of key per batch {s_each}", s_value)
        if asl is None:
            asl = tuple(s_each)
        else:
            CHECK.require_value(len(asl) in (1, len(s_each)), "actual_seq_lengths",
                                f"length 1 or B={len(s_each)}", len(asl))
            asl = asl * len(s_each) if len(asl) == 1 else asl
            for b, (n, cap) in enumerate(zip(asl, s_each)):
                CHECK.require(0 <= n <= cap, "actual_seq_lengths",
                              f"a length in [0, S_b={cap}] (tensor {b}'s own S)", n)
        pad = None       # left padding is ignored in tensor-list mode
    return torch.ops.cann_attention.npu_incre_flash_attention(
        query, key_t, value_t, attn_mask, None if asl is None else list(asl), pse_shift,
        dequant_scale1, quant_scale1, dequant_scale2, quant_scale2, quant_offset2,
        antiquant_scale, antiquant_offset, block_table, num_heads, input_layout,
        float(scale_value), num_key_value_heads, block_size, inner_precise,
        None if pad is None else list(pad), emulate_npu=emulate_npu)
