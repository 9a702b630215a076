"""ctypes bridge to the C++ tiling core of npu_sparse_flash_attention (tiling_core.cpp).

The core is the C++ twin of ``check.check`` (the static rules) and of the Ascend plan's bytes,
``tiling.tiling_data(tiling.plan(p, platform), p)``; CANN's op package links the same source.
This module builds it (``common.native``), fills its plain structs from a
``SparseFlashAttentionParams`` and a ``PlatformInfo``, and raises a refusal as the Python check
raises it: the same exception class, the same message.

What the structs cannot carry is refused here with a plain ``TypeError`` / ``OverflowError``
before the core runs (the CANN attributes it stands for cannot hold it either): a layout that is
not a str or None, an integer attribute outside int64, a scale that is not a float.
"""
from __future__ import annotations

import ctypes
import functools
from pathlib import Path

from ..common import native
from ..common.errors import (
    CannAttentionError,
    CannAttentionTypeError,
    CannAttentionValueError,
    dtype_name,
)
from ..common.platform import PlatformInfo, PlatformKind
from .params import OP, SparseFlashAttentionParams

SOURCE = Path(__file__).with_name("tiling_core.cpp")
LIBRARY = "sfa_tiling_core"
MESSAGE_SIZE = 1 << 16
ERRORS = {1: CannAttentionError, 2: CannAttentionTypeError, 3: CannAttentionValueError}
PLATFORM_KINDS = {PlatformKind.ASCEND: 0, PlatformKind.GPU: 1, PlatformKind.CPU: 2}
ASCEND_BUFFERS = ("UB", "L1", "L0A", "L0B", "L0C")
TENSOR_FIELDS = ("query", "key", "value", "sparse_indices", "block_table",
                 "actual_seq_lengths_query", "actual_seq_lengths_kv", "query_rope", "key_rope",
                 "sinks")
INT64_MIN, INT64_MAX = -2**63, 2**63 - 1


class TensorDesc(ctypes.Structure):
    _fields_ = [("shape", ctypes.POINTER(ctypes.c_int64)), ("rank", ctypes.c_int64),
                ("present", ctypes.c_int32), ("dtype", ctypes.c_int32),
                ("contiguous", ctypes.c_int32)]


class CoreParams(ctypes.Structure):
    _fields_ = [*((name, TensorDesc) for name in TENSOR_FIELDS),
                ("scale_value", ctypes.c_double), ("sparse_block_size", ctypes.c_int64),
                ("layout_query", ctypes.c_char_p), ("layout_kv", ctypes.c_char_p),
                ("sparse_mode", ctypes.c_int64), ("pre_tokens", ctypes.c_int64),
                ("next_tokens", ctypes.c_int64), ("attention_mode", ctypes.c_int64),
                ("return_softmax_lse", ctypes.c_int32)]


class CorePlatform(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("kind", ctypes.c_int32),
                ("vector_cores_per_core", ctypes.c_int32), ("num_cores", ctypes.c_int64),
                ("ub", ctypes.c_int64), ("l1", ctypes.c_int64), ("l0a", ctypes.c_int64),
                ("l0b", ctypes.c_int64), ("l0c", ctypes.c_int64)]


@functools.lru_cache(maxsize=1)
def library() -> ctypes.CDLL:
    """The built core (compiled on first use; ``common.native.NativeBuildError`` without g++)."""
    lib = native.load_library(LIBRARY, [SOURCE])
    lib.sfa_tiling.restype = ctypes.c_int32
    lib.sfa_tiling.argtypes = [ctypes.POINTER(CoreParams), ctypes.POINTER(CorePlatform),
                               ctypes.c_char_p, ctypes.c_int64, ctypes.c_char_p, ctypes.c_int64]
    lib.sfa_check.restype = ctypes.c_int32
    lib.sfa_check.argtypes = [ctypes.POINTER(CoreParams), ctypes.c_char_p, ctypes.c_int64]
    lib.sfa_tiling_data_size.restype = ctypes.c_int64
    lib.sfa_tiling_data_size.argtypes = []
    lib.sfa_dtype_name.restype = ctypes.c_char_p
    lib.sfa_dtype_name.argtypes = [ctypes.c_int32]
    return lib


@functools.lru_cache(maxsize=1)
def dtype_codes() -> dict[str, int]:
    """torch's dtype name -> the core's code (the core's own table, read once)."""
    lib, codes, code = library(), {}, 0
    while (name := lib.sfa_dtype_name(code)) is not None:
        codes[name.decode()] = code
        code += 1
    return codes


def _tensor(meta, keep: list) -> TensorDesc:
    if meta is None:
        return TensorDesc(None, 0, 0, 0, 0)
    name = dtype_name(meta.dtype)
    code = dtype_codes().get(name)
    if code is None:
        raise TypeError(f"{OP} tiling core: no code for dtype {name}")
    shape = (ctypes.c_int64 * max(meta.rank, 1))(*meta.shape)
    keep.append(shape)
    return TensorDesc(shape, meta.rank, 1, code, int(meta.contiguous))


def _int64(name: str, value) -> int:
    if not isinstance(value, int):
        raise TypeError(f"{OP} tiling core: {name}: an int attribute, got {value!r}")
    if not INT64_MIN <= value <= INT64_MAX:
        raise OverflowError(f"{OP} tiling core: {name}: an int64 attribute, got {value}")
    return value


def _layout(name: str, value) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{OP} tiling core: {name}: a str layout, got {value!r}")
    return value.encode("utf-8", "surrogatepass")


def core_params(p: SparseFlashAttentionParams, keep: list) -> CoreParams:
    """The core's params of ``p``; ``keep`` holds the shape arrays the struct points into."""
    if not isinstance(p.scale_value, (int, float)):
        raise TypeError(f"{OP} tiling core: scale_value: a float, got {p.scale_value!r}")
    return CoreParams(
        *(_tensor(getattr(p, name), keep) for name in TENSOR_FIELDS),
        scale_value=float(p.scale_value),
        sparse_block_size=_int64("sparse_block_size", p.sparse_block_size),
        layout_query=_layout("layout_query", p.layout_query),
        layout_kv=_layout("layout_kv", p.layout_kv),
        sparse_mode=_int64("sparse_mode", p.sparse_mode),
        pre_tokens=_int64("pre_tokens", p.pre_tokens),
        next_tokens=_int64("next_tokens", p.next_tokens),
        attention_mode=_int64("attention_mode", p.attention_mode),
        return_softmax_lse=int(bool(p.return_softmax_lse)))


def core_platform(platform: PlatformInfo) -> CorePlatform:
    """The core's platform; the buffers are read for Ascend platforms only (the others are
    refused by the core), as ``PlatformInfo.buffer`` reads them."""
    sizes = ([platform.buffer(name) for name in ASCEND_BUFFERS]
             if platform.kind is PlatformKind.ASCEND else [0] * len(ASCEND_BUFFERS))
    return CorePlatform(platform.name.encode(), PLATFORM_KINDS[platform.kind],
                        platform.vector_cores_per_core, platform.num_cores, *sizes)


def _raise(code: int, message: bytes) -> None:
    """The Python check's exception for the core's refusal: "<op>: <arg>: <rest>"."""
    text = message.decode("utf-8", "replace")
    op, arg, rest = text.split(": ", 2)
    raise ERRORS.get(code, CannAttentionError)(op, arg, rest)


def check(p: SparseFlashAttentionParams) -> None:
    """``check.check(p)`` run by the core."""
    keep: list = []
    params = core_params(p, keep)
    message = ctypes.create_string_buffer(MESSAGE_SIZE)
    code = library().sfa_check(ctypes.byref(params), message, MESSAGE_SIZE)
    if code:
        _raise(code, message.value)


def tiling_data(p: SparseFlashAttentionParams, platform: PlatformInfo) -> bytes:
    """``tiling.tiling_data(tiling.plan(p, platform), p)`` (after ``check.check(p)``) computed by
    the core, for the Ascend platforms."""
    lib = library()
    keep: list = []
    params, core = core_params(p, keep), core_platform(platform)
    size = lib.sfa_tiling_data_size()
    out = ctypes.create_string_buffer(size)
    message = ctypes.create_string_buffer(MESSAGE_SIZE)
    code = lib.sfa_tiling(ctypes.byref(params), ctypes.byref(core), out, size, message,
                          MESSAGE_SIZE)
    if code:
        _raise(code, message.value)
    return out.raw
