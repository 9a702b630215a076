"""npu_lightning_indexer's arguments as the host sees them: LightningIndexerParams.

The pipeline parses a call into these fields by schema name (TensorMetas: shape, dtype, device,
no values; Python scalars), validating only Python types. ``check.check(params)`` applies the
op's rules (docs/lightning_indexer.md). The derived quantities (B, row counts) are valid after
the check; the per-batch lengths and row offsets also need the values (``with_values``).
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
D = 128           # index head dim of query and key (docs/lightning_indexer.md, Layouts)


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

    VALUE_FIELDS = ("actual_seq_lengths_query", "actual_seq_lengths_key")

    # ---- derived (valid after check): common.batched_params, key side named "key" --------
    KV_LAYOUT_FIELD = "layout_key"
    KV_LENGTHS_FIELD = "actual_seq_lengths_key"


def output_shapes(query_shape, layout_query: str, sparse_count: int,
                  return_value: bool) -> tuple[tuple, tuple]:
    """(sparse_indices shape, sparse_values shape) (docs/lightning_indexer.md, Layouts).

    BSND query: (B, S1, 1, sparse_count); TND query: (T1, 1, sparse_count). ``sparse_values``
    has the same shape when ``return_value`` is True, else it is an empty (0,) tensor (a
    project choice; torch_npu returns a placeholder there). The fake (meta) function and the
    real path both use this function.
    """
    if layout_query == "TND":
        shape = (query_shape[0], 1, sparse_count)
    else:
        shape = (query_shape[0], query_shape[1], 1, sparse_count)
    return shape, (shape if return_value else (0,))


@dataclass(slots=True)
class LightningIndexerTensors:
    """The tensors a back end reads; the plan and params say how to read them."""
    query: torch.Tensor
    key: torch.Tensor
    weights: torch.Tensor
    block_table: torch.Tensor | None
    actual_seq_lengths_query: torch.Tensor | None
    actual_seq_lengths_key: torch.Tensor | None
