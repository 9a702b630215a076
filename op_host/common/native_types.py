"""The C ABI every C++ tiling core shares (common/cpp/core_common.h), on the Python side.

``core_common.h`` defines the vocabulary once for every core and this module mirrors it once
for every ctypes bridge (op_host/<op>/native.py); tests/op_host/test_native.py holds the two to
the same tables and sizes:

- ``DTYPE_NAMES`` / ``DTYPE_CODES``: DtypeCode, torch's numbering of dtypes (c10::ScalarType),
  named as the messages spell dtypes (``errors.dtype_name``);
- ``PLATFORM_KINDS``: PlatformKindCode;
- ``TensorDesc``, ``CoreText``, ``CorePlatform``: the structs, filled by ``tensor_desc``,
  ``text`` and ``core_platform``;
- ``ERRORS`` / ``raise_refusal``: a core's (ErrorKind, message) as the Python check's exception;
- ``TilingCore``: one op's core (built by ``common.native``): its entry points
  ``<prefix>_check`` / ``<prefix>_tiling``, called with the op's params struct.

The structs hold what a CANN tiling function can receive: strings, 64-bit integers, shapes of at
most ``MAX_RANK`` dims, the dtypes of ``DTYPE_CODES``. A Python call can pass more (a tensor of
higher rank, an int beyond 64 bits...). A bridge raises ``Unrepresentable`` for what the op's
rules refuse anyway: ``TilingCore`` then lets the Python check, which the core mirrors rule for
rule, say which rule refuses first.
"""
from __future__ import annotations

import ctypes
import threading
from pathlib import Path
from typing import Callable

import torch

from . import native
from .errors import CannAttentionError, CannAttentionTypeError, CannAttentionValueError
from .platform import PlatformInfo, PlatformKind

MAX_RANK = 8                     # core_common.h kMaxRank
INT64_MIN, INT64_MAX = -2**63, 2**63 - 1

# DtypeCode order (c10::ScalarType's), names as str(dtype) spells them without "torch."
DTYPE_NAMES = (
    "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64", "complex32",
    "complex64", "complex128", "bool", "qint8", "quint8", "qint32", "bfloat16", "quint4x2",
    "quint2x4", "bits1x8", "bits2x4", "bits4x2", "bits8", "bits16", "float8_e5m2",
    "float8_e4m3fn", "float8_e5m2fnuz", "float8_e4m3fnuz", "uint16", "uint32", "uint64", "uint1",
    "uint2", "uint3", "uint4", "uint5", "uint6", "uint7", "int1", "int2", "int3", "int4", "int5",
    "int6", "int7", "float8_e8m0fnu", "float4_e2m1fn_x2",
)
# the dtypes this torch has (an older one lacks some names)
DTYPE_CODES = {getattr(torch, name): code for code, name in enumerate(DTYPE_NAMES)
               if isinstance(getattr(torch, name, None), torch.dtype)}

PLATFORM_KINDS = {PlatformKind.ASCEND: 1, PlatformKind.GPU: 2, PlatformKind.CPU: 3}
ASCEND_BUFFERS = ("UB", "L1", "L0A", "L0B", "L0C")      # CorePlatform's buffer fields, in order

# ErrorKind -> the Python check's exception class
ERRORS = {1: CannAttentionError, 2: CannAttentionTypeError, 3: CannAttentionValueError}

# core_common.h CoreStruct: which struct <prefix>_struct_size(which) measures
STRUCT_PARAMS, STRUCT_PLATFORM, STRUCT_TENSOR_DESC, STRUCT_TEXT = range(4)


class TensorDesc(ctypes.Structure):
    _fields_ = [("present", ctypes.c_int32), ("dtype", ctypes.c_int32),
                ("rank", ctypes.c_int32), ("contiguous", ctypes.c_int32),
                ("dims", ctypes.c_int64 * MAX_RANK)]


class CoreText(ctypes.Structure):
    _fields_ = [("data", ctypes.c_char_p), ("size", ctypes.c_int64)]


class CorePlatform(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("kind", ctypes.c_int32),
                ("vector_cores_per_core", ctypes.c_int32), ("num_cores", ctypes.c_int64),
                *((name.lower(), ctypes.c_int64) for name in ASCEND_BUFFERS)]


SHARED_STRUCTS = {STRUCT_PLATFORM: CorePlatform, STRUCT_TENSOR_DESC: TensorDesc,
                  STRUCT_TEXT: CoreText}


class Unrepresentable(Exception):
    """A value of a call's params that the C structs cannot hold (module doc)."""


def fits_int64(value) -> bool:
    return isinstance(value, int) and INT64_MIN <= value <= INT64_MAX


def tensor_desc(name: str, meta) -> TensorDesc:
    """The descriptor of a TensorMeta (None: an absent optional tensor). ``Unrepresentable``
    for a rank above ``MAX_RANK`` or a dtype without a code."""
    if meta is None:
        return TensorDesc()
    code = DTYPE_CODES.get(meta.dtype)
    if meta.rank > MAX_RANK or code is None:
        raise Unrepresentable(f"{name} has rank {meta.rank} and dtype {meta.dtype}")
    return TensorDesc(1, code, meta.rank, int(meta.contiguous),
                      (ctypes.c_int64 * MAX_RANK)(*meta.shape))


def text(value: str | None) -> CoreText:
    """A str attribute as UTF-8 bytes (surrogates kept, as Python's repr shows them); None as a
    null pointer."""
    if value is None:
        return CoreText(None, 0)
    data = value.encode("utf-8", "surrogatepass")
    return CoreText(data, len(data))


def core_platform(platform: PlatformInfo) -> CorePlatform:
    """The facts of ``platform`` a core's plan reads; a buffer the platform lacks is 0 bytes (a
    core plans Ascend A2/A3 only, whose platforms have all five)."""
    sizes = dict(platform.buffers)
    return CorePlatform(platform.name.encode(), PLATFORM_KINDS[platform.kind],
                        platform.vector_cores_per_core, platform.num_cores,
                        *(sizes.get(name, 0) for name in ASCEND_BUFFERS))


def message_size(params: ctypes.Structure) -> int:
    """Bytes that hold any refusal of ``params``: repr writes a byte of a str attribute's UTF-8
    as at most 4 bytes ("\\x7f"; a 4-byte character as the 10 of "\\U0001f600"); the rest of a
    message is short."""
    texts = sum(getattr(params, name).size for name, kind in params._fields_
                if kind is CoreText)
    return 4096 + 4 * texts


def raise_refusal(code: int, message: bytes) -> None:
    """The Python check's exception for a core's refusal "<op>: <argument>: <rest>"."""
    op, arg, rest = message.decode("utf-8", "replace").split(": ", 2)
    raise ERRORS.get(code, CannAttentionError)(op, arg, rest)


class TilingCore:
    """One op's C++ tiling core through ctypes.

    ``prefix`` names the library (``<prefix>_tiling_core``) and its entry points
    (``<prefix>_check``, ``<prefix>_tiling``, ``<prefix>_tiling_data_size``,
    ``<prefix>_dtype_name``, ``<prefix>_struct_size``); ``params_of(p)`` fills the op's params
    struct ``params_type`` from its Python params (raising ``Unrepresentable`` for what the
    struct cannot hold), and ``python_check(p)`` is the op's static check in Python.
    """

    def __init__(self, prefix: str, source: Path, params_type: type[ctypes.Structure],
                 params_of: Callable, python_check: Callable):
        self.prefix, self.source, self.params_type = prefix, source, params_type
        self.params_of, self.python_check = params_of, python_check
        self._library: ctypes.CDLL | None = None
        self._lock = threading.Lock()

    def entry(self, lib: ctypes.CDLL, name: str):
        return getattr(lib, f"{self.prefix}_{name}")

    def library(self) -> ctypes.CDLL:
        """The built core (compiled on first use; ``native.NativeBuildError`` without g++)."""
        with self._lock:
            if self._library is None:
                self._library = self._load()
            return self._library

    def _load(self) -> ctypes.CDLL:
        lib = native.load_library(f"{self.prefix}_tiling_core", [self.source])
        params, message = ctypes.POINTER(self.params_type), (ctypes.c_char_p, ctypes.c_int64)
        signatures = {
            "check": (ctypes.c_int32, (params, *message)),
            "tiling": (ctypes.c_int32, (params, ctypes.POINTER(CorePlatform), ctypes.c_char_p,
                                        ctypes.c_int64, *message)),
            "tiling_data_size": (ctypes.c_int64, ()),
            "dtype_name": (ctypes.c_char_p, (ctypes.c_int32,)),
            "struct_size": (ctypes.c_int64, (ctypes.c_int32,)),
        }
        for name, (restype, argtypes) in signatures.items():
            function = self.entry(lib, name)
            function.restype, function.argtypes = restype, argtypes
        # a mirror out of step with its C struct would have the core read the wrong bytes
        for which, mirror in {STRUCT_PARAMS: self.params_type, **SHARED_STRUCTS}.items():
            size = self.entry(lib, "struct_size")(which)
            if size != ctypes.sizeof(mirror):
                raise native.NativeBuildError(
                    f"{self.source}: the C struct measured by {self.prefix}_struct_size({which}) "
                    f"has {size} bytes, its ctypes mirror {mirror.__name__} "
                    f"{ctypes.sizeof(mirror)}")
        return lib

    def params(self, p) -> ctypes.Structure:
        """The core's params of ``p``; where the struct cannot hold ``p``, the Python check's
        refusal (every rule refuses what the struct cannot hold)."""
        try:
            return self.params_of(p)
        except Unrepresentable as why:
            self.python_check(p)
            raise AssertionError(f"the Python check accepted params the C++ core cannot hold "
                                 f"({why})") from None

    def _call(self, name: str, params: ctypes.Structure, *args) -> None:
        size = message_size(params)
        message = ctypes.create_string_buffer(size)
        code = self.entry(self.library(), name)(ctypes.byref(params), *args, message, size)
        if code:
            raise_refusal(code, message.value)

    def check(self, p) -> None:
        """The core's static check of ``p`` (the op's check.check without check_values)."""
        self._call("check", self.params(p))

    def tiling_data(self, p, platform: PlatformInfo) -> bytes:
        """The TilingData bytes the core writes for ``p`` on an Ascend A2/A3 ``platform`` (check,
        plan and packing); another platform is refused (the cores plan Ascend only)."""
        params = self.params(p)
        size = self.entry(self.library(), "tiling_data_size")()
        out = ctypes.create_string_buffer(size)
        self._call("tiling", params, ctypes.byref(core_platform(platform)), out, size)
        return out.raw
