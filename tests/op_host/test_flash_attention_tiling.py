"""plan(params, platform) / schedule(params, tiling): tile choice, tile skipping, split-K and
refusals on fake platforms; the static plan does not depend on the lengths' values."""

import pytest
import torch

from cann_attention.op_host.common.errors import CannAttentionError
from cann_attention.op_host.common.mask_spec import TileStatus
from cann_attention.op_host.common.platform import (ASCEND_910B, ASCEND_A3, CPU, H100, H200,
                                                    PlatformInfo, PlatformKind)
from cann_attention.op_host.flash_attention import check
from cann_attention.op_host.flash_attention.tiling import plan, schedule, tile_usage
from cann_attention.op_kernel.common.masks import build_mask
from testing.calls import assert_same, checked, parse

OP = "npu_flash_attention"
PLATFORMS = {p.name: p for p in (ASCEND_910B, ASCEND_A3, H100, H200, CPU)}


def _args(b=1, s1=256, s2=256, n1=8, n2=2, d=128, dtype=torch.bfloat16):
    meta = dict(device="meta", dtype=dtype)
    return (torch.empty(b, s1, n1, d, **meta), torch.empty(b, s2, n2, d, **meta),
            torch.empty(b, s2, n2, d, **meta), d ** -0.5)


def params(b=1, s1=256, s2=256, n1=8, n2=2, d=128, dtype=torch.bfloat16, **kw):
    """Params carrying the lengths' values (meta tensors for the shapes, lengths on the CPU),
    after every check (static and on values)."""
    return checked(OP, *_args(b, s1, s2, n1, n2, d, dtype), **kw)[0]


def static_params(b=1, s1=256, s2=256, n1=8, n2=2, d=128, dtype=torch.bfloat16, **kw):
    """Params without any value (what the pipeline plans from), after the static check."""
    p = parse(OP, *_args(b, s1, s2, n1, n2, d, dtype), **kw)
    check.check(p)
    return p


def visited(work):
    """{(task, first key)} of every step the schedule runs."""
    out = set()
    s = work.schedule
    steps = s.piece_step_end - s.piece_step_begin
    for piece in range(s.num_pieces):                  # the valid pieces come first
        t = int(s.piece_task[piece])
        for step in range(int(s.piece_step_begin[piece]),
                          int(s.piece_step_begin[piece]) + int(steps[piece])):
            out.add((t, int(work.step_k_begin[int(work.task_step_offset[t]) + step])))
    return out


@pytest.mark.parametrize("name", list(PLATFORMS))
def test_causal_prefill_skips_upper_triangle_and_fits(name):
    platform = PLATFORMS[name]
    p = params(sparse_mode=3)
    t = plan(p, platform)
    w = schedule(p, t)
    assert platform.fits(dict(t.tile_bytes))
    assert (w.step_status != TileStatus.EMPTY).all()
    bs1, bs2 = t.block_s1, t.block_s2
    nq, nk = -(-256 // bs1), -(-256 // bs2)
    # tile (qt, kt) is empty iff kt*bs2 > (qt+1)*bs1 - 1
    empty = sum(1 for qt in range(nq) for kt in range(nk) if kt * bs2 > (qt + 1) * bs1 - 1)
    assert w.num_skipped_tiles == empty * p.n2
    assert w.num_tasks == nq * p.n2
    assert int(w.schedule.task_num_pieces.sum()) == w.schedule.num_pieces
    # every visited step exactly once: each task's steps 0 .. n-1 in one run of pieces
    s = w.schedule
    n = s.num_pieces
    # a task's steps: from its offset to the next query tile's (the N2 tasks of a tile share it)
    offsets = torch.cat([w.task_step_offset.unique(), torch.tensor([w.step_k_begin.numel()])])
    steps_of_task = offsets[torch.searchsorted(offsets, w.task_step_offset, right=True)] \
        - w.task_step_offset
    covered = torch.zeros(w.num_tasks, dtype=torch.int64).index_add_(
        0, s.piece_task[:n], (s.piece_step_end - s.piece_step_begin)[:n])
    assert torch.equal(covered, steps_of_task)
    assert int(s.piece_core[:n].max()) < platform.num_cores


@pytest.mark.parametrize("name", list(PLATFORMS))
def test_decode_is_split_over_cores(name):
    platform = PLATFORMS[name]
    p = params(b=2, s1=1, s2=8192, sparse_mode=3)
    t = plan(p, platform)
    w = schedule(p, t)
    assert t.block_s1 == 1 and w.num_tasks == 2 * p.n2
    assert w.schedule.num_slots > 0 and w.workspace_bytes > 0      # split-K
    assert w.schedule.num_pieces >= min(platform.num_cores, w.step_k_begin.numel()) // 2
    costs = w.schedule.core_costs(1)
    assert int(costs.max()) <= w.schedule.cost_per_core + 1


def test_plan_is_pure():
    """Two plans (and schedules) of equal calls, each from its own params, equal in every field."""
    kw = dict(sparse_mode=4, pre_tokens=100, next_tokens=0)
    p, q = params(**kw), params(**kw)
    assert p is not q
    a, b = plan(p, H100), plan(q, H100)
    assert a is not b and a == b
    assert_same(a, b)
    wa, wb = schedule(p, a), schedule(q, b)
    assert wa is not wb
    assert_same(wa, wb, "work")


def test_static_plan_ignores_length_values():
    """Two calls that differ only in the lengths' values: one static plan (equal to the plan of
    the params without values, so the plan reads none), two different schedules. The tiles
    come from the capacities (S1 = 200, S2 = 300), as with no lengths at all."""
    shape = dict(b=2, s1=200, s2=300, n2=1, sparse_mode=3)
    lens_a = dict(actual_seq_lengths_query=torch.tensor([200, 37]),
                  actual_seq_lengths_kv=torch.tensor([250, 300]))
    # lens_b's longest lengths (5, 16) are far below the capacities: planned from the longest
    # lengths (as before the plan became static), its tiles would be 4 x 16 on every platform
    lens_b = dict(actual_seq_lengths_query=torch.tensor([3, 5]),
                  actual_seq_lengths_kv=torch.tensor([16, 9]))
    p, q = params(**shape, **lens_a), params(**shape, **lens_b)
    static = static_params(**shape, **lens_a)
    assert static.actual_seq_lengths_query.values is None
    assert static.actual_seq_lengths_kv.values is None
    for platform in PLATFORMS.values():
        a, b = plan(p, platform), plan(q, platform)
        assert_same(a, b)
        assert_same(a, plan(static, platform))
        assert_same(a, plan(params(**shape), platform))          # no lengths: full capacities
        assert (a.block_s1, a.block_s2) != (4, 16)
        wa, wb = schedule(p, a), schedule(q, b)
        assert wa.task_batch.tolist() != wb.task_batch.tolist()
        assert wa.step_k_begin.tolist() != wb.step_k_begin.tolist()
        assert wa.num_tasks != wb.num_tasks


@pytest.mark.parametrize("kw", [dict(sparse_mode=3), dict(sparse_mode=4, pre_tokens=70,
                                                           next_tokens=5),
                                dict(sparse_mode=3, chunk_size=48), dict(chunk_size=40),
                                dict(sparse_mode=2)],
                         ids=["causal", "band", "chunked_causal", "chunked", "mode2"])
def test_skipped_tiles_have_nothing_visible(kw):
    """Brute force: every tile outside the plan has no visible element; FULL tiles are full."""
    lens = dict(actual_seq_lengths_query=torch.tensor([200, 37]),
                actual_seq_lengths_kv=torch.tensor([250, 300]))
    p = params(b=2, s1=200, s2=300, n2=1, **kw, **lens)
    small = PlatformInfo("cpu4", PlatformKind.CPU, 4, (("CACHE", 256 * 1024),))
    t = plan(p, small)
    w = schedule(p, t)
    mask = build_mask(p.mask_spec, torch.tensor(p.q_lens), torch.tensor(p.kv_lens), None)
    seen = visited(w)
    bs1, bs2 = t.block_s1, t.block_s2
    task_of = {(int(w.task_batch[i]), int(w.task_q_begin[i])): i for i in range(w.num_tasks)}
    for b in range(2):
        lq, lk = p.q_lens[b], p.kv_lens[b]
        for i0 in range(0, lq, bs1):
            for k0 in range(0, lk, bs2):
                qpos = torch.arange(i0, min(i0 + bs1, lq)) + lk - lq
                k = torch.arange(k0, min(k0 + bs2, lk))
                vis = mask.visible(torch.tensor(b), torch.tensor(0), qpos.view(-1, 1),
                                   k.view(1, -1))
                task = task_of.get((b, i0))
                if task is None or (task, k0) not in seen:
                    assert not vis.any(), (b, i0, k0)
                else:
                    off = int(w.task_step_offset[task])
                    steps = w.step_k_begin[off:].tolist()
                    st = int(w.step_status[off + steps.index(k0)])
                    if st == TileStatus.FULL:
                        assert vis.all()
    assert w.num_skipped_tiles > 0 or kw == {}


def test_rows_without_visible_keys_get_no_task():
    p = params(s1=64, s2=16, sparse_mode=3)          # S1 > S2: the first 48 rows see nothing
    t = plan(p, CPU)
    assert int(schedule(p, t).task_q_begin.min()) + t.block_s1 > 48


def test_tile_choice_respects_buffers_and_group():
    p = params(n1=64, n2=1, d=512, s1=512, s2=4096, dtype=torch.float16)
    for platform in PLATFORMS.values():
        t = plan(p, platform)
        usage = tile_usage(platform.kind, 64 * t.block_s1, t.block_s2, 512, 2)
        assert platform.fits(usage)


def test_refuses_tiny_buffers():
    tiny = PlatformInfo("tiny", PlatformKind.CPU, 4, (("CACHE", 1024),))
    with pytest.raises(CannAttentionError, match=r"platform: expected buffers .* tiny has"):
        plan(params(), tiny)


def test_refuses_unknown_ascend_soc():
    other = PlatformInfo("Ascend310P", PlatformKind.ASCEND, 8, ASCEND_910B.buffers, 2)
    with pytest.raises(CannAttentionError, match="platform: expected an Ascend A2/A3 SoC"):
        plan(params(), other)


def test_paged_plan_uses_logical_lengths():
    meta = dict(device="meta", dtype=torch.float16)
    # the page table is read by the value checks: a CPU tensor, every entry inside the cache
    table = torch.arange(32, dtype=torch.int32).reshape(2, 16)
    p, _ = checked(OP, torch.empty(2, 1, 8, 64, **meta), torch.empty(40, 128, 1, 64, **meta),
                   torch.empty(40, 128, 1, 64, **meta), 0.1, layout_kv="PA_BSND",
                   block_table=table,
                   actual_seq_lengths_kv=torch.tensor([2000, 7], dtype=torch.int32))
    w = schedule(p, plan(p, ASCEND_A3))
    last = w.step_k_begin.max()
    assert int(last) < 2000 and w.schedule.num_slots > 0
