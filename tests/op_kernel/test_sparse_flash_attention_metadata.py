"""The GPU metadata kernel == schedule.device_schedule (its reference), table by table.

Without a GPU the kernel source runs under Triton's interpreter. Cases cover every layout pair,
both sparse modes, ragged and zero lengths, rows that see nothing, few and many tasks per core
(split tasks, whole tasks), and malformed values (lengths past the tensors, negative lengths,
decreasing prefix sums, page-table entries outside the cache), which the kernel must make safe
exactly as the reference does.
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

from cann_attention.op_host.common.platform import H100, PlatformInfo, PlatformKind  # noqa: E402
from cann_attention.op_host.sparse_flash_attention import schedule, tiling  # noqa: E402
from cann_attention.op_kernel.sparse_flash_attention import metadata  # noqa: E402
from testing.calls import checked, fields_of  # noqa: E402
from testing.sparse_flash_attention_cases import make_case  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
LAYOUTS = [("BSND", "BSND"), ("TND", "TND"), ("BSND", "PA_BSND"), ("TND", "PA_BSND")]
TABLES = ("kv_start", "task_row", "task_batch", "task_head", "task_tau", "task_window")
SCHEDULE_TABLES = ("core_first", "piece_task", "piece_step_begin", "piece_step_end",
                   "piece_core", "piece_slot", "task_num_pieces", "split_task", "split_first",
                   "split_count")


def gpu(cores: int) -> PlatformInfo:
    return PlatformInfo(f"gpu{cores}", PlatformKind.GPU, cores, H100.buffers,
                        features=frozenset({"triton"}))


def compare(p, t, plan, what):
    want = schedule.device_schedule(p, plan, t)
    assert_tables(metadata.build(p, plan, t).reference_form(), want, what)
    return want


def assert_tables(got, want, what):
    for name in TABLES:
        assert torch.equal(getattr(got, name).cpu(), getattr(want, name).cpu()), \
            f"{what}: {name}\n got {getattr(got, name).tolist()}\nwant {getattr(want, name).tolist()}"
    for name in SCHEDULE_TABLES:
        g, w = getattr(got.schedule, name).cpu(), getattr(want.schedule, name).cpu()
        assert torch.equal(g, w), f"{what}: schedule.{name}\n got {g.tolist()}\nwant {w.tolist()}"


def on_device(t):
    return type(t)(**{k: v.to(DEVICE) if isinstance(v, torch.Tensor) else v
                      for k, v in fields_of(t).items()})


@pytest.mark.parametrize("layout_query,layout_kv", LAYOUTS, ids=lambda x: x)
@pytest.mark.parametrize("sparse_mode", [0, 3])
@pytest.mark.parametrize("cores", [1, 3, 8, 132])
def test_tables_match_the_reference(layout_query, layout_kv, sparse_mode, cores):
    seed = random.randrange(2**31)
    case = make_case(B=4, S1=5, S2=96, N1=4, K=24, sbs=2, layout_query=layout_query,
                     layout_kv=layout_kv, sparse_mode=sparse_mode, q_lens=[5, 0, 3, 1],
                     kv_lens=[96, 7, 0, 40], page=16, malformed=True, seed=seed)
    p, t = checked("npu_sparse_flash_attention", *case.args, **case.kwargs)
    plan = tiling.plan(p, gpu(cores))
    compare(p, on_device(t), plan, f"{case.id} cores={cores} seed={seed}")


@pytest.mark.parametrize("tasks", [24, 64, 130])
def test_whole_and_balanced_choices_match(tasks):
    """Many equal decode tasks: the kernel takes the whole-task cut where the reference does."""
    case = make_case(B=tasks, S1=1, S2=256, N1=16, K=128, layout_kv="PA_BSND", page=16,
                     seed=tasks)
    p, t = checked("npu_sparse_flash_attention", *case.args, **case.kwargs)
    for cores in (8, 16, 132):
        plan = tiling.plan(p, gpu(cores))
        want = compare(p, on_device(t), plan, f"tasks={tasks} cores={cores}")
        assert want.schedule.num_pieces >= tasks


@pytest.mark.parametrize("layout_query,layout_kv", LAYOUTS, ids=lambda x: x)
def test_malformed_values_are_made_safe_like_the_reference(layout_query, layout_kv):
    case = make_case(B=3, S1=3, S2=64, N1=2, K=16, layout_query=layout_query,
                     layout_kv=layout_kv, page=16, q_lens=[3, 2, 3], kv_lens=[64, 50, 64],
                     seed=7)         # lengths given, so the hostile ones below replace them
    p, t = checked("npu_sparse_flash_attention", *case.args, **case.kwargs)
    bad = fields_of(t)
    bad["actual_seq_lengths_query"] = torch.tensor(
        [5, 2, 99] if layout_query == "TND" else [7, -3, 2], dtype=torch.int32)
    bad["actual_seq_lengths_kv"] = torch.tensor(
        [500, 10, 10**6] if layout_kv == "TND" else [500, -1, 2**31 - 1], dtype=torch.int32)
    if layout_kv == "PA_BSND":
        bt = t.block_table.clone()
        bt[0, 1], bt[2, 0] = -5, 10**6
        bad["block_table"] = bt
    for cores in (2, 132):
        compare(p, on_device(type(t)(**bad)), tiling.plan(p, gpu(cores)), f"cores={cores}")


@pytest.mark.parametrize("layout_kv", ["BSND", "PA_BSND"])
def test_a_buffer_serves_the_next_call(layout_kv):
    """An eager call's workspace is kept for the next (common/workspace.py): the launch leaves
    the page programs' arrival counter at 0, and a second launch into the same buffer, after
    other tables were written there, builds the tables of its own call. Without the reset
    (or with a counter that misses a program) the second paged launch would run no schedule
    and keep the first call's tables."""
    make = dict(B=3, S1=2, S2=64, N1=4, K=16, layout_kv=layout_kv, page=16)
    first = make_case(**make, kv_lens=[64, 10, 33], seed=1)
    second = make_case(**make, kv_lens=[5, 64, 0], seed=2)
    p, t1 = checked("npu_sparse_flash_attention", *first.args, **first.kwargs)
    _, t2 = checked("npu_sparse_flash_attention", *second.args, **second.kwargs)
    plan = tiling.plan(p, gpu(8))
    tables = metadata.build(p, plan, on_device(t1))
    assert tables.meta[:metadata.ARRIVALS].tolist() == [0] * metadata.ARRIVALS
    launch, t2 = tables.launch, on_device(t2)
    bt = t2.block_table.contiguous() if launch.paged else None
    launch.launch(t2, bt, tables.meta.data_ptr(), lambda: tables.meta)
    assert tables.meta[:metadata.ARRIVALS].tolist() == [0] * metadata.ARRIVALS
    assert_tables(tables.reference_form(), schedule.device_schedule(p, plan, t2), "second")
