"""The IFA benchmark's workloads (CPU): PERF.md's decode set and the plain PyTorch peer."""

import pytest
import torch

import cann_attention  # noqa: F401  (registers torch.ops.cann_attention)
from testing.benches import load_bench

bench = load_bench("bench_incre_flash_attention")


def test_cuda_set_is_perfs_decode_set_within_memory():
    shapes = bench.cuda_shapes()
    assert len({s.name for s in shapes}) == len(shapes)
    assert {(s.n1, s.n2, s.d) for s in shapes} == set(bench.HEADS)
    assert {s.block_size for s in shapes} == {16, 64, 128}
    assert {s.kv for s in shapes} == {"bf16", "int8"}
    assert all(s.cache_bytes(2) <= bench.MAX_CACHE_BYTES for s in shapes)
    assert bench.Shape(32, 64, 8, 128, 32768, "bf16", 64) in shapes       # B x ctx = 1M tokens


@pytest.mark.parametrize("shape", [bench.Shape(2, 8, 2, 64, 300, "bf16", 64),
                                   bench.Shape(2, 8, 2, 64, 300, "int8", 32),
                                   bench.Shape(3, 8, 1, 64, 100, "bf16", 0)],
                         ids=lambda s: s.name)
def test_plain_pytorch_peer_matches_the_op(shape):
    args, kw = bench.inputs(shape)
    out = torch.ops.cann_attention.npu_incre_flash_attention(*args, **kw).float()
    want = bench.plain_torch(shape, args, kw).float()
    assert (out - want).norm() / want.norm() < 2e-2
    first = bench.plain_torch(shape, args, kw, batches=1).float()
    assert torch.equal(first, want[:1])
    assert shape.bytes() > shape.cache_bytes()


def test_cuda_measurement_runs_a_shape_end_to_end(monkeypatch):
    """The CUDA path of a shape on CPU tensors (emulator, timing stubbed): our row with its
    error against plain PyTorch and host overhead, the plain peer, SDPA's refusals listed."""
    from types import SimpleNamespace

    from testing.benches import timed_on_cpu
    timed_on_cpu(monkeypatch, bench)
    rows, missing = [], {}
    args = SimpleNamespace(repeats=4, backend="emulate", flashinfer=True)
    sh = bench.Shape(2, 8, 2, 64, 300, "int8", 64)
    err = bench.measure_shape(sh, args, (500.0, 3000.0), None, rows, missing)
    assert err < 2e-2
    impls = {r["impl"]: r for r in rows}
    assert {"triton", "torch"} <= set(impls)
    ours = impls["triton"]
    assert ours["op_rel_err"] == err and ours["overhead_us"] > 0 and ours["bf16_equiv_gbps"] > 0
    assert ours["gbps"] == pytest.approx(sh.bytes() / 0.1 / 1e6)      # 0.1 ms, stubbed
    assert "flashinfer" in missing or "flashinfer" in impls
