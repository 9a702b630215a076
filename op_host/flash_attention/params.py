"""npu_flash_attention's arguments as the host sees them: FlashAttentionParams.

The pipeline parses a call into these fields by schema name (TensorMetas: shape, dtype, device,
no values; Python scalars), validating only Python types; ``check.check(params)`` applies the
op's rules (docs/flash_attention.md). The derived quantities (B, N1, N2) are valid after the
check; the per-batch lengths and row offsets also need the values (``with_values``).

Canonical views used by every back end: the query as rows x N1 x D (BSND: row = b*S1 + i;
TND: row = start(b) + i; BNSD is transposed to BSND first) and the keys as rows x N2 x D
(BSND: b*S2 + j; TND: start(b) + j; PA_BSND: page*block_size + slot through block_table).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..common.errors import Checker
from ..common.layouts import Layout
from ..common.mask_spec import MaskSpec
from ..common.batched_params import BatchedRows
from ..common.tensor_meta import TensorMeta

OP = "npu_flash_attention"
CHECK = Checker(OP)


@dataclass(frozen=True)
class FlashAttentionParams(BatchedRows):
    query: TensorMeta
    key: TensorMeta
    value: TensorMeta
    scale_value: float
    atten_mask: TensorMeta | None
    pse_shift: TensorMeta | None
    block_table: TensorMeta | None
    actual_seq_lengths_query: TensorMeta | None
    actual_seq_lengths_kv: TensorMeta | None
    learnable_sink: TensorMeta | None
    layout_query: str
    layout_kv: str
    sparse_mode: int
    pre_tokens: int
    next_tokens: int
    chunk_size: int | None
    return_softmax_lse: bool

    VALUE_FIELDS = ("actual_seq_lengths_query", "actual_seq_lengths_kv")

    # ---- derived (valid after check) -------------------------------------------------------
    @property
    def n1(self) -> int:
        return self.query.shape[1] if self.q_layout is Layout.BNSD else self.query.shape[-2]

    @property
    def n2(self) -> int:
        return self.key.shape[-2]

    @property
    def group(self) -> int:
        return self.n1 // self.n2

    @property
    def d(self) -> int:
        return self.query.shape[-1]

    @property
    def s1(self) -> int:
        """Query rows per batch slot (BSND / BNSD) or in total (TND)."""
        if self.q_layout is Layout.TND:
            return self.query.shape[0]
        return self.query.shape[2] if self.q_layout is Layout.BNSD else self.query.shape[1]

    @property
    def num_rows(self) -> int:
        """Rows of the canonical (rows, N1, D) query view."""
        return self.s1 if self.q_layout is Layout.TND else self.batch * self.s1

    @property
    def mask_spec(self) -> MaskSpec:
        return MaskSpec(self.sparse_mode, self.pre_tokens, self.next_tokens, self.chunk_size,
                        self.atten_mask is not None)


def lse_shape(query_shape, layout_query: str, n2: int, return_softmax_lse: bool) -> tuple:
    """softmax_max / softmax_sum shape: (B, N2, S1, G), (N2, T1, G), or (0,)."""
    if not return_softmax_lse:
        return (0,)
    if layout_query == "TND":
        t1, n1 = query_shape[0], query_shape[1]
        return (n2, t1, n1 // n2)
    if layout_query == "BNSD":
        b, n1, s1 = query_shape[0], query_shape[1], query_shape[2]
    else:
        b, s1, n1 = query_shape[0], query_shape[1], query_shape[2]
    return (b, n2, s1, n1 // n2)


@dataclass(slots=True)
class FlashAttentionTensors:
    """The tensors a back end reads; the plan and params say how to read them."""
    query: torch.Tensor
    key: torch.Tensor
    value: torch.Tensor
    atten_mask: torch.Tensor | None
    pse_shift: torch.Tensor | None
    block_table: torch.Tensor | None
    learnable_sink: torch.Tensor | None
    actual_seq_lengths_query: torch.Tensor | None
    actual_seq_lengths_kv: torch.Tensor | None
