"""What the host side knows about a tensor argument: shape and dtype, never its data.

The only data the host reads are small integer vectors that CANN's tiling reads too
(``actual_seq_lengths_*``); ``TensorMeta.of(t, read_values=True)`` captures them as a tuple.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TensorMeta:
    shape: tuple[int, ...]
    dtype: torch.dtype
    values: tuple[int, ...] | None = None

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
    def of(tensor, check, arg: str, read_values: bool = False) -> "TensorMeta | None":
        """Meta of an optional tensor argument; a type error naming ``arg`` if it is no tensor."""
        if tensor is None:
            return None
        check.require_type(isinstance(tensor, torch.Tensor), arg, "a torch.Tensor",
                           type(tensor).__name__)
        values = None
        if read_values and tensor.dtype in (torch.int32, torch.int64) and tensor.dim() == 1:
            values = tuple(tensor.tolist())        # Python ints (an integer tensor)
        return TensorMeta(tuple(tensor.shape), tensor.dtype, values)

    @staticmethod
    def required(tensor, check, arg: str) -> "TensorMeta":
        check.require_type(tensor is not None, arg, "a torch.Tensor", "None")
        return TensorMeta.of(tensor, check, arg)
