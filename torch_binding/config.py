"""The package's one configuration object, and the one environment variable it reads.

``cann_attention.config.backend``: which back end runs the ops. ``"auto"`` (default) picks the
first back end of the op's capability table that supports the call; any other name forces that
back end and raises an error when it cannot run the call (never a silent fallback).
Initial value: the environment variable ``CANN_ATTENTION_BACKEND`` if set.

``cann_attention.config.platform``: a ``PlatformInfo`` whose plan the emulator executes instead
of the plan of the tensors' device (e.g. ``ASCEND_A3`` to run the A3 schedule on a CPU).

Use ``with cann_attention.use(backend="emulate", platform=ASCEND_A3): ...`` to set them for a
block of code.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from .op_host.common.platform import PlatformInfo

ENV_BACKEND = "CANN_ATTENTION_BACKEND"


@dataclass
class Config:
    backend: str = "auto"
    platform: PlatformInfo | None = None


config = Config(backend=os.environ.get(ENV_BACKEND, "auto"))


@contextlib.contextmanager
def use(backend: str | None = None, platform: PlatformInfo | None = None):
    saved = (config.backend, config.platform)
    if backend is not None:
        config.backend = backend
    if platform is not None:
        config.platform = platform
    try:
        yield config
    finally:
        config.backend, config.platform = saved
