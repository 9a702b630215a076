"""The pipeline's first steps for tests: an op's params and tensors from a call's arguments."""
from __future__ import annotations

import dataclasses

import torch

import cann_attention
from cann_attention.op_host.common.tensor_meta import with_values


def parse(op: str, *args, **kwargs):
    """The static params of a call (shapes, dtypes, scalars), unchecked."""
    op_def = cann_attention.OPS[op]
    return op_def.parse(op_def.bind(args, kwargs))


def checked(op: str, *args, **kwargs):
    """(params carrying the lengths' values, tensors) of a call that passes every check."""
    op_def = cann_attention.OPS[op]
    bound = op_def.bind(args, kwargs)
    p = op_def.parse(bound)
    op_def.check(p)
    tensors = op_def.tensors_of(bound)
    p = with_values(p, tensors)
    op_def.check_values(p, tensors)
    return p, tensors


def fields_of(tensors) -> dict:
    """The fields of a tensors dataclass by name (to rebuild it with some replaced)."""
    return {f.name: getattr(tensors, f.name) for f in dataclasses.fields(tensors)}


def assert_same(a, b, path="plan"):
    """Equal in every field: dataclasses field by field, tensors by dtype, shape and values."""
    assert type(a) is type(b), path
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), path
    else:
        assert a == b, path
