"""plan(params, platform) on fake platforms: tile choice, buffer fit, tasks, refusals."""
from __future__ import annotations

import math

import pytest
import torch

from cann_attention.op_host.common.errors import CannAttentionError
from cann_attention.op_host.common.schedule import partition
from cann_attention.op_host.common.platform import (
    ASCEND_910B, ASCEND_A3, CPU, H100, H200, PlatformInfo, PlatformKind)
from cann_attention.op_host.sparse_flash_attention import check, params, tiling
from testing.sparse_flash_attention_cases import make_case

PLATFORMS = [ASCEND_910B, ASCEND_A3, H100, H200, CPU]


def checked_params(**kw):
    case = make_case(**kw)
    p = params.parse(*case.args, **case.kwargs)
    check.check(p)
    return p


def decode_params(n1=128, sbs=1, dtype=torch.bfloat16):
    return checked_params(B=4, S1=1, S2=2048, N1=n1, K=2048, sbs=sbs, dtype=dtype)


@pytest.mark.parametrize("platform", PLATFORMS, ids=lambda p: p.name)
def test_decode_tiles_fit_and_cover_every_task(platform):
    p = decode_params()
    t = tiling.plan(p, platform)
    assert platform.fits(dict(t.tile_bytes))
    assert t.block_s2 % p.sparse_block_size == 0 and t.entries_per_step * 1 == t.block_s2
    assert p.n1 % t.head_group == 0
    assert t.num_tasks == 4 * (128 // t.head_group)
    steps = -(-t.task_window // t.entries_per_step)
    got = (t.schedule.piece_step_end - t.schedule.piece_step_begin)
    per_task = torch.zeros(t.num_tasks, dtype=torch.int64).index_add_(0, t.schedule.piece_task, got)
    assert torch.equal(per_task, steps)
    assert t.workspace_bytes == t.schedule.num_slots * t.head_group * (512 + 2) * 4


def test_platform_specific_tiles():
    p = decode_params()
    ascend = tiling.plan(p, ASCEND_A3)
    assert (ascend.head_group, ascend.block_s2) == (64, 256)   # L0C caps heads at 64
    assert ascend.block_s2 <= 512
    gpu = tiling.plan(p, H100)
    assert (gpu.head_group, gpu.block_s2, gpu.stages) == (64, 64, 2)
    cpu = tiling.plan(p, CPU)
    assert (cpu.head_group, cpu.block_s2) == (128, 512)


def test_decode_fills_the_cores_by_splitting():
    """4 tokens x 2 head groups cannot fill 132 SMs: tasks are split, slots allocated."""
    t = tiling.plan(decode_params(), H100)
    assert int(t.schedule.task_num_pieces.min()) > 1
    assert len(t.schedule.piece_core.unique()) > 100
    assert t.schedule.num_slots == t.schedule.num_pieces


@pytest.mark.parametrize("n1", [1, 8, 16])
def test_few_heads_no_padding_to_64(n1):
    t = tiling.plan(decode_params(n1=n1), H100)
    assert t.head_group == n1


def test_large_sparse_block_widens_the_gpu_step():
    t = tiling.plan(checked_params(B=1, S1=1, S2=512, N1=16, K=4, sbs=128), H100)
    assert (t.block_s2, t.entries_per_step, t.stages) == (128, 1, 1)


def test_causal_windows_and_skipped_rows():
    p = checked_params(B=1, S1=6, S2=3, N1=2, K=8, sbs=2)
    t = tiling.plan(p, CPU)
    # tau = Lkv - Lq + s + 1 = [-2, -1, 0, 1, 2, 3]: rows 0..2 have no step
    assert t.task_row.tolist() == [3, 4, 5]
    assert t.task_tau.tolist() == [1, 2, 3]
    assert t.task_window.tolist() == [math.ceil(x / 2) for x in (1, 2, 3)]


def test_tnd_rows_and_batches():
    p = checked_params(B=3, S1=4, S2=50, N1=2, K=8, layout_query="TND", layout_kv="TND",
                       q_lens=[2, 0, 3], kv_lens=[10, 5, 50], sparse_mode=0)
    t = tiling.plan(p, CPU)
    assert t.task_row.tolist() == [0, 1, 2, 3, 4]
    assert t.task_batch.tolist() == [0, 0, 2, 2, 2]
    assert t.task_tau.tolist() == [10, 10, 50, 50, 50]


def test_plan_is_pure():
    p = decode_params()
    a, b = tiling.plan(p, H200), tiling.plan(p, H200)
    assert (a.head_group, a.block_s2) == (b.head_group, b.block_s2)
    assert torch.equal(a.schedule.piece_core, b.schedule.piece_core)


def test_refuses_an_unsupported_ascend_soc():
    soc = PlatformInfo("Ascend310P", PlatformKind.ASCEND, 8, ASCEND_A3.buffers, 2)
    with pytest.raises(CannAttentionError, match="platform: expected an Ascend A2/A3 SoC"):
        tiling.plan(decode_params(), soc)


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
        tiling.plan(decode_params(), tiny)


def test_small_buffers_shrink_the_tiles():
    ub_small = PlatformInfo("Ascend910B", PlatformKind.ASCEND, 24,
                            tuple((n, 48 * 1024 if n == "UB" else s) for n, s in ASCEND_A3.buffers),
                            2)
    t = tiling.plan(decode_params(), ub_small)
    assert ub_small.fits(dict(t.tile_bytes))
    assert t.head_group * t.block_s2 < 64 * 256


def test_emulator_asserts_tiles_fit():
    """The emulator checks the tiles it actually builds against the plan's platform."""
    from cann_attention.op_kernel.sparse_flash_attention import emulate
    case = make_case(B=1, S1=1, S2=64, N1=8, K=16)
    p = params.parse(*case.args, **case.kwargs)
    check.check(p)
    t = tiling.plan(p, CPU)
    lying = PlatformInfo("CPU", PlatformKind.CPU, 64, (("CACHE", 4096),))
    bad = tiling.SparseFlashAttentionTiling(**{**t.__dict__, "platform": lying})
    tensors = params.SparseFlashAttentionTensors(case.args[0], case.args[1], case.args[2],
                                                 case.args[3], case.kwargs["query_rope"],
                                                 case.kwargs["key_rope"], None, None)
    with pytest.raises(AssertionError, match="tile needs .* of CACHE"):
        emulate.run(p, bad, tensors)


def test_many_equal_decode_tasks_run_whole_on_a_gpu():
    """64 tokens x 2 head groups of 32 steps on 132 SMs: whole tasks (no merge pass) cost the
    longest core by less than the split cost; other platforms keep the balanced cut (their merge
    is no extra pass over memory)."""
    p = checked_params(B=64, S1=1, S2=2048, N1=128, K=2048)
    gpu = tiling.plan(p, H100)
    assert gpu.num_tasks == 128 and gpu.schedule.num_slots == 0 and gpu.workspace_bytes == 0
    assert gpu.schedule.num_pieces == gpu.num_tasks
    for platform in (CPU, ASCEND_A3):
        t = tiling.plan(p, platform)
        steps = -(-t.task_window // t.entries_per_step)
        balanced = partition(steps, platform.num_cores, tiling.TASK_OVERHEAD_STEPS)
        assert torch.equal(t.schedule.piece_core, balanced.piece_core)
        assert t.schedule.num_slots == balanced.num_slots


def test_plan_is_memoised_on_its_arguments():
    """Equal calls (the layers of a model in one step) get the same tiling object; other length
    values or another platform get their own; the cache is bounded."""
    a = tiling.plan(checked_params(B=2, S1=2, S2=300, N1=16, K=64, seed=3), H100)
    b = tiling.plan(checked_params(B=2, S1=2, S2=300, N1=16, K=64, seed=3), H100)
    assert b is a
    assert tiling.plan(checked_params(B=2, S1=2, S2=300, N1=16, K=64, seed=3), CPU) is not a
    ragged = checked_params(B=2, S1=2, S2=300, N1=16, K=64, layout_query="TND", layout_kv="TND", q_lens=[2, 1],
                            kv_lens=[300, 200], seed=3)
    other = checked_params(B=2, S1=2, S2=300, N1=16, K=64, layout_query="TND", layout_kv="TND", q_lens=[2, 1],
                           kv_lens=[300, 250], seed=3)
    assert tiling.plan(ragged, H100) is not tiling.plan(other, H100)
    assert not torch.equal(tiling.plan(ragged, H100).task_tau, tiling.plan(other, H100).task_tau)
    assert tiling.plan.cache_info().maxsize == tiling.PLAN_CACHE_SIZE
