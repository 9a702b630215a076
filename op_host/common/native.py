"""Builds the C++ parts of the host side (the tiling cores) into shared libraries on demand.

The tiling core of an op is plain C++17 with no CANN header (op_host/<op>/tiling_core.cpp): CANN's
build links it into the op package, and this module compiles it natively with the machine's g++
so that tests and the CPU path call the same code through ctypes. A library is built once per
content hash of its sources, headers and flags, into ``CANN_ATTENTION_BUILD_DIR`` (default
``~/.cache/cann_attention/build``), and reused by every later process. The vocabulary the cores
share (common/cpp/core_common.h) is mirrored on the Python side once, in ``native_types``.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

HOST_ROOT = Path(__file__).resolve().parents[1]        # op_host/
COMMON_INCLUDE = HOST_ROOT / "common" / "cpp"
FLAGS = ("-std=c++17", "-O1", "-shared", "-fPIC", "-Wall", "-Werror")


class NativeBuildError(RuntimeError):
    """g++ is missing or refused a source."""


def build_dir() -> Path:
    from cann_attention.config import native_build_dir    # config reads the environment
    return Path(native_build_dir() or Path.home() / ".cache" / "cann_attention" / "build")


def compiler() -> str | None:
    from cann_attention.config import cxx
    return shutil.which(cxx())


def no_compiler() -> str | None:
    """A registry availability for back ends built on first use: None where the C++ compiler
    is present, else why not."""
    return None if compiler() else "not available: no C++ compiler (g++) to build it"


def _digest(sources: list[Path], headers: list[Path], flags: tuple[str, ...]) -> str:
    h = hashlib.sha256(" ".join(flags).encode())
    for path in sorted(sources) + sorted(headers):
        h.update(str(path.name).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def build_library(name: str, sources: list[Path], include_dirs: tuple[Path, ...] = (),
                  defines: tuple[str, ...] = ()) -> Path:
    """The shared library of ``sources`` (built now unless a build of the same content exists).
    ``include_dirs`` come before the common one; every header in them is part of the content."""
    cxx = compiler()
    if cxx is None:
        raise NativeBuildError("no C++ compiler (g++) on this machine: install g++ (Debian: "
                               "apt-get install g++)")
    dirs = (*map(Path, include_dirs), COMMON_INCLUDE)
    flags = (*FLAGS, *(f"-I{d}" for d in dirs), *(f"-D{d}" for d in defines))
    headers = sorted({h for d in dirs for h in d.rglob("*.h")}
                     | {h for source in sources for h in source.parent.glob("*.h")})
    target = build_dir() / f"lib{name}-{_digest(sources, headers, flags)}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        partial = Path(tmp) / target.name
        cmd = [cxx, *flags, *map(str, sources), "-o", str(partial)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise NativeBuildError(f"building {name} failed:\n{' '.join(cmd)}\n{res.stderr}")
        os.replace(partial, target)     # atomic: a concurrent build of the same content is fine
    return target


def load_library(name: str, sources: list[Path]) -> ctypes.CDLL:
    return ctypes.CDLL(str(build_library(name, sources)))
