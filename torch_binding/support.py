"""The support matrix of the ops, generated from their back-end registries (capabilities.py).

``markdown(op_names)`` gives the table README.md and docs/<op>.md carry between their
``<!-- backends:begin -->`` / ``<!-- backends:end -->`` markers (scripts/update_docs.py writes
them; a test keeps them in sync), so the documents say what the registries say.
"""
from __future__ import annotations

from .library import OPS
from .op_host.common.errors import dtype_name

BEGIN, END = "<!-- backends:begin -->", "<!-- backends:end -->"


def _row(op: str, backend) -> str:
    state = ("not built" if backend.runner is None
             else "auto" if backend.auto else "by name")
    if backend.runner is not None and backend.auto and backend.named_only_on:
        state += f" ({'/'.join(backend.named_only_on)}: by name)"
    dtypes = ", ".join(dtype_name(d) for d in backend.dtypes)
    return (f"| `{op}` | `{backend.name}` | {backend.priority} | {state} | "
            f"{'/'.join(backend.device_types)} | {dtypes} | {backend.status} |")


def markdown(op_names=None) -> str:
    """The table for ``op_names`` (default: every op), back ends by priority."""
    names = op_names or sorted(OPS)
    lines = ["| op | back end | priority | dispatch | devices | dtypes | what it runs |",
             "|---|---|---|---|---|---|---|"]
    for name in names:
        lines += [_row(name, b) for b in OPS[name].backends]
    return "\n".join(lines)


def replace_block(text: str, table: str) -> str:
    """``text`` with the part between the markers replaced by ``table``."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + "\n" + table + "\n" + text[end:]
