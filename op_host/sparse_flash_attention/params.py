"""CANN arguments of npu_sparse_flash_attention -> a frozen SparseFlashAttentionParams.

Parsing reads shapes, dtypes and the per-batch length vectors; it validates nothing but the
Python types (rule 1 of spec section 13). ``check.check(params)`` applies every other rule.
The derived quantities (B, per-batch lengths, row offsets) are valid only after the check.
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
SOFTMAX_MIN = -2e38   # softmax_max of rows that see no key (spec section 16)


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

    # ---- derived (valid after check; the rest in common.batched_params) ----------------
    @property
    def k(self) -> int:
        return self.sparse_indices.shape[-1]


def lse_shape(query_shape, layout_query: str, return_softmax_lse: bool) -> tuple:
    """softmax_max / softmax_sum shape (spec section 10): (B,1,S1,N1) or (1,T1,N1), or (0,)."""
    if not return_softmax_lse:
        return (0,)
    if layout_query == "TND":
        return (1, query_shape[0], query_shape[1])
    return (query_shape[0], 1, query_shape[1], query_shape[2])


def parse(query, key, value, sparse_indices, scale_value, sparse_block_size=1, *,
          block_table=None, actual_seq_lengths_query=None, actual_seq_lengths_kv=None,
          query_rope=None, key_rope=None, layout_query="BSND", layout_kv="BSND", sparse_mode=3,
          pre_tokens=INT64_MAX, next_tokens=INT64_MAX, attention_mode=2,
          return_softmax_lse=False, sinks=None) -> SparseFlashAttentionParams:
    meta = TensorMeta.required
    return SparseFlashAttentionParams(
        query=meta(query, CHECK, "query"),
        key=meta(key, CHECK, "key"),
        value=meta(value, CHECK, "value"),
        sparse_indices=meta(sparse_indices, CHECK, "sparse_indices"),
        scale_value=float(scale_value),
        sparse_block_size=int(sparse_block_size),
        block_table=TensorMeta.of(block_table, CHECK, "block_table"),
        actual_seq_lengths_query=TensorMeta.of(actual_seq_lengths_query, CHECK,
                                               "actual_seq_lengths_query", read_values=True),
        actual_seq_lengths_kv=TensorMeta.of(actual_seq_lengths_kv, CHECK,
                                            "actual_seq_lengths_kv", read_values=True),
        query_rope=TensorMeta.of(query_rope, CHECK, "query_rope"),
        key_rope=TensorMeta.of(key_rope, CHECK, "key_rope"),
        layout_query=layout_query,
        layout_kv=layout_kv,
        sparse_mode=int(sparse_mode),
        pre_tokens=int(pre_tokens),
        next_tokens=int(next_tokens),
        attention_mode=int(attention_mode),
        return_softmax_lse=bool(return_softmax_lse),
        sinks=TensorMeta.of(sinks, CHECK, "sinks"),
    )


@dataclass(frozen=True)
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
