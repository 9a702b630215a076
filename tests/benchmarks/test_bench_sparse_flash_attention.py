"""The SFA benchmark's workloads (CPU): FlashMLA's index rule and the shapes built from it."""

import pytest
import torch

import cann_attention  # noqa: F401  (registers torch.ops.custom)
from testing.benches import load_bench

bench = load_bench("bench_sparse_flash_attention")


def test_flashmla_rule_draws_most_entries_from_the_last_20000_positions():
    g = torch.Generator().manual_seed(0)
    S2, K = 60000, 512
    idx = bench.flashmla_indices(96, S2, K, g, "cpu")
    assert idx.shape == (96, K) and idx.dtype == torch.int32
    assert int(idx.min()) >= 0 and int(idx.max()) < S2
    near = ((idx >= S2 - 20000) & (idx < S2 - 1)).float().mean().item()
    # 31/32 redrawn into the window, plus the part of the random subset that lies there
    expected = 31 / 32 + (19999 / S2) / 32
    assert abs(near - expected) < 0.01, near
    # the subset part is spread over the whole range (it is what reaches below the window)
    assert int(idx.min()) < S2 - 20000
    # rows are shuffled: the redrawn entries are not gathered at one end
    first_half = ((idx[:, :K // 2] >= S2 - 20000)).float().mean().item()
    assert abs(first_half - near) < 0.02


def test_flashmla_rule_needs_k_at_most_s2():
    with pytest.raises(ValueError, match="K <= S2"):
        bench.flashmla_indices(2, 100, 128, torch.Generator().manual_seed(0), "cpu")


def test_anchor_sweep_is_flashmlas_prefill_benchmark_beside_our_headline():
    shapes = bench.cuda_shapes("anchor")
    anchor = [s for s in shapes if s.indices == "flashmla"]
    assert [(s.B, s.S1, s.N1, s.K) for s in anchor] == [(1, 4096, 128, 2048)] * 4
    assert [s.S2 for s in anchor] == [8192, 32768, 65536, 131072]
    assert bench.Shape("prefill", 1, 4096, 32768, 128) in shapes
    assert anchor[1].label.endswith("idx=flashmla")


def test_flashmla_workload_runs_through_the_op_unmasked():
    shape = bench.Shape("prefill", B=1, S1=8, S2=300, N1=4, K=64, indices="flashmla")
    args, kwargs, flops, nbytes = bench.build(shape, "cpu")
    idx = args[3]
    assert kwargs["sparse_mode"] == 0 and int(idx.min()) >= 0      # every slot is valid
    assert flops == 2 * 4 * (512 + 64 + 512) * 8 * 64               # duplicates count too
    out = torch.ops.cann_attention.npu_sparse_flash_attention(*args, **kwargs)[0].float()
    want = bench.plain_torch(args, kwargs).float()
    assert (out - want).norm() / want.norm() < 1e-2


def test_unique_rule_draws_distinct_uniform_entries():
    g = torch.Generator().manual_seed(0)
    idx = bench.unique_indices(64, 5000, 512, g, "cpu")
    assert idx.shape == (64, 512) and idx.dtype == torch.int32
    assert all(int(torch.unique(r).numel()) == 512 for r in idx)
    assert int(idx.min()) >= 0 and int(idx.max()) < 5000
    assert abs(float(idx.float().mean()) - 2500) < 100           # uniform over [0, S2)
    with pytest.raises(ValueError, match="K <= S2"):
        bench.unique_indices(2, 100, 128, g, "cpu")


def test_anchor_sweep_has_both_flashmla_rules():
    rules = [s.indices for s in bench.cuda_shapes("anchor")]
    assert rules.count("flashmla") == 4 and rules.count("unique") == 4


def test_flashmla_inputs_are_the_ops_tensors_concatenated():
    """FlashMLA's (q [s_q, h, 576], kv [s_kv, 1, 576], indices [s_q, 1, K]) of one call."""
    peer = load_bench("flashmla_peer")
    shape = bench.Shape("prefill", B=1, S1=8, S2=300, N1=4, K=64, indices="unique")
    args, kwargs, _, _ = bench.build(shape, "cpu")
    q, kv, idx = peer.inputs_of(args, kwargs)
    assert q.shape == (8, 4, 576) and kv.shape == (300, 1, 576) and idx.shape == (8, 1, 64)
    assert torch.equal(q[..., :512], args[0][0]) and torch.equal(q[..., 512:],
                                                                 kwargs["query_rope"][0])
    assert torch.equal(kv[..., 512:], kwargs["key_rope"][0]) and idx.dtype == torch.int32
    with pytest.raises(FileNotFoundError, match="FlashMLA checkout"):
        peer.sources(bench.Path("/nonexistent"))
