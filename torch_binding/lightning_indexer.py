"""npu_lightning_indexer: the op's declaration (schema, params, checks, fake, back ends), which
the pipeline (pipeline.py) runs, and its faces (faces.py):

- ``torch.ops.cann_attention.npu_lightning_indexer`` and
  ``cann_attention.torch_npu.npu_lightning_indexer``: torch_npu 2.13's schema, returning
  ``(sparse_indices, sparse_values)``; ``sparse_values`` is an empty (0,) tensor of the query
  dtype unless ``return_value=True`` (docs/lightning_indexer.md);
- ``torch.ops.custom.npu_lightning_indexer``: cann-recipes-infer's registration (no
  pre/next tokens or return_value) ``-> Tensor``: the indices.
"""
from __future__ import annotations

import torch

from .faces import Face
from .library import PRIVATE, register
from .op_host.lightning_indexer import check
from .op_host.lightning_indexer.capabilities import BACKENDS
from .op_host.lightning_indexer.params import (
    CHECK, OP, LightningIndexerParams, LightningIndexerTensors, output_shapes)
from .pipeline import OpDef

SCHEMA = (
    "npu_lightning_indexer(Tensor query, Tensor key, Tensor weights, *, "
    "Tensor? actual_seq_lengths_query=None, Tensor? actual_seq_lengths_key=None, "
    "Tensor? block_table=None, str layout_query='BSND', str layout_key='BSND', "
    "int sparse_count=2048, int sparse_mode=3, int pre_tokens=9223372036854775807, "
    "int next_tokens=9223372036854775807, bool return_value=False) -> (Tensor, Tensor)"
)


def _fake(a: dict):
    query = a["query"]
    idx_shape, val_shape = output_shapes(query.shape, a["layout_query"], a["sparse_count"],
                                         a["return_value"])
    return (query.new_empty(idx_shape, dtype=torch.int32),
            query.new_empty(val_shape, dtype=query.dtype))


CUSTOM_SCHEMA = (      # cann-recipes-infer ops_def_registration.cpp, its last version (af01a94^)
    "npu_lightning_indexer(Tensor query, Tensor key, Tensor weights, *, "
    "Tensor? actual_seq_lengths_query=None, Tensor? actual_seq_lengths_key=None, "
    "Tensor? block_table=None, str layout_query='BSND', str layout_key='BSND', "
    "int sparse_count=2048, int sparse_mode=3) -> Tensor"
)
TORCH_NPU_SCHEMA = SCHEMA   # torch_npu 2.13.0's, argument for argument

OP_DEF = OpDef(name=OP, schema=SCHEMA, params=LightningIndexerParams,
               tensors=LightningIndexerTensors, check=check.check,
               check_values=check.check_values, fake=_fake, backends=BACKENDS, checker=CHECK)
FACES = (
    Face(OP_DEF, PRIVATE, SCHEMA),
    Face(OP_DEF, "custom", CUSTOM_SCHEMA, outputs=lambda out: out[0]),
    Face(OP_DEF, "npu", TORCH_NPU_SCHEMA),
)
npu_lightning_indexer = register(OP_DEF, FACES, __doc__)
