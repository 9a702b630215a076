"""The package's configuration, and the environment variables it reads (the only module that
reads any).

``cann_attention.config`` holds the process-wide defaults; ``cann_attention.use(...)`` overrides
them for a block of code in the current thread or asyncio task only (a ``contextvars`` scope), so
concurrent callers never see each other's settings. A call reads the configuration once, when
it starts (``current()``).

- ``backend`` (``"auto"``; env ``CANN_ATTENTION_BACKEND``): which back end runs the ops.
  ``"auto"`` takes the back end of highest priority in the op's registry that can run the call;
  any other name forces that back end and raises when it cannot run the call (never a silent
  fallback).
- ``platform`` (``None``): a ``PlatformInfo`` whose plan the emulator executes instead of its
  default, the Ascend A3 plan (the plan of the AscendC kernel it stands in for), e.g. ``H100``
  to run a GPU schedule on a CPU. Device back ends always plan for the device they run on.
- ``value_checks`` (``False``; env ``CANN_ATTENTION_VALUE_CHECKS=1``): also check the values
  inside device tensors (lengths against shapes, prefix sums, page-table entries) before a
  launch. They cost a device-to-host read, which synchronises the stream and cannot be captured
  in a CUDA graph. Values in CPU tensors are always checked. With the checks off, malformed
  values never cause an out-of-bounds read (each op's doc says what the result is then).
- ``share_schedules`` (``True``): inside a CUDA graph capture, npu_sparse_flash_attention calls
  with the same lengths and page-table tensors share one device schedule, built by the first
  of them (a decode step's layers: op_kernel/sparse_flash_attention/shared.py says when two
  calls count as the same, and the one case it cannot see). Eager calls never share.

Per call: ``with cann_attention.use(backend="emulate"): out = op(...)`` scopes a setting to
exactly the calls inside the block.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from dataclasses import dataclass, fields, replace

from .op_host.common.platform import PlatformInfo

ENV_BACKEND = "CANN_ATTENTION_BACKEND"
ENV_VALUE_CHECKS = "CANN_ATTENTION_VALUE_CHECKS"
ENV_TRITON_FAST_LAUNCH = "CANN_ATTENTION_TRITON_FAST_LAUNCH"
ENV_BUILD_DIR = "CANN_ATTENTION_BUILD_DIR"
ENV_CXX = "CXX"
ENV_CUSTOM_OPP = "ASCEND_CUSTOM_OPP_PATH"        # CANN's own: custom op package folders
ENV_OPP = "ASCEND_OPP_PATH"                      # CANN's own: the opp folder (vendors/)
ENVIRONMENT = (ENV_BACKEND, ENV_VALUE_CHECKS, ENV_TRITON_FAST_LAUNCH, ENV_BUILD_DIR,
               ENV_CXX, ENV_CUSTOM_OPP, ENV_OPP)                         # listed in README.md


@dataclass(frozen=True)
class Config:
    backend: str = "auto"
    platform: PlatformInfo | None = None
    value_checks: bool = False
    share_schedules: bool = True


def triton_fast_launch() -> bool:
    """Whether Triton back ends may launch compiled kernels directly after their first launch
    (op_kernel/common/triton_launch.py); ``CANN_ATTENTION_TRITON_FAST_LAUNCH=0`` turns it off."""
    return os.environ.get(ENV_TRITON_FAST_LAUNCH, "1") not in ("", "0")


def native_build_dir() -> str | None:
    """Where the C++ libraries built on first use go (op_host/common/native.py), when
    ``CANN_ATTENTION_BUILD_DIR`` names a folder; None: the default under the home folder."""
    return os.environ.get(ENV_BUILD_DIR) or None


def cxx() -> str:
    """The C++ compiler of those builds: ``CXX``, else g++."""
    return os.environ.get(ENV_CXX) or "g++"


def _from_environment() -> Config:
    return Config(backend=os.environ.get(ENV_BACKEND, "auto"),
                  value_checks=os.environ.get(ENV_VALUE_CHECKS, "0") not in ("", "0"))


_LOCK = threading.Lock()
_defaults = _from_environment()
_scoped: contextvars.ContextVar[Config | None] = contextvars.ContextVar(
    "cann_attention_config", default=None)
_NAMES = tuple(f.name for f in fields(Config))


def current() -> Config:
    """The configuration in force here: the innermost ``use`` scope, else the defaults."""
    scoped = _scoped.get()
    return scoped if scoped is not None else _defaults


class _Defaults:
    """``cann_attention.config``: reading an attribute gives the value in force here
    (``current()``); assigning one changes the process-wide default."""

    def __getattr__(self, name):
        if name not in _NAMES:
            raise AttributeError(name)
        return getattr(current(), name)

    def __setattr__(self, name, value):
        global _defaults
        if name not in _NAMES:
            raise AttributeError(f"cann_attention.config has no setting {name!r}")
        with _LOCK:
            _defaults = replace(_defaults, **{name: value})

    def __repr__(self):
        return repr(current())


config = _Defaults()


@contextlib.contextmanager
def use(backend: str | None = None, platform: PlatformInfo | None = None,
        value_checks: bool | None = None, share_schedules: bool | None = None):
    """Override settings for the calls made inside the block (this thread / task only)."""
    changes = {k: v for k, v in (("backend", backend), ("platform", platform),
                                 ("value_checks", value_checks),
                                 ("share_schedules", share_schedules)) if v is not None}
    token = _scoped.set(replace(current(), **changes))
    try:
        yield current()
    finally:
        _scoped.reset(token)


def ascend_opp_paths() -> tuple[str | None, str | None]:
    """(``ASCEND_CUSTOM_OPP_PATH``, ``ASCEND_OPP_PATH``): where torch_npu looks for custom op
    packages, read as torch_npu reads them (op_kernel/common/ascendc_npu.py: is our op package
    the one it finds?)."""
    return os.environ.get(ENV_CUSTOM_OPP) or None, os.environ.get(ENV_OPP) or None
