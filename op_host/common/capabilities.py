"""Capability tables: what each back end of an op supports.

Each op's ``capabilities.py`` lists one ``BackendCapability`` per back end. Dispatch, error
messages and test parametrisation read the same table, so the README's op table, the tests and
the code cannot disagree.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class BackendCapability:
    name: str                                  # "emulate", "triton", "ascendc"
    device_types: tuple[str, ...]              # torch device types it runs on
    dtypes: tuple                              # input dtypes
    status: str                                # one line for the README's op table
    auto: bool = True                          # False: runs only when asked for by name
    available: Callable[[], str | None] = field(default=lambda: None)
    # extra per-call rule: params -> reason it is unsupported, or None
    rule: Callable[[object], str | None] = field(default=lambda params: None)

    def unsupported(self, params, device_type: str, dtype) -> str | None:
        """Why this back end cannot run the call, or None when it can."""
        reason = self.available()
        if reason:
            return reason
        if device_type not in self.device_types:
            return f"runs on {'/'.join(self.device_types)} tensors, not {device_type}"
        if dtype not in self.dtypes:
            return f"supports dtypes {[str(d) for d in self.dtypes]}, not {dtype}"
        return self.rule(params)


def not_built(what: str) -> Callable[[], str]:
    return lambda: f"not available: {what}"


@functools.cache
def triton_importable() -> str | None:
    """None when Triton can be imported (GPU, or CPU with TRITON_INTERPRET=1), else why not
    (looked up once: the search of the import path costs every call tens of microseconds)."""
    import importlib.util
    return None if importlib.util.find_spec("triton") else "not available: triton is not installed"


def triton_not_built(op: str) -> BackendCapability:
    """The Triton entry of an op that has no Triton kernel yet."""
    import torch
    return BackendCapability(
        name="triton", device_types=("cuda",), dtypes=(torch.float16, torch.bfloat16),
        status="planned: no Triton kernel yet",
        available=not_built(f"no Triton kernel for {op} yet"))


def ascendc_not_built() -> BackendCapability:
    """The AscendC entry every op lists until its kernel is built with the CANN toolchain."""
    import torch
    return BackendCapability(
        name="ascendc", device_types=("npu",), dtypes=(torch.float16, torch.bfloat16),
        status="not built: needs the CANN toolchain",
        available=not_built("the AscendC kernel is not built in this package"))
