"""DeepSeek-V3.2's sparse attention decode step (indexer -> sparse flash attention) captured in
one CUDA graph and replayed with new lengths, page tables, caches and queries: the replay equals
eager calls on those inputs. Needs a CUDA device (capture); the indexer runs its Triton kernel
(by name: cann_attention.use(backend="triton")), which reads nothing back to the host."""
from __future__ import annotations

import math

import pytest
import torch

import cann_attention

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="CUDA graph capture needs a CUDA device; this machine "
                                       "has none")

B, S1, N1_IDX, N1, K, PAGE, PAGES = 4, 2, 16, 16, 128, 64, 16
D_IDX, D_LATENT, D_ROPE = 128, 512, 64


def _inputs(seed: int) -> dict:
    """One decode step's tensors on the GPU (same shapes for every seed, new values)."""
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *s: torch.randn(*s, generator=g).bfloat16()  # noqa: E731
    blocks = B * PAGES + 3
    table = torch.randperm(blocks, generator=g)[:B * PAGES].reshape(B, PAGES).to(torch.int32)
    lens = torch.randint(S1, PAGES * PAGE + 1, (B,), generator=g).to(torch.int32)
    t = dict(q_idx=rnd(B, S1, N1_IDX, D_IDX), weights=rnd(B, S1, N1_IDX),
             idx_cache=rnd(blocks, PAGE, 1, D_IDX), latent=rnd(blocks, PAGE, 1, D_LATENT),
             rope=rnd(blocks, PAGE, 1, D_ROPE), q_nope=rnd(B, S1, N1, D_LATENT),
             q_rope=rnd(B, S1, N1, D_ROPE), table=table, lens=lens)
    return {k: v.cuda() for k, v in t.items()}


def _step(t: dict):
    indices = torch.ops.custom.npu_lightning_indexer(
        t["q_idx"], t["idx_cache"], t["weights"], actual_seq_lengths_key=t["lens"],
        block_table=t["table"], layout_query="BSND", layout_key="PA_BSND", sparse_count=K,
        sparse_mode=3)
    out = torch.ops.custom.npu_sparse_flash_attention(
        t["q_nope"], t["latent"], t["latent"], indices, 1.0 / math.sqrt(D_LATENT + D_ROPE), 1,
        block_table=t["table"], actual_seq_lengths_kv=t["lens"], query_rope=t["q_rope"],
        key_rope=t["rope"], layout_query="BSND", layout_kv="PA_BSND", sparse_mode=3)
    return indices, out


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
