"""custom::npu_lightning_indexer: schema, real implementation and fake (meta) function.

The schema is the current torch_npu / ops-transformer signature (spec/lightning_indexer.md
section 2): the seed-era call ``(query, key, weights, *, actual_seq_lengths_query, ...,
sparse_count, sparse_mode)`` is a prefix of it and works unchanged. The op always returns
``(sparse_indices, sparse_values)``; ``sparse_values`` is an empty (0,) tensor of the query
dtype unless ``return_value=True`` (spec section 2, [choice]).
"""
from __future__ import annotations

import torch

from .dispatch import platform_for, select_backend
from .library import define_op
from .op_host.lightning_indexer import check as li_check
from .op_host.lightning_indexer.capabilities import CAPABILITIES
from .op_host.lightning_indexer.params import (
    OP, LightningIndexerTensors, output_shapes, parse)
from .op_host.lightning_indexer.tiling import plan

SCHEMA = (
    "npu_lightning_indexer(Tensor query, Tensor key, Tensor weights, *, "
    "Tensor? actual_seq_lengths_query=None, Tensor? actual_seq_lengths_key=None, "
    "Tensor? block_table=None, str layout_query='BSND', str layout_key='BSND', "
    "int sparse_count=2048, int sparse_mode=3, int pre_tokens=9223372036854775807, "
    "int next_tokens=9223372036854775807, bool return_value=False) -> (Tensor, Tensor)"
)


def _run_backend(name, params, tiling, tensors):
    if name == "emulate":
        from .op_kernel.lightning_indexer import emulate
        return emulate.run(params, tiling, tensors)
    raise AssertionError(f"back end {name} is listed as available but has no runner")


def npu_lightning_indexer(query, key, weights, *, actual_seq_lengths_query=None,
                          actual_seq_lengths_key=None, block_table=None, layout_query="BSND",
                          layout_key="BSND", sparse_count=2048, sparse_mode=3,
                          pre_tokens=2**63 - 1, next_tokens=2**63 - 1, return_value=False):
    params = parse(query, key, weights, actual_seq_lengths_query=actual_seq_lengths_query,
                   actual_seq_lengths_key=actual_seq_lengths_key, block_table=block_table,
                   layout_query=layout_query, layout_key=layout_key, sparse_count=sparse_count,
                   sparse_mode=sparse_mode, pre_tokens=pre_tokens, next_tokens=next_tokens,
                   return_value=return_value)
    li_check.check(params)
    if block_table is not None:
        li_check.check_block_table_entries(params, block_table)
    backend = select_backend(OP, CAPABILITIES, params, query.device.type, query.dtype)
    tiling = plan(params, platform_for(query.device))
    tensors = LightningIndexerTensors(query, key, weights, block_table)
    return _run_backend(backend, params, tiling, tensors)


def _fake(query, key, weights, *, actual_seq_lengths_query=None, actual_seq_lengths_key=None,
          block_table=None, layout_query="BSND", layout_key="BSND", sparse_count=2048,
          sparse_mode=3, pre_tokens=2**63 - 1, next_tokens=2**63 - 1, return_value=False):
    idx_shape, val_shape = output_shapes(query.shape, layout_query, sparse_count, return_value)
    return (query.new_empty(idx_shape, dtype=torch.int32),
            query.new_empty(val_shape, dtype=query.dtype))


define_op(SCHEMA, npu_lightning_indexer, _fake)
