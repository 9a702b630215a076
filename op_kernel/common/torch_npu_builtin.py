"""The ``torch_npu`` back end: a call on NPU tensors handed to torch_npu's own kernel of the op.

torch_npu ships ``npu_sparse_flash_attention`` and ``npu_lightning_indexer`` (among others) as
``torch.ops.npu.<op>`` with a PrivateUse1 kernel. Until our op package is installed, NPU users
get that kernel's native speed instead of the emulator. The arguments go by name: every argument
of torch_npu's schema is a field of the op's params (scalars) or tensors, since our schemas use
torch_npu's names.
"""
from __future__ import annotations

import torch


def builtin(op: str):
    """torch_npu's op (a test may replace this to record the call)."""
    return getattr(torch.ops.npu, op).default


def arguments(op_overload, params, tensors) -> tuple[list, dict]:
    """(args, kwargs) of the call in the op's schema: tensors from ``tensors``, the rest from
    ``params``."""
    args, kwargs = [], {}
    for a in op_overload._schema.arguments:
        value = getattr(tensors, a.name) if hasattr(tensors, a.name) else getattr(params, a.name)
        if a.kwarg_only:
            kwargs[a.name] = value
        else:
            args.append(value)
    return args, kwargs


def run(params, op: str, tensors):
    """The back end's run: ``op`` is its plan (the name of torch_npu's op)."""
    target = builtin(op)
    args, kwargs = arguments(target, params, tensors)
    return target(*args, **kwargs)
