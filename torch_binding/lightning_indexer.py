"""custom::npu_lightning_indexer: the op's declaration (schema, params, checks, fake, back
ends); the pipeline (pipeline.py) runs it.

The schema is the current torch_npu / ops-transformer signature: the older call
``(query, key, weights, *, actual_seq_lengths_query, ..., sparse_count, sparse_mode)`` is a
prefix of it and works unchanged. The op always returns ``(sparse_indices, sparse_values)``;
``sparse_values`` is an empty (0,) tensor of the query dtype unless ``return_value=True``
(docs/lightning_indexer.md).
"""
from __future__ import annotations

import torch

from .library import register
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


OP_DEF = OpDef(name=OP, schema=SCHEMA, params=LightningIndexerParams,
               tensors=LightningIndexerTensors, check=check.check,
               check_values=check.check_values, fake=_fake, backends=BACKENDS, checker=CHECK)
npu_lightning_indexer = register(OP_DEF, __doc__)
