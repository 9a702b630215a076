"""plan(params, platform) on fake platforms: tile choice, variant (tiling key), buffer fit,
TilingData, refusals; device_schedule: tasks, windows, malformed values made safe."""
from __future__ import annotations

import math

import pytest
import torch

from cann_attention.op_host.common.errors import CannAttentionError
from cann_attention.op_host.common.platform import (
    ASCEND_910B, ASCEND_A3, CPU, H100, H200, PlatformInfo, PlatformKind)
from cann_attention.op_host.common.schedule import partition
from cann_attention.op_host.sparse_flash_attention import schedule, tiling
from testing.calls import checked, fields_of
from testing.sparse_flash_attention_cases import make_case

PLATFORMS = [ASCEND_910B, ASCEND_A3, H100, H200, CPU]
OP = "npu_sparse_flash_attention"


def checked_case(**kw):
    case = make_case(**kw)
    return checked(OP, *case.args, **case.kwargs)


def checked_params(**kw):
    return checked_case(**kw)[0]


def decode(n1=128, sbs=1, dtype=torch.bfloat16):
    return checked_case(B=4, S1=1, S2=2048, N1=n1, K=2048, sbs=sbs, dtype=dtype)


@pytest.mark.parametrize("platform", PLATFORMS, ids=lambda p: p.name)
def test_decode_tiles_fit_and_cover_every_task(platform):
    p, t = decode()
    plan = tiling.plan(p, platform)
    assert platform.fits(dict(plan.tile_bytes))
    assert plan.block_s2 % p.sparse_block_size == 0 and plan.entries_per_step == plan.block_s2
    assert p.n1 % plan.head_group == 0
    assert plan.num_tasks == 4 * (128 // plan.head_group)
    work = schedule.device_schedule(p, plan, t)
    steps = -(-work.task_window // plan.entries_per_step)
    s = work.schedule
    got = s.piece_step_end - s.piece_step_begin
    per_task = torch.zeros(plan.num_tasks, dtype=torch.int64).index_add_(0, s.piece_task, got)
    assert torch.equal(per_task, steps)
    assert plan.workspace_bytes == plan.max_slots * plan.head_group * (512 + 2) * 4
    assert s.num_slots <= plan.max_slots


def test_platform_specific_tiles_and_variants():
    p, _ = decode()
    ascend = tiling.plan(p, ASCEND_A3)
    assert (ascend.head_group, ascend.block_s2, ascend.variant) == (64, 256, "ascend")
    gpu = tiling.plan(p, H100)
    assert (gpu.head_group, gpu.block_s2, gpu.stages, gpu.variant) == (64, 64, 2, "gluon-ws")
    assert gpu.num_warps == 12
    cpu = tiling.plan(p, CPU)
    assert (cpu.head_group, cpu.block_s2, cpu.variant) == (128, 512, "cpu")


@pytest.mark.parametrize("n1", [1, 8, 16, 64, 128])
def test_the_gpu_plan_describes_the_kernel_that_runs(n1):
    """With Gluon, every head count runs gluon-ws: the plan says its 12 warps and its ~225 KiB of
    shared memory (not the Triton kernel's); without Gluon, the Triton kernel's own footprint."""
    p, _ = decode(n1=n1)
    ws = tiling.plan(p, H100)
    assert (ws.variant, ws.num_warps, ws.head_group) == ("gluon-ws", 12, min(n1, 64))
    assert dict(ws.tile_bytes) == tiling.gluon_usage("gluon-ws", 2)
    assert 224 * 1024 < dict(ws.tile_bytes)["SMEM"] <= H100.buffer("SMEM")
    triton_only = tiling.plan(p, H100.without("gluon"))
    assert triton_only.variant == ("scratch" if n1 >= 64 else "registers")
    assert triton_only.num_warps == (8 if n1 >= 64 else 4)
    assert dict(triton_only.tile_bytes)["SMEM"] < dict(ws.tile_bytes)["SMEM"]


def test_forced_variants_are_checked():
    p, _ = decode(n1=16)
    assert tiling.plan(p, H100, "registers").variant == "registers"
    with pytest.raises(CannAttentionError, match="variant: expected a kernel variant that serves"):
        tiling.plan(p, H100, "gluon")                    # gluon.py needs 64 heads
    with pytest.raises(CannAttentionError, match="variant: expected one of"):
        tiling.plan(p, H100, "fast")
    with pytest.raises(CannAttentionError, match="variant: expected a kernel variant"):
        tiling.plan(p, H100.without("gluon"), "gluon-ws")
    wide = checked_params(B=1, S1=1, S2=512, N1=64, K=4, sbs=128)
    assert tiling.plan(wide, H100).variant in ("scratch", "registers")   # no 128-key Gluon


def test_tiling_data_round_trips_and_is_versioned():
    p, _ = decode()
    plan = tiling.plan(p, H100)
    data = tiling.tiling_data(plan, p)
    assert len(data) == tiling.TILING_DATA.size
    fields = tiling.TILING_DATA.unpack(data)
    assert fields["version"] == tiling.TILING_DATA.version
    assert fields["tiling_key"] == tiling.TILING_KEYS["gluon-ws"]
    assert (fields["head_group"], fields["block_s2"], fields["num_warps"]) == (64, 64, 12)
    assert (fields["num_tasks"], fields["max_pieces"]) == (plan.num_tasks, plan.max_pieces)
    assert fields["n1"] == 128 and fields["sparse_count"] == 2048
    assert "struct SparseFlashAttentionTilingData" in tiling.TILING_DATA.c_struct()
    with pytest.raises(ValueError, match="version"):
        tiling.TILING_DATA.unpack(b"\x00" * 4 + data[4:])


def test_decode_fills_the_cores_by_splitting():
    """4 tokens x 2 head groups cannot fill 132 SMs: tasks are split, slots used."""
    p, t = decode()
    s = schedule.device_schedule(p, tiling.plan(p, H100), t).schedule
    assert int(s.task_num_pieces.min()) > 1
    assert len(s.piece_core[:s.num_pieces].unique()) > 100
    assert s.num_slots == s.num_pieces


@pytest.mark.parametrize("n1", [1, 8, 16])
def test_few_heads_no_padding_to_64(n1):
    p, _ = decode(n1=n1)
    assert tiling.plan(p, H100).head_group == n1


def test_large_sparse_block_widens_the_gpu_step():
    plan = tiling.plan(checked_params(B=1, S1=1, S2=512, N1=16, K=4, sbs=128), H100)
    assert (plan.block_s2, plan.entries_per_step, plan.stages) == (128, 1, 1)


def test_causal_windows_and_rows_that_see_nothing():
    p, t = checked_case(B=1, S1=6, S2=3, N1=2, K=8, sbs=2)
    work = schedule.device_schedule(p, tiling.plan(p, CPU), t)
    # tau = Lkv - Lq + s + 1 = [-2, -1, 0, 1, 2, 3]: rows 0..2 see nothing (tasks of no step)
    assert work.task_row.tolist() == list(range(6))
    assert work.task_tau.tolist() == [0, 0, 0, 1, 2, 3]
    assert work.task_window.tolist() == [0, 0, 0] + [math.ceil(x / 2) for x in (1, 2, 3)]


def test_tnd_rows_and_batches():
    p, t = checked_case(B=3, S1=4, S2=50, N1=2, K=8, layout_query="TND", layout_kv="TND",
                        q_lens=[2, 0, 3], kv_lens=[10, 5, 50], sparse_mode=0)
    work = schedule.device_schedule(p, tiling.plan(p, CPU), t)
    assert work.task_row.tolist() == [0, 1, 2, 3, 4]
    assert work.task_batch.tolist() == [0, 0, 2, 2, 2]
    assert work.task_tau.tolist() == [10, 10, 50, 50, 50]
    assert work.kv_start.tolist() == [0, 10, 15]


def test_plan_is_pure():
    """Two plans of equal calls made independently (no memo) are equal in every field."""
    p, _ = decode()
    a = tiling.plan.__wrapped__(p, H200)
    b = tiling.plan.__wrapped__(checked_params(B=4, S1=1, S2=2048, N1=128, K=2048, seed=9), H200)
    assert a is not b and a == b
    assert tiling.tiling_data(a, p) == tiling.tiling_data(b, p)


def test_refuses_an_unsupported_ascend_soc():
    soc = PlatformInfo("Ascend310P", PlatformKind.ASCEND, 8, ASCEND_A3.buffers, 2)
    with pytest.raises(CannAttentionError, match="platform: expected an Ascend A2/A3 SoC"):
        tiling.plan(decode()[0], soc)


@pytest.mark.parametrize("kind,buffers", [
    (PlatformKind.GPU, (("SMEM", 16 * 1024), ("REGISTERS", 256 * 1024))),
    (PlatformKind.CPU, (("CACHE", 1024),)),
    (PlatformKind.ASCEND, (("UB", 1024), ("L1", 1024), ("L0A", 1024), ("L0B", 1024),
                           ("L0C", 1024))),
])
def test_refuses_what_cannot_fit(kind, buffers):
    name = "Ascend910B" if kind is PlatformKind.ASCEND else "tiny"
    tiny = PlatformInfo(name, kind, 4, buffers, 2)
    with pytest.raises(CannAttentionError, match="platform: expected buffers that hold the "
                       "smallest tile"):
        tiling.plan(decode()[0], tiny)


def test_small_buffers_shrink_the_tiles():
    ub_small = PlatformInfo("Ascend910B", PlatformKind.ASCEND, 24,
                            tuple((n, 48 * 1024 if n == "UB" else s) for n, s in ASCEND_A3.buffers),
                            2)
    plan = tiling.plan(decode()[0], ub_small)
    assert ub_small.fits(dict(plan.tile_bytes))
    assert plan.head_group * plan.block_s2 < 64 * 256


def test_emulator_asserts_tiles_fit():
    """The emulator checks the tiles it actually builds against the plan's platform."""
    from cann_attention.op_kernel.sparse_flash_attention import emulate
    p, t = checked_case(B=1, S1=1, S2=64, N1=8, K=16)
    plan = tiling.plan(p, CPU)
    lying = PlatformInfo("CPU", PlatformKind.CPU, 64, (("CACHE", 4096),))
    bad = tiling.SparseFlashAttentionTiling(**{**plan.__dict__, "platform": lying})
    with pytest.raises(AssertionError, match="tile needs .* of CACHE"):
        emulate.run(p, bad, t)


def test_many_equal_decode_tasks_run_whole_on_a_gpu():
    """64 tokens x 2 head groups of 32 steps on 132 SMs: whole tasks (no merge pass) cost the
    longest core by less than the split cost; other platforms keep the balanced cut (their merge
    is no extra pass over memory)."""
    p, t = checked_case(B=64, S1=1, S2=2048, N1=128, K=2048)
    gpu = tiling.plan(p, H100)
    s = schedule.device_schedule(p, gpu, t).schedule
    assert gpu.num_tasks == 128 and s.num_slots == 0 and s.num_pieces == gpu.num_tasks
    for platform in (CPU, ASCEND_A3):
        plan = tiling.plan(p, platform)
        work = schedule.device_schedule(p, plan, t)
        steps = -(-work.task_window // plan.entries_per_step)
        balanced = partition(steps, platform.num_cores, schedule.TASK_OVERHEAD_STEPS)
        assert torch.equal(work.schedule.piece_core, balanced.piece_core)
        assert work.schedule.num_slots == balanced.num_slots


def test_plan_depends_on_shapes_not_lengths():
    """The plan is static: calls that differ only in length values share it (the pipeline
    caches it by the static signature); only the device schedule differs."""
    kw = dict(B=2, S1=2, S2=300, N1=16, K=64, layout_query="TND", layout_kv="TND",
              q_lens=[2, 1], seed=3)
    p1, t1 = checked_case(kv_lens=[300, 200], **kw)
    p2, t2 = checked_case(kv_lens=[300, 250], **kw)
    a, b = tiling.plan(p1, H100), tiling.plan(p2, H100)
    assert a == b
    w1, w2 = schedule.device_schedule(p1, a, t1), schedule.device_schedule(p2, b, t2)
    assert not torch.equal(w1.task_tau, w2.task_tau)


@pytest.mark.parametrize("layout_query,layout_kv", [("BSND", "BSND"), ("TND", "TND"),
                                                    ("BSND", "PA_BSND"), ("TND", "PA_BSND")])
def test_malformed_values_are_made_safe(layout_query, layout_kv):
    """Lengths past the tensors, negative lengths, decreasing TND prefix sums and page-table
    entries outside the cache: every position the schedule lets a kernel read lies inside the
    cache (what the op does with value checks off)."""
    p, t = checked_case(B=3, S1=3, S2=64, N1=2, K=16, layout_query=layout_query,
                        layout_kv=layout_kv, page=16, q_lens=[3, 2, 3], kv_lens=[64, 50, 64])
    rows, bad = p.num_rows, fields_of(t)
    if layout_query == "TND":
        bad["actual_seq_lengths_query"] = torch.tensor([5, 2, 99], dtype=torch.int32)
    else:
        bad["actual_seq_lengths_query"] = torch.tensor([7, -3, 2], dtype=torch.int32)
    if layout_kv == "TND":
        bad["actual_seq_lengths_kv"] = torch.tensor([500, 10, 10**6], dtype=torch.int32)
    else:
        bad["actual_seq_lengths_kv"] = torch.tensor([500, -1, 2**31 - 1], dtype=torch.int32)
    if layout_kv == "PA_BSND":
        bt = t.block_table.clone()
        bt[0, 1] = -5
        bt[2, 0] = 10**6
        bad["block_table"] = bt
    t_bad = type(t)(**bad)
    work = schedule.device_schedule(p, tiling.plan(p, CPU), t_bad)
    tau, batch = work.task_tau, work.task_batch
    assert work.task_row.max() < rows and int(tau.min()) >= 0
    if layout_kv == "PA_BSND":
        assert int(tau.max()) <= p.s2
        used = -(-tau // p.block_size)                        # pages a row may read
        for b, n in zip(batch.tolist(), used.tolist()):
            entries = bt[b, :n]
            assert bool(((entries >= 0) & (entries < p.key.shape[0])).all())
    elif layout_kv == "TND":
        assert int((work.kv_start[batch] + tau).max()) <= p.key.shape[0]
    else:
        assert int(tau.max()) <= p.key.shape[1]
