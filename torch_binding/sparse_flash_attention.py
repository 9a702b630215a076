"""custom::npu_sparse_flash_attention: schema, real implementation and fake (meta) function.

Both call styles of the seeds work: seed 001 passes ``sparse_block_size`` positionally (6th
argument) without ``attention_mode``; seed 000 passes it by keyword together with
``attention_mode=2``, ``return_softmax_lse`` and ``pre_tokens``/``next_tokens``. The op always
returns ``(attention_out, softmax_max, softmax_sum)``; the statistics are empty (0,) tensors
unless ``return_softmax_lse=True`` (spec section 2.3 and 16). ``attention_mode`` defaults to 2
(spec section 16); ``sinks`` is the torch_npu extension of spec section 11.
"""
from __future__ import annotations

import torch

from .dispatch import platform_for, select_backend
from .library import define_op
from .op_host.sparse_flash_attention import check as sfa_check
from .op_host.sparse_flash_attention.capabilities import CAPABILITIES
from .op_host.sparse_flash_attention.params import (
    OP, SparseFlashAttentionTensors, lse_shape, parse)
from .op_host.sparse_flash_attention.tiling import plan

SCHEMA = (
    "npu_sparse_flash_attention(Tensor query, Tensor key, Tensor value, Tensor sparse_indices, "
    "float scale_value, int sparse_block_size=1, *, Tensor? block_table=None, "
    "Tensor? actual_seq_lengths_query=None, Tensor? actual_seq_lengths_kv=None, "
    "Tensor? query_rope=None, Tensor? key_rope=None, str layout_query='BSND', "
    "str layout_kv='BSND', int sparse_mode=3, int pre_tokens=9223372036854775807, "
    "int next_tokens=9223372036854775807, int attention_mode=2, "
    "bool return_softmax_lse=False, Tensor? sinks=None) -> (Tensor, Tensor, Tensor)"
)


def _run_backend(name, params, tiling, tensors):
    if name == "emulate":
        from .op_kernel.sparse_flash_attention import emulate
        return emulate.run(params, tiling, tensors)
    if name == "triton":
        from .op_kernel.sparse_flash_attention import triton as triton_kernel
        return triton_kernel.run(params, tiling, tensors)
    raise AssertionError(f"back end {name} is listed as available but has no runner")


def npu_sparse_flash_attention(query, key, value, sparse_indices, scale_value,
                               sparse_block_size=1, *, block_table=None,
                               actual_seq_lengths_query=None, actual_seq_lengths_kv=None,
                               query_rope=None, key_rope=None, layout_query="BSND",
                               layout_kv="BSND", sparse_mode=3, pre_tokens=2**63 - 1,
                               next_tokens=2**63 - 1, attention_mode=2,
                               return_softmax_lse=False, sinks=None):
    params = parse(query, key, value, sparse_indices, scale_value, sparse_block_size,
                   block_table=block_table, actual_seq_lengths_query=actual_seq_lengths_query,
                   actual_seq_lengths_kv=actual_seq_lengths_kv, query_rope=query_rope,
                   key_rope=key_rope, layout_query=layout_query, layout_kv=layout_kv,
                   sparse_mode=sparse_mode, pre_tokens=pre_tokens, next_tokens=next_tokens,
                   attention_mode=attention_mode, return_softmax_lse=return_softmax_lse,
                   sinks=sinks)
    sfa_check.check(params)
    if block_table is not None:
        sfa_check.check_block_table_entries(params, block_table)
    backend = select_backend(OP, CAPABILITIES, params, query.device.type, query.dtype)
    tiling = plan(params, platform_for(query.device))
    tensors = SparseFlashAttentionTensors(query, key, value, sparse_indices, query_rope,
                                          key_rope, block_table, sinks)
    return _run_backend(backend, params, tiling, tensors)


def _fake(query, key, value, sparse_indices, scale_value, sparse_block_size=1, *,
          block_table=None, actual_seq_lengths_query=None, actual_seq_lengths_kv=None,
          query_rope=None, key_rope=None, layout_query="BSND", layout_kv="BSND", sparse_mode=3,
          pre_tokens=2**63 - 1, next_tokens=2**63 - 1, attention_mode=2,
          return_softmax_lse=False, sinks=None):
    shape = lse_shape(query.shape, layout_query, return_softmax_lse)
    return (query.new_empty(query.shape), query.new_empty(shape, dtype=torch.float32),
            query.new_empty(shape, dtype=torch.float32))


define_op(SCHEMA, npu_sparse_flash_attention, _fake)
