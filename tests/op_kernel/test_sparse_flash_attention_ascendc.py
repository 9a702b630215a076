"""The AscendC kernel of npu_sparse_flash_attention (op_kernel/sparse_flash_attention/ascendc/),
built with g++ against the AscendC twin and run as a mixed launch (one AIC and two AIVs a
block) on the Ascend plan: against the fp32 golden (reference.py, the dtype-aware oracle) and
against the emulator (emulate.py, which executes the same plan step by step) on the SFA test
matrix's small shapes -- every layout pair, both sparse modes, several sparse_block_size values,
ragged and zero lengths, Lq > Lkv, malformed indices, hostile lengths and page tables, sinks,
softmax_max / softmax_sum, fp16 / bf16, one to 128 heads, fewer blocks than tasks; then the
registered back end through the op, and its refusals.

Kernel vs emulator: the same steps and the same roundings (P to the input dtype before P.V), in
a different fp32 summation order (the cube's dot products, the vector core's row sums), so a
probability may round to the neighbouring 16-bit value: outputs agree within one rounding step
of the output dtype at the output's magnitude (an output near zero by cancellation may then be
many ULP of its own value away), statistics to 1e-5 relative.
"""
from __future__ import annotations

import dataclasses
import threading

import pytest
import torch

from cann_attention.op_host.common import native as common_native
from cann_attention.op_host.common.platform import ASCEND_910B, ASCEND_A3
from cann_attention.op_host.sparse_flash_attention import tiling
from cann_attention.op_kernel.sparse_flash_attention import ascendc_twin, emulate, reference
from testing.calls import checked, fields_of
from testing.oracle import assert_close, assert_stats_close
from testing.sparse_flash_attention_cases import make_case

OP = "npu_sparse_flash_attention"
LAYOUTS = [("BSND", "BSND"), ("TND", "TND"), ("BSND", "PA_BSND"), ("TND", "PA_BSND")]


def assert_near_emulator(out, e_out, what):
    """Within one rounding step of the dtype at the largest output (module doc)."""
    assert out.shape == e_out.shape and out.dtype == e_out.dtype, what
    err = (out.double() - e_out.double()).abs().max().item() if out.numel() else 0.0
    bound = torch.finfo(out.dtype).eps * max(e_out.double().abs().max().item(), 1e-30)
    assert err <= bound, f"{what}: max error {err:.3e} vs the emulator exceeds {bound:.3e}"


@pytest.fixture(scope="module")
def lib():
    if common_native.compiler() is None:
        pytest.skip("no C++ compiler (g++) on this machine: the kernel cannot be built")
    return ascendc_twin.library()


def _with_timeout(fn, *args, timeout=120, **kwargs):
    """fn(*args) on a daemon thread (ctypes releases the GIL): a hanging kernel fails the test."""
    box = {}

    def target():
        try:
            box["result"] = fn(*args, **kwargs)
        except BaseException as e:      # noqa: BLE001 -- re-raised on the test's thread
            box["error"] = e
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "the kernel did not return (hang)"
    if "error" in box:
        raise box["error"]
    return box["result"]


def run_kernel(p, t, platform=ASCEND_A3):
    plan = tiling.plan(p, platform)
    return _with_timeout(ascendc_twin.run, p, plan, t), plan


def compare(case, platform=ASCEND_A3, golden=True):
    """Kernel vs emulator (same plan) and vs the golden; returns the kernel's outputs."""
    p, t = checked(OP, *case.args, **case.kwargs)
    (out, smax, ssum), plan = run_kernel(p, t, platform)
    e_out, e_max, e_sum = emulate.run(p, plan, t)
    dtype = case.args[0].dtype
    assert out.dtype == dtype and out.shape == case.args[0].shape
    assert not torch.isnan(out).any(), "an output row was not written, or a poisoned key was read"
    assert_near_emulator(out, e_out, f"{case.id} vs emulator")
    lse = case.kwargs["return_softmax_lse"]
    if lse:
        assert_stats_close(smax, e_max, rtol=1e-5, what=f"{case.id} softmax_max vs emulator")
        assert_stats_close(ssum, e_sum, rtol=1e-5, what=f"{case.id} softmax_sum vs emulator")
    else:
        assert smax.shape == (0,) and ssum.shape == (0,)
    if golden:
        ref_out, ref_max, ref_sum = case.call(reference.sparse_flash_attention)
        low, _, _ = case.call(reference.sparse_flash_attention, compute_dtype=dtype)
        assert_close(out, ref_out, low, case.id)
        if lse:
            assert_stats_close(smax, ref_max, what=f"{case.id} softmax_max")
            assert_stats_close(ssum, ref_sum, what=f"{case.id} softmax_sum")
    return out, smax, ssum


@pytest.mark.parametrize("layout_query,layout_kv", LAYOUTS, ids=lambda x: x)
@pytest.mark.parametrize("sparse_mode", [0, 3])
@pytest.mark.parametrize("sbs", [1, 4, 64])
def test_layouts_modes_block_sizes(lib, layout_query, layout_kv, sparse_mode, sbs):
    page = 64 if sbs == 64 else 32
    case = make_case(B=3, S1=3, S2=300, N1=4, K=12, layout_query=layout_query,
                     layout_kv=layout_kv, sbs=sbs, sparse_mode=sparse_mode,
                     q_lens=[3, 1, 2], kv_lens=[300, 37, 129], page=page,
                     return_softmax_lse=True, seed=sbs + sparse_mode)
    compare(case)


@pytest.mark.parametrize("layout_query,layout_kv", LAYOUTS, ids=lambda x: x)
def test_zero_length_batches_and_lq_above_lkv(lib, layout_query, layout_kv):
    """A batch with no queries, one with no keys, one with Lq > Lkv (early rows see nothing):
    zero rows and (-2e38, 0)."""
    case = make_case(B=4, S1=6, S2=64, N1=2, K=8, layout_query=layout_query,
                     layout_kv=layout_kv, q_lens=[0, 3, 6, 2], kv_lens=[5, 0, 4, 64], page=16,
                     return_softmax_lse=True)
    compare(case)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("n1", [1, 2, 32, 128])
def test_head_counts_and_dtypes(lib, n1, dtype):
    """One head (AIV 1 has no rows), up to 128 heads (two head groups of 64)."""
    case = make_case(B=1 if n1 == 128 else 2, S1=2, S2=96, N1=n1, K=32, dtype=dtype,
                     return_softmax_lse=True, seed=n1)
    compare(case)


@pytest.mark.parametrize("layout_query,layout_kv", [("BSND", "PA_BSND"), ("TND", "TND")],
                         ids=lambda x: x)
def test_sinks_and_several_steps(lib, layout_query, layout_kv):
    """Sinks with lse; K and lengths past one step of 256 positions (several steps a task,
    the online softmax across them); rows that see nothing stay empty despite the sinks."""
    case = make_case(B=2, S1=3, S2=700, N1=8, K=600, layout_query=layout_query,
                     layout_kv=layout_kv, q_lens=[3, 2], kv_lens=[700, 1], page=64,
                     return_softmax_lse=True, sinks=True, seed=5)
    out, smax, _ = compare(case)
    assert (smax == -2e38).any()                     # batch 1, mode 3: a row with tau <= 0


@pytest.mark.parametrize("layout_query,layout_kv", LAYOUTS, ids=lambda x: x)
def test_malformed_rows(lib, layout_query, layout_kv):
    """Skipped entries before visible ones, entries after a -1, duplicates: the window W and
    the termination exactly as the emulator and the golden apply them."""
    case = make_case(B=2, S1=4, S2=128, N1=4, K=40, sbs=2, layout_query=layout_query,
                     layout_kv=layout_kv, page=32, malformed=True, return_softmax_lse=True,
                     seed=3)
    compare(case)


def test_fewer_blocks_than_tasks_and_the_910b_plan(lib):
    """A block runs several pieces of the plan's cut (a 910B plan on 3 cores), without lse."""
    case = make_case(B=2, S1=5, S2=200, N1=16, K=64, dtype=torch.float16, sbs=8,
                     q_lens=[5, 3], kv_lens=[200, 90], seed=9)
    compare(case, dataclasses.replace(ASCEND_910B, num_cores=3))


@pytest.mark.parametrize("layout_query,layout_kv", LAYOUTS, ids=lambda x: x)
def test_hostile_lengths_and_page_tables_are_made_safe(lib, layout_query, layout_kv):
    """Without value checks (a device call), lengths past the tensors, negative lengths,
    decreasing prefix sums and page-table entries outside the cache: the kernel reads nothing
    outside its tensors (the twin checks every GM access) and gives the emulator's result,
    which applies schedule.py's rules to the same values."""
    case = make_case(B=3, S1=3, S2=64, N1=2, K=16, layout_query=layout_query,
                     layout_kv=layout_kv, page=16, q_lens=[3, 2, 3], kv_lens=[64, 50, 64],
                     return_softmax_lse=True, seed=7)
    p, t = checked(OP, *case.args, **case.kwargs)
    bad = fields_of(t)
    bad["actual_seq_lengths_query"] = torch.tensor(
        [5, 2, 99] if layout_query == "TND" else [7, -3, 2], dtype=torch.int32)
    bad["actual_seq_lengths_kv"] = torch.tensor(
        [500, 10, 10**6] if layout_kv == "TND" else [500, -1, 2**31 - 1], dtype=torch.int32)
    if layout_kv == "PA_BSND":
        bt = t.block_table.clone()
        bt[0, 1], bt[2, 0] = -5, 10**6
        bad["block_table"] = bt
    else:                              # the NaN rows past the lengths are read now: make finite
        bad["key"] = torch.nan_to_num(t.key)
        bad["key_rope"] = torch.nan_to_num(t.key_rope)
    t = type(t)(**bad)
    (out, smax, ssum), plan = run_kernel(p, t)
    e_out, e_max, e_sum = emulate.run(p, plan, t)
    assert_near_emulator(out, e_out, "hostile values")
    assert_stats_close(smax, e_max, rtol=1e-5)
    assert_stats_close(ssum, e_sum, rtol=1e-5)


# ---- the registered back end: the op with backend="ascendc" ------------------------------------

def test_backend_runs_the_kernel_through_the_op(lib):
    """Named, on CPU tensors, the back end runs the kernel (the golden's result, the op's
    output shapes); unnamed, the emulator stays auto's choice."""
    import cann_attention
    from cann_attention.config import current
    op_def = cann_attention.OPS[OP]
    case = make_case(B=2, S1=3, S2=200, N1=8, K=48, layout_query="TND", layout_kv="PA_BSND",
                     q_lens=[3, 2], kv_lens=[200, 70], return_softmax_lse=True, sinks=True,
                     seed=11)
    fn = torch.ops.cann_attention.npu_sparse_flash_attention
    with cann_attention.use(backend="ascendc"):
        out, smax, ssum = case.call(fn)
        bound = op_def.bind(case.args, case.kwargs)
        assert op_def.static(bound, current())[1].name == "ascendc"
    ref_out, ref_max, ref_sum = case.call(reference.sparse_flash_attention)
    low, _, _ = case.call(reference.sparse_flash_attention, compute_dtype=out.dtype)
    assert_close(out, ref_out, low, case.id)
    assert_stats_close(smax, ref_max)
    assert_stats_close(ssum, ref_sum)
    bound = op_def.bind(case.args, case.kwargs)
    assert op_def.static(bound, current())[1].name == "emulate"     # by name only on CPU


def test_backend_refuses_a_plan_that_is_not_ascend():
    """Asked for with a GPU platform configured, the back end refuses with the reason (its
    buffers follow the Ascend tiles), before any build."""
    import cann_attention
    from cann_attention.op_host.common.errors import CannAttentionError
    from cann_attention.op_host.common.platform import H100
    case = make_case(B=1, S1=2, S2=64, N1=4, K=8, seed=1)
    with cann_attention.use(backend="ascendc", platform=H100), \
            pytest.raises(CannAttentionError, match="an Ascend A2/A3 plan"):
        case.call(torch.ops.cann_attention.npu_sparse_flash_attention)


def test_rule_refuses_block_sizes_past_the_kernel_bound():
    case = make_case(B=1, S1=2, S2=64, N1=4, K=8, seed=1)
    p, _ = checked(OP, *case.args, **case.kwargs)
    assert ascendc_twin.unsupported(p) is None
    reason = ascendc_twin.unsupported(dataclasses.replace(p, sparse_block_size=512))
    assert "sparse_block_size <= 256" in reason


def test_backend_on_npu_tensors_goes_to_the_op_package():
    import cann_attention
    backend = next(b for b in cann_attention.OPS[OP].backends if b.name == "ascendc")
    case = make_case(B=1, S1=1, S2=32, N1=2, K=4, seed=2)
    p, _ = checked(OP, *case.args, **case.kwargs)
    # NPU tensors go to the op package through the C++ binding (ascendc_npu), which needs
    # torch_npu loaded and our package installed: neither is here
    assert backend.verify(p, "npu", torch.float16) == "not available: torch_npu is not loaded"
    assert backend.verify(p, "cpu", torch.bfloat16) in (None, ascendc_twin.no_compiler())


# ---- the plan's schedule: per-core pieces, split tasks, the SyncAll merge ---------------------

SPLIT_CASES = [
    # few tasks, long windows: the plan cuts tasks across the 24 cores of the A3 plan
    dict(B=1, S1=1, S2=4096, N1=4, K=2048, layout_query="BSND", layout_kv="BSND", sbs=1,
         sparse_mode=0, return_softmax_lse=True, sinks=True, dtype=torch.float16, seed=21),
    dict(B=3, S1=3, S2=3000, N1=8, K=1024, layout_query="TND", layout_kv="TND", sbs=4,
         q_lens=[1, 3, 2], kv_lens=[3000, 300, 1500], return_softmax_lse=True, sinks=True,
         seed=22),
    dict(B=2, S1=1, S2=2560, N1=16, K=512, layout_query="BSND", layout_kv="PA_BSND", sbs=8,
         kv_lens=[2500, 700], page=64, sparse_mode=0, return_softmax_lse=True, seed=23),
    dict(B=1, S1=2, S2=2048, N1=2, K=1024, layout_query="TND", layout_kv="PA_BSND", sbs=2,
         page=64, malformed=True, return_softmax_lse=True, sinks=True, seed=24),
    dict(B=1, S1=1, S2=2048, N1=128, K=2048, layout_query="BSND", layout_kv="BSND", sbs=1,
         sparse_mode=0, dtype=torch.float16, seed=25),            # two head groups, no lse
]


def _split_case_id(c):
    return (f"{c['layout_query']}-{c['layout_kv']}-B{c['B']}-N{c['N1']}-K{c['K']}"
            f"{'-malformed' if c.get('malformed') else ''}")


def _pieces_and_schedule(case):
    from cann_attention.op_host.sparse_flash_attention.schedule import device_schedule
    p, t = checked(OP, *case.args, **case.kwargs)
    plan = tiling.plan(p, ASCEND_A3)
    sched = device_schedule(p, plan, t).schedule
    return p, t, plan, sched


@pytest.mark.parametrize("kw", SPLIT_CASES, ids=_split_case_id)
def test_kernel_runs_the_plans_schedule(lib, kw):
    """Every core (AIC and both AIVs) runs exactly the pieces (task, step range, workspace
    slot) of the schedule the emulator runs (schedule.device_schedule on the Ascend plan: split
    tasks always cut); split tasks, merged after SyncAll, give the emulator's and the golden's
    results (outputs, softmax_max / softmax_sum, sinks)."""
    case = make_case(**kw)
    p, t, plan, sched = _pieces_and_schedule(case)
    assert plan.split_cost == -1                     # the Ascend plan: tasks always cut
    assert sched.num_slots > 0                       # the case does split tasks
    record = torch.full(ascendc_twin.record_shape(plan), -9, dtype=torch.int32)
    _with_timeout(ascendc_twin.run, p, plan, t, record=record)
    first = sched.core_first.tolist()
    assert sched.num_cores == plan.num_cores == record.shape[0] // 3
    for c in range(sched.num_cores):
        want = [[int(sched.piece_task[i]), int(sched.piece_step_begin[i]),
                 int(sched.piece_step_end[i]), int(sched.piece_slot[i])]
                for i in range(first[c], first[c + 1])]
        for side in range(3):
            n = int(record[3 * c + side, 0])
            got = record[3 * c + side, 1:1 + 4 * n].reshape(n, 4).tolist()
            assert got == want, (c, side)
    compare(case)                                    # vs the emulator and the golden


def test_a_merge_that_drops_a_slot_fails(lib):
    """The split tests see the merge: leaving one slot of a split task out (a twin-only fault)
    gives results the emulator comparison rejects."""
    case = make_case(**SPLIT_CASES[0])
    p, t, plan, sched = _pieces_and_schedule(case)
    slot = int(sched.split_first[0]) + 1            # the second piece of the first split task
    record = torch.full(ascendc_twin.record_shape(plan), -9, dtype=torch.int32)
    out, smax, ssum = _with_timeout(ascendc_twin.run, p, plan, t, record=record)
    e_out, e_max, e_sum = emulate.run(p, plan, t)
    assert_near_emulator(out, e_out, "no fault")
    out, smax, ssum = _with_timeout(ascendc_twin.run, p, plan, t, record=record, drop_slot=slot)
    with pytest.raises(AssertionError):
        assert_near_emulator(out, e_out, "a dropped slot")
    with pytest.raises(AssertionError):
        assert_stats_close(ssum, e_sum, rtol=1e-5)
