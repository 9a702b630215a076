"""Registration of the ops and their faces with torch.library.

Each op registers one private op, ``cann_attention::_<op>`` (its schema with every argument
positional; ``CompositeExplicitAutograd``: CPU, CUDA and NPU tensors reach the same pipeline,
``OpDef.call_bound``; a fake function that shares the real path's shape logic), and its faces
(faces.py), each a ``CompositeImplicitAutograd`` op in its namespace that calls the private op.

Coexistence with a CANN op package (its library defines ``custom::npu_*`` for NPU tensors):
- loaded first: where its schema equals the face's, the face's kernel attaches to it (NPU tensors
  keep the package's kernel, CPU and CUDA tensors get ours); where it differs, a warning names
  the difference at import and calls on CPU / CUDA tensors raise the same message;
- loaded after: ``with cann_attention.make_way("custom"): <load the package>`` withdraws our
  definitions in that namespace while it loads, then attaches as above.
"""
from __future__ import annotations

import contextlib
import warnings

import torch

from .faces import Face, NoBackwardError
from .op_host.common.errors import CannAttentionError
from .pipeline import OpDef

PRIVATE = "cann_attention"
OPS: dict[str, OpDef] = {}       # every op of the package, by name
FACES: list[Face] = []           # every face, in registration order
CONFLICTS: dict[str, str] = {}   # qualname -> why our kernel could not attach to it

_PRIVATE_LIB = torch.library.Library(PRIVATE, "FRAGMENT")
_LIBS: dict[str, torch.library.Library] = {}


class SchemaConflictWarning(UserWarning):
    """An op of a face was already registered (by another package) with another schema."""


def _no_backward(grad, op: str):
    raise NoBackwardError(op)


_PRIVATE_LIB.define("no_backward(Tensor grad, str op) -> Tensor")
_PRIVATE_LIB.impl("no_backward", _no_backward, "CompositeExplicitAutograd")
torch.library.register_fake(f"{PRIVATE}::no_backward", lambda grad, op: grad.new_empty(()),
                            lib=_PRIVATE_LIB)


def all_positional(schema: str) -> str:
    """The schema with its keyword-only marker removed (the private op's form)."""
    return schema.replace("*, ", "")


def register(op: OpDef, faces: tuple[Face, ...], doc: str = ""):
    """Register the op's private op and its faces; return the package face's Python function
    (what ``torch.ops.cann_attention.<op>`` runs, without the dispatcher)."""
    name = "_" + op.name
    bind = op.signature.bind_dispatched

    def impl(*args, **kwargs):
        return op.call_bound(bind(args, kwargs))

    def fake(*args, **kwargs):
        return op.fake(bind(args, kwargs))

    _PRIVATE_LIB.define(name + all_positional(op.schema)[len(op.name):])
    _PRIVATE_LIB.impl(name, impl, "CompositeExplicitAutograd")
    torch.library.register_fake(f"{PRIVATE}::{name}", fake, lib=_PRIVATE_LIB)
    op.private = getattr(torch.ops.cann_attention, name).default
    OPS[op.name] = op
    for face in faces:
        FACES.append(face)
        if face.registered:
            _attach(face)
    package = next(f for f in faces if f.namespace == PRIVATE)
    function = package.python_function()
    function.__doc__ = doc
    return function


def _library(namespace: str) -> torch.library.Library:
    if namespace not in _LIBS:
        _LIBS[namespace] = torch.library.Library(namespace, "FRAGMENT")
    return _LIBS[namespace]


def _existing_schema(qualname: str):
    try:
        return torch._C._get_schema(qualname, "")
    except RuntimeError:
        return None


def _argument_text(a) -> str:
    default = f"={a.default_value!r}" if a.has_default_value() else ""
    return f"{'*, ' if a.kwarg_only else ''}{a.type} {a.name}{default}"


def schema_difference(ours: str, theirs) -> str | None:
    """None when the two schemas are the same, else the first difference in words."""
    mine = torch._C.parse_schema(ours)
    if str(mine) == str(theirs):
        return None
    a_args, b_args = list(mine.arguments), list(theirs.arguments)
    for a, b in zip(a_args, b_args):
        if _argument_text(a) != _argument_text(b):
            return (f"argument {a.name!r}: ours is '{_argument_text(a)}', "
                    f"theirs is '{_argument_text(b)}'")
    if len(a_args) != len(b_args):
        extra = a_args[len(b_args):] or b_args[len(a_args):]
        side = "ours" if len(a_args) > len(b_args) else "theirs"
        return f"{side} has the extra arguments {[x.name for x in extra]}"
    return f"returns: ours are {list(map(str, mine.returns))}, " \
           f"theirs are {list(map(str, theirs.returns))}"


def _attach(face: Face) -> None:
    qualname = face.qualname
    lib = _library(face.namespace)
    ours = f"{qualname}{face.schema[len(face.name):]}"
    theirs = _existing_schema(qualname)
    if theirs is None:
        lib.define(face.schema)
    else:
        difference = schema_difference(ours, theirs)
        if difference is not None:
            _refuse(face, lib, f"{qualname} is already registered (by another package) with "
                    f"another schema, so cann_attention cannot serve it: {difference}")
            return
        if torch._C._dispatch_has_kernel_for_dispatch_key(qualname, "CompositeImplicitAutograd"):
            return       # our kernel is attached already (the package was imported twice)
    lib.impl(face.name, face.kernel, "CompositeImplicitAutograd")
    CONFLICTS.pop(qualname, None)


def _refuse(face: Face, lib, message: str) -> None:
    CONFLICTS[face.qualname] = message
    warnings.warn(message, SchemaConflictWarning, stacklevel=3)

    def refuse(*args, **kwargs):
        raise CannAttentionSchemaError(face.op.name, "schema", message)

    for key in ("CPU", "CUDA"):
        if not torch._C._dispatch_has_kernel_for_dispatch_key(face.qualname, key):
            lib.impl(face.name, refuse, key)


class CannAttentionSchemaError(CannAttentionError):
    """A face's op is registered by another package with another schema."""


@contextlib.contextmanager
def make_way(namespace: str = "custom"):
    """Withdraw our definitions in ``namespace`` while another op library (a CANN custom op
    package) loads and defines its own there; afterwards attach our kernels to its schemas (or
    warn, naming the difference). Without this, a library that defines ``custom::npu_*`` after
    ``import cann_attention`` fails to load: an op can be defined once."""
    lib = _LIBS.pop(namespace, None)
    if lib is not None:
        lib._destroy()
    try:
        yield
    finally:
        for face in FACES:
            if face.registered and face.namespace == namespace:
                _attach(face)


def clear_caches() -> None:
    """Empty every cache of the package: the ops' static entries and plans, the platforms read
    off devices, the workspaces kept for eager GPU calls, and the caches of the back ends loaded
    so far (a back-end module's ``clear_cache``). Compiled kernels stay in Triton's own cache."""
    import sys

    from .op_host.common import paging, platform
    from .op_kernel.common import workspace
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
    workspace.clear()
