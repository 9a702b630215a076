"""npu_sparse_flash_attention: the op's declaration (schema, params, checks, fake, back ends),
which the pipeline (pipeline.py) runs, and its faces (faces.py):

- ``torch.ops.cann_attention.npu_sparse_flash_attention``: every argument, the 3-tuple
  ``(attention_out, softmax_max, softmax_sum)`` (statistics empty (0,) tensors unless
  ``return_softmax_lse=True``); ``attention_mode`` defaults to 2, the only mode;
- ``torch.ops.custom.npu_sparse_flash_attention``: cann-recipes-infer's registration
  (``sparse_block_size`` required and positional, no lse / sinks / attention_mode) ``-> Tensor``;
- ``cann_attention.torch_npu.npu_sparse_flash_attention``: torch_npu 2.13 (``value`` optional:
  None reads V from ``key``, as attention_mode 2 does anyway; ``attention_mode`` defaults to 0,
  which the op refuses like the NPU: pass 2);
- ``cann_attention.mindspore.sparse_flash_attention``: MindSpore's function (seed 000).
"""
from __future__ import annotations

import torch

from .faces import Face
from .library import PRIVATE, register
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


CUSTOM_SCHEMA = (      # cann-recipes-infer ops_def_registration.cpp (seed 001)
    "npu_sparse_flash_attention(Tensor query, Tensor key, Tensor value, Tensor sparse_indices, "
    "float scale_value, int sparse_block_size, *, Tensor? block_table=None, "
    "Tensor? actual_seq_lengths_query=None, Tensor? actual_seq_lengths_kv=None, "
    "Tensor? query_rope=None, Tensor? key_rope=None, str layout_query='BSND', "
    "str layout_kv='BSND', int sparse_mode=3) -> Tensor"
)
TORCH_NPU_SCHEMA = (   # torch_npu 2.13.0, npu_native_functions_by_codegen.yaml
    "npu_sparse_flash_attention(Tensor query, Tensor key, Tensor? value, Tensor sparse_indices, "
    "float scale_value, *, Tensor? block_table=None, Tensor? actual_seq_lengths_query=None, "
    "Tensor? actual_seq_lengths_kv=None, Tensor? query_rope=None, Tensor? key_rope=None, "
    "int sparse_block_size=1, str layout_query=\"BSND\", str layout_kv=\"BSND\", "
    "int sparse_mode=3, int pre_tokens=9223372036854775807, "
    "int next_tokens=9223372036854775807, int attention_mode=0, "
    "bool return_softmax_lse=False, Tensor? sinks=None) -> (Tensor, Tensor, Tensor)"
)
MINDSPORE_SCHEMA = (   # mindspore.ops.sparse_flash_attention (seed 000)
    "sparse_flash_attention(Tensor query, Tensor key, Tensor value, Tensor sparse_indices, "
    "float scale_value, *, Tensor? block_table=None, Tensor? actual_seq_lengths_query=None, "
    "Tensor? actual_seq_lengths_kv=None, Tensor? query_rope=None, Tensor? key_rope=None, "
    "int sparse_block_size=1, str layout_query='BSND', str layout_kv='BSND', int sparse_mode=3, "
    "int pre_tokens=9223372036854775807, int next_tokens=9223372036854775807, "
    "int attention_mode=0, bool return_softmax_lse=False) -> (Tensor, Tensor, Tensor)"
)


def _value_from_key(values: dict) -> None:
    """torch_npu's optional value: V is the first columns of key in attention_mode 2."""
    if values["value"] is None:
        values["value"] = values["key"]


OP_DEF = OpDef(name=OP, schema=SCHEMA, params=SparseFlashAttentionParams,
               tensors=SparseFlashAttentionTensors, check=check.check,
               check_values=check.check_values, fake=_fake, backends=BACKENDS, checker=CHECK)
FACES = (
    Face(OP_DEF, PRIVATE, SCHEMA),
    Face(OP_DEF, "custom", CUSTOM_SCHEMA, fixed={"attention_mode": 2},
         outputs=lambda out: out[0]),
    Face(OP_DEF, "npu", TORCH_NPU_SCHEMA, adapt=_value_from_key),
    Face(OP_DEF, "mindspore", MINDSPORE_SCHEMA, registered=False),
)
npu_sparse_flash_attention = register(OP_DEF, FACES, __doc__)
