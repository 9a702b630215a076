"""DeepSeek-V3.2's sparse attention decode step (indexer -> sparse flash attention) captured in
one CUDA graph and replayed with new lengths, page tables, caches and queries: the replay equals
eager calls on those inputs. Needs a CUDA device (capture); the indexer runs its Triton kernel
(by name: cann_attention.use(backend="triton")), which reads nothing back to the host."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import cann_attention

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="CUDA graph capture needs a CUDA device; this machine "
                                       "has none")

B, S1, N1_IDX, N1, K, PAGES = 4, 2, 16, 16, 128, 16


def _example():
    """examples/deepseek_v32_sparse_attention.py: the decode step this test captures."""
    path = Path(__file__).resolve().parents[2] / "examples" / "deepseek_v32_sparse_attention.py"
    spec = importlib.util.spec_from_file_location("deepseek_v32_sparse_attention", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXAMPLE = _example()


def _inputs(seed: int) -> dict:
    """One decode step's tensors on the GPU (same shapes for every seed, new values)."""
    return EXAMPLE.decode_inputs(B, PAGES, torch.Generator().manual_seed(seed), "cuda", s1=S1,
                                 n1_idx=N1_IDX, n1=N1)


def _step(t: dict):
    return EXAMPLE.decode_step(t, top_k=K)


def test_dsa_decode_step_replays_in_one_graph():
    with cann_attention.use(backend="triton"):
        static = _inputs(1)
        _step(static)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            captured = _step(static)
        for seed in (2, 3):
            new = _inputs(seed)
            for name, dst in static.items():
                dst.copy_(new[name])
            graph.replay()
            eager = _step(new)
            torch.cuda.synchronize()
            assert torch.equal(captured[0], eager[0]), f"replay {seed}: indices differ"
            assert torch.equal(captured[1], eager[1]), f"replay {seed}: attention differs"
            assert (captured[0] >= 0).sum() > 0
