"""The C++ tiling core of npu_lightning_indexer (tiling_core.cpp) through ctypes.

``tiling_data(params, platform)`` is the core's answer to what ``check.check`` followed by
``tiling.tiling_data(tiling.plan(...), ...)`` gives in Python: the TilingData bytes of a call on
an Ascend A2/A3 platform, or the same exception with the same message. ``check(params)`` runs
the core's static check alone. The library is built with g++ on first use (common/native.py).

The C structs hold what a CANN tiling function can receive: strings, 64-bit integers, shapes of
at most ``MAX_RANK`` dims and the dtypes of ``DTYPES``. A Python call can pass more (a layout
that is not a str, an int beyond 64 bits, a tensor of higher rank or of a dtype the core does
not number). Every rule of check.py refuses each of those, so the params cannot pass and the
Python check, which the core mirrors rule for rule, says which rule refuses first: the bridge
raises its error for them (``unrepresentable``).
"""
from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import torch

from ..common import native
from ..common.errors import CannAttentionError, CannAttentionTypeError, CannAttentionValueError
from ..common.platform import PlatformInfo, PlatformKind
from . import check as python_check
from .params import LightningIndexerParams
from .tiling import TILING_DATA

SOURCE = Path(__file__).with_name("tiling_core.cpp")
LIBRARY = "li_tiling_core"
MAX_RANK = 8                     # tiling_core.h kMaxRank
INT64_MIN, INT64_MAX = -2**63, 2**63 - 1
# DtypeCode order of tiling_core.h (names as torch spells them; a test compares the tables)
DTYPE_NAMES = (
    "bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32",
    "float64", "complex32", "complex64", "complex128", "qint8", "quint8", "qint32",
    "quint4x2", "quint2x4", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz",
    "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2", "uint16", "uint32", "uint64",
    "bits1x8", "bits2x4", "bits4x2", "bits8", "bits16", "int1", "int2", "int3", "int4", "int5",
    "int6", "int7", "uint1", "uint2", "uint3", "uint4", "uint5", "uint6", "uint7",
)
DTYPES = {getattr(torch, name): code for code, name in enumerate(DTYPE_NAMES)
          if isinstance(getattr(torch, name, None), torch.dtype)}
KINDS = {PlatformKind.CPU: 1, PlatformKind.ASCEND: 2, PlatformKind.GPU: 3}
ERRORS = {1: CannAttentionError, 2: CannAttentionTypeError, 3: CannAttentionValueError}
TENSORS = ("query", "key", "weights", "actual_seq_lengths_query", "actual_seq_lengths_key",
           "block_table")
INTS = ("sparse_count", "sparse_mode", "pre_tokens", "next_tokens")


class Tensor(ctypes.Structure):
    _fields_ = [("present", ctypes.c_int32), ("dtype", ctypes.c_int32),
                ("rank", ctypes.c_int32), ("contiguous", ctypes.c_int32),
                ("dims", ctypes.c_int64 * MAX_RANK)]


class Text(ctypes.Structure):
    _fields_ = [("data", ctypes.c_char_p), ("size", ctypes.c_int64)]


class CoreParams(ctypes.Structure):
    _fields_ = ([(name, Tensor) for name in TENSORS]
                + [("layout_query", Text), ("layout_key", Text)]
                + [(name, ctypes.c_int64) for name in INTS]
                + [("return_value", ctypes.c_int32), ("reserved", ctypes.c_int32)])


class CorePlatform(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("kind", ctypes.c_int32),
                ("num_cores", ctypes.c_int32), ("vector_cores_per_core", ctypes.c_int32),
                ("reserved", ctypes.c_int32)] + [
                   (name, ctypes.c_int64) for name in ("ub", "l1", "l0a", "l0b", "l0c")]


@functools.lru_cache(maxsize=1)
def library() -> ctypes.CDLL:
    """The core's shared library (built on first use; raises NativeBuildError without g++)."""
    lib = native.load_library(LIBRARY, [SOURCE])
    message = (ctypes.c_char_p, ctypes.c_int64)
    lib.li_check.argtypes = (ctypes.POINTER(CoreParams), *message)
    lib.li_check.restype = ctypes.c_int32
    lib.li_tiling.argtypes = (ctypes.POINTER(CoreParams), ctypes.POINTER(CorePlatform),
                              ctypes.c_char_p, ctypes.c_int64, *message)
    lib.li_tiling.restype = ctypes.c_int32
    lib.li_tiling_data_size.restype = ctypes.c_int64
    lib.li_tiling_data_version.restype = ctypes.c_uint32
    lib.li_max_rank.restype = ctypes.c_int32
    lib.li_dtype_name.argtypes = (ctypes.c_int32,)
    lib.li_dtype_name.restype = ctypes.c_char_p
    return lib


def unrepresentable(p: LightningIndexerParams) -> str | None:
    """What of ``p`` the C structs cannot hold (module doc), or None."""
    for name in ("layout_query", "layout_key"):
        if not isinstance(getattr(p, name), str):
            return f"{name} is a {type(getattr(p, name)).__name__}, not a str"
    for name in INTS:
        value = getattr(p, name)
        if not isinstance(value, int) or not INT64_MIN <= value <= INT64_MAX:
            return f"{name}={value!r} does not fit an int64"
    for name in TENSORS:
        meta = getattr(p, name)
        if meta is not None and (meta.rank > MAX_RANK or meta.dtype not in DTYPES):
            return f"{name} has rank {meta.rank} and dtype {meta.dtype}"
    return None


def _tensor(meta) -> Tensor:
    if meta is None:
        return Tensor()
    return Tensor(1, DTYPES[meta.dtype], meta.rank, int(meta.contiguous),
                  (ctypes.c_int64 * MAX_RANK)(*meta.shape))


def _text(value: str) -> Text:
    data = value.encode("utf-8", "surrogatepass")
    return Text(data, len(data))


def core_params(p: LightningIndexerParams) -> CoreParams:
    """``p`` as the core's struct (``p`` must be representable: ``unrepresentable(p)`` None)."""
    return CoreParams(*(_tensor(getattr(p, name)) for name in TENSORS),
                      _text(p.layout_query), _text(p.layout_key),
                      *(getattr(p, name) for name in INTS), int(bool(p.return_value)), 0)


def core_platform(platform: PlatformInfo) -> CorePlatform:
    """The facts the Ascend plan uses (a buffer the platform lacks counts as 0 bytes)."""
    sizes = dict(platform.buffers)
    return CorePlatform(platform.name.encode(), KINDS[platform.kind], platform.num_cores,
                        platform.vector_cores_per_core, 0,
                        *(sizes.get(name, 0) for name in ("UB", "L1", "L0A", "L0B", "L0C")))


def _message_buffer(p: LightningIndexerParams):
    # a repr escapes one character into at most 10 bytes; the rest of a message is short
    size = 4096 + 10 * (len(p.layout_query) + len(p.layout_key))
    return ctypes.create_string_buffer(size), size


def _raise(code: int, buffer) -> None:
    text = buffer.value.decode("utf-8", "surrogateescape")
    op, arg, message = text.split(": ", 2)
    raise ERRORS[code](op, arg, message)


def _python_refusal(p: LightningIndexerParams, why: str) -> None:
    python_check.check(p)
    raise AssertionError(f"the Python check accepted params the C++ core cannot hold ({why})")


def check(p: LightningIndexerParams) -> None:
    """The core's static check (check.check's rules, messages and exception classes)."""
    why = unrepresentable(p)
    if why is not None:
        _python_refusal(p, why)
    buffer, size = _message_buffer(p)
    code = library().li_check(ctypes.byref(core_params(p)), buffer, size)
    if code:
        _raise(code, buffer)


def tiling_data(p: LightningIndexerParams, platform: PlatformInfo) -> bytes:
    """The TilingData bytes the core writes for ``p`` on an Ascend A2/A3 ``platform``
    (check, plan and packing); a CPU or GPU platform is refused (the core plans Ascend only)."""
    why = unrepresentable(p)
    if why is not None:
        _python_refusal(p, why)
    lib = library()
    out = ctypes.create_string_buffer(TILING_DATA.size)
    buffer, size = _message_buffer(p)
    code = lib.li_tiling(ctypes.byref(core_params(p)), ctypes.byref(core_platform(platform)),
                         out, TILING_DATA.size, buffer, size)
    if code:
        _raise(code, buffer)
    return out.raw
