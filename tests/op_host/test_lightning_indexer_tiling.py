"""plan() of npu_lightning_indexer on the fake platforms: chunks fit the buffers, every visible
key is covered exactly once, empty rows are not scheduled, refusals name the platform."""
from __future__ import annotations

import pytest
import torch

from cann_attention.op_host.common.errors import CannAttentionError
from cann_attention.op_host.common.platform import (
    ASCEND_910B, ASCEND_A3, CPU, H100, H200, KiB, PlatformInfo, PlatformKind)
from cann_attention.op_host.lightning_indexer import check
from cann_attention.op_host.lightning_indexer.params import parse
from cann_attention.op_host.lightning_indexer.tiling import (
    MIN_BLOCK_S2, plan, tile_usage, visible_counts)

PLATFORMS = {p.name: p for p in (ASCEND_910B, ASCEND_A3, H100, H200, CPU)}


def _params(b=2, s1=4, n1=64, s2=8192, k=2048, aq=None, ak=None, mode=3):
    i32 = lambda xs: None if xs is None else torch.tensor(xs, dtype=torch.int32)  # noqa: E731
    p = parse(torch.empty(b, s1, n1, 128, dtype=torch.bfloat16, device="meta"),
              torch.empty(b, s2, 1, 128, dtype=torch.bfloat16, device="meta"),
              torch.empty(b, s1, n1, dtype=torch.bfloat16, device="meta"),
              actual_seq_lengths_query=i32(aq), actual_seq_lengths_key=i32(ak),
              sparse_count=k, sparse_mode=mode)
    check.check(p)
    return p


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
    _, _, nvis = visible_counts(p)
    assert t.num_tasks == int((nvis > 0).sum())
    assert (t.task_nvis > 0).all()
    s = t.schedule
    covered = torch.zeros(t.num_tasks, dtype=torch.int64).index_add_(
        0, s.piece_task, s.piece_step_end - s.piece_step_begin)
    assert torch.equal(covered, -(-t.task_nvis // t.block_s2))
    assert int(s.piece_core.max()) < platform.num_cores
    assert t.workspace_bytes == s.num_slots * p.sparse_count * 8


def test_lightning_indexer_tiling_chunks_the_key_sequence():
    """A long row is never scored at once: chunks are far shorter than S2 everywhere, and a
    decode row is split across cores (partial top-k lists merged through the workspace)."""
    p = _params(b=1, s1=1, s2=65536)
    for platform in PLATFORMS.values():
        t = plan(p, platform)
        assert t.block_s2 <= 1024 < 65536
        assert t.schedule.num_slots > 1, platform.name
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
    t = plan(p, CPU)
    assert t.task_row.tolist() == [3, 4, 5, 6, 7]
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
    p = _params(b=4, s1=16, s2=1000, n1=32, k=512)
    a, b = plan(p, H200), plan(p, H200)
    assert (a.head_group, a.block_s2, a.tile_bytes) == (b.head_group, b.block_s2, b.tile_bytes)
    assert torch.equal(a.schedule.piece_task, b.schedule.piece_task)
