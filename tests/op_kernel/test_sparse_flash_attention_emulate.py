"""emulate == reference (dtype-aware oracle) over layouts, lengths, block sizes, modes, dtypes,
head counts and the plans of every platform."""
from __future__ import annotations

import pytest
import torch

import cann_attention
from cann_attention.op_host.common.platform import ASCEND_910B, ASCEND_A3, CPU, H100, H200
from cann_attention.op_host.common.schedule import partition
from cann_attention.op_host.sparse_flash_attention import tiling
from cann_attention.op_host.sparse_flash_attention.params import lse_shape
from cann_attention.op_kernel.sparse_flash_attention import reference
from testing.oracle import assert_close, assert_stats_close
from testing.sparse_flash_attention_cases import make_case

OP = torch.ops.cann_attention.npu_sparse_flash_attention
LAYOUTS = [("BSND", "BSND"), ("TND", "TND"), ("BSND", "PA_BSND"), ("TND", "PA_BSND")]


def compare(case, platform=None):
    lse = case.kwargs["return_softmax_lse"]
    with cann_attention.use(platform=platform):
        out, smax, ssum = case.call(OP)
    ref_out, ref_max, ref_sum = case.call(reference.sparse_flash_attention)
    dtype = case.args[0].dtype
    low, _, _ = case.call(reference.sparse_flash_attention, compute_dtype=dtype)
    assert out.dtype == dtype and out.shape == case.args[0].shape
    assert not torch.isnan(out).any(), "a poisoned (never to be read) key row was read"
    assert_close(out, ref_out, low, case.id)
    if lse:
        assert_stats_close(smax, ref_max, what=f"{case.id} softmax_max")
        assert_stats_close(ssum, ref_sum, what=f"{case.id} softmax_sum")
    else:
        assert smax.shape == (0,) and ssum.shape == (0,)


@pytest.mark.parametrize("layout_query,layout_kv", LAYOUTS, ids=lambda x: x)
@pytest.mark.parametrize("sparse_mode", [0, 3])
@pytest.mark.parametrize("sbs", [1, 2, 16, 128])
def test_layouts_modes_block_sizes(layout_query, layout_kv, sparse_mode, sbs):
    page = 128 if sbs == 128 else 32
    case = make_case(B=3, S1=3, S2=300, N1=4, K=12, layout_query=layout_query,
                     layout_kv=layout_kv, sbs=sbs, sparse_mode=sparse_mode,
                     q_lens=[3, 1, 2], kv_lens=[300, 37, 129], page=page,
                     return_softmax_lse=True, seed=sbs + sparse_mode)
    compare(case)


@pytest.mark.parametrize("layout_query,layout_kv", LAYOUTS, ids=lambda x: x)
def test_zero_length_batches_and_lq_above_lkv(layout_query, layout_kv):
    """A batch with no queries, one with no keys, one with Lq > Lkv (early rows see nothing)."""
    case = make_case(B=4, S1=6, S2=64, N1=2, K=8, layout_query=layout_query, layout_kv=layout_kv,
                     q_lens=[0, 3, 6, 2], kv_lens=[5, 0, 4, 64], page=16,
                     return_softmax_lse=True)
    compare(case)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("n1", [1, 2, 8, 32, 128])
def test_head_counts_and_dtypes(n1, dtype):
    case = make_case(B=2, S1=2, S2=96, N1=n1, K=32, dtype=dtype, return_softmax_lse=True,
                     seed=n1)
    compare(case)


@pytest.mark.parametrize("platform", [CPU, ASCEND_910B, ASCEND_A3, H100, H200],
                         ids=lambda p: p.name)
@pytest.mark.parametrize("layout_query,layout_kv", [("BSND", "BSND"), ("TND", "PA_BSND")],
                         ids=lambda x: x)
def test_every_platform_plan(platform, layout_query, layout_kv):
    """The emulator executes each chip's schedule (split tasks, combine) to the same result."""
    case = make_case(B=2, S1=4, S2=700, N1=128, K=600, layout_query=layout_query,
                     layout_kv=layout_kv, q_lens=[4, 2], kv_lens=[700, 650], page=64,
                     return_softmax_lse=True)
    compare(case, platform)


def test_malformed_rows_match_reference():
    """Skipped entries before visible ones, entries after a -1: window W and termination."""
    case = make_case(B=3, S1=5, S2=20, N1=4, K=16, sbs=2, malformed=True,
                     return_softmax_lse=True, seed=3)
    compare(case)


def test_sinks():
    case = make_case(B=2, S1=3, S2=50, N1=8, K=16, sinks=True, return_softmax_lse=True,
                     q_lens=[3, 3], kv_lens=[50, 1])
    compare(case)
    with cann_attention.use(platform=H100):
        compare(case, H100)


def test_duplicates_are_kept():
    """Duplicated index entries are kept (no de-duplication): block 3 enters the softmax twice, in
    the op and in the reference alike."""
    case = make_case(B=1, S1=1, S2=16, N1=2, K=4, sparse_mode=0, return_softmax_lse=True)
    idx = case.args[3]
    idx[..., :] = torch.tensor([3, 3, 5, -1], dtype=torch.int32)
    compare(case)                                              # duplicates: op == reference
    out, _, ssum = case.call(OP)
    ref_out, _, ref_sum = case.call(reference.sparse_flash_attention)
    once = torch.tensor([3, 5, -1, -1], dtype=torch.int32)
    case.args = case.args[:3] + (once.reshape(idx.shape),) + case.args[4:]
    out_once, _, ssum_once = case.call(OP)
    ref_once, _, ref_sum_once = case.call(reference.sparse_flash_attention)
    assert not torch.allclose(out.float(), out_once.float())   # key 3 counted twice
    assert not torch.allclose(ref_out.float(), ref_once.float())
    # the duplicate adds exp(z_3 - m) once more to the sum, in the op as in the reference
    torch.testing.assert_close(ssum - ssum_once, ref_sum - ref_sum_once)
    compare(case)


def test_gpu_plan_with_whole_tasks():
    """Many equal tasks on an H100 plan run whole (no workspace, no merge): the emulator, which
    executes that plan round by round, still matches the reference."""
    from cann_attention.op_host.sparse_flash_attention.schedule import (
        TASK_OVERHEAD_STEPS, device_schedule)
    from testing.calls import checked
    case = make_case(B=140, S1=1, S2=128, N1=16, K=128, return_softmax_lse=True, seed=11)
    p, t = checked("npu_sparse_flash_attention", *case.args, **case.kwargs)
    plan = tiling.plan(p, H100)
    work = device_schedule(p, plan, t)
    assert work.schedule.num_slots == 0 and plan.num_tasks == 140
    steps = -(-work.task_window // plan.entries_per_step)
    balanced = partition(steps, H100.num_cores, TASK_OVERHEAD_STEPS)
    assert balanced.num_slots > 0, "the balanced cut would split tasks: whole ones are chosen"
    compare(case, platform=H100)


# ---- softmax statistics with a paged cache (vllm-ascend's decode context parallelism) -------
GARBAGE = (-1, -7, 2**31 - 1, -(2**31), 123456)


def _garbage_unused_entries(case, seed=0):
    """Fill the page-table entries past each batch's pages with values far outside the cache."""
    table, page = case.kwargs["block_table"], case.args[1].shape[1]
    gen = torch.Generator().manual_seed(seed)
    for b, n in enumerate(case.kv_lens):
        for j in range(-(-n // page), table.shape[1]):
            table[b, j] = GARBAGE[int(torch.randint(len(GARBAGE), (1,), generator=gen))]
    return case


@pytest.mark.parametrize("page", [16, 64, 128])
@pytest.mark.parametrize("layout_query", ["TND", "BSND"])
def test_paged_lse_matches_reference(layout_query, page):
    case = make_case(B=3, S1=4, S2=300, N1=8, K=40, layout_query=layout_query,
                     layout_kv="PA_BSND", q_lens=[4, 1, 3], kv_lens=[300, 17, 130], page=page,
                     sbs=16 if page > 16 else 1, return_softmax_lse=True, seed=page)
    compare(_garbage_unused_entries(case, seed=page))
    compare(case, H100)                                   # the GPU plan: split tasks merged


def _paged_copy(case, page, seed=0):
    """The same call on a PA_BSND cache: each batch's first Lkv[b] keys in shuffled pages, the
    rest of the cache NaN, unused page-table entries garbage."""
    q_layout, key, key_rope = case.kwargs["layout_query"], case.args[1], case.kwargs["key_rope"]
    if q_layout == "TND":
        ends = case.kwargs["actual_seq_lengths_kv"].tolist()
        starts = [0] + ends[:-1]
        rows = [(key[s:e], key_rope[s:e]) for s, e in zip(starts, ends)]
    else:
        rows = [(key[b, :n], key_rope[b, :n]) for b, n in enumerate(case.kv_lens)]
    pages = [-(-n // page) for n in case.kv_lens]
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(sum(pages) + 2, generator=gen).tolist()
    new_key = torch.full((len(perm), page, 1, key.shape[-1]), float("nan"), dtype=key.dtype)
    new_rope = torch.full((len(perm), page, 1, key_rope.shape[-1]), float("nan"),
                          dtype=key.dtype)
    table = torch.full((len(rows), max(pages) + 1), -1, dtype=torch.int32)
    for b, (k, kr) in enumerate(rows):
        for j in range(pages[b]):
            blk = table[b, j] = perm.pop()
            new_key[blk, :len(k[j * page:(j + 1) * page])] = k[j * page:(j + 1) * page]
            new_rope[blk, :len(kr[j * page:(j + 1) * page])] = kr[j * page:(j + 1) * page]
    kwargs = dict(case.kwargs, layout_kv="PA_BSND", key_rope=new_rope, block_table=table,
                  actual_seq_lengths_kv=torch.tensor(case.kv_lens, dtype=torch.int32))
    paged = type(case)((case.args[0], new_key, new_key) + case.args[3:], kwargs, case.id,
                       case.q_lens, case.kv_lens)
    return _garbage_unused_entries(paged, seed)


@pytest.mark.parametrize("platform", [ASCEND_A3, H100], ids=lambda p: p.name)
@pytest.mark.parametrize("page", [16, 64, 128])
@pytest.mark.parametrize("layout_query", ["TND", "BSND"])
def test_paged_lse_equals_contiguous_bitwise(layout_query, page, platform):
    """PA_BSND and the equivalent contiguous cache give the same bits: output and statistics."""
    case = make_case(B=3, S1=4, S2=300, N1=16, K=48, layout_query=layout_query,
                     layout_kv=layout_query, q_lens=[4, 2, 3], kv_lens=[300, 5, 129],
                     sbs=16, return_softmax_lse=True, sinks=page == 64, seed=page)
    with cann_attention.use(platform=platform):
        contiguous = case.call(OP)
        paged = _paged_copy(case, page, seed=page).call(OP)
    assert contiguous[1].shape == lse_shape(case.args[0].shape, layout_query, True)
    for got, want in zip(paged, contiguous):
        assert got.shape == want.shape and torch.equal(got, want)
