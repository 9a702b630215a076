"""The C++ tiling core of npu_lightning_indexer (tiling_core.cpp) through ctypes.

``tiling_data(params, platform)`` is the core's answer to what ``check.check`` followed by
``tiling.tiling_data(tiling.plan(...), ...)`` gives in Python: the TilingData bytes of a call on
an Ascend A2/A3 platform, or the same exception with the same message. ``check(params)`` runs
the core's static check alone. The library is built with g++ on first use (common/native.py) and
run by ``common.native_types.TilingCore``; this module fills its params struct
(``LiCoreParams``, made of the shared structs of ``common.native_types``).

The struct holds what a CANN tiling function can receive: strings, 64-bit integers, shapes of
at most ``native_types.MAX_RANK`` dims and the dtypes of ``native_types.DTYPE_CODES``. A Python
call can pass more (a layout that is not a str, an int beyond 64 bits, a tensor of higher rank
or of a dtype the core does not number). Every rule of check.py refuses each of those, so the
params cannot pass and the Python check, which the core mirrors rule for rule, says which rule
refuses first: the bridge raises its error for them (``unrepresentable``).
"""
from __future__ import annotations

import ctypes
import functools
from pathlib import Path

from ..common import native_types
from ..common.native_types import CoreText, TensorDesc, Unrepresentable
from ..common.platform import PlatformInfo
from . import check as python_check
from .params import LightningIndexerParams

SOURCE = Path(__file__).with_name("tiling_core.cpp")
TENSORS = ("query", "key", "weights", "actual_seq_lengths_query", "actual_seq_lengths_key",
           "block_table")
TEXTS = ("layout_query", "layout_key")
INTS = ("sparse_count", "sparse_mode", "pre_tokens", "next_tokens")


class CoreParams(ctypes.Structure):
    """tiling_core.h LiCoreParams."""
    _fields_ = ([(name, TensorDesc) for name in TENSORS]
                + [(name, CoreText) for name in TEXTS]
                + [(name, ctypes.c_int64) for name in INTS]
                + [("return_value", ctypes.c_int32), ("reserved", ctypes.c_int32)])


def core_params(p: LightningIndexerParams) -> CoreParams:
    """``p`` as the core's struct; ``Unrepresentable`` for what it cannot hold (module doc)."""
    for name in TEXTS:
        if not isinstance(getattr(p, name), str):
            raise Unrepresentable(f"{name} is a {type(getattr(p, name)).__name__}, not a str")
    for name in INTS:
        if not native_types.fits_int64(getattr(p, name)):
            raise Unrepresentable(f"{name}={getattr(p, name)!r} does not fit an int64")
    return CoreParams(*(native_types.tensor_desc(name, getattr(p, name)) for name in TENSORS),
                      *(native_types.text(getattr(p, name)) for name in TEXTS),
                      *(getattr(p, name) for name in INTS), int(bool(p.return_value)), 0)


def unrepresentable(p: LightningIndexerParams) -> str | None:
    """What of ``p`` the C structs cannot hold (module doc), or None."""
    try:
        core_params(p)
    except Unrepresentable as why:
        return str(why)
    return None


CORE = native_types.TilingCore("li", SOURCE, CoreParams, core_params, python_check.check)


@functools.lru_cache(maxsize=1)
def library() -> ctypes.CDLL:
    """The core's shared library (built on first use; raises NativeBuildError without g++)."""
    lib = CORE.library()
    lib.li_tiling_data_version.restype = ctypes.c_uint32
    lib.li_tiling_data_version.argtypes = ()
    lib.li_max_rank.restype = ctypes.c_int32
    lib.li_max_rank.argtypes = ()
    return lib


def check(p: LightningIndexerParams) -> None:
    """The core's static check (check.check's rules, messages and exception classes)."""
    CORE.check(p)


def tiling_data(p: LightningIndexerParams, platform: PlatformInfo) -> bytes:
    """The TilingData bytes the core writes for ``p`` on an Ascend A2/A3 ``platform``
    (check, plan and packing); a CPU or GPU platform is refused (the core plans Ascend only)."""
    return CORE.tiling_data(p, platform)
