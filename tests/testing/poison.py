"""A stand-in for a kernel module's ``torch`` whose ``empty`` returns poisoned tensors (NaN for
floating dtypes, -12345 for integers), so an output element a kernel does not write fails its
test: ``monkeypatch.setattr(kernel_module, "torch", PoisonedTorch())``."""
from __future__ import annotations

import torch

POISON_INT = -12345


class PoisonedTorch:
    """``torch`` with ``empty`` returning poisoned tensors (module doc)."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def empty(*shape, dtype=None, device=None, **kw):
        x = torch.empty(*shape, dtype=dtype, device=device, **kw)
        return x.fill_(float("nan") if x.is_floating_point() else POISON_INT)
