"""Exceptions raised by every op of the package.

Every message names the operator and the argument and states what was expected and what was
given, e.g. ``npu_sparse_flash_attention: sparse_block_size: expected a power of 2 in [1, 128],
got 3``. CANN's torch binding raises RuntimeError for invalid arguments; MindSpore raises
TypeError for a non-tensor argument or a wrong dtype. We follow that split:
``CannAttentionTypeError`` is both a ``CannAttentionError`` and a ``TypeError``;
``CannAttentionValueError`` is both a ``CannAttentionError`` and a ``ValueError`` (for the rules
MindSpore documents as ValueError).
"""
from __future__ import annotations


class CannAttentionError(RuntimeError):
    """An argument breaks a rule of the op (docs/<op>.md, Errors), or the call cannot be planned."""

    def __init__(self, op: str, arg: str, message: str):
        self.op = op
        self.arg = arg
        super().__init__(f"{op}: {arg}: {message}")


class CannAttentionTypeError(CannAttentionError, TypeError):
    """An argument has the wrong Python type or tensor dtype."""


class CannAttentionValueError(CannAttentionError, ValueError):
    """An argument has the right type but a value MindSpore reports as ValueError."""


class Checker:
    """Raises the errors of one op; keeps the op name out of every call site."""

    def __init__(self, op: str):
        self.op = op

    def fail(self, arg: str, expected: str, actual: object) -> None:
        raise CannAttentionError(self.op, arg, f"expected {expected}, got {actual}")

    def fail_type(self, arg: str, expected: str, actual: object) -> None:
        raise CannAttentionTypeError(self.op, arg, f"expected {expected}, got {actual}")

    def fail_value(self, arg: str, expected: str, actual: object) -> None:
        raise CannAttentionValueError(self.op, arg, f"expected {expected}, got {actual}")

    def require_value(self, ok: bool, arg: str, expected: str, actual: object) -> None:
        if not ok:
            self.fail_value(arg, expected, actual)

    def require(self, ok: bool, arg: str, expected: str, actual: object) -> None:
        if not ok:
            self.fail(arg, expected, actual)

    def require_type(self, ok: bool, arg: str, expected: str, actual: object) -> None:
        if not ok:
            self.fail_type(arg, expected, actual)


def dtype_name(dtype) -> str:
    """``torch.bfloat16`` -> ``bfloat16``, as the messages spell dtypes."""
    return str(dtype).replace("torch.", "")
