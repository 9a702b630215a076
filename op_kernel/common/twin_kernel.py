"""One of our AscendC kernels built with g++ against the AscendC twin, as a shared library (the
``library()`` of each ascendc back end: op_kernel/<op>/ascendc_twin.py)."""
from __future__ import annotations

import ctypes
from pathlib import Path

from cann_attention.op_host.common import native

TWIN_DIR = Path(__file__).with_name("ascendc_twin")
COMMON_KERNEL_DIR = Path(__file__).with_name("ascendc")     # balanced_cut.h, kernel_common.h


def build(name: str, kernel_dir: Path, kernel_source: str, host_dir: Path) -> ctypes.CDLL:
    """``kernel_dir/kernel_source`` and its ``launcher.cpp``, with the op's host headers
    (``host_dir``: its tiling data), built on first use and cached by content
    (common/native.build_dir()); the caller declares its entry points."""
    path = native.build_library(
        name, [kernel_dir / kernel_source, kernel_dir / "launcher.cpp"],
        include_dirs=(TWIN_DIR, host_dir, kernel_dir, COMMON_KERNEL_DIR))
    return ctypes.CDLL(str(path))
