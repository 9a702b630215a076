"""custom::npu_flash_attention: schema, real implementation and fake (meta) function.

The signature is spec/flash_attention.md section 9.4 with the binding decisions of section 12:
no ``window_size`` argument (sliding windows are ``sparse_mode=4`` with pre/next tokens) and an
optional ``chunk_size`` extension. The op returns ``(attention_out, softmax_max, softmax_sum)``
like its sibling npu_sparse_flash_attention; the statistics are (B, N2, S1, G) / (N2, T1, G)
float32, or empty (0,) tensors unless ``return_softmax_lse=True``. Rows with nothing visible are
zeros with (softmax_max, softmax_sum) = (-2e38, 0): the namespace's invalid-row convention.
"""
from __future__ import annotations

import torch

from .dispatch import platform_for, select_backend
from .library import define_op
from .op_host.flash_attention import check as fa_check
from .op_host.flash_attention.capabilities import CAPABILITIES
from .op_host.flash_attention.params import OP, FlashAttentionTensors, lse_shape, parse
from .op_host.flash_attention.tiling import plan

INT64_MAX = 2**63 - 1

SCHEMA = (
    "npu_flash_attention(Tensor query, Tensor key, Tensor value, float scale_value, *, "
    "Tensor? atten_mask=None, Tensor? pse_shift=None, Tensor? block_table=None, "
    "Tensor? actual_seq_lengths_query=None, Tensor? actual_seq_lengths_kv=None, "
    "Tensor? learnable_sink=None, str layout_query='BSND', str layout_kv='BSND', "
    "int sparse_mode=0, int pre_tokens=9223372036854775807, "
    "int next_tokens=9223372036854775807, int? chunk_size=None, "
    "bool return_softmax_lse=False) -> (Tensor, Tensor, Tensor)"
)


def _run_backend(name, params, tiling, tensors):
    if name == "emulate":
        from .op_kernel.flash_attention import emulate
        return emulate.run(params, tiling, tensors)
    raise AssertionError(f"back end {name} is listed as available but has no runner")


def npu_flash_attention(query, key, value, scale_value, *, atten_mask=None, pse_shift=None,
                        block_table=None, actual_seq_lengths_query=None,
                        actual_seq_lengths_kv=None, learnable_sink=None, layout_query="BSND",
                        layout_kv="BSND", sparse_mode=0, pre_tokens=INT64_MAX,
                        next_tokens=INT64_MAX, chunk_size=None, return_softmax_lse=False):
    params = parse(query, key, value, scale_value, atten_mask=atten_mask, pse_shift=pse_shift,
                   block_table=block_table, actual_seq_lengths_query=actual_seq_lengths_query,
                   actual_seq_lengths_kv=actual_seq_lengths_kv, learnable_sink=learnable_sink,
                   layout_query=layout_query, layout_kv=layout_kv, sparse_mode=sparse_mode,
                   pre_tokens=pre_tokens, next_tokens=next_tokens, chunk_size=chunk_size,
                   return_softmax_lse=return_softmax_lse)
    fa_check.check(params)
    if block_table is not None:
        fa_check.check_block_table_entries(params, block_table)
    backend = select_backend(OP, CAPABILITIES, params, query.device.type, query.dtype)
    tiling = plan(params, platform_for(query.device))
    tensors = FlashAttentionTensors(query, key, value, atten_mask, pse_shift, block_table,
                                    learnable_sink)
    return _run_backend(backend, params, tiling, tensors)


def _fake(query, key, value, scale_value, *, atten_mask=None, pse_shift=None, block_table=None,
          actual_seq_lengths_query=None, actual_seq_lengths_kv=None, learnable_sink=None,
          layout_query="BSND", layout_kv="BSND", sparse_mode=0, pre_tokens=INT64_MAX,
          next_tokens=INT64_MAX, chunk_size=None, return_softmax_lse=False):
    shape = lse_shape(query.shape, layout_query, key.shape[-2], return_softmax_lse)
    return (query.new_empty(query.shape), query.new_empty(shape, dtype=torch.float32),
            query.new_empty(shape, dtype=torch.float32))


define_op(SCHEMA, npu_flash_attention, _fake)
