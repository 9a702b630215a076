"""Registration of the ``custom`` namespace through torch.library.

Each op registers its one schema, one implementation for every device (CompositeExplicitAutograd:
CPU, CUDA and NPU tensors reach the same pipeline, ``OpDef.call``, which dispatches through the
op's back-end registry) and one fake function that shares the real path's output-shape logic.
The ops are forward-only (inference); they register no autograd formula.
"""
from __future__ import annotations

import inspect

import torch

from .pipeline import OpDef

NAMESPACE = "custom"
_LIB = torch.library.Library(NAMESPACE, "FRAGMENT")
OPS: dict[str, OpDef] = {}     # every op of the package, by name


def _signature(op: OpDef) -> inspect.Signature:
    params = []
    for a in op.arguments:
        kind = (inspect.Parameter.KEYWORD_ONLY if a.kwarg_only
                else inspect.Parameter.POSITIONAL_OR_KEYWORD)
        default = inspect.Parameter.empty if a.default is None and a.kind == "tensor" else a.default
        params.append(inspect.Parameter(a.name, kind, default=default))
    return inspect.Signature(params)


def register(op: OpDef, doc: str = ""):
    """Define ``custom::<op>`` and return the Python function that runs the op's pipeline
    (what ``torch.ops.custom.<op>`` runs, without the dispatcher)."""
    qualname = f"{NAMESPACE}::{op.name}"

    def impl(*args, **kwargs):
        return op.call(args, kwargs)

    def fake(*args, **kwargs):
        return op.fake(op.bind(args, kwargs))

    _LIB.define(op.schema)
    _LIB.impl(op.name, impl, "CompositeExplicitAutograd")
    torch.library.register_fake(qualname, fake, lib=_LIB)
    impl.__name__ = impl.__qualname__ = op.name
    impl.__doc__ = doc
    impl.__signature__ = _signature(op)
    OPS[op.name] = op
    return impl


def clear_caches() -> None:
    """Empty every cache of the package: the ops' static entries and plans, the platforms read
    off devices, and the caches of the back ends loaded so far (a back-end module's
    ``clear_cache``). Compiled kernels stay in Triton's own cache."""
    import sys

    from .op_host.common import paging, platform
    for op in OPS.values():
        op.clear_cache()
        for backend in op.backends:
            plan_cache = getattr(backend.plan, "cache_clear", None)
            if plan_cache is not None:
                plan_cache()
            module = backend.runner and sys.modules.get(
                "cann_attention.op_kernel." + backend.runner.split(":")[0])
            if module is not None and hasattr(module, "clear_cache"):
                module.clear_cache()
    platform.triton_version.cache_clear()
    platform._cuda_platform.cache_clear()
    paging.clear_cache()
