"""The Triton kernel == the reference and the emulator, over the CPU test matrix.

On a GPU (bf16 and fp16) the kernel runs natively. Without one the same kernel source runs
under Triton's interpreter (TRITON_INTERPRET=1, set here before Triton is imported) in fp16
only: the interpreter's bf16 tl.dot is wrong in Triton 3.9 (measured: errors of 1e10 on a
16x16 product). Every run draws fresh inputs (the seed is in the failure message) and poisons
the kernel's output buffers with NaN, so an element the kernel does not write fails the test.
Both Triton variants (scores through the scratch tile, scores in registers) are checked
everywhere; the Gluon kernels (Hopper only, 64-key steps) run their own matrix of N1 = 64 /
128 cases on a Hopper GPU, and gluon-ws, which also serves fewer heads, a matrix of N1 < 64.
"""
from __future__ import annotations

import os
import random

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
triton = pytest.importorskip(
    "triton", reason="Triton is not importable (pip install -e \".[test,gpu]\": triton, numpy)")

import cann_attention  # noqa: E402
from cann_attention.op_host.common.platform import H100, H200  # noqa: E402
from cann_attention.op_host.sparse_flash_attention import check, params, tiling  # noqa: E402
from cann_attention.op_kernel.sparse_flash_attention import emulate, reference  # noqa: E402
from cann_attention.op_kernel.sparse_flash_attention import triton as sfa_triton  # noqa: E402
from testing.oracle import assert_close, assert_stats_close  # noqa: E402
from testing.sparse_flash_attention_cases import kernel_inputs, make_case  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
DTYPES = [torch.bfloat16, torch.float16] if DEVICE == "cuda" else [torch.float16]
LAYOUTS = [("BSND", "BSND"), ("TND", "TND"), ("BSND", "PA_BSND"), ("TND", "PA_BSND")]
VARIANTS = ("scratch", "registers")
GLUON_VARIANTS = ("gluon", "gluon-ws")
HOPPER = DEVICE == "cuda" and torch.cuda.get_device_capability()[0] == 9


class _PoisonedTorch:
    """The kernel module's ``torch`` with ``empty`` returning NaN-filled float tensors."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def empty(*shape, dtype=None, device=None, **kw):
        x = torch.empty(*shape, dtype=dtype, device=device, **kw)
        return x.fill_(float("nan")) if x.is_floating_point() else x


def _on(device, x):
    return x.to(device) if isinstance(x, torch.Tensor) else x


def check_kernel(monkeypatch, platform=H100, variant="scratch", dtype=None, **kw):
    """Run the kernel on a fresh case and compare with the reference and the emulator."""
    seed = random.randrange(2**31)
    dtype = dtype or DTYPES[0]
    case = make_case(dtype=dtype, seed=seed, **kw)
    p, tensors = kernel_inputs(case, DEVICE)
    plan = tiling.plan(p, platform)
    monkeypatch.setattr(sfa_triton, "torch", _PoisonedTorch())
    if variant.startswith("gluon"):
        assert sfa_triton.gluon_serves(plan, tensors, variant), f"{case.id}: not a {variant} plan"
    got = sfa_triton.run(p, plan, tensors, variant=variant)
    monkeypatch.undo()
    want = emulate.run(p, plan, tensors)
    ref, ref_max, ref_sum = case.call(reference.sparse_flash_attention)
    low = case.call(reference.sparse_flash_attention, compute_dtype=dtype)[0]
    what = f"{case.id} seed={seed} {platform.name} {variant}"
    assert not torch.isnan(got[0]).any(), f"{what}: unwritten (poisoned) or NaN output"
    assert_close(got[0].cpu(), ref, low, what)
    assert_close(got[0].cpu(), want[0].cpu().float(), low, f"{what} vs emulate")
    if case.kwargs["return_softmax_lse"]:
        assert_stats_close(got[1].cpu(), ref_max, what=f"{what} softmax_max")
        assert_stats_close(got[2].cpu(), ref_sum, what=f"{what} softmax_sum")
    else:
        assert got[1].shape == (0,) and got[2].shape == (0,)
    return plan


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("layout_query,layout_kv", LAYOUTS, ids=lambda x: x)
@pytest.mark.parametrize("sparse_mode", [0, 3])
@pytest.mark.parametrize("sbs", [1, 2, 16, 128])
def test_layouts_modes_block_sizes(monkeypatch, layout_query, layout_kv, sparse_mode, sbs,
                                   variant):
    check_kernel(monkeypatch, variant=variant, B=3, S1=3, S2=300, N1=4, K=12,
                 layout_query=layout_query, layout_kv=layout_kv, sbs=sbs,
                 sparse_mode=sparse_mode, q_lens=[3, 1, 2], kv_lens=[300, 37, 129],
                 page=128 if sbs == 128 else 32, return_softmax_lse=layout_kv != "PA_BSND")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("layout_query,layout_kv", LAYOUTS, ids=lambda x: x)
def test_zero_length_batches_and_lq_above_lkv(monkeypatch, layout_query, layout_kv, variant):
    """A batch with no queries, one with no keys, one with Lq > Lkv (early rows see nothing):
    rows the plan never visits must still be written (zeros, -2e38 / 0 statistics)."""
    check_kernel(monkeypatch, variant=variant, B=4, S1=6, S2=64, N1=2, K=8,
                 layout_query=layout_query, layout_kv=layout_kv, q_lens=[0, 3, 6, 2],
                 kv_lens=[5, 0, 4, 64], page=16, return_softmax_lse=layout_kv != "PA_BSND")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("n1", [1, 2, 8, 16, 32, 64, 128])
def test_head_counts_and_dtypes(monkeypatch, n1, dtype, variant):
    """Every head count without padding heads in memory (the tile pads rows to 16)."""
    check_kernel(monkeypatch, variant=variant, dtype=dtype, B=2, S1=2, S2=96, N1=n1, K=32,
                 return_softmax_lse=True)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("platform", [H100, H200], ids=lambda p: p.name)
@pytest.mark.parametrize("layout_query,layout_kv", [("BSND", "BSND"), ("TND", "PA_BSND")],
                         ids=lambda x: x)
def test_gpu_plans_split_tasks(monkeypatch, platform, layout_query, layout_kv, variant):
    """Few tasks, long rows: the plan splits tasks across SMs and merges the slots."""
    plan = check_kernel(monkeypatch, platform=platform, variant=variant, B=2, S1=2, S2=700,
                        N1=64, K=600, layout_query=layout_query, layout_kv=layout_kv,
                        q_lens=[2, 1], kv_lens=[700, 650], page=64,
                        return_softmax_lse=layout_kv != "PA_BSND")
    assert plan.schedule.num_slots > 0, "this case must exercise split tasks + combine"


@pytest.mark.parametrize("variant", VARIANTS)
def test_malformed_rows(monkeypatch, variant):
    """Skipped entries before visible ones, entries after a -1: window W and termination."""
    check_kernel(monkeypatch, variant=variant, B=3, S1=5, S2=20, N1=4, K=16, sbs=2,
                 malformed=True, return_softmax_lse=True)


@pytest.mark.parametrize("variant", VARIANTS)
def test_sinks(monkeypatch, variant):
    check_kernel(monkeypatch, variant=variant, B=2, S1=3, S2=50, N1=8, K=16, sinks=True,
                 return_softmax_lse=True, q_lens=[3, 3], kv_lens=[50, 1])


hopper = pytest.mark.skipif(not HOPPER, reason="the Gluon kernel needs a Hopper GPU (sm_90)")


@pytest.mark.gpu
@hopper
@pytest.mark.parametrize("layout_query,layout_kv", LAYOUTS, ids=lambda x: x)
@pytest.mark.parametrize("sparse_mode", [0, 3])
@pytest.mark.parametrize("sbs", [1, 4, 64])
@pytest.mark.parametrize("n1", [64, 128])
@pytest.mark.parametrize("variant", GLUON_VARIANTS)
def test_gluon_layouts_modes_block_sizes(monkeypatch, layout_query, layout_kv, sparse_mode,
                                         sbs, n1, variant):
    check_kernel(monkeypatch, variant=variant, B=3, S1=3, S2=300, N1=n1, K=96 // sbs + 5,
                 layout_query=layout_query, layout_kv=layout_kv, sbs=sbs,
                 sparse_mode=sparse_mode, q_lens=[3, 1, 2], kv_lens=[300, 37, 129],
                 page=64, return_softmax_lse=layout_kv != "PA_BSND")


@pytest.mark.gpu
@hopper
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("variant", GLUON_VARIANTS)
def test_gluon_edges(monkeypatch, dtype, variant):
    """Zero-length batches, Lq > Lkv, malformed rows, sinks and split tasks, in one kernel."""
    check_kernel(monkeypatch, variant=variant, dtype=dtype, B=4, S1=6, S2=64, N1=64, K=8,
                 layout_query="TND", layout_kv="PA_BSND", q_lens=[0, 3, 6, 2],
                 kv_lens=[5, 0, 4, 64], page=16, return_softmax_lse=False)
    check_kernel(monkeypatch, variant=variant, dtype=dtype, B=3, S1=5, S2=200, N1=64, K=80,
                 sbs=2, malformed=True, return_softmax_lse=True)
    check_kernel(monkeypatch, variant=variant, dtype=dtype, B=2, S1=3, S2=150, N1=128, K=90,
                 sinks=True, return_softmax_lse=True, q_lens=[3, 3], kv_lens=[150, 1])
    for platform in (H100, H200):
        plan = check_kernel(monkeypatch, platform=platform, variant=variant, dtype=dtype, B=2,
                            S1=2, S2=700, N1=64, K=600, layout_query="TND",
                            layout_kv="PA_BSND", q_lens=[2, 1], kv_lens=[700, 650], page=64)
        assert plan.schedule.num_slots > 0, "this case must exercise split tasks + combine"


@pytest.mark.gpu
@hopper
@pytest.mark.parametrize("layout_query,layout_kv", [("BSND", "BSND"), ("TND", "PA_BSND")],
                         ids=lambda x: x)
@pytest.mark.parametrize("sbs", [1, 4])
@pytest.mark.parametrize("n1", [1, 2, 8, 16, 32])
def test_gluon_ws_few_heads(monkeypatch, layout_query, layout_kv, sbs, n1):
    """N1 < 64: the head group takes the first rows of gluon-ws's 64-row tile; the other rows
    must not be written anywhere (outputs, statistics, split-task workspace)."""
    check_kernel(monkeypatch, variant="gluon-ws", B=3, S1=3, S2=300, N1=n1, K=96 // sbs + 5,
                 layout_query=layout_query, layout_kv=layout_kv, sbs=sbs, sparse_mode=3,
                 q_lens=[3, 1, 2], kv_lens=[300, 37, 129], page=64,
                 return_softmax_lse=layout_kv != "PA_BSND")     # lse: not with PA_BSND (spec)


@pytest.mark.gpu
@hopper
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_gluon_ws_few_heads_edges(monkeypatch, dtype):
    """Sinks, malformed rows and split tasks with 16 heads in gluon-ws."""
    check_kernel(monkeypatch, variant="gluon-ws", dtype=dtype, B=2, S1=3, S2=150, N1=16, K=90,
                 sinks=True, return_softmax_lse=True, q_lens=[3, 3], kv_lens=[150, 1])
    check_kernel(monkeypatch, variant="gluon-ws", dtype=dtype, B=3, S1=5, S2=200, N1=8, K=80,
                 sbs=2, malformed=True, return_softmax_lse=True)
    plan = check_kernel(monkeypatch, variant="gluon-ws", dtype=dtype, B=2, S1=2, S2=700, N1=16,
                        K=600, layout_query="TND", layout_kv="PA_BSND", q_lens=[2, 1],
                        kv_lens=[700, 650], page=64, return_softmax_lse=False)
    assert plan.schedule.num_slots > 0, "this case must exercise split tasks + combine"


@pytest.mark.gpu
@hopper
@pytest.mark.parametrize("page", [16, 48, 128, 208])
@pytest.mark.parametrize("variant", GLUON_VARIANTS)
def test_gluon_page_sizes(monkeypatch, page, variant):
    """The Gluon page-table walk shifts for power-of-two pages (16, 128) and divides for the
    others (48, 208: PAGE_SHIFT -1); positions cross page boundaries in every batch."""
    check_kernel(monkeypatch, variant=variant, B=3, S1=3, S2=420, N1=64, K=101,
                 layout_query="TND", layout_kv="PA_BSND", sbs=16, sparse_mode=3,
                 q_lens=[3, 1, 2], kv_lens=[420, 37, 229], page=page, return_softmax_lse=False)


@pytest.mark.parametrize("page,layout_kv,shift", [(64, "PA_BSND", 6), (16, "PA_BSND", 4),
                                                  (128, "PA_BSND", 7), (48, "PA_BSND", -1),
                                                  (208, "PA_BSND", -1), (64, "BSND", -1)])
def test_gluon_page_shift(page, layout_kv, shift):
    """PAGE_SHIFT of the Gluon kernels: log2 of a power-of-two page, else -1 (divide)."""
    case = make_case(B=2, S1=1, S2=256, N1=16, K=8, layout_kv=layout_kv, page=page,
                     seed=random.randrange(2**31))
    p, _ = kernel_inputs(case, "cpu")
    assert sfa_triton.page_shift(p) == shift


@pytest.mark.parametrize("n1", [1, 16, 32, 64, 128])
@pytest.mark.parametrize("sbs", [1, 64, 128])
def test_gluon_kernels_serve_their_plans(n1, sbs):
    """gluon.py serves plans of 64 heads x 64 keys (8 warps); gluon-ws serves 64-key steps
    with any head group up to 64; neither serves sparse_block_size 128 (128-key steps)."""
    gluon = pytest.importorskip("cann_attention.op_kernel.sparse_flash_attention.gluon",
                                reason="this Triton has no Gluon dialect")
    from cann_attention.op_kernel.sparse_flash_attention import gluon_ws
    case = make_case(B=1, S1=2, S2=256, N1=n1, K=2, sbs=sbs, seed=random.randrange(2**31))
    p, _ = kernel_inputs(case, "cpu")
    plan = tiling.plan(p, H100)
    steps_of_64 = plan.block_s2 == 64
    assert gluon_ws.supports(plan, 512, 64) == steps_of_64
    assert gluon.supports(plan, 512, 64) == (steps_of_64 and plan.head_group == 64)
    assert not gluon_ws.supports(plan, 256, 64) and not gluon_ws.supports(plan, 512, 32)


@pytest.mark.parametrize("n1,layout_kv", [(128, "PA_BSND"), (64, "PA_BSND"), (64, "BSND"),
                                          (128, "BSND"), (16, "BSND"), (8, "PA_BSND")])
def test_default_variant_among_gluon_kernels(monkeypatch, n1, layout_kv):
    """Where the Gluon kernels serve, the default is gluon-ws, else the scratch variant (the
    rule of triton.default_variant, from the H100 sweep in BENCHMARKS.md)."""
    case = make_case(B=2, S1=2, S2=128, N1=n1, K=64, layout_kv=layout_kv, page=64,
                     seed=random.randrange(2**31))
    p, tensors = kernel_inputs(case, "cpu")
    plan = tiling.plan(p, H100)
    monkeypatch.setattr(sfa_triton, "gluon_serves", lambda *a: True)
    assert sfa_triton.default_variant(plan, tensors) == "gluon-ws"
    monkeypatch.setattr(sfa_triton, "gluon_serves", lambda *a: False)
    assert sfa_triton.default_variant(plan, tensors) == (
        "scratch" if plan.num_warps > 4 else "registers")


def test_unknown_or_unserved_variant_is_refused():
    """prepare() refuses a variant name it does not know, and a Gluon variant off Hopper."""
    case = make_case(B=1, S1=2, S2=128, N1=64, K=64, seed=random.randrange(2**31))
    p, tensors = kernel_inputs(case, "cpu")
    plan = tiling.plan(p, H100)
    with pytest.raises(ValueError, match="kernel variant 'fast' does not serve this call"):
        sfa_triton.prepare(p, plan, tensors, variant="fast")
    for variant in GLUON_VARIANTS:          # CPU tensors: no Hopper GPU
        with pytest.raises(ValueError, match=f"kernel variant '{variant}' does not serve"):
            sfa_triton.prepare(p, plan, tensors, variant=variant)


@pytest.mark.gpu
def test_op_dispatches_cuda_tensors_to_triton():
    """Auto dispatch sends CUDA tensors to the kernel, with the same result as asking for it."""
    case = make_case(B=2, S1=2, S2=300, N1=64, K=64, return_softmax_lse=True,
                     seed=random.randrange(2**31))
    args = tuple(_on("cuda", a) for a in case.args)
    kwargs = {k: _on("cuda", v) for k, v in case.kwargs.items()}
    from cann_attention.dispatch import select_backend
    from cann_attention.op_host.sparse_flash_attention.capabilities import CAPABILITIES
    p = params.parse(*args, **kwargs)
    assert select_backend("npu_sparse_flash_attention", CAPABILITIES, p, "cuda",
                          args[0].dtype) == "triton"
    got = torch.ops.custom.npu_sparse_flash_attention(*args, **kwargs)
    with cann_attention.use(backend="triton"):
        named = torch.ops.custom.npu_sparse_flash_attention(*args, **kwargs)
    assert torch.equal(got[0], named[0])
    ref = case.call(reference.sparse_flash_attention)[0]
    low = case.call(reference.sparse_flash_attention, compute_dtype=torch.bfloat16)[0]
    assert_close(got[0].cpu(), ref, low)


@pytest.mark.gpu
def test_bad_input_is_refused_before_launch():
    """The CUDA path refuses what the CPU path refuses, with the same message."""
    case = make_case(B=1, S1=2, S2=64, N1=4, K=8)
    msgs = []
    for dev in ("cpu", "cuda"):
        args = tuple(_on(dev, a) for a in case.args)
        kwargs = {k: _on(dev, v) for k, v in case.kwargs.items()}
        kwargs["sparse_mode"] = 2                              # only 0 and 3 exist
        with pytest.raises(RuntimeError) as e:
            torch.ops.custom.npu_sparse_flash_attention(*args, **kwargs)
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1]


def test_device_plan_is_reused_for_the_same_plan():
    """A memoised plan (equal calls) finds its device tables again: no rebuild, no copy; a
    different plan gets its own, and the cache is bounded."""
    def plan_of(kv_lens):
        case = make_case(B=2, S1=2, S2=300, N1=16, K=64, layout_query="TND", layout_kv="TND",
                         q_lens=[2, 1], kv_lens=kv_lens, seed=5)
        p = params.parse(*case.args, **case.kwargs)
        check.check(p)
        return p, tiling.plan(p, H100)
    p, t = plan_of([300, 200])
    first = sfa_triton.cached_device_plan(p, t, "cpu")
    again = sfa_triton.cached_device_plan(*plan_of([300, 200]), "cpu")
    assert again is first and again["kv_start"].tolist() == [0, 300]
    other = sfa_triton.cached_device_plan(*plan_of([300, 250]), "cpu")
    assert other is not first
    assert not torch.equal(other["task_tau"], first["task_tau"])
    for n in range(sfa_triton.DEVICE_PLAN_CACHE_SIZE + 1):    # fill it with other plans
        sfa_triton.cached_device_plan(*plan_of([300, 100 + n]), "cpu")
    assert len(sfa_triton._DEVICE_PLANS) == sfa_triton.DEVICE_PLAN_CACHE_SIZE
