"""npu_flash_attention (``torch.ops.custom`` and ``torch.ops.cann_attention``, one schema: no
torch_npu or MindSpore op has this form): the op's declaration (schema, params, checks, fake, back
ends); the pipeline (pipeline.py) runs it.

The signature is MAX's flash attention in CANN's argument names (docs/flash_attention.md):
no ``window_size`` argument (sliding windows are ``sparse_mode=4`` with pre/next tokens) and an
optional ``chunk_size`` extension. The op returns ``(attention_out, softmax_max, softmax_sum)``
like its sibling npu_sparse_flash_attention; the statistics are (B, N2, S1, G) / (N2, T1, G)
float32, or empty (0,) tensors unless ``return_softmax_lse=True``. Rows with nothing visible are
zeros with (softmax_max, softmax_sum) = (-2e38, 0): the namespace's invalid-row convention.
"""
from __future__ import annotations

import torch

from .faces import Face
from .library import PRIVATE, register
from .op_host.flash_attention import check
from .op_host.flash_attention.capabilities import BACKENDS
from .op_host.flash_attention.params import (
    CHECK, OP, FlashAttentionParams, FlashAttentionTensors, lse_shape)
from .pipeline import OpDef

SCHEMA = (
    "npu_flash_attention(Tensor query, Tensor key, Tensor value, float scale_value, *, "
    "Tensor? atten_mask=None, Tensor? pse_shift=None, Tensor? block_table=None, "
    "Tensor? actual_seq_lengths_query=None, Tensor? actual_seq_lengths_kv=None, "
    "Tensor? learnable_sink=None, str layout_query='BSND', str layout_kv='BSND', "
    "int sparse_mode=0, int pre_tokens=9223372036854775807, "
    "int next_tokens=9223372036854775807, int? chunk_size=None, "
    "bool return_softmax_lse=False) -> (Tensor, Tensor, Tensor)"
)


def _fake(a: dict):
    query = a["query"]
    shape = lse_shape(query.shape, a["layout_query"], a["key"].shape[-2],
                      a["return_softmax_lse"])
    return (query.new_empty(query.shape), query.new_empty(shape, dtype=torch.float32),
            query.new_empty(shape, dtype=torch.float32))


OP_DEF = OpDef(name=OP, schema=SCHEMA, params=FlashAttentionParams,
               tensors=FlashAttentionTensors, check=check.check,
               check_values=check.check_values, fake=_fake, backends=BACKENDS, checker=CHECK)
FACES = (Face(OP_DEF, PRIVATE, SCHEMA), Face(OP_DEF, "custom", SCHEMA))
npu_flash_attention = register(OP_DEF, FACES, __doc__)
