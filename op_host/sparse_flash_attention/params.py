"""npu_sparse_flash_attention's arguments as the host sees them: SparseFlashAttentionParams.

The pipeline (torch_binding/pipeline.py) parses a call into these fields by schema name:
TensorMetas (shape, dtype, device; no values) and Python scalars, validating only the Python
types. ``check.check(params)`` applies every other rule. The derived quantities (B, row counts)
are valid only after the check; the per-batch lengths and row offsets also need the values,
which only ``tensor_meta.with_values`` reads (the emulator and the value checks).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..common.errors import Checker
from ..common.batched_params import BsndTndRows
from ..common.tensor_meta import TensorMeta

OP = "npu_sparse_flash_attention"
CHECK = Checker(OP)
INT64_MAX = 2**63 - 1
D = 512           # nope (latent) head dim of query / key / value
DR = 64           # rope head dim
SOFTMAX_MIN = -2e38   # softmax_max of rows that see no key (docs/sparse_flash_attention.md)


@dataclass(frozen=True)
class SparseFlashAttentionParams(BsndTndRows):
    query: TensorMeta
    key: TensorMeta
    value: TensorMeta
    sparse_indices: TensorMeta
    scale_value: float
    sparse_block_size: int
    block_table: TensorMeta | None
    actual_seq_lengths_query: TensorMeta | None
    actual_seq_lengths_kv: TensorMeta | None
    query_rope: TensorMeta | None
    key_rope: TensorMeta | None
    layout_query: str
    layout_kv: str
    sparse_mode: int
    pre_tokens: int
    next_tokens: int
    attention_mode: int
    return_softmax_lse: bool
    sinks: TensorMeta | None

    VALUE_FIELDS = ("actual_seq_lengths_query", "actual_seq_lengths_kv")

    # ---- derived (valid after check; the rest in common.batched_params) ----------------
    @property
    def k(self) -> int:
        return self.sparse_indices.shape[-1]


def lse_shape(query_shape, layout_query: str, return_softmax_lse: bool) -> tuple:
    """softmax_max / softmax_sum shape: (B,1,S1,N1) or (1,T1,N1), or (0,)."""
    if not return_softmax_lse:
        return (0,)
    if layout_query == "TND":
        return (1, query_shape[0], query_shape[1])
    return (query_shape[0], 1, query_shape[1], query_shape[2])


@dataclass(slots=True)
class SparseFlashAttentionTensors:
    """The tensors a back end reads; the plan and params say how to read them."""
    query: torch.Tensor
    key: torch.Tensor
    value: torch.Tensor
    sparse_indices: torch.Tensor
    query_rope: torch.Tensor
    key_rope: torch.Tensor
    block_table: torch.Tensor | None
    sinks: torch.Tensor | None
    actual_seq_lengths_query: torch.Tensor | None
    actual_seq_lengths_kv: torch.Tensor | None
