"""The tiling plan is a pure function: tiles that fit each fake platform, chunks of whole
selection blocks, every (batch, KV head, query row) in exactly one task, balanced cores,
refusals on platforms that cannot hold the smallest tile."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from cann_attention.op_host.common.errors import CannAttentionError
from cann_attention.op_host.common.platform import (
    ASCEND_910B, ASCEND_A3, CPU, H100, H200, KiB, PlatformInfo, PlatformKind)
from cann_attention.op_host.nsa_compress_attention import check, tiling
from testing.calls import assert_same, parse
from testing.nsa_compress_attention import Case, make

PLATFORMS = [ASCEND_910B, ASCEND_A3, H100, H200, CPU]
CASES = [
    Case((5, 0, 130), (37, 20, 300), n1=8, n2=2, d1=64, d2=32, l=32, d=16, ls=64, k=4),
    Case((1,), (14000,), n1=64, n2=1, d1=768, d2=768, l=128, d=16, ls=128, k=32,
         atten_mask=False, topk_mask=False),
    Case((300, 7), (90, 400), n1=16, n2=16, d1=128, d2=128, l=48, d=48, ls=96, k=8,
         dtype=torch.bfloat16),
]


def _params(case):
    args, kwargs = make(case)
    # the prefix sums are host int lists (part of the static signature): the params hold them
    p = parse("npu_nsa_compress_attention", *args, **kwargs)
    check.check(p)
    return p


@pytest.mark.parametrize("platform", PLATFORMS, ids=lambda p: p.name)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_plan_invariants(case, platform):
    p = _params(case)
    t = tiling.plan(p, platform)
    assert platform.fits(dict(t.tile_bytes))
    assert t.block_c == t.blocks_per_chunk * p.m_blocks                  # whole blocks
    assert t.block_c <= tiling.MAX_BLOCK_C[platform.kind]
    assert p.g * t.block_s1 <= tiling.MAX_ROWS
    assert t.importance_width == t.block_c + p.nw - 1
    assert t.importance_halo == p.nw - 2
    assert t.workspace_bytes == 0
    # every (b, n2, row) covered exactly once
    seen = set()
    for b, n2, r0, rows in zip(t.task_batch.tolist(), t.task_kv_head.tolist(),
                               t.task_row0.tolist(), t.task_rows.tolist()):
        assert 1 <= rows <= t.block_s1
        for i in range(r0, r0 + rows):
            assert (b, n2, i) not in seen
            seen.add((b, n2, i))
    assert seen == {(b, n2, i) for b, sq in enumerate(p.q_lens) for n2 in range(p.n2)
                    for i in range(sq)}
    c_lens = torch.tensor(p.cmp_lens)[t.task_batch]
    assert torch.equal(t.task_chunks, -(-c_lens // t.block_c))
    # cores: contiguous, in range, ranks consecutive, balanced up to one task
    assert torch.all(t.task_core[1:] >= t.task_core[:-1])
    assert int(t.task_core.max()) < platform.num_cores
    cost = 2 * t.task_chunks + tiling.TASK_OVERHEAD
    per_core = torch.zeros(platform.num_cores, dtype=torch.int64).index_add_(0, t.task_core, cost)
    assert int(per_core.max()) <= -(-int(cost.sum()) // platform.num_cores) + int(cost.max())
    for core in t.task_core.unique().tolist():
        ranks = t.task_rank[t.task_core == core]
        assert ranks.tolist() == list(range(len(ranks)))


def test_plan_is_pure():
    """Two plans of equal calls, each from its own params, are equal in every field."""
    p, q = _params(CASES[0]), _params(CASES[0])
    assert p is not q and p == q
    a, b = tiling.plan(p, ASCEND_A3), tiling.plan(q, ASCEND_A3)
    assert a is not b
    assert_same(a, b)


def test_gpu_chunks_are_smaller_than_ascend():
    p = _params(CASES[0])
    assert tiling.plan(p, H100).block_c <= 64 < tiling.plan(p, ASCEND_A3).block_c


def test_largest_shape_fits_ascend_with_a_small_query_tile():
    """G = 64, D1 = D2 = 768: the query tile shrinks (block_s1 = 1 or 2) but a plan exists."""
    p = _params(CASES[1])
    t = tiling.plan(p, ASCEND_A3)
    assert t.block_s1 <= 2 and ASCEND_A3.fits(dict(t.tile_bytes))


@pytest.mark.parametrize("platform", [
    PlatformInfo("TinyCPU", PlatformKind.CPU, 4, (("CACHE", KiB),)),
    PlatformInfo("TinyGPU", PlatformKind.GPU, 4, (("SMEM", 4 * KiB), ("REGISTERS", 4 * KiB))),
], ids=lambda p: p.name)
def test_refuses_platform_without_room_for_the_smallest_tile(platform):
    p = _params(CASES[0])
    with pytest.raises(CannAttentionError, match=rf"platform: expected buffers that hold the "
                       rf"smallest tile .* {platform.name} has"):
        tiling.plan(p, platform)


def test_refuses_unknown_ascend_soc():
    p = _params(CASES[0])
    soc = PlatformInfo("Ascend310P", PlatformKind.ASCEND, 8, ASCEND_A3.buffers, 2)
    with pytest.raises(CannAttentionError, match=r"platform: expected an Ascend A2/A3 SoC"):
        tiling.plan(p, soc)


def test_tile_usage_grows_with_the_tile():
    small = tiling.TileShape(rows=8, block_s1=4, width=32, blocks_per_chunk=8, d1=64, d2=64,
                             topk=4, itemsize=2)
    big = tiling.TileShape(rows=16, block_s1=8, width=64, blocks_per_chunk=16, d1=64, d2=64,
                           topk=4, itemsize=2)
    for kind in PlatformKind:
        u, v = tiling.tile_usage(kind, small), tiling.tile_usage(kind, big)
        assert all(v[name] >= u[name] for name in u)


def test_head_dims_are_padded_to_16_in_the_tiles():
    """D1 = 8, D2 = 7 plan as D1 = D2 = 16 (the tiling pads D, as CANN's does); TilingData
    carries the real dims (the rows' strides) and the padded ones."""
    base = CASES[0]
    odd = _params(replace(base, d1=8, d2=7))
    even = _params(replace(base, d1=16, d2=16))
    assert (odd.d1_align, odd.d2_align) == (16, 16)
    for platform in PLATFORMS:
        a, b = tiling.plan(odd, platform), tiling.plan(even, platform)
        assert (a.block_s1, a.block_c, a.tile_bytes) == (b.block_s1, b.block_c, b.tile_bytes)
    fields = tiling.TILING_DATA.unpack(tiling.tiling_data(tiling.plan(odd, ASCEND_A3), odd))
    assert (fields["d1"], fields["d2"], fields["d1_align"], fields["d2_align"]) == (8, 7, 16, 16)
    assert _params(replace(base, d1=40, d2=24)).d1_align == 48


def test_fp64_tiles_count_8_byte_accumulators():
    """fp64 inputs (CPU only) run in fp64: the CPU working set is twice fp32's."""
    shape = dict(rows=8, block_s1=4, width=32, blocks_per_chunk=8, d1=64, d2=64, topk=4)
    fp32 = tiling.tile_usage(PlatformKind.CPU, tiling.TileShape(**shape, itemsize=4))
    fp64 = tiling.tile_usage(PlatformKind.CPU, tiling.TileShape(**shape, itemsize=8))
    assert fp64["CACHE"] > 1.9 * fp32["CACHE"]
    p = _params(replace(CASES[0], dtype=torch.float64))
    assert CPU.fits(dict(tiling.plan(p, CPU).tile_bytes))
