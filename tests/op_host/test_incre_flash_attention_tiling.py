"""The split-KV plan of npu_incre_flash_attention on the fake platforms (pure functions)."""
from __future__ import annotations


import pytest
import torch

from cann_attention.op_host.common.errors import CannAttentionError
from cann_attention.op_host.common.platform import (
    ASCEND_910B, ASCEND_A3, CPU, H100, H200, KiB, PlatformInfo, PlatformKind)
from cann_attention.op_host.incre_flash_attention import check
from cann_attention.op_host.incre_flash_attention.tiling import (
    TASK_OVERHEAD_STEPS, plan, step_candidates, tile_usage)
from testing.calls import assert_same, parse

PLATFORMS = [ASCEND_910B, ASCEND_A3, H100, H200, CPU]


def params(b=1, n1=32, n2=8, d=128, s=8192, lens=None, dtype=torch.bfloat16, kv_dtype=None,
           block_size=0, pad=None):
    kv_dtype = kv_dtype or dtype
    q = torch.empty(b, 1, n1 * d, dtype=dtype, device="meta")
    if block_size:
        blocks = b * -(-s // block_size)
        k = torch.empty(blocks, block_size, n2 * d, dtype=kv_dtype, device="meta")
        bt = torch.empty(b, -(-s // block_size), dtype=torch.int32, device="meta")
    else:
        k = torch.empty(b, s, n2 * d, dtype=kv_dtype, device="meta")
        bt = None
    aq = torch.empty(2, n2 * d, dtype=dtype, device="meta") if kv_dtype == torch.int8 else None
    # the lengths are host int lists (part of the static signature): the static params hold them
    p = parse("npu_incre_flash_attention", q, k, k, actual_seq_lengths=lens,
              antiquant_scale=aq, block_table=bt, num_heads=n1, num_key_value_heads=n2,
              block_size=block_size, kv_padding_size=pad)
    check.check(p)
    return p


def _id(p):
    return p.name


@pytest.mark.parametrize("platform", PLATFORMS, ids=_id)
@pytest.mark.parametrize("b,n1,n2,d,s", [(1, 32, 8, 128, 8192), (4, 64, 8, 256, 2048),
                                         (2, 8, 1, 64, 1000), (16, 64, 64, 128, 512),
                                         (1, 64, 1, 512, 4096)],
                         ids=lambda v: str(v))
def test_incre_flash_attention_plan_covers_windows_and_fits(platform, b, n1, n2, d, s):
    p = params(b, n1, n2, d, s)
    t = plan(p, platform)
    assert t.num_tasks == b * n2
    assert platform.fits(dict(t.tile_bytes))
    steps = -(-t.task_len // t.block_s2)
    sched = t.schedule
    n = sched.num_pieces                                   # the valid pieces come first
    covered = torch.zeros_like(steps).index_add_(
        0, sched.piece_task[:n], (sched.piece_step_end - sched.piece_step_begin)[:n])
    assert torch.equal(covered, steps)                     # every step exactly once
    assert int(sched.piece_core[:n].max()) < platform.num_cores
    assert (sched.piece_core[n:] == platform.num_cores).all()     # padding: past every core
    costs = sched.core_costs(TASK_OVERHEAD_STEPS)
    assert int(costs.max()) <= sched.cost_per_core + TASK_OVERHEAD_STEPS
    assert t.workspace_bytes == sched.num_slots * (n1 // n2) * (d + 2) * 4
    assert int(t.task_num_splits.sum()) == sched.num_pieces


@pytest.mark.parametrize("platform", PLATFORMS, ids=_id)
def test_incre_flash_attention_few_tasks_are_split_to_fill_cores(platform):
    """Decode with B * N2 = 2 long tasks: flash decoding splits them across the cores."""
    p = params(b=1, n1=16, n2=2, d=128, s=32768)
    t = plan(p, platform)
    assert int(t.task_num_splits.min()) > 1
    used = int(t.schedule.piece_core[:t.schedule.num_pieces].unique().numel())
    total = int((-(-t.task_len // t.block_s2) + TASK_OVERHEAD_STEPS).sum())
    per_core = t.schedule.cost_per_core            # ceil(total / cores): integer cut length
    assert used >= -(-total // per_core) - 1 and used >= platform.num_cores // 2
    assert t.schedule.num_slots == int(t.task_num_splits.sum())


def test_incre_flash_attention_many_tasks_are_not_split():
    p = params(b=64, n1=8, n2=8, d=128, s=128)
    t = plan(p, ASCEND_A3)
    assert int(t.task_num_splits.max()) <= 2
    assert t.schedule.num_slots < t.num_tasks


def test_incre_flash_attention_empty_windows_are_not_scheduled():
    p = params(b=4, n1=8, n2=2, d=64, s=256, lens=[0, 100, 0, 256])
    t = plan(p, CPU)
    assert t.task_batch.tolist() == [1, 1, 3, 3]
    assert t.task_len.tolist() == [100, 100, 256, 256]
    q = params(b=2, n1=8, n2=2, d=64, s=256, lens=[0, 0])
    assert plan(q, CPU).num_tasks == 0 and plan(q, CPU).schedule.num_pieces == 0


def test_incre_flash_attention_left_padding_starts():
    p = params(b=3, n1=8, n2=1, d=64, s=256, lens=[100, 200, 10], pad=[60])
    t = plan(p, CPU)
    assert t.task_batch.tolist() == [0, 2]              # batch 1: 256-60-200 < 0 -> zeros
    assert t.task_start.tolist() == [96, 186]


@pytest.mark.parametrize("platform", PLATFORMS, ids=_id)
@pytest.mark.parametrize("block_size", [16, 48, 128, 512])
def test_incre_flash_attention_paged_step_is_page_multiple_or_divisor(platform, block_size):
    p = params(b=2, n1=32, n2=8, d=128, s=1024, lens=[1024, 5], block_size=block_size)
    t = plan(p, platform)
    bs2 = t.block_s2
    assert bs2 % block_size == 0 or block_size % bs2 == 0
    assert bs2 % 16 == 0


def test_incre_flash_attention_step_candidates():
    assert step_candidates(PlatformKind.CPU, None) == [512, 256, 128, 64, 32, 16]
    assert step_candidates(PlatformKind.GPU, 512) == [128, 64, 32, 16]
    assert step_candidates(PlatformKind.ASCEND, 48) == [48, 16]


def test_incre_flash_attention_int8_cache_tiles():
    """int8 caches: half the L1 bytes, plus the dequantisation buffer in UB."""
    a = tile_usage(PlatformKind.ASCEND, 4, 256, 128, 2, 1)
    b = tile_usage(PlatformKind.ASCEND, 4, 256, 128, 2, 2)
    assert a["L1"] < b["L1"] and a["UB"] > b["UB"]
    p = params(b=1, n1=64, n2=1, d=512, s=4096, kv_dtype=torch.int8)
    t = plan(p, ASCEND_A3)
    assert ASCEND_A3.fits(dict(t.tile_bytes))


def test_incre_flash_attention_refuses_tiny_platform():
    tiny = PlatformInfo("Tiny", PlatformKind.GPU, 4, (("SMEM", 8 * KiB), ("REGISTERS", 8 * KiB)))
    with pytest.raises(CannAttentionError, match=r"platform: expected buffers that hold the "
                                                 r"smallest tile \(4 heads x 16 positions"):
        plan(params(b=1, n1=32, n2=8, d=128, s=256), tiny)


def test_incre_flash_attention_refuses_unknown_ascend_soc():
    other = PlatformInfo("Ascend310P", PlatformKind.ASCEND, 8, ASCEND_A3.buffers, 2)
    with pytest.raises(CannAttentionError, match=r"platform: expected an Ascend A2/A3 SoC"):
        plan(params(), other)


def test_incre_flash_attention_plan_is_pure():
    """Two plans of equal calls, each from its own params, are equal in every field."""
    kw = dict(b=3, n1=40, n2=8, d=128, s=3000, lens=[3000, 1, 1500])
    p, q = params(**kw), params(**kw)
    assert p is not q and p == q
    a, b = plan(p, H100), plan(q, H100)
    assert a is not b
    assert_same(a, b)
