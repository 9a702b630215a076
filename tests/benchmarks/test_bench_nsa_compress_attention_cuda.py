"""The NSA benchmark's CUDA workloads, checked on CPU: PERF.md's shapes, the causal mask and
the plain PyTorch peer (attention and top-k) against the op."""

import pytest
import torch

import cann_attention  # noqa: F401  (registers torch.ops.cann_attention)
from testing.benches import load_bench

bench = load_bench("bench_nsa_compress_attention_cuda")


def test_perf_shapes_and_their_compressed_lengths():
    shapes = {s.name: s for s in bench.perf_shapes()}
    assert len(shapes) == 6
    assert shapes["T8192-D1_192"].c_lens == ((8192 - 32) // 16 + 1,)
    assert shapes["fla-matched-T32768"].c_lens == (512,)
    assert sum(shapes["varlen-T32768-D1_192"].lens) == 32768


def test_visible_pairs_follow_the_causal_mask():
    sh = bench.Shape("x", (100, 37), N1=4, N2=2, D1=16, D2=16, K=2)
    args, kw = bench.inputs(sh, "cpu")
    mask = kw["atten_mask"]
    want = sum(int((~mask[:t, :c]).sum()) for t, c in zip(sh.lens, sh.c_lens))
    assert sh.visible_pairs() == want


@pytest.mark.parametrize("shape", [
    bench.Shape("overlap", (150, 100), N1=4, N2=2, D1=32, D2=16, K=2),
    bench.Shape("blocks", (260,), N1=4, N2=1, D1=32, D2=32, l=64, d=64, ls=64, K=2)],
    ids=lambda s: s.name)
def test_plain_pytorch_peer_matches_the_op(shape, monkeypatch):
    monkeypatch.setattr(bench, "CHUNK_ROWS", 64)          # several chunks
    args, kw = bench.inputs(shape, "cpu")
    out, idx = torch.ops.cann_attention.npu_nsa_compress_attention(*args, **kw)[:2]
    want_out, want_idx = bench.plain_torch(shape, args, kw)
    assert (out.float() - want_out.float()).norm() / want_out.float().norm() < 2e-2
    assert float((idx.long() == want_idx).float().mean()) > 0.98     # fp32 near-ties may swap


def test_cuda_measurement_runs_a_shape_end_to_end(monkeypatch):
    """The CUDA path of a shape on CPU tensors (emulator, timing stubbed): the op's row with
    its error and top-k agreement against plain PyTorch; fla listed where it does not run."""
    from types import SimpleNamespace

    from testing.benches import timed_on_cpu
    timed_on_cpu(monkeypatch, bench)
    rows, missing = [], {}
    sh = bench.Shape("overlap", (150, 100), N1=4, N2=2, D1=32, D2=16, K=2)
    err, same = bench.measure(sh, SimpleNamespace(repeats=4, backend="emulate"),
                              (500.0, 3000.0), rows, missing)
    assert err < 2e-2 and same > 0.98
    assert {r["impl"] for r in rows} >= {"triton", "torch"}
    assert "fla" in missing
