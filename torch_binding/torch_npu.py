"""The torch_npu face: ``import cann_attention.torch_npu as torch_npu`` stands in for torch_npu at
call sites of its attention ops. Each function has exactly torch_npu 2.13's schema (keyword-only
arguments, defaults, tuple returns) and is the registered op ``torch.ops.npu.<name>``, so
``torch.compile``, ``torch.export`` and ``opcheck`` see the same op as on an NPU.

- ``npu_sparse_flash_attention(...) -> (attention_out, softmax_max, softmax_sum)``
- ``npu_lightning_indexer(...) -> (sparse_indices, sparse_values)``
- ``npu_incre_flash_attention(...) -> attention_out``
- ``npu_nsa_compress_attention(...) -> (attention_out, topk_indices, softmax_max, softmax_sum)``

Where torch_npu is installed with CANN, its own ops come first (``import torch_npu`` defines
these schemas; ours attach to identical ones for CPU and CUDA tensors: library.py).
"""
from __future__ import annotations

import torch

from . import library

NAMES = ("npu_sparse_flash_attention", "npu_lightning_indexer", "npu_incre_flash_attention",
         "npu_nsa_compress_attention")


def _op(name: str):
    face = next(f for f in library.FACES if f.namespace == "npu" and f.name == name)
    op = getattr(torch.ops.npu, name)
    op.__signature__ = face.signature.python_signature()
    return op


npu_sparse_flash_attention = _op("npu_sparse_flash_attention")
npu_lightning_indexer = _op("npu_lightning_indexer")
npu_incre_flash_attention = _op("npu_incre_flash_attention")
npu_nsa_compress_attention = _op("npu_nsa_compress_attention")

__all__ = list(NAMES)
