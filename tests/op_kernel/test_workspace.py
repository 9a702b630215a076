"""common/workspace.py on CPU. The kept path (eager CUDA calls) runs here with CUDA stood in
(a CPU buffer for the device's, a fixed stream handle): one buffer per (thread, device, stream),
grown when a call needs more, bounded, freed by clear_caches(). CPU tensors (Triton's
interpreter), captures and callers that hold their workspace (``keep=False``) get a buffer of
their own, with the bytes a back end asks for zeroed. The kept path on a GPU:
test_sparse_flash_attention_capture.py."""
from __future__ import annotations

import threading

import pytest
import torch

import cann_attention
from cann_attention.op_kernel.common import workspace

CUDA = torch.device("cuda", 0)


@pytest.fixture
def poisoned(monkeypatch):
    """torch.empty gives CPU buffers full of 7s (whatever the device), so a byte left unzeroed
    shows."""
    monkeypatch.setattr(torch, "empty",
                        lambda n, dtype, device: torch.full((n,), 7, dtype=dtype))
    workspace.clear()
    yield
    workspace.clear()


@pytest.fixture
def stood_in_cuda(monkeypatch, poisoned):
    stream = [5]
    monkeypatch.setattr(torch, "zeros", lambda n, dtype, device: torch.full((n,), 0, dtype=dtype))
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: False)
    monkeypatch.setattr(torch._C, "_cuda_getCurrentRawStream", lambda index: stream[0],
                        raising=False)            # absent from CPU builds of torch
    return stream


def test_cpu_calls_get_a_zeroed_head_of_their_own(poisoned):
    first = workspace.workspace(torch.device("cpu"), 64, zeroed=16)
    second = workspace.workspace(torch.device("cpu"), 32)
    assert first.dtype == torch.uint8 and first.numel() == 64
    assert first[:16].tolist() == [0] * 16 and first[16:].tolist() == [7] * 48
    assert second.data_ptr() != first.data_ptr() and second.tolist() == [7] * 32
    assert workspace.kept() == 0


def test_eager_calls_keep_one_per_thread_and_stream(stood_in_cuda):
    a = workspace.workspace(CUDA, 64, zeroed=16)
    assert a.tolist() == [0] * 64, "a kept workspace starts zeroed"
    assert workspace.workspace(CUDA, 32, zeroed=16) is a, "a smaller call reuses it"
    grown = workspace.workspace(CUDA, 128)
    assert grown is not a and grown.numel() == 128 and grown.tolist() == [0] * 128
    assert workspace.workspace(CUDA, 64) is grown and workspace.kept() == 1
    stood_in_cuda[0] = 6                                  # another stream
    assert workspace.workspace(CUDA, 64) is not grown and workspace.kept() == 2
    stood_in_cuda[0] = 5
    other = []
    worker = threading.Thread(target=lambda: other.append(workspace.workspace(CUDA, 64)))
    worker.start()
    worker.join()
    assert other[0] is not grown and workspace.kept() == 3
    mine = workspace.workspace(CUDA, 64, user="another back end")   # its counters its own
    assert mine is not grown and workspace.kept() == 4
    assert workspace.workspace(CUDA, 64, user="another back end") is mine
    cann_attention.clear_caches()
    assert workspace.kept() == 0


def test_kept_workspaces_are_bounded(stood_in_cuda):
    for stream in range(workspace.CACHE_SIZE + 3):
        stood_in_cuda[0] = stream
        workspace.workspace(CUDA, 16)
    assert workspace.kept() == workspace.CACHE_SIZE


def test_held_and_captured_workspaces_are_their_own(stood_in_cuda, monkeypatch):
    kept = workspace.workspace(CUDA, 64)
    held = workspace.workspace(CUDA, 64, zeroed=16, keep=False)
    assert held is not kept and held[:16].tolist() == [0] * 16 and held[16:].tolist() == [7] * 48
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: True)
    captured = workspace.workspace(CUDA, 64, zeroed=8)
    assert captured is not kept and captured[:8].tolist() == [0] * 8
    assert workspace.kept() == 1
