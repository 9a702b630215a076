"""custom::npu_sparse_flash_attention: the op's declaration (schema, params, checks, fake,
back ends); the pipeline (pipeline.py) runs it.

Both upstream call styles work: cann-recipes' custom op passes ``sparse_block_size``
positionally (6th argument) without ``attention_mode``; MindSpore's passes it by keyword with
``attention_mode=2``, ``return_softmax_lse`` and ``pre_tokens``/``next_tokens``. The op always
returns ``(attention_out, softmax_max, softmax_sum)``; the statistics are empty (0,) tensors
unless ``return_softmax_lse=True``. ``attention_mode`` defaults to 2; ``sinks`` is torch_npu's
extension (docs/sparse_flash_attention.md).
"""
from __future__ import annotations

import torch

from .library import register
from .op_host.sparse_flash_attention import check
from .op_host.sparse_flash_attention.capabilities import BACKENDS
from .op_host.sparse_flash_attention.params import (
    CHECK, OP, SparseFlashAttentionParams, SparseFlashAttentionTensors, lse_shape)
from .pipeline import OpDef

SCHEMA = (
    "npu_sparse_flash_attention(Tensor query, Tensor key, Tensor value, Tensor sparse_indices, "
    "float scale_value, int sparse_block_size=1, *, Tensor? block_table=None, "
    "Tensor? actual_seq_lengths_query=None, Tensor? actual_seq_lengths_kv=None, "
    "Tensor? query_rope=None, Tensor? key_rope=None, str layout_query='BSND', "
    "str layout_kv='BSND', int sparse_mode=3, int pre_tokens=9223372036854775807, "
    "int next_tokens=9223372036854775807, int attention_mode=2, "
    "bool return_softmax_lse=False, Tensor? sinks=None) -> (Tensor, Tensor, Tensor)"
)


def _fake(a: dict):
    query = a["query"]
    shape = lse_shape(query.shape, a["layout_query"], a["return_softmax_lse"])
    return (query.new_empty(query.shape), query.new_empty(shape, dtype=torch.float32),
            query.new_empty(shape, dtype=torch.float32))


OP_DEF = OpDef(name=OP, schema=SCHEMA, params=SparseFlashAttentionParams,
               tensors=SparseFlashAttentionTensors, check=check.check,
               check_values=check.check_values, fake=_fake, backends=BACKENDS, checker=CHECK)
npu_sparse_flash_attention = register(OP_DEF, __doc__)
