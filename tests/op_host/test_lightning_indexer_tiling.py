"""plan() / schedule() of npu_lightning_indexer on the fake platforms: chunks fit the buffers,
every visible key is covered exactly once, empty rows are not scheduled, refusals name the
platform, and the static plan does not depend on the lengths' values (the schedule does)."""
from __future__ import annotations


import pytest
import torch

from cann_attention.op_host.common.errors import CannAttentionError
from cann_attention.op_host.common.platform import (
    ASCEND_910B, ASCEND_A3, CPU, H100, H200, KiB, PlatformInfo, PlatformKind)
from cann_attention.op_host.lightning_indexer import check
from cann_attention.op_host.lightning_indexer.tiling import (
    MIN_BLOCK_S2, plan, schedule, tile_usage, visible_counts)
from testing.calls import assert_same, checked, parse

OP = "npu_lightning_indexer"
PLATFORMS = {p.name: p for p in (ASCEND_910B, ASCEND_A3, H100, H200, CPU)}


def _args(b=2, s1=4, n1=64, s2=8192, k=2048, aq=None, ak=None, mode=3):
    """Meta tensors for the shapes; the length tensors on the CPU (their values are read)."""
    i32 = lambda xs: None if xs is None else torch.tensor(xs, dtype=torch.int32)  # noqa: E731
    args = (torch.empty(b, s1, n1, 128, dtype=torch.bfloat16, device="meta"),
            torch.empty(b, s2, 1, 128, dtype=torch.bfloat16, device="meta"),
            torch.empty(b, s1, n1, dtype=torch.bfloat16, device="meta"))
    kwargs = dict(actual_seq_lengths_query=i32(aq), actual_seq_lengths_key=i32(ak),
                  sparse_count=k, sparse_mode=mode)
    return args, kwargs


def _params(**kw):
    """Params carrying the lengths' values, after every check (static and on values)."""
    args, kwargs = _args(**kw)
    return checked(OP, *args, **kwargs)[0]


def _static_params(**kw):
    """Params without any value (what the pipeline plans from), after the static check."""
    args, kwargs = _args(**kw)
    p = parse(OP, *args, **kwargs)
    check.check(p)
    return p


def _work(p, platform):
    return schedule(p, plan(p, platform))


SHAPES = {
    "B2-S1_4-S2_8192-N1_64-K2048": dict(),
    "B1-S1_1-S2_65536-N1_64-K2048": dict(b=1, s1=1, s2=65536),
    "B2-S1_128-S2_128-N1_8-K8192": dict(s1=128, s2=128, n1=8, k=8192),
    "B4-S1_16-S2_1000-N1_32-K512": dict(b=4, s1=16, s2=1000, n1=32, k=512,
                                        aq=[16, 3, 0, 9], ak=[1000, 10, 5, 0]),
}


@pytest.mark.parametrize("name", list(PLATFORMS))
@pytest.mark.parametrize("shape", list(SHAPES))
def test_lightning_indexer_tiling_fits_and_covers(shape, name):
    p, platform = _params(**SHAPES[shape]), PLATFORMS[name]
    t = plan(p, platform)
    assert platform.fits(dict(t.tile_bytes))
    assert p.n1 % t.head_group == 0 and t.block_s2 >= MIN_BLOCK_S2
    assert dict(t.tile_bytes) == tile_usage(platform.kind, p.n1, t.head_group, t.block_s2,
                                            p.sparse_count, 2)
    # tasks: exactly the rows that see a key; steps cover [0, n_vis) once
    w = schedule(p, t)
    _, _, nvis = visible_counts(p)
    assert w.num_tasks == int((nvis > 0).sum())
    assert (w.task_nvis > 0).all()
    s = w.schedule
    n = s.num_pieces                               # the valid pieces come first
    steps = s.piece_step_end - s.piece_step_begin
    covered = torch.zeros(w.num_tasks, dtype=torch.int64).index_add_(
        0, s.piece_task[:n], steps[:n])
    assert torch.equal(covered, -(-w.task_nvis // t.block_s2))
    assert int(s.piece_core[:n].max()) < platform.num_cores
    # the padding of the fixed-size tables: past every core, no step, no slot
    assert (s.piece_core[n:] == platform.num_cores).all() and (steps[n:] == 0).all()
    assert (s.piece_slot[n:] == -1).all()
    assert w.workspace_bytes == s.num_slots * p.sparse_count * 8


def test_lightning_indexer_tiling_chunks_the_key_sequence():
    """A long row is never scored at once: chunks are far shorter than S2 everywhere, and a
    decode row is split across cores (partial top-k lists merged through the workspace)."""
    p = _params(b=1, s1=1, s2=65536)
    for platform in PLATFORMS.values():
        t = plan(p, platform)
        assert t.block_s2 <= 1024 < 65536
        assert schedule(p, t).schedule.num_slots > 1, platform.name
    assert plan(p, ASCEND_A3).block_s2 == 256            # L0B: 256 keys x 128 x bf16 = 64 KiB
    assert plan(p, H100).block_s2 == 128


def test_lightning_indexer_tiling_sparse_count_shrinks_tiles():
    """The merge buffers grow with sparse_count, so the largest K leaves less room."""
    small = plan(_params(k=64), ASCEND_A3)
    large = plan(_params(k=8192), ASCEND_A3)
    assert (large.head_group, large.block_s2) <= (small.head_group, small.block_s2)
    assert ASCEND_A3.fits(dict(large.tile_bytes))


def test_lightning_indexer_tiling_causal_rows_and_lq_gt_lk():
    """Mode 3 with Lq > Lk: the first Lq - Lk rows see nothing and are not scheduled."""
    p = _params(b=1, s1=8, s2=5, n1=8, k=16, mode=3)
    row, _, nvis = visible_counts(p)
    assert nvis.tolist() == [0, 0, 0, 1, 2, 3, 4, 5]
    w = _work(p, CPU)
    assert w.task_row.tolist() == [3, 4, 5, 6, 7]
    assert visible_counts(_params(b=1, s1=8, s2=5, n1=8, k=16, mode=0))[2].tolist() == [5] * 8


def test_lightning_indexer_tiling_refuses_tiny_buffers():
    tiny = PlatformInfo("TinyAscend", PlatformKind.ASCEND, 2,
                        (("UB", 4 * KiB), ("L1", 512 * KiB), ("L0A", 64 * KiB),
                         ("L0B", 64 * KiB), ("L0C", 128 * KiB)), 2)
    with pytest.raises(CannAttentionError, match=r"platform: expected an Ascend A2/A3 SoC"):
        plan(_params(), tiny)
    tiny_a3 = PlatformInfo("Ascend910_93", PlatformKind.ASCEND, 2, tiny.buffers, 2)
    with pytest.raises(CannAttentionError, match=r"smallest tile .*Ascend910_93 has .*'UB': 4096"):
        plan(_params(k=2048), tiny_a3)
    small_gpu = PlatformInfo("SmallGPU", PlatformKind.GPU, 8, (("SMEM", 48 * KiB),
                                                               ("REGISTERS", 256 * KiB)))
    with pytest.raises(CannAttentionError, match=r"platform: expected buffers that hold the "
                       r"smallest tile \(1 head x 16 keys, sparse_count=8192: \{'SMEM': \d+.*\} B\), "
                       r"SmallGPU has"):
        plan(_params(k=8192), small_gpu)
    assert plan(_params(k=256), small_gpu).block_s2 >= 16   # a small K still fits


def test_lightning_indexer_tiling_is_pure():
    """Two plans (and schedules) of equal calls, each from its own params, equal in every field."""
    kw = dict(b=4, s1=16, s2=1000, n1=32, k=512, aq=[16, 3, 0, 9], ak=[1000, 10, 5, 0])
    p, q = _params(**kw), _params(**kw)
    assert p is not q
    a, b = plan(p, H200), plan(q, H200)
    assert a is not b and a == b
    assert_same(a, b)
    wa, wb = schedule(p, a), schedule(q, b)
    assert wa is not wb
    assert_same(wa, wb, "work")


def test_lightning_indexer_static_plan_ignores_length_values():
    """Two calls that differ only in the lengths' values: one static plan (equal to the plan of
    the params without values, so the plan reads none), two different schedules."""
    shape = dict(b=4, s1=16, s2=1000, n1=32, k=512)
    p = _params(**shape, aq=[16, 3, 0, 9], ak=[1000, 10, 5, 0])
    q = _params(**shape, aq=[1, 16, 16, 2], ak=[7, 1000, 999, 64])
    static = _static_params(**shape, aq=[16, 3, 0, 9], ak=[1000, 10, 5, 0])
    assert static.actual_seq_lengths_query.values is None
    assert static.actual_seq_lengths_key.values is None
    for platform in PLATFORMS.values():
        a, b = plan(p, platform), plan(q, platform)
        assert_same(a, b)
        assert_same(a, plan(static, platform))
        wa, wb = schedule(p, a), schedule(q, b)
        assert wa.task_row.tolist() != wb.task_row.tolist()
        assert wa.task_nvis.tolist() != wb.task_nvis.tolist()
        assert not torch.equal(wa.schedule.piece_task, wb.schedule.piece_task)
