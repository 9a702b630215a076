"""The op on CUDA tensors reads nothing back: no synchronisation, CUDA-graph capture and replay
with new lengths / indices / page tables / queries, value checks only when asked for."""
from __future__ import annotations

import threading

import pytest
import torch

import cann_attention
from cann_attention.op_host.common.errors import CannAttentionError
from cann_attention.op_host.common.platform import platform_for_device
from testing.calls import fields_of
from testing.sparse_flash_attention_cases import count_schedule_builds, make_case, random_indices

pytestmark = pytest.mark.gpu
OP = torch.ops.cann_attention.npu_sparse_flash_attention

CASES = {
    "decode-TND-PA": dict(B=6, S1=2, S2=700, N1=64, K=256, layout_query="TND",
                          layout_kv="PA_BSND", page=64, q_lens=[2, 1, 2, 2, 1, 2],
                          kv_lens=[700, 650, 30, 400, 512, 64]),
    "prefill-BSND-lse-sinks": dict(B=1, S1=64, S2=512, N1=128, K=96, return_softmax_lse=True,
                                   sinks=True),
    "few-heads-BSND-PA": dict(B=3, S1=1, S2=300, N1=16, K=64, layout_kv="PA_BSND", page=32,
                              kv_lens=[300, 1, 150]),
}


def on_cuda(case):
    args = tuple(a.cuda() if isinstance(a, torch.Tensor) else a for a in case.args)
    kwargs = {k: v.cuda() if isinstance(v, torch.Tensor) else v for k, v in case.kwargs.items()}
    return args, kwargs


@pytest.mark.parametrize("name", list(CASES))
def test_a_call_does_not_synchronise(name):
    args, kwargs = on_cuda(make_case(**CASES[name]))
    OP(*args, **kwargs)                       # compile the kernels, fill the static cache
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(2):
            out = OP(*args, **kwargs)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    torch.cuda.synchronize()
    assert not torch.isnan(out[0]).any()


def _new_inputs(case, seed):
    """Other values of the same shapes: shorter lengths, fresh queries, new indices inside the
    new boundaries, and the cache pages moved to other blocks (the page table follows)."""
    g = torch.Generator().manual_seed(seed)
    q_lens = case.q_lens
    kv_lens = [max(1, n - int(torch.randint(0, max(n // 2, 1), (1,), generator=g)))
               for n in case.kv_lens]
    args, kw = list(case.args), dict(case.kwargs)
    args[0] = torch.randn(args[0].shape, generator=g).to(args[0].dtype)
    kw["query_rope"] = torch.randn(kw["query_rope"].shape, generator=g).to(args[0].dtype)
    kw["actual_seq_lengths_kv"] = torch.tensor(kv_lens, dtype=torch.int32)
    taus = [kv_lens[b] - q_lens[b] + s + 1 for b in range(len(q_lens)) for s in range(q_lens[b])]
    idx = random_indices(taus, args[3].shape[-1], 1, g)
    args[3] = idx.reshape(args[3].shape)
    perm = torch.randperm(args[1].shape[0], generator=g)
    key = torch.empty_like(args[1])
    key[perm] = args[1]
    kr = torch.empty_like(kw["key_rope"])
    kr[perm] = kw["key_rope"]
    args[1] = args[2] = key
    kw["key_rope"] = kr
    bt = kw["block_table"]
    kw["block_table"] = torch.where(bt >= 0, perm[bt.clamp(min=0).long()].to(bt.dtype), bt)
    return args, kw


def test_captured_decode_step_replays_with_new_values():
    """Capture one call, write new lengths, indices, page table, cache placement and queries
    into the same buffers, replay: the outputs equal an eager call on those inputs."""
    case = make_case(**CASES["decode-TND-PA"], seed=3)
    args, kwargs = on_cuda(case)
    static = list(args), dict(kwargs)
    OP(*args, **kwargs)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = OP(*static[0], **static[1])
    for seed in (1, 2):
        new_args, new_kw = _new_inputs(case, seed)
        for dst, src in zip(static[0], new_args):
            if isinstance(dst, torch.Tensor):
                dst.copy_(src)
        for key, dst in static[1].items():
            if isinstance(dst, torch.Tensor):
                dst.copy_(new_kw[key])
        graph.replay()
        eager = OP(*on_cuda_args(new_args), **{k: v.cuda() if isinstance(v, torch.Tensor)
                                                 else v for k, v in new_kw.items()})
        torch.cuda.synchronize()
        assert torch.equal(captured[0], eager[0]), f"replay {seed} differs from eager"
        assert not torch.isnan(captured[0]).any()


def _layer_inputs(args, kw, case, seed):
    """Another layer of the same step: the lengths, page table and cache of (args, kw), its own
    queries and indices."""
    g = torch.Generator().manual_seed(seed)
    args, kw = list(args), dict(kw)
    args[0] = torch.randn(args[0].shape, generator=g).to(args[0].dtype)
    kw["query_rope"] = torch.randn(kw["query_rope"].shape, generator=g).to(args[0].dtype)
    kv_lens, q_lens = kw["actual_seq_lengths_kv"].tolist(), case.q_lens
    taus = [kv_lens[b] - q_lens[b] + s + 1 for b in range(len(q_lens)) for s in range(q_lens[b])]
    args[3] = random_indices(taus, args[3].shape[-1], 1, g).reshape(args[3].shape)
    return args, kw


def test_captured_step_of_several_layers_shares_one_schedule(monkeypatch):
    """Three layers of a decode step in one graph, sharing lengths, page table and cache: the
    capture launches the metadata kernel once (shared.py), and every replay with new lengths,
    page table, cache placement, queries and indices equals eager calls on those inputs."""
    case = make_case(**CASES["decode-TND-PA"], seed=4)
    base_args, base_kw = on_cuda(case)
    static = [(list(base_args), dict(base_kw))]
    for i in (1, 2):                # own queries and indices; the cache, lengths, page table
        args, kw = _layer_inputs(case.args, case.kwargs, case, 10 + i)
        static.append(([args[0].cuda(), *base_args[1:3], args[3].cuda(), *base_args[4:]],
                       dict(base_kw, query_rope=kw["query_rope"].cuda())))
    for args, kw in static:
        OP(*args, **kw)
    torch.cuda.synchronize()
    builds = count_schedule_builds(monkeypatch)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = [OP(*args, **kw)[0] for args, kw in static]
    assert builds[0] == 1, "one schedule for the step's three calls"
    for seed in (1, 2):
        new_args, new_kw = _new_inputs(case, seed)
        for dst, src in zip(static[0][0], new_args):
            if isinstance(dst, torch.Tensor):
                dst.copy_(src)
        for key, dst in static[0][1].items():
            if isinstance(dst, torch.Tensor):
                dst.copy_(new_kw[key])
        for i in (1, 2):
            layer_args, layer_kw = _layer_inputs(new_args, new_kw, case, 100 * seed + i)
            static[i][0][0].copy_(layer_args[0])
            static[i][0][3].copy_(layer_args[3])
            static[i][1]["query_rope"].copy_(layer_kw["query_rope"])
        graph.replay()
        for i, (args, kw) in enumerate(static):
            eager = OP(*args, **kw)[0]
            torch.cuda.synchronize()
            assert torch.equal(captured[i], eager), f"replay {seed}, layer {i} differs from eager"
            assert not torch.isnan(captured[i]).any()


def test_eager_calls_keep_a_workspace_per_thread_and_stream():
    """Eager calls of three plans (two with a paged cache), issued back to back on one stream,
    reuse one kept workspace (common/workspace.py), grown to the largest, and each equals the
    same call made alone after the caches were emptied; a call on another stream and one from
    another thread get workspaces of their own; a capture takes none."""
    from cann_attention.op_kernel.common import workspace
    calls = [on_cuda(make_case(**CASES[name], seed=5)) for name in CASES]
    alone = []
    for args, kwargs in calls:
        cann_attention.clear_caches()
        alone.append(OP(*args, **kwargs)[0])
        torch.cuda.synchronize()
    cann_attention.clear_caches()
    got = [OP(*args, **kwargs)[0] for _ in range(2) for args, kwargs in calls]
    torch.cuda.synchronize()
    assert workspace.kept() == 1
    for i, out in enumerate(got):
        assert torch.equal(out, alone[i % len(calls)]), f"call {i} differs from its call alone"
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        on_side = OP(*calls[0][0], **calls[0][1])[0]
    side.synchronize()
    assert workspace.kept() == 2 and torch.equal(on_side, alone[0])
    from_thread = []
    worker = threading.Thread(target=lambda: from_thread.append(OP(*calls[2][0],
                                                                   **calls[2][1])[0]))
    worker.start()
    worker.join()
    torch.cuda.synchronize()
    assert workspace.kept() == 3 and torch.equal(from_thread[0], alone[2])
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        OP(*calls[0][0], **calls[0][1])
    assert workspace.kept() == 3


def on_cuda_args(args):
    return tuple(a.cuda() if isinstance(a, torch.Tensor) else a for a in args)


def test_value_checks_on_device_only_when_asked():
    """Bad lengths on CUDA tensors: refused with the CPU's message when value checks are on;
    with them off the call runs, reads nothing out of bounds (the sanitizer test), and gives
    what the emulator gives for the same clamped values."""
    from cann_attention.op_host.sparse_flash_attention import tiling
    from cann_attention.op_kernel.sparse_flash_attention import emulate
    from testing.sparse_flash_attention_cases import kernel_inputs
    case = make_case(B=2, S1=1, S2=128, N1=16, K=32, layout_kv="PA_BSND", page=32,
                     kv_lens=[128, 64])
    p, t = kernel_inputs(case, "cuda")
    bad = dict(fields_of(t), actual_seq_lengths_kv=torch.tensor([129, -5], dtype=torch.int32,
                                                                device="cuda"))
    args, kwargs = on_cuda(case)
    kwargs["actual_seq_lengths_kv"] = bad["actual_seq_lengths_kv"]
    cpu_kwargs = dict(case.kwargs, actual_seq_lengths_kv=bad["actual_seq_lengths_kv"].cpu())
    with pytest.raises(CannAttentionError) as cpu_error:
        OP(*case.args, **cpu_kwargs)
    with cann_attention.use(value_checks=True):
        with pytest.raises(CannAttentionError) as gpu_error:
            OP(*args, **kwargs)
    assert str(gpu_error.value) == str(cpu_error.value)
    out = OP(*args, **kwargs)[0]
    plan = tiling.plan(p, platform_for_device("cuda"))
    want = emulate.run(p, plan, type(t)(**bad))[0]
    torch.testing.assert_close(out.float(), want.float(), atol=3e-2, rtol=3e-2, equal_nan=True)
    assert torch.all(out.reshape(2, -1)[1] == 0)            # batch 1 (length -5) sees nothing


@pytest.mark.parametrize("name", list(CASES))
def test_direct_launches_equal_tritons_binding(name, monkeypatch):
    """Launches past the first go straight to the compiled kernels (triton_launch); the
    outputs are bit-identical to launches through Triton's binding."""
    from cann_attention.op_kernel.common.triton_launch import Launcher
    args, kwargs = on_cuda(make_case(**CASES[name]))
    monkeypatch.setattr(Launcher, "_supported", False)
    want = OP(*args, **kwargs)
    monkeypatch.setattr(Launcher, "_supported", None)
    for _ in range(3):
        got = OP(*args, **kwargs)
        for g, w in zip(got, want):
            assert torch.equal(g, w)
