"""The FA benchmark's CUDA workloads, checked on CPU: PERF.md's prefill set, its FLOP count
and the plain PyTorch peer against the op."""
from dataclasses import replace

import pytest
import torch

import cann_attention  # noqa: F401  (registers torch.ops.cann_attention)
from testing.benches import load_bench

bench = load_bench("bench_flash_attention_cuda")


def test_perf_set_keeps_16k_tokens_and_2048_wide_heads():
    shapes = bench.perf_shapes()
    assert len({s.name for s in shapes}) == len(shapes)
    dense = [s for s in shapes if s.name.startswith("dense")]
    assert len(dense) == 18
    assert all(s.B * s.S == 16384 and s.N1 * s.D == 2048 for s in dense)
    assert {(s.N1, s.N2, s.D, s.S) for s in shapes if s.name.startswith("serving")} == {
        (64, 8, 128, 8192), (64, 8, 128, 16384)}


def test_visible_pairs_count_half_for_causal_and_the_band_for_a_window():
    s = bench.Shape("x", 1, 8, 2, 2, 64, causal=True)
    assert s.visible_pairs() == 36
    assert replace(s, causal=False).visible_pairs() == 64
    w = replace(s, window=3)
    i, j = torch.arange(8).view(-1, 1), torch.arange(8).view(1, -1)
    assert w.visible_pairs() == int(((j <= i) & (i - j < 3)).sum())


@pytest.mark.parametrize("shape", [bench.Shape("c", 2, 40, 4, 2, 32, True),
                                   bench.Shape("f", 1, 40, 2, 2, 32, False),
                                   bench.Shape("w", 1, 50, 2, 1, 32, True, window=7)],
                         ids=lambda s: s.name)
def test_plain_pytorch_peer_matches_the_op(shape, monkeypatch):
    monkeypatch.setattr(bench, "CHUNK_ROWS", 16)          # several chunks
    args, kw = bench.inputs(shape, "cpu")
    out = torch.ops.cann_attention.npu_flash_attention(*args, **kw)[0].float()
    want = bench.plain_torch(shape, args).float()
    assert (out - want).norm() / want.norm() < 2e-2


@pytest.mark.parametrize("shape", [bench.Shape("w", 1, 40, 2, 2, 32, True, window=7,
                                               sinks=True),
                                   bench.Shape("c", 2, 40, 4, 2, 32, True)],
                         ids=lambda s: s.name)
def test_cuda_measurement_runs_a_shape_end_to_end(shape, monkeypatch):
    """The CUDA path of a shape on CPU tensors (emulator, timing stubbed, FlexAttention's
    compile left out): the op's row, the plain peer, SDPA's CPU refusals listed by name."""
    from types import SimpleNamespace

    from testing.benches import timed_on_cpu
    timed_on_cpu(monkeypatch, bench)
    monkeypatch.setattr(bench, "flex_peer", lambda sh, args, repeats: 1.0)
    rows, missing = [], {}
    bench.measure(shape, SimpleNamespace(repeats=4, backend="emulate"), (500.0, 3000.0), rows,
                  missing)
    impls = {r["impl"]: r for r in rows}
    assert {"ours", "flex", "torch"} <= set(impls)
    assert impls["ours"]["backend"] == "emulate"
    assert shape.sinks or impls["ours"]["op_rel_err"] < 2e-2
    assert all(k.startswith("sdpa") for k in missing)
