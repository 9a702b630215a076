"""custom::npu_incre_flash_attention: the op's declaration (schema, params, checks, fake, back
ends), which the pipeline (pipeline.py) runs, and MindSpore's Python form.

The schema keeps the argument names, order and defaults of MindSpore's
``ops.incre_flash_attention`` (docs/incre_flash_attention.md, Signature), with ``key`` /
``value`` as tensors and ``actual_seq_lengths`` / ``kv_padding_size`` as int lists. One project
extension follows CANN's arguments, keyword-only: ``emulate_npu`` selects the NPU's exact fp16
post-quant arithmetic (docs/incre_flash_attention.md, Semantics).

"""
from __future__ import annotations

import torch

from .faces import Face
from .library import PRIVATE, register
from .op_host.incre_flash_attention import check as ifa_check
from .op_host.incre_flash_attention.capabilities import BACKENDS
from .op_host.incre_flash_attention.params import (
    CHECK, CONVERTERS, OP, IncreFlashAttentionParams, IncreFlashAttentionTensors,
    before_parse, int_vector, out_shape)
from .pipeline import OpDef

SCHEMA = (
    "npu_incre_flash_attention(Tensor query, Tensor key, Tensor value, Tensor? attn_mask=None, "
    "int[]? actual_seq_lengths=None, Tensor? pse_shift=None, Tensor? dequant_scale1=None, "
    "Tensor? quant_scale1=None, Tensor? dequant_scale2=None, Tensor? quant_scale2=None, "
    "Tensor? quant_offset2=None, Tensor? antiquant_scale=None, Tensor? antiquant_offset=None, "
    "Tensor? block_table=None, int num_heads=1, str input_layout='BSH', float scale_value=1.0, "
    "int num_key_value_heads=0, int block_size=0, int inner_precise=1, "
    "int[]? kv_padding_size=None, *, bool emulate_npu=False) -> Tensor"
)


def _fake(a: dict):
    query = a["query"]
    dtype = torch.int8 if a["quant_scale2"] is not None else query.dtype
    return query.new_empty(out_shape(query.shape), dtype=dtype)


OP_DEF = OpDef(name=OP, schema=SCHEMA, params=IncreFlashAttentionParams,
               tensors=IncreFlashAttentionTensors, check=ifa_check.check,
               check_values=ifa_check.check_values, fake=_fake, backends=BACKENDS,
               converters=CONVERTERS, before_parse=before_parse, checker=CHECK)
TORCH_NPU_SCHEMA = (   # torch_npu 2.13.0, npu_native_functions_by_codegen.yaml
    "npu_incre_flash_attention(Tensor query, Tensor key, Tensor value, *, "
    "Tensor? padding_mask=None, Tensor? atten_mask=None, Tensor? pse_shift=None, "
    "SymInt[]? actual_seq_lengths=None, Tensor? antiquant_scale=None, "
    "Tensor? antiquant_offset=None, Tensor? block_table=None, Tensor? dequant_scale1=None, "
    "Tensor? quant_scale1=None, Tensor? dequant_scale2=None, Tensor? quant_scale2=None, "
    "Tensor? quant_offset2=None, Tensor? kv_padding_size=None, int num_heads=1, "
    "float scale_value=1.0, str input_layout=\"BSH\", int num_key_value_heads=0, "
    "int block_size=0, int inner_precise=1) -> Tensor"
)


def _padding_as_list(values: dict) -> None:
    """torch_npu passes kv_padding_size as an int64 tensor of one value: read on the host."""
    values["kv_padding_size"] = int_vector(values["kv_padding_size"], CHECK, "kv_padding_size")


def _torch_npu_face(namespace: str) -> Face:
    # padding_mask is reserved in torch_npu (documented "not used"): accepted and ignored
    return Face(OP_DEF, namespace, TORCH_NPU_SCHEMA, renames={"atten_mask": "attn_mask"},
                ignored=("padding_mask",), adapt=_padding_as_list)


FACES = (Face(OP_DEF, PRIVATE, SCHEMA), _torch_npu_face("custom"), _torch_npu_face("npu"))
npu_incre_flash_attention = register(OP_DEF, FACES, __doc__)


