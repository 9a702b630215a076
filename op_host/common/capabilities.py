"""Capability tables: what each back end of an op supports.

Each op's ``capabilities.py`` lists one ``BackendCapability`` per back end. Dispatch, error
messages and test parametrisation read the same table, so the README's op table, the tests and
the code cannot disagree.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class BackendCapability:
    name: str                                  # "emulate", "triton", "ascendc"
    device_types: tuple[str, ...]              # torch device types it runs on
    dtypes: tuple                              # input dtypes
    status: str                                # one line for the README's op table
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
