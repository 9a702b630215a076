"""Registration of the ``custom`` namespace through torch.library.

Each op registers one schema, one implementation for every device (CompositeExplicitAutograd:
CPU, CUDA and NPU tensors reach the same Python entry point, which dispatches through the
op's capability table) and one fake function that shares the real path's output-shape logic.
The ops are forward-only (inference); they register no autograd formula.
"""
from __future__ import annotations

import torch

NAMESPACE = "custom"
_LIB = torch.library.Library(NAMESPACE, "FRAGMENT")


def define_op(schema: str, impl, fake) -> None:
    name = schema.split("(", 1)[0]
    qualname = f"{NAMESPACE}::{name}"
    _LIB.define(schema)
    _LIB.impl(name, impl, "CompositeExplicitAutograd")
    torch.library.register_fake(qualname, fake, lib=_LIB)
