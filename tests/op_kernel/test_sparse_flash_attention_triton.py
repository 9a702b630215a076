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
from cann_attention.op_host.sparse_flash_attention import schedule, tiling  # noqa: E402
from cann_attention.op_kernel.sparse_flash_attention import emulate, reference  # noqa: E402
from cann_attention.op_kernel.sparse_flash_attention import triton as sfa_triton  # noqa: E402
from testing.oracle import assert_close, assert_stats_close  # noqa: E402
from testing.poison import PoisonedTorch  # noqa: E402
from testing.sparse_flash_attention_cases import kernel_inputs, make_case  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
DTYPES = [torch.bfloat16, torch.float16] if DEVICE == "cuda" else [torch.float16]
LAYOUTS = [("BSND", "BSND"), ("TND", "TND"), ("BSND", "PA_BSND"), ("TND", "PA_BSND")]
VARIANTS = ("scratch", "registers")
GLUON_VARIANTS = ("gluon", "gluon-ws")
HOPPER = DEVICE == "cuda" and torch.cuda.get_device_capability()[0] == 9


def _on(device, x):
    return x.to(device) if isinstance(x, torch.Tensor) else x


def check_kernel(monkeypatch, platform=H100, variant="scratch", dtype=None, **kw):
    """Run the kernel of ``variant`` on a fresh case and compare with the reference and the
    emulator; returns the reference device schedule of the call and its plan."""
    seed = random.randrange(2**31)
    dtype = dtype or DTYPES[0]
    case = make_case(dtype=dtype, seed=seed, **kw)
    p, tensors = kernel_inputs(case, DEVICE)
    plan = tiling.plan(p, platform, variant)
    monkeypatch.setattr(sfa_triton, "torch", PoisonedTorch())
    got = sfa_triton.run(p, plan, tensors)
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
    return schedule.device_schedule(p, plan, tensors), plan


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("layout_query,layout_kv", LAYOUTS, ids=lambda x: x)
@pytest.mark.parametrize("sparse_mode", [0, 3])
@pytest.mark.parametrize("sbs", [1, 2, 16, 128])
def test_layouts_modes_block_sizes(monkeypatch, layout_query, layout_kv, sparse_mode, sbs,
                                   variant):
    check_kernel(monkeypatch, variant=variant, B=3, S1=3, S2=300, N1=4, K=12,
                 layout_query=layout_query, layout_kv=layout_kv, sbs=sbs,
                 sparse_mode=sparse_mode, q_lens=[3, 1, 2], kv_lens=[300, 37, 129],
                 page=128 if sbs == 128 else 32, return_softmax_lse=True)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("layout_query,layout_kv", LAYOUTS, ids=lambda x: x)
def test_zero_length_batches_and_lq_above_lkv(monkeypatch, layout_query, layout_kv, variant):
    """A batch with no queries, one with no keys, one with Lq > Lkv (early rows see nothing):
    rows the plan never visits must still be written (zeros, -2e38 / 0 statistics)."""
    check_kernel(monkeypatch, variant=variant, B=4, S1=6, S2=64, N1=2, K=8,
                 layout_query=layout_query, layout_kv=layout_kv, q_lens=[0, 3, 6, 2],
                 kv_lens=[5, 0, 4, 64], page=16, return_softmax_lse=True)


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
    sched, _ = check_kernel(monkeypatch, platform=platform, variant=variant, B=2, S1=2, S2=700,
                         N1=64, K=600, layout_query=layout_query, layout_kv=layout_kv,
                         q_lens=[2, 1], kv_lens=[700, 650], page=64,
                         return_softmax_lse=True)
    assert sched.schedule.num_slots > 0, "this case must exercise split tasks + combine"


@pytest.mark.parametrize("variant", VARIANTS)
def test_malformed_rows(monkeypatch, variant):
    """Skipped entries before visible ones, entries after a -1: window W and termination."""
    check_kernel(monkeypatch, variant=variant, B=3, S1=5, S2=20, N1=4, K=16, sbs=2,
                 malformed=True, return_softmax_lse=True)


def pieces_past_first_negative(sched, plan) -> int:
    """How many pieces of the schedule begin after their row's first -1 entry."""
    s = sched.schedule
    task = s.piece_task[:s.num_pieces]
    first_neg = sched.row_first_neg[sched.task_row[task]]
    return int((s.piece_step_begin[:s.num_pieces] * plan.entries_per_step > first_neg).sum())


@pytest.mark.parametrize("variant", VARIANTS)
def test_split_pieces_find_the_first_negative_before_them(monkeypatch, variant):
    """Malformed rows in split tasks: a piece that begins after its row's first -1 must find
    it among the entries before its own (the kernel's scan limit), or it attends the blocks
    0 written after the -1."""
    sched, plan = check_kernel(monkeypatch, variant=variant, B=2, S1=2, S2=700, N1=64, K=600,
                               q_lens=[2, 1], kv_lens=[700, 650], malformed=True,
                               return_softmax_lse=True)
    assert sched.schedule.num_slots > 0 and pieces_past_first_negative(sched, plan) > 0


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
                 page=64, return_softmax_lse=True)


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
    for platform in (H100, H200):    # split tasks, some pieces past their row's first -1
        sched, plan = check_kernel(monkeypatch, platform=platform, variant=variant, dtype=dtype,
                                   B=2, S1=2, S2=700, N1=64, K=600, layout_query="TND",
                                   layout_kv="PA_BSND", q_lens=[2, 1], kv_lens=[700, 650],
                                   page=64, malformed=True)
        assert sched.schedule.num_slots > 0, "this case must exercise split tasks + combine"
        assert pieces_past_first_negative(sched, plan) > 0


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
                 return_softmax_lse=True)


@pytest.mark.gpu
@hopper
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_gluon_ws_few_heads_edges(monkeypatch, dtype):
    """Sinks, malformed rows and split tasks with 16 heads in gluon-ws."""
    check_kernel(monkeypatch, variant="gluon-ws", dtype=dtype, B=2, S1=3, S2=150, N1=16, K=90,
                 sinks=True, return_softmax_lse=True, q_lens=[3, 3], kv_lens=[150, 1])
    check_kernel(monkeypatch, variant="gluon-ws", dtype=dtype, B=3, S1=5, S2=200, N1=8, K=80,
                 sbs=2, malformed=True, return_softmax_lse=True)
    sched, plan = check_kernel(monkeypatch, variant="gluon-ws", dtype=dtype, B=2, S1=2, S2=700,
                               N1=16, K=600, layout_query="TND", layout_kv="PA_BSND",
                               q_lens=[2, 1], kv_lens=[700, 650], page=64, malformed=True,
                               return_softmax_lse=False)
    assert sched.schedule.num_slots > 0, "this case must exercise split tasks + combine"
    assert pieces_past_first_negative(sched, plan) > 0


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


def test_a_gluon_plan_is_refused_off_hopper():
    """run() refuses a Gluon variant where no Hopper GPU runs it (here: CPU tensors)."""
    case = make_case(B=1, S1=2, S2=128, N1=64, K=64, seed=random.randrange(2**31))
    p, tensors = kernel_inputs(case, "cpu")
    for variant in GLUON_VARIANTS:
        with pytest.raises(ValueError, match=f"kernel variant '{variant}' does not run on cpu"):
            sfa_triton.run(p, tiling.plan(p, H100, variant), tensors)


@pytest.mark.gpu
def test_op_dispatches_cuda_tensors_to_triton():
    """Auto dispatch sends CUDA tensors to the kernel, with the same result as asking for it."""
    case = make_case(B=2, S1=2, S2=300, N1=64, K=64, return_softmax_lse=True,
                     seed=random.randrange(2**31))
    args = tuple(_on("cuda", a) for a in case.args)
    kwargs = {k: _on("cuda", v) for k, v in case.kwargs.items()}
    op = cann_attention.OPS["npu_sparse_flash_attention"]
    p = op.parse(op.bind(args, kwargs))
    cfg = cann_attention.config
    assert op.select(p, "cuda", args[0].dtype, cfg).name == "triton"
    got = torch.ops.cann_attention.npu_sparse_flash_attention(*args, **kwargs)
    with cann_attention.use(backend="triton"):
        named = torch.ops.cann_attention.npu_sparse_flash_attention(*args, **kwargs)
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
            torch.ops.cann_attention.npu_sparse_flash_attention(*args, **kwargs)
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1]
