"""plan(params, platform): tile choice, tile skipping, split-K and refusals on fake platforms."""
import pytest
import torch

from cann_attention.op_host.common.errors import CannAttentionError
from cann_attention.op_host.common.mask_spec import TileStatus
from cann_attention.op_host.common.platform import (ASCEND_910B, ASCEND_A3, CPU, H100, H200,
                                                    PlatformInfo, PlatformKind)
from cann_attention.op_host.flash_attention import check
from cann_attention.op_host.flash_attention.params import parse
from cann_attention.op_host.flash_attention.tiling import plan, tile_usage
from cann_attention.op_kernel.common.masks import build_mask

PLATFORMS = {p.name: p for p in (ASCEND_910B, ASCEND_A3, H100, H200, CPU)}


def params(b=1, s1=256, s2=256, n1=8, n2=2, d=128, dtype=torch.bfloat16, **kw):
    meta = dict(device="meta", dtype=dtype)
    p = parse(torch.empty(b, s1, n1, d, **meta), torch.empty(b, s2, n2, d, **meta),
              torch.empty(b, s2, n2, d, **meta), d ** -0.5, **kw)
    check.check(p)
    return p


def visited(tiling):
    """{(task, first key)} of every step the plan schedules."""
    out = set()
    steps = tiling.schedule.piece_step_end - tiling.schedule.piece_step_begin
    for piece in range(tiling.schedule.num_pieces):
        t = int(tiling.schedule.piece_task[piece])
        for s in range(int(tiling.schedule.piece_step_begin[piece]),
                       int(tiling.schedule.piece_step_begin[piece]) + int(steps[piece])):
            out.add((t, int(tiling.step_k_begin[int(tiling.task_step_offset[t]) + s])))
    return out


@pytest.mark.parametrize("name", list(PLATFORMS))
def test_causal_prefill_skips_upper_triangle_and_fits(name):
    platform = PLATFORMS[name]
    p = params(sparse_mode=3)
    t = plan(p, platform)
    assert platform.fits(dict(t.tile_bytes))
    assert (t.step_status != TileStatus.EMPTY).all()
    bs1, bs2 = t.block_s1, t.block_s2
    nq, nk = -(-256 // bs1), -(-256 // bs2)
    # tile (qt, kt) is empty iff kt*bs2 > (qt+1)*bs1 - 1
    empty = sum(1 for qt in range(nq) for kt in range(nk) if kt * bs2 > (qt + 1) * bs1 - 1)
    assert t.num_skipped_tiles == empty * p.n2
    assert t.num_tasks == nq * p.n2
    assert int(t.schedule.task_num_pieces.sum()) == t.schedule.num_pieces


@pytest.mark.parametrize("name", list(PLATFORMS))
def test_decode_is_split_over_cores(name):
    platform = PLATFORMS[name]
    p = params(b=2, s1=1, s2=8192, sparse_mode=3)
    t = plan(p, platform)
    assert t.block_s1 == 1 and t.num_tasks == 2 * p.n2
    assert t.schedule.num_slots > 0 and t.workspace_bytes > 0      # split-K
    assert t.schedule.num_pieces >= min(platform.num_cores, t.step_k_begin.numel()) // 2
    costs = t.schedule.core_costs(1)
    assert int(costs.max()) <= t.schedule.cost_per_core + 1


def test_plan_is_pure():
    p = params(sparse_mode=4, pre_tokens=100, next_tokens=0)
    a, b = plan(p, H100), plan(p, H100)
    assert a.block_s1 == b.block_s1 and torch.equal(a.step_k_begin, b.step_k_begin)
    assert torch.equal(a.schedule.piece_core, b.schedule.piece_core)


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
    mask = build_mask(p.mask_spec, torch.tensor(p.q_lens), torch.tensor(p.kv_lens), None)
    seen = visited(t)
    bs1, bs2 = t.block_s1, t.block_s2
    task_of = {(int(t.task_batch[i]), int(t.task_q_begin[i])): i for i in range(t.num_tasks)}
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
                    off = int(t.task_step_offset[task])
                    steps = t.step_k_begin[off:].tolist()
                    st = int(t.step_status[off + steps.index(k0)])
                    if st == TileStatus.FULL:
                        assert vis.all()
    assert t.num_skipped_tiles > 0 or kw == {}


def test_rows_without_visible_keys_get_no_task():
    p = params(s1=64, s2=16, sparse_mode=3)          # S1 > S2: the first 48 rows see nothing
    t = plan(p, CPU)
    assert int(t.task_q_begin.min()) + t.block_s1 > 48


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
    p = parse(torch.empty(2, 1, 8, 64, **meta), torch.empty(40, 128, 1, 64, **meta),
              torch.empty(40, 128, 1, 64, **meta), 0.1, layout_kv="PA_BSND",
              block_table=torch.empty(2, 16, dtype=torch.int32, device="meta"),
              actual_seq_lengths_kv=torch.tensor([2000, 7], dtype=torch.int32))
    check.check(p)
    t = plan(p, ASCEND_A3)
    last = t.step_k_begin.max()
    assert int(last) < 2000 and t.schedule.num_slots > 0
