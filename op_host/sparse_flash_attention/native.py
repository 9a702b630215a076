"""ctypes bridge to the C++ tiling core of npu_sparse_flash_attention (tiling_core.cpp).

The core is the C++ twin of ``check.check`` (the static rules) and of the Ascend plan's bytes,
``tiling.tiling_data(tiling.plan(p, platform), p)``; CANN's op package links the same source.
This module fills its params struct (``SfaCoreParams``, made of the shared structs of
``common.native_types``) from a ``SparseFlashAttentionParams``; ``common.native_types.TilingCore``
builds the core, runs it and raises a refusal as the Python check raises it: the same exception
class, the same message.

What the struct cannot carry is refused here with a plain ``TypeError`` / ``OverflowError``
before the core runs (the CANN attributes it stands for cannot hold it either): a layout that is
not a str or None, an integer attribute outside int64, a scale that is not a float. A tensor the
shared descriptor cannot hold (rank above ``native_types.MAX_RANK``) is refused by the Python
check, as every rank rule of check.py refuses it.
"""
from __future__ import annotations

import ctypes
from pathlib import Path

from ..common import native_types
from ..common.native_types import CoreText, TensorDesc
from ..common.platform import PlatformInfo
from . import check as python_check
from .params import OP, SparseFlashAttentionParams

SOURCE = Path(__file__).with_name("tiling_core.cpp")
TENSOR_FIELDS = ("query", "key", "value", "sparse_indices", "block_table",
                 "actual_seq_lengths_query", "actual_seq_lengths_kv", "query_rope", "key_rope",
                 "sinks")
INT_FIELDS = ("sparse_mode", "pre_tokens", "next_tokens", "attention_mode")


class CoreParams(ctypes.Structure):
    """tiling_core.h SfaCoreParams."""
    _fields_ = [*((name, TensorDesc) for name in TENSOR_FIELDS),
                ("layout_query", CoreText), ("layout_kv", CoreText),
                ("scale_value", ctypes.c_double), ("sparse_block_size", ctypes.c_int64),
                *((name, ctypes.c_int64) for name in INT_FIELDS),
                ("return_softmax_lse", ctypes.c_int32), ("reserved", ctypes.c_int32)]


def _int64(name: str, value) -> int:
    if not isinstance(value, int):
        raise TypeError(f"{OP} tiling core: {name}: an int attribute, got {value!r}")
    if not native_types.fits_int64(value):
        raise OverflowError(f"{OP} tiling core: {name}: an int64 attribute, got {value}")
    return value


def _layout(name: str, value) -> CoreText:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{OP} tiling core: {name}: a str layout, got {value!r}")
    return native_types.text(value)


def core_params(p: SparseFlashAttentionParams) -> CoreParams:
    """The core's params of ``p`` (``native_types.Unrepresentable`` for a tensor the shared
    descriptor cannot hold)."""
    if not isinstance(p.scale_value, (int, float)):
        raise TypeError(f"{OP} tiling core: scale_value: a float, got {p.scale_value!r}")
    sparse_block_size = _int64("sparse_block_size", p.sparse_block_size)
    layouts = (_layout("layout_query", p.layout_query), _layout("layout_kv", p.layout_kv))
    ints = {name: _int64(name, getattr(p, name)) for name in INT_FIELDS}
    return CoreParams(
        *(native_types.tensor_desc(name, getattr(p, name)) for name in TENSOR_FIELDS),
        *layouts, scale_value=float(p.scale_value), sparse_block_size=sparse_block_size, **ints,
        return_softmax_lse=int(bool(p.return_softmax_lse)))


CORE = native_types.TilingCore("sfa", SOURCE, CoreParams, core_params, python_check.check)


def library() -> ctypes.CDLL:
    """The built core (compiled on first use; ``common.native.NativeBuildError`` without g++)."""
    return CORE.library()


def check(p: SparseFlashAttentionParams) -> None:
    """``check.check(p)`` run by the core."""
    CORE.check(p)


def tiling_data(p: SparseFlashAttentionParams, platform: PlatformInfo) -> bytes:
    """``tiling.tiling_data(tiling.plan(p, platform), p)`` (after ``check.check(p)``) computed by
    the core, for the Ascend platforms."""
    return CORE.tiling_data(p, platform)
