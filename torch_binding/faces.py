"""Faces: the signatures real code calls an op with, each a thin adapter over its one pipeline.

An op has one implementation (its ``OpDef``, run by the pipeline) and several faces:

- ``cann_attention``: the package's own form, ``torch.ops.cann_attention.<op>``: every argument
  any face has (the union), the full outputs;
- ``custom``: ``torch.ops.custom.<op>`` exactly as cann-recipes-infer registered it (the sparse
  flash attention and the indexer return one Tensor), torch_npu's schema for the other ops;
- ``npu``: torch_npu 2.13's schemas, ``cann_attention.torch_npu.<op>`` and ``torch.ops.npu.<op>``;
- ``mindspore``: MindSpore's Python functions, ``cann_attention.mindspore.<op>``.

A face maps its bound arguments onto the op's (same names unless renamed; arguments it lacks take
the value the face implies, ``fixed``, or the op's default), runs the op and maps the outputs back.
Registered faces are ``CompositeImplicitAutograd`` kernels that call the op's private op
``torch.ops.cann_attention._<op>`` (``CompositeExplicitAutograd`` + a fake): ``torch.compile``,
``torch.export`` and ``opcheck`` trace through the face to that op.

Autograd: when a gradient can be requested (grad mode on and an input requiring grad), the op runs
inside an ``autograd.Function``. Its backward is the op's ``gradient`` where it has one; otherwise
it calls ``cann_attention::no_backward``, which raises one error naming the op when it runs
(eager ``backward()``, or the compiled backward under ``torch.compile``); tracing it is free.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import _C

from .config import current as current_config
from .op_host.common.errors import CannAttentionError
from .pipeline import OpDef, Signature


class NoBackwardError(CannAttentionError):
    """A gradient was requested through an op that has none (an inference op)."""

    def __init__(self, op: str):
        super().__init__(op, "backward", "this op has no backward (it is an inference op); "
                         "call it under torch.no_grad() or torch.inference_mode(), or detach "
                         "its inputs")


@dataclass(eq=False)
class Face:
    op: OpDef                        # the one implementation
    namespace: str                   # "cann_attention", "custom", "npu" or "mindspore"
    schema: str                      # the face's signature (a torch schema, also for Python faces)
    fixed: dict = field(default_factory=dict)     # op arguments the face lacks -> their value
    renames: dict = field(default_factory=dict)   # face argument -> op argument
    ignored: tuple = ()              # face arguments accepted and ignored (reserved upstream)
    adapt: Callable | None = None    # (op arguments, in place) -> None: conversions
    outputs: Callable | None = None  # op outputs -> the face's outputs
    registered: bool = True          # a torch op (False: a Python function only)

    def __post_init__(self):
        self.signature = Signature(self.schema)
        self.name = self.signature.name
        op_names = set(self.op.signature.names)
        for name in self.signature.names:
            target = self.renames.get(name, name)
            if name not in self.ignored and target not in op_names:
                raise ValueError(f"{self.namespace}::{self.name}: argument {name} maps to no "
                                 f"argument of {self.op.name}")
        self._op_names = self.op.signature.names
        # face argument -> op argument (None: ignored); the op's values before any argument
        self._target = {name: None if name in self.ignored else self.renames.get(name, name)
                        for name in self.signature.names}
        base = dict(self.op.signature.defaults)
        base.update(self.fixed)
        base.update({self._target[a.name]: a.default for a in self.signature.arguments
                     if self._target[a.name] is not None})
        self._base = base
        self._tensor_args = tuple(a.name for a in self.signature.arguments
                                  if a.kind in ("tensor", "tensor?"))

    @property
    def qualname(self) -> str:
        return f"{self.namespace}::{self.name}"

    def op_values(self, args: tuple, kwargs: dict) -> dict:
        """The op's arguments by name for a call of this face: ``args`` are the face's first
        arguments in schema order (as the dispatcher passes them), ``kwargs`` the others."""
        values = dict(self._base)
        target = self._target
        for name, value in zip(self.signature.names, args):
            if target[name] is not None:
                values[target[name]] = value
        for name, value in kwargs.items():
            if target[name] is not None:
                values[target[name]] = value
        if self.adapt is not None:
            self.adapt(values)
        return values

    def kernel(self, *args, **kwargs):
        """What the dispatcher runs for the registered face."""
        out = run_op(self.op, self.op_values(args, kwargs))
        return out if self.outputs is None else self.outputs(out)

    def python_function(self) -> Callable:
        """The face as a Python function. Before the dispatcher sees the call, the op's static
        step (parse, check, devices, plan; cached) runs on it, so a wrong Python type or a tensor
        on another device gets the op's own error naming the argument, and ``int[]`` arguments
        may be integer tensors (read on the host)."""
        face, op = self, self.op
        int_lists = [a.name for a in op.arguments if a.kind in ("ints", "ints?")]

        def function(*args, **kwargs):
            bound = face.signature.bind(args, kwargs)
            for name in face._tensor_args:
                value = bound[name]
                if value is not None and not isinstance(value, torch.Tensor):
                    op.checker.fail_type(name, "a torch.Tensor", type(value).__name__)
            values = face.op_values((), bound)
            if not torch.compiler.is_compiling():
                op.static(values, current_config())     # the op's own errors, first
                for name in int_lists:                  # then host lists, as the schema wants
                    if isinstance(values[name], torch.Tensor):
                        values[name] = values[name].reshape(-1).tolist()
            out = run_op(op, values)
            return out if face.outputs is None else face.outputs(out)

        function.__name__ = function.__qualname__ = self.name
        function.__signature__ = self.signature.python_signature()
        return function


def run_op(op: OpDef, values: dict):
    """Run the op: inside an autograd.Function when a gradient can be requested; through its
    private op when tracing (fake or functional tensors, a dispatch mode), so torch.compile
    records it; else eagerly through the pipeline, with no second dispatch."""
    if _C.is_grad_enabled() and _C._any_requires_grad(*op.ordered(values)):
        return _Gradient.apply(op, *op.ordered(values))
    if type(values[op.first]) is torch.Tensor and _C._len_torch_dispatch_stack() == 0:
        return op.call_bound(values)
    return op.private(*op.ordered(values))


class _Gradient(torch.autograd.Function):
    """The op on the autograd tape: its ``gradient``, or an error naming it when none exists."""

    @staticmethod
    def forward(ctx, op: OpDef, *values):
        outputs = op.private(*values)
        ctx.op = op
        many = isinstance(outputs, tuple)
        outs = outputs if many else (outputs,)
        if op.gradient is None:
            ctx.inputs = [(v.shape, v.dtype) if isinstance(v, torch.Tensor) else None
                          for v in values]
        else:
            tensor_at = [i for i, v in enumerate(values) if isinstance(v, torch.Tensor)]
            ctx.layout = [None if isinstance(v, torch.Tensor) else v for v in values]
            ctx.tensor_at = tensor_at
            ctx.n_outputs = len(outs)
            ctx.save_for_backward(*[values[i] for i in tensor_at], *outs)
            ctx.mark_non_differentiable(*[outs[i] for i in op.non_differentiable_outputs])
        return outputs

    @staticmethod
    def backward(ctx, *grads):
        op = ctx.op
        if op.gradient is None:
            grad = next(g for g in grads if g is not None)
            refused = torch.ops.cann_attention.no_backward(grad, op.name)
            return (None,) + tuple(
                refused.to(spec[1]).expand(spec[0]) if need and spec is not None else None
                for need, spec in zip(ctx.needs_input_grad[1:], ctx.inputs))
        saved = ctx.saved_tensors
        values = list(ctx.layout)
        for slot, i in enumerate(ctx.tensor_at):
            values[i] = saved[slot]
        bound = dict(zip(op.signature.names, values))
        outputs = saved[len(ctx.tensor_at):]
        by_name = op.gradient(bound, outputs, grads)
        return (None,) + tuple(by_name.get(name) if need else None
                               for name, need in zip(op.signature.names,
                                                     ctx.needs_input_grad[1:]))
