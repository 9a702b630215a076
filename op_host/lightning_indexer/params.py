"""CANN arguments of npu_lightning_indexer -> a frozen LightningIndexerParams.

Parsing reads shapes, dtypes and the per-batch length vectors; it validates nothing but the
Python types. ``check.check(params)`` applies the rules of spec/lightning_indexer.md section 6.
The derived quantities (B, per-batch lengths, row offsets, visible counts) are valid only after
the check.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..common.errors import Checker
from ..common.batched_params import BsndTndRows
from ..common.tensor_meta import TensorMeta

OP = "npu_lightning_indexer"
CHECK = Checker(OP)
INT64_MAX = 2**63 - 1
D = 128           # index head dim of query and key (spec section 3)


@dataclass(frozen=True)
class LightningIndexerParams(BsndTndRows):
    query: TensorMeta
    key: TensorMeta
    weights: TensorMeta
    actual_seq_lengths_query: TensorMeta | None
    actual_seq_lengths_key: TensorMeta | None
    block_table: TensorMeta | None
    layout_query: str
    layout_key: str
    sparse_count: int
    sparse_mode: int
    pre_tokens: int
    next_tokens: int
    return_value: bool

    # ---- derived (valid after check): common.batched_params, key side named "key" --------
    KV_LAYOUT_FIELD = "layout_key"
    KV_LENGTHS_FIELD = "actual_seq_lengths_key"


def output_shapes(query_shape, layout_query: str, sparse_count: int,
                  return_value: bool) -> tuple[tuple, tuple]:
    """(sparse_indices shape, sparse_values shape) of spec section 3.

    BSND query: (B, S1, 1, sparse_count); TND query: (T1, 1, sparse_count). ``sparse_values``
    has the same shape when ``return_value`` is True, else it is an empty (0,) tensor (spec
    section 2, [choice]). The fake (meta) function and the real path both use this function.
    """
    if layout_query == "TND":
        shape = (query_shape[0], 1, sparse_count)
    else:
        shape = (query_shape[0], query_shape[1], 1, sparse_count)
    return shape, (shape if return_value else (0,))


def parse(query, key, weights, *, actual_seq_lengths_query=None, actual_seq_lengths_key=None,
          block_table=None, layout_query="BSND", layout_key="BSND", sparse_count=2048,
          sparse_mode=3, pre_tokens=INT64_MAX, next_tokens=INT64_MAX,
          return_value=False) -> LightningIndexerParams:
    meta = TensorMeta.required
    return LightningIndexerParams(
        query=meta(query, CHECK, "query"),
        key=meta(key, CHECK, "key"),
        weights=meta(weights, CHECK, "weights"),
        actual_seq_lengths_query=TensorMeta.of(actual_seq_lengths_query, CHECK,
                                               "actual_seq_lengths_query", read_values=True),
        actual_seq_lengths_key=TensorMeta.of(actual_seq_lengths_key, CHECK,
                                             "actual_seq_lengths_key", read_values=True),
        block_table=TensorMeta.of(block_table, CHECK, "block_table"),
        layout_query=layout_query,
        layout_key=layout_key,
        sparse_count=int(sparse_count),
        sparse_mode=int(sparse_mode),
        pre_tokens=int(pre_tokens),
        next_tokens=int(next_tokens),
        return_value=bool(return_value),
    )


@dataclass(frozen=True)
class LightningIndexerTensors:
    """The tensors a back end reads; the plan and params say how to read them."""
    query: torch.Tensor
    key: torch.Tensor
    weights: torch.Tensor
    block_table: torch.Tensor | None
