"""npu_nsa_compress_attention's arguments as the host sees them: NsaCompressAttentionParams.

The pipeline parses a call into these fields by schema name: shapes and dtypes (no values) and
the three prefix-sum lists (schema ``int[]``: host data, part of the call's static signature);
it validates only Python types (``before_parse``). ``check.check(params)`` applies every rule
of docs/nsa_compress_attention.md.
The derived quantities (B, per-batch lengths, M, Nw, the importance weights) are valid only
after the check.

Symbols (docs/nsa_compress_attention.md, Arguments): l = compress_block_size,
d = compress_stride, l' = select_block_size, M = l' / d (compressed tokens per selection block),
Nw = l / d (compressed tokens one window overlaps), L = M + Nw - 1 importance taps with
trapezoidal weights w_t = min(t+1, L-t, Nw) (Semantics, step 4).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..common.errors import Checker
from ..common.seqlens import counts_from_prefix_sums, starts_from_counts
from ..common.tensor_meta import TensorMeta

OP = "npu_nsa_compress_attention"
CHECK = Checker(OP)
FLT_MAX = 3.4028234663852886e38    # replaces masked scores (Semantics, step 1)
STAT_REPLICAS = 8                  # softmax_max / softmax_sum trailing dim (Layouts)
HEAD_DIM_ALIGN = 16                # the tiling pads D1, D2 up to a multiple of this


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """What the emulator and the backward compute in: fp64 for fp64 inputs (CPU only), else
    fp32; also the dtype of softmax_max / softmax_sum."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def output_dtypes(dtype: torch.dtype) -> tuple[torch.dtype, ...]:
    """(attention_out, topk_indices_out, softmax_max_out, softmax_sum_out) dtypes for query
    dtype ``dtype`` (Layouts). Shared by the real path and the fake (meta) function."""
    stats = compute_dtype(dtype)
    return dtype, torch.int32, stats, stats


def _int_list(value, arg: str) -> tuple[int, ...] | None:
    """A list/tuple of Python ints (or a 1-D integer tensor) as a tuple; None stays None."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        CHECK.require_type(value.dim() == 1 and not value.is_floating_point(), arg,
                           "a list of int (or a 1-D integer tensor)",
                           f"tensor of shape {tuple(value.shape)} and dtype {value.dtype}")
        return tuple(int(v) for v in value.tolist())
    CHECK.require_type(isinstance(value, (list, tuple)), arg, "a list of int",
                       type(value).__name__)
    for v in value:
        CHECK.require_type(isinstance(v, int) and not isinstance(v, bool), arg,
                           "a list of int", f"an element of type {type(v).__name__}")
    return tuple(int(v) for v in value)


def importance_weights(m_blocks: int, nw: int) -> tuple[int, ...]:
    """Trapezoidal tap weights w_t = min(t+1, L-t, Nw), t in [0, L), L = M + Nw - 1."""
    taps = m_blocks + nw - 1
    return tuple(min(t + 1, taps - t, nw) for t in range(taps))


@dataclass(frozen=True)
class NsaCompressAttentionParams:
    query: TensorMeta
    key: TensorMeta
    value: TensorMeta
    topk_mask: TensorMeta | None
    atten_mask: TensorMeta | None
    scale_value: float
    head_num: int
    compress_block_size: int
    compress_stride: int
    select_block_size: int
    select_block_count: int
    actual_seq_qlen: tuple[int, ...] | None
    actual_cmp_seq_kvlen: tuple[int, ...] | None
    actual_sel_seq_kvlen: tuple[int, ...] | None

    VALUE_FIELDS = ()      # the lengths are host int lists, part of the static signature

    # ---- derived (valid after check) -------------------------------------------------------
    @property
    def batch(self) -> int:
        return len(self.actual_seq_qlen)

    @property
    def n1(self) -> int:
        return self.query.shape[1]

    @property
    def n2(self) -> int:
        return self.key.shape[1]

    @property
    def g(self) -> int:
        return self.n1 // self.n2

    @property
    def d1(self) -> int:
        return self.query.shape[2]

    @property
    def d2(self) -> int:
        return self.value.shape[2]

    @property
    def d1_align(self) -> int:
        """D1 rounded up to 16: the width the tiles hold (zero padding changes no result)."""
        return -(-self.d1 // HEAD_DIM_ALIGN) * HEAD_DIM_ALIGN

    @property
    def d2_align(self) -> int:
        return -(-self.d2 // HEAD_DIM_ALIGN) * HEAD_DIM_ALIGN

    @property
    def m_blocks(self) -> int:
        """M = l' / d: compressed tokens per selection block."""
        return self.select_block_size // self.compress_stride

    @property
    def nw(self) -> int:
        """Nw = l / d: compressed tokens overlapped by one compression window."""
        return self.compress_block_size // self.compress_stride

    @property
    def weights(self) -> tuple[int, ...]:
        return importance_weights(self.m_blocks, self.nw)

    @property
    def q_lens(self) -> tuple[int, ...]:
        return counts_from_prefix_sums(self.actual_seq_qlen)

    @property
    def q_starts(self) -> tuple[int, ...]:
        return starts_from_counts(self.q_lens)

    @property
    def cmp_lens(self) -> tuple[int, ...]:
        return counts_from_prefix_sums(self.actual_cmp_seq_kvlen)

    @property
    def cmp_starts(self) -> tuple[int, ...]:
        return starts_from_counts(self.cmp_lens)

    @property
    def sel_lens(self) -> tuple[int, ...]:
        """Sel[b] = ceil(C[b] / M), as the kernel derives it (actual_sel_seq_kvlen is not read)."""
        return tuple(-(-c // self.m_blocks) for c in self.cmp_lens)

    @property
    def max_sq(self) -> int:
        return max(self.q_lens)

    @property
    def max_c(self) -> int:
        return max(self.cmp_lens)

    @property
    def max_sel(self) -> int:
        return -(-self.max_c // self.m_blocks)


def output_shapes(query_shape, key_shape, value_shape, select_block_count: int):
    """(attention_out, topk_indices_out, softmax_max_out, softmax_sum_out) shapes (Layouts).

    Shared by the real path and the fake (meta) function.
    """
    t1, n1 = query_shape[0], query_shape[1]
    return ((t1, n1, value_shape[-1]), (t1, key_shape[1], select_block_count),
            (t1, n1, STAT_REPLICAS), (t1, n1, STAT_REPLICAS))


def before_parse(bound: dict) -> None:
    """Python type rules of the scalar arguments, before they are converted."""
    for name in ("head_num", "compress_block_size", "compress_stride", "select_block_size",
                 "select_block_count"):
        v = bound[name]
        CHECK.require_type(isinstance(v, int) and not isinstance(v, bool), name, "an int",
                           type(v).__name__)
    v = bound["scale_value"]
    CHECK.require_type(isinstance(v, (int, float)) and not isinstance(v, bool),
                       "scale_value", "a float", type(v).__name__)


# the three prefix-sum lists also accept 1-D integer tensors (read on the host: host data)
CONVERTERS = {name: (lambda value, check, name=name: _int_list(value, name))
              for name in ("actual_seq_qlen", "actual_cmp_seq_kvlen", "actual_sel_seq_kvlen")}


@dataclass(slots=True)
class NsaCompressAttentionTensors:
    """The tensors a back end reads; the plan and params say how to read them."""
    query: torch.Tensor
    key: torch.Tensor
    value: torch.Tensor
    topk_mask: torch.Tensor | None
    atten_mask: torch.Tensor | None
