"""Calls of one captured step share one device schedule (op_kernel/sparse_flash_attention/
shared.py); everything else builds its own.

Without a GPU the kernels run under Triton's interpreter and the capture is stood in for
(``shared.current_capture``): what is checked here is which calls build tables and that a call
reading another's tables gives exactly what it gives with its own. The replay of a real capture
is test_sparse_flash_attention_capture.py's (GPU).
"""
from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
triton = pytest.importorskip(
    "triton", reason="Triton is not importable (pip install -e \".[test,gpu]\": triton, numpy)")

import cann_attention  # noqa: E402
from cann_attention.op_host.common.platform import H100  # noqa: E402
from cann_attention.op_host.sparse_flash_attention import tiling  # noqa: E402
from cann_attention.op_kernel.common import capture  # noqa: E402
from cann_attention.op_kernel.sparse_flash_attention import shared  # noqa: E402
from cann_attention.op_kernel.sparse_flash_attention import triton as sfa_triton  # noqa: E402
from testing.calls import fields_of  # noqa: E402
from testing.sparse_flash_attention_cases import (  # noqa: E402
    count_schedule_builds, kernel_inputs, make_case)

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture
def builds(monkeypatch):
    """Counts the calls that launch the metadata kernel."""
    shared.clear()
    yield count_schedule_builds(monkeypatch)
    shared.clear()


def layers(t, n):
    """``n`` calls of one step: the lengths and page table of ``t`` (the same tensors), each
    with its own queries and indices; the indices of call i end (-1) i sixths of the way in,
    so each call's first -1 differs from the others'."""
    g = torch.Generator().manual_seed(5)
    calls = []
    for i in range(n):
        f = fields_of(t)
        f["query"] = torch.randn(t.query.shape, generator=g).to(t.query.dtype).to(DEVICE)
        f["query_rope"] = torch.randn(t.query_rope.shape, generator=g).to(t.query.dtype).to(DEVICE)
        idx = t.sparse_indices.clone()
        k = idx.shape[-1]
        if i:
            idx[..., k - i * k // 6:] = -1
            idx[..., k - i * k // 6 + 1:] = 0     # after the first -1: ignored
        f["sparse_indices"] = idx
        calls.append(type(t)(**f))
    return calls


def case_inputs():
    case = make_case(B=3, S1=2, S2=300, N1=16, K=64, layout_kv="PA_BSND", page=32,
                     q_lens=[2, 1, 2], kv_lens=[300, 17, 129], return_softmax_lse=True, seed=3)
    p, t = kernel_inputs(case, DEVICE)
    return p, t, tiling.plan(p, H100, "scratch")


def assert_equal_results(got, want):
    for g, w in zip(got, want):
        assert torch.equal(g, w)


def test_calls_of_one_capture_build_one_schedule(monkeypatch, builds):
    p, t, plan = case_inputs()
    calls = layers(t, 3)
    own = [sfa_triton.run(p, plan, c) for c in calls]
    assert builds[0] == 3, "eager calls each build their own tables"
    assert shared.entries() == 0
    builds[0] = 0
    monkeypatch.setattr(shared, "current_capture", lambda device: (7, 0))
    got = [sfa_triton.run(p, plan, c) for c in calls]
    assert builds[0] == 1, "the first call of the capture builds, the others read its tables"
    for g, w in zip(got, own):
        assert_equal_results(g, w)
    assert shared.entries() == 1


def test_what_does_not_share(monkeypatch, builds):
    p, t, plan = case_inputs()
    first, second = layers(t, 2)
    monkeypatch.setattr(shared, "current_capture", lambda device: (7, 0))
    sfa_triton.run(p, plan, first)
    assert builds[0] == 1
    # a write through PyTorch between two calls: the next call builds its own tables
    first.actual_seq_lengths_kv.add_(0)
    sfa_triton.run(p, plan, second)
    assert builds[0] == 2
    # another capture, or another stream of the same capture
    monkeypatch.setattr(shared, "current_capture", lambda device: (8, 0))
    sfa_triton.run(p, plan, second)
    monkeypatch.setattr(shared, "current_capture", lambda device: (8, 1))
    sfa_triton.run(p, plan, second)
    assert builds[0] == 4
    # other lengths tensors with the same values
    lengths = second.actual_seq_lengths_kv.clone()
    other = type(second)(**dict(fields_of(second), actual_seq_lengths_kv=lengths))
    sfa_triton.run(p, plan, other)
    assert builds[0] == 5
    # sharing turned off
    with cann_attention.use(share_schedules=False):
        sfa_triton.run(p, plan, second)
    assert builds[0] == 6
    cann_attention.clear_caches()
    assert shared.entries() == 0


def test_the_cache_is_bounded(monkeypatch, builds):
    p, t, plan = case_inputs()
    for i in range(shared.CACHE_SIZE + 3):
        monkeypatch.setattr(shared, "current_capture", lambda device, i=i: (100 + i, 0))
        sfa_triton.run(p, plan, t)
    assert shared.entries() == shared.CACHE_SIZE


def test_no_capture_off_cuda():
    assert capture.current_capture(torch.device("cpu")) is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA driver")
def test_without_the_driver_nothing_is_shared(monkeypatch):
    """A capture whose id the driver cannot give (here: no libcuda) shares nothing."""
    monkeypatch.setattr(capture, "_get_info", [])
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: True)
    assert capture.current_capture(torch.device("cuda", 0)) is None
    assert capture._get_info == [None]


@pytest.mark.parametrize("layout_kv", ["BSND", "PA_BSND"])
def test_launches_of_a_call(monkeypatch, layout_kv):
    """What a call launches (each launch costs ~10 us of host time on the GPU machines): an
    eager call, one metadata launch (a paged cache's page scan and the schedule together), the
    attention kernel and the split-task merge; a later call of a captured step, the last two."""
    from cann_attention.op_kernel.common import triton_launch
    launched = []
    original = triton_launch.Launcher.__call__

    def counting(self, *args, **kwargs):
        launched.append(self.fn.__name__)
        return original(self, *args, **kwargs)
    monkeypatch.setattr(triton_launch.Launcher, "__call__", counting)
    case = make_case(B=3, S1=2, S2=300, N1=16, K=64, layout_kv=layout_kv, page=32,
                     kv_lens=[300, 17, 129], seed=4)
    p, t = kernel_inputs(case, DEVICE)
    plan = tiling.plan(p, H100, "scratch")
    assert plan.max_split_tasks > 0
    first, second = layers(t, 2)
    shared.clear()
    sfa_triton.run(p, plan, first)
    assert launched == ["_sfa_metadata_kernel", "_sfa_kernel", "_merge_kernel"]
    launched.clear()
    monkeypatch.setattr(shared, "current_capture", lambda device: (9, 0))
    sfa_triton.run(p, plan, first)
    sfa_triton.run(p, plan, second)
    assert launched == ["_sfa_metadata_kernel", "_sfa_kernel", "_merge_kernel",
                        "_sfa_kernel", "_merge_kernel"]
    shared.clear()
