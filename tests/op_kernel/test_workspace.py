"""common/workspace.py off the kept path: CPU tensors (Triton's interpreter) get a buffer of
their own per call, with the bytes a back end asks for zeroed; clear_caches() empties the
kept ones. The kept path (eager CUDA calls) is tested on a GPU:
test_sparse_flash_attention_capture.py."""
from __future__ import annotations

import torch

import cann_attention
from cann_attention.op_kernel.common import workspace


def test_cpu_calls_get_a_zeroed_head_of_their_own(monkeypatch):
    monkeypatch.setattr(torch, "empty",
                        lambda n, dtype, device: torch.full((n,), 7, dtype=dtype))
    first = workspace.workspace(torch.device("cpu"), 64, zeroed=16)
    second = workspace.workspace(torch.device("cpu"), 32)
    assert first.dtype == torch.uint8 and first.numel() == 64
    assert first[:16].tolist() == [0] * 16 and first[16:].tolist() == [7] * 48
    assert second.data_ptr() != first.data_ptr() and second.tolist() == [7] * 32
    assert workspace.kept() == 0


def test_clear_caches_frees_the_kept_workspaces(monkeypatch):
    monkeypatch.setitem(workspace._kept, (1, 0, 0), torch.empty(8))
    assert workspace.kept() == 1
    cann_attention.clear_caches()
    assert workspace.kept() == 0
