"""npu_incre_flash_attention's arguments as the host sees them: IncreFlashAttentionParams.

The pipeline parses a call into these fields by schema name: shapes and dtypes (no values) and
the host integer lists ``actual_seq_lengths`` / ``kv_padding_size`` (schema ``int[]``: host data,
part of the call's static signature); it validates only the Python types of the scalar arguments
(MindSpore's TypeError rules, ``before_parse``). ``check.check(params)`` applies every other
rule. The derived quantities (B, N, kvN, D, S, the valid windows) are valid only after the
check.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..common.errors import Checker, dtype_name
from ..common.layouts import Layout
from ..common.tensor_meta import TensorMeta

OP = "npu_incre_flash_attention"
CHECK = Checker(OP)
MASKED_LOGIT = -1e12     # masked logits are replaced by this value, not by -inf


@dataclass(frozen=True)
class IncreFlashAttentionParams:
    query: TensorMeta
    key: TensorMeta
    value: TensorMeta
    attn_mask: TensorMeta | None
    actual_seq_lengths: tuple[int, ...] | None
    pse_shift: TensorMeta | None
    dequant_scale1: TensorMeta | None
    quant_scale1: TensorMeta | None
    dequant_scale2: TensorMeta | None
    quant_scale2: TensorMeta | None
    quant_offset2: TensorMeta | None
    antiquant_scale: TensorMeta | None
    antiquant_offset: TensorMeta | None
    block_table: TensorMeta | None
    num_heads: int
    input_layout: str
    scale_value: float
    num_key_value_heads: int
    block_size: int
    inner_precise: int
    kv_padding_size: tuple[int, ...] | None
    emulate_npu: bool = False

    VALUE_FIELDS = ()      # the lengths are host int lists, part of the static signature

    # ---- derived (valid after check) -------------------------------------------------------
    @property
    def layout(self) -> Layout:
        return Layout(self.input_layout)

    @property
    def paged(self) -> bool:
        return self.block_table is not None

    @property
    def paged_bnsd(self) -> bool:
        """Paged key of shape (block_num, kvN, block_size, D) (rank 4 with BNSD); else
        (block_num, block_size, kvH), or its 4-D view (block_num, block_size, kvN, D)."""
        return self.paged and self.key.rank == 4 and self.layout is Layout.BNSD

    @property
    def batch(self) -> int:
        return self.query.shape[0]

    @property
    def n1(self) -> int:
        return self.num_heads

    @property
    def n2(self) -> int:
        return self.num_key_value_heads or self.num_heads

    @property
    def group(self) -> int:
        return self.n1 // self.n2

    @property
    def head_dim(self) -> int:
        if self.layout is Layout.BSH:
            return self.query.shape[-1] // self.num_heads
        return self.query.shape[-1]

    @property
    def s2(self) -> int:
        """KV capacity per batch: S of the key, or max_block_num_per_seq * block_size (PA)."""
        if self.paged:
            return self.block_table.shape[1] * self.block_size
        if self.layout is Layout.BNSD:
            return self.key.shape[2]
        return self.key.shape[1]

    @property
    def kv_lens(self) -> tuple[int, ...]:
        asl = self.actual_seq_lengths
        if asl is None:
            return (self.s2,) * self.batch
        if len(asl) == 1:
            return (asl[0],) * self.batch
        return tuple(asl[: self.batch])

    @property
    def left_padding(self) -> bool:
        """kv_padding_size counts only with actual_seq_lengths and without PA."""
        return (self.kv_padding_size is not None and len(self.kv_padding_size) > 0
                and self.actual_seq_lengths is not None and not self.paged)

    @property
    def kv_starts(self) -> tuple[int, ...]:
        """First absolute KV position of each batch's window (may be < 0: the batch is zero)."""
        if not self.left_padding:
            return (0,) * self.batch
        pad = max(self.kv_padding_size[0], 0)
        return tuple(self.s2 - pad - n for n in self.kv_lens)

    @property
    def window_lens(self) -> tuple[int, ...]:
        """Positions each batch attends to; 0 for zero-length or out-of-range windows."""
        return tuple(n if start >= 0 else 0 for n, start in zip(self.kv_lens, self.kv_starts))

    @property
    def antiquant(self) -> bool:
        return self.antiquant_scale is not None

    @property
    def antiquant_per_tensor(self) -> bool:
        return self.antiquant and self.antiquant_scale.shape == (2,)

    @property
    def post_quant(self) -> bool:
        return self.quant_scale2 is not None

    @property
    def post_quant_per_channel(self) -> bool:
        return self.post_quant and self.quant_scale2.numel > 1

    @property
    def out_dtype(self) -> torch.dtype:
        return torch.int8 if self.post_quant else self.query.dtype


def out_shape(query_shape) -> tuple[int, ...]:
    """attention_out has the query's shape in every layout."""
    return tuple(query_shape)


def int_vector(value, check, arg: str) -> tuple[int, ...] | None:
    """An int list / tuple / 1-D or 0-D integer tensor as a tuple; None stays None."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        check.require_type(not value.is_floating_point() and value.dtype != torch.bool, arg,
                           "an integer tensor (int64)", dtype_name(value.dtype))
        return tuple(int(v) for v in value.reshape(-1).tolist())
    if isinstance(value, (list, tuple)):
        check.require_type(all(isinstance(v, int) and not isinstance(v, bool) for v in value),
                           arg, "a list of int", repr(value))
        return tuple(int(v) for v in value)
    check.fail_type(arg, "a list/tuple of int or an int64 tensor", type(value).__name__)
    raise AssertionError("unreachable")


def check_scalar_types(num_heads, input_layout, scale_value, num_key_value_heads, block_size,
                       inner_precise) -> None:
    """MindSpore's TypeError rules for the scalar args (docs/incre_flash_attention.md, Errors)."""
    c = CHECK

    def is_int(x):
        return isinstance(x, int) and not isinstance(x, bool)

    c.require_type(isinstance(scale_value, (float, int)) and not isinstance(scale_value, bool),
                   "scale_value", "a float", type(scale_value).__name__)
    c.require_type(isinstance(input_layout, str), "input_layout", "a str",
                   type(input_layout).__name__)
    c.require_type(is_int(num_heads), "num_heads", "an int", type(num_heads).__name__)
    c.require_type(is_int(num_key_value_heads), "num_key_value_heads", "an int",
                   type(num_key_value_heads).__name__)
    c.require_type(is_int(block_size), "block_size", "an int", type(block_size).__name__)
    c.require_type(is_int(inner_precise), "inner_precise", "an int",
                   type(inner_precise).__name__)


def before_parse(bound: dict) -> None:
    """MindSpore's TypeError rules for the scalar arguments, before they are converted."""
    check_scalar_types(*(bound[name] for name in (
        "num_heads", "input_layout", "scale_value", "num_key_value_heads", "block_size",
        "inner_precise")))


# the two int-list arguments also accept integer tensors (MindSpore's Python form)
CONVERTERS = {name: (lambda value, check, name=name: int_vector(value, check, name))
              for name in ("actual_seq_lengths", "kv_padding_size")}


@dataclass(slots=True)
class IncreFlashAttentionTensors:
    """The tensors a back end reads; the params and the plan say how to read them."""
    query: torch.Tensor
    key: torch.Tensor
    value: torch.Tensor
    attn_mask: torch.Tensor | None
    pse_shift: torch.Tensor | None
    quant_scale2: torch.Tensor | None
    quant_offset2: torch.Tensor | None
    antiquant_scale: torch.Tensor | None
    antiquant_offset: torch.Tensor | None
    block_table: torch.Tensor | None
