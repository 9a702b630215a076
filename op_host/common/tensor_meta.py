"""What the host side knows about a tensor argument: shape, dtype, device, never its data.

A params object built from TensorMetas is a pure function of the call's static signature, so
checks and plans made from it can be cached by that signature. The emulators, which run from
values on the host, read the small integer vectors they need (``actual_seq_lengths_*``) with
``with_values``: a copy of the params whose length metas carry the values as Python ints.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TensorMeta:
    shape: tuple[int, ...]
    dtype: torch.dtype
    device: torch.device | None = None
    contiguous: bool = True
    values: tuple[int, ...] | None = None     # only in params made by ``with_values``

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    @staticmethod
    def of(tensor, check, arg: str) -> "TensorMeta | None":
        """Meta of an optional tensor argument; a type error naming ``arg`` if it is no tensor."""
        if tensor is None:
            return None
        check.require_type(isinstance(tensor, torch.Tensor), arg, "a torch.Tensor",
                           type(tensor).__name__)
        return TensorMeta(tuple(tensor.shape), tensor.dtype, tensor.device,
                          tensor.is_contiguous())

    @staticmethod
    def required(tensor, check, arg: str) -> "TensorMeta":
        check.require_type(tensor is not None, arg, "a torch.Tensor", "None")
        return TensorMeta.of(tensor, check, arg)


def host_values(tensor: torch.Tensor | None) -> tuple[int, ...] | None:
    """The values of a 1-D integer tensor as Python ints (a device-to-host read on a GPU)."""
    if tensor is None or tensor.dim() != 1 or tensor.dtype not in (torch.int32, torch.int64):
        return None
    return tuple(tensor.tolist())


def with_values(p, tensors):
    """``p`` with the metas named in ``type(p).VALUE_FIELDS`` carrying their tensors' values
    (read from ``tensors``, an object with attributes of the same names)."""
    changes = {}
    for name in type(p).VALUE_FIELDS:
        meta = getattr(p, name)
        if meta is not None:
            changes[name] = dataclasses.replace(meta, values=host_values(getattr(tensors, name)))
    return dataclasses.replace(p, **changes)
