"""Emulator == reference under the dtype-aware oracle, for every mask kind and data layout.

The expected values are the fp64 reference (cast to the output dtype); the oracle's baseline is
the same reference run in the input dtype (tests/testing/oracle.py).
"""
import pytest
import torch

import cann_attention
from cann_attention.op_host.common.mask_spec import INT64_MAX
from cann_attention.op_host.common.platform import PlatformInfo, PlatformKind
from cann_attention.op_kernel.common.score_mods import alibi_pse_shift
from cann_attention.op_kernel.flash_attention.reference import flash_attention as reference
from testing.calls import checked
from testing.oracle import assert_close, assert_stats_close

OP = torch.ops.cann_attention.npu_flash_attention
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def check_against_reference(args, kwargs, platform=None):
    kwargs = dict(kwargs, return_softmax_lse=True)
    if platform is None:
        out, smax, ssum = OP(*args, **kwargs)
    else:
        with cann_attention.use(platform=platform):
            out, smax, ssum = OP(*args, **kwargs)
    want, wmax, wsum = reference(*args, compute_dtype=torch.float64, **kwargs)
    base, _, _ = reference(*args, compute_dtype=args[0].dtype, **kwargs)
    assert_close(out, want, base)
    assert_stats_close(smax, wmax, what="softmax_max")
    assert_stats_close(ssum, wsum, rtol=1e-3, what="softmax_sum")
    return out, smax, ssum


def dense(b, s1, s2, n1, n2, d, dtype, layout="BSND"):
    q = torch.randn(b, s1, n1, d).to(dtype)
    k, v = torch.randn(b, s2, n2, d).to(dtype), torch.randn(b, s2, n2, d).to(dtype)
    if layout == "BNSD":
        q = q.transpose(1, 2).contiguous()
    return q, k, v


MASKS = {
    "none": dict(),
    "mode1_bool": "mask",
    "mode2": dict(sparse_mode=2),
    "mode3": dict(sparse_mode=3),
    "mode4_swc": dict(sparse_mode=4, pre_tokens=20, next_tokens=0),
    "mode4_swnc": dict(sparse_mode=4, pre_tokens=20, next_tokens=INT64_MAX),
    "mode4_band_neg": dict(sparse_mode=4, pre_tokens=30, next_tokens=-5),
    "chunked": dict(chunk_size=24),
    "chunked_causal": dict(sparse_mode=3, chunk_size=24),
    "mode0_mask_band": "mask_band",
}


def mask_kwargs(name, b, s1, s2):
    spec = MASKS[name]
    if spec == "mask":
        return dict(sparse_mode=1, atten_mask=torch.rand(b, 1, s1, s2) < 0.3)
    if spec == "mask_band":
        return dict(sparse_mode=0, atten_mask=torch.rand(s1, s2) < 0.2, pre_tokens=10,
                    next_tokens=40)
    return dict(spec)


@pytest.mark.parametrize("dt", list(DTYPES))
@pytest.mark.parametrize("mask", list(MASKS))
def test_masks_dense(mask, dt):
    b, s1, s2, n1, n2, d = 2, 45, 150, 4, 2, 64
    q, k, v = dense(b, s1, s2, n1, n2, d, DTYPES[dt])
    check_against_reference((q, k, v, d ** -0.5), mask_kwargs(mask, b, s1, s2))


@pytest.mark.parametrize("g", [1, 4, 8, 16], ids=lambda g: f"G{g}")
def test_gqa_groups(g):
    q, k, v = dense(1, 20, 70, 2 * g, 2, 32, torch.bfloat16)
    check_against_reference((q, k, v, 0.2), dict(sparse_mode=3))


@pytest.mark.parametrize("d", [16, 80, 128, 256, 512], ids=lambda d: f"D{d}")
def test_head_dims(d):
    q, k, v = dense(1, 9, 40, 2, 1, d, torch.float16)
    check_against_reference((q, k, v, d ** -0.5), dict(sparse_mode=3))


def test_bnsd_query_with_lengths_and_padding_rows():
    q, k, v = dense(3, 16, 50, 4, 4, 32, torch.bfloat16, layout="BNSD")
    aq = torch.tensor([16, 5, 0], dtype=torch.int32)
    akv = torch.tensor([50, 3, 20], dtype=torch.int64)
    out, smax, ssum = check_against_reference(
        (q, k, v, 0.3), dict(layout_query="BNSD", sparse_mode=3, actual_seq_lengths_query=aq,
                             actual_seq_lengths_kv=akv))
    assert (out[1, :, 5:] == 0).all() and (out[2] == 0).all()         # padded query rows
    assert (smax[2] == -2e38).all() and (ssum[2] == 0).all()
    assert (out[1, :, :2] == 0).all()        # Lq=5 > Lk=3: rows 0, 1 see no key


def test_ragged_tnd():
    q_lens, kv_lens = [3, 0, 17, 1], [10, 4, 17, 33]
    q = torch.randn(sum(q_lens), 8, 64).half()
    k, v = torch.randn(sum(kv_lens), 2, 64).half(), torch.randn(sum(kv_lens), 2, 64).half()
    cum = lambda x: torch.tensor(x).cumsum(0).to(torch.int32)
    check_against_reference((q, k, v, 0.125), dict(
        layout_query="TND", layout_kv="TND", sparse_mode=3, actual_seq_lengths_query=cum(q_lens),
        actual_seq_lengths_kv=cum(kv_lens), learnable_sink=torch.randn(8)))


def paged(kv_lens, q_lens, n1, n2, d, block_size, dtype, layout_query="TND"):
    """Shuffled page table; each batch holds cache_length + L_q keys."""
    pages = [-(-n // block_size) for n in kv_lens]
    max_pages = max(pages) + 1
    num_blocks = sum(pages) + 3
    perm = torch.randperm(num_blocks)
    table = torch.full((len(kv_lens), max_pages), -1, dtype=torch.int32)
    used = 0
    for b, n in enumerate(pages):
        table[b, :n] = perm[used:used + n].to(torch.int32)
        used += n
    k = torch.randn(num_blocks, block_size, n2, d).to(dtype)
    v = torch.randn(num_blocks, block_size, n2, d).to(dtype)
    if layout_query == "TND":
        q = torch.randn(sum(q_lens), n1, d).to(dtype)
        aq = torch.tensor(q_lens).cumsum(0).to(torch.int32)
    else:
        q = torch.randn(len(q_lens), max(q_lens), n1, d).to(dtype)
        aq = torch.tensor(q_lens, dtype=torch.int32)
    return q, k, v, table, aq, torch.tensor(kv_lens, dtype=torch.int32)


@pytest.mark.parametrize("lq", ["TND", "BSND"])
def test_paged_prefill_with_cache_offset(lq):
    q_lens, cache = [5, 12, 1], [7, 0, 40]
    kv_lens = [c + n for c, n in zip(cache, q_lens)]
    q, k, v, table, aq, akv = paged(kv_lens, q_lens, 8, 2, 64, 16, torch.bfloat16, lq)
    check_against_reference((q, k, v, 0.125), dict(
        layout_query=lq, layout_kv="PA_BSND", block_table=table, sparse_mode=3,
        actual_seq_lengths_query=aq, actual_seq_lengths_kv=akv))


def _platform(cores):
    return PlatformInfo(f"cpu{cores}", PlatformKind.CPU, cores, (("CACHE", 2 * 1024 * 1024),))


def test_split_k_decode_many_partition_counts_equal_no_split():
    """Forced core counts cut the key range into 1..many pieces; all equal the unsplit run."""
    q, k, v, table, aq, akv = paged([700, 300, 1], [1, 1, 1], 8, 1, 64, 32, torch.float32,
                                    layout_query="BSND")
    kwargs = dict(layout_kv="PA_BSND", block_table=table, sparse_mode=3,
                  actual_seq_lengths_query=aq, actual_seq_lengths_kv=akv,
                  learnable_sink=torch.randn(8), return_softmax_lse=True)
    with cann_attention.use(platform=_platform(1)):
        ref_out, ref_max, ref_sum = OP(q, k, v, 0.125, **kwargs)
    from cann_attention.op_host.flash_attention import tiling as fa_tiling
    p, _ = checked("npu_flash_attention", q, k, v, 0.125, **kwargs)     # with the lengths' values
    slots = {c: fa_tiling.schedule(p, fa_tiling.plan(p, _platform(c))).schedule.num_slots
             for c in (1, 8, 132)}
    assert slots[1] == 0 and 0 < slots[8] < slots[132]            # the splits really differ
    for cores in (2, 3, 5, 8, 13, 24, 64, 132):
        with cann_attention.use(platform=_platform(cores)):
            out, smax, ssum = OP(q, k, v, 0.125, **kwargs)
        torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(smax, ref_max)
        torch.testing.assert_close(ssum, ref_sum, rtol=1e-5, atol=1e-6)
    check_against_reference((q, k, v, 0.125), kwargs, platform=_platform(24))


def test_sink_counted_once_under_split():
    """Sink = huge: output ~ out0 / (1 + exp(sink - lse0)) exactly once."""
    q, k, v = dense(1, 1, 500, 2, 1, 32, torch.float32)
    sink = torch.tensor([1.0, 3.0])
    with cann_attention.use(platform=_platform(40)):
        out, smax, ssum = OP(q, k, v, 0.2, learnable_sink=sink, return_softmax_lse=True)
        out0, m0, l0 = OP(q, k, v, 0.2, return_softmax_lse=True)
    lse0 = (m0 + l0.log()).flatten()
    factor = 1.0 / (1.0 + torch.exp(sink - lse0))
    torch.testing.assert_close(out[0, 0], out0[0, 0] * factor[:, None], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close((smax + ssum.log()).flatten(), torch.logaddexp(lse0, sink))


def test_invalid_rows_with_sink_are_zero():
    q, k, v = dense(1, 6, 4, 2, 1, 16, torch.bfloat16)
    out, smax, ssum = OP(q, k, v, 1.0, sparse_mode=3, learnable_sink=torch.ones(2),
                         return_softmax_lse=True)
    assert (out[0, :2] == 0).all()
    assert (smax[0, 0, :2] == -2e38).all() and (ssum[0, 0, :2] == 0).all()
    assert (ssum[0, 0, 2:] > 0).all()


def test_all_masked_materialized_mask_gives_invalid_rows():
    q, k, v = dense(1, 5, 9, 1, 1, 16, torch.float16)
    am = torch.zeros(5, 9, dtype=torch.bool)
    am[3] = True
    check_against_reference((q, k, v, 1.0), dict(sparse_mode=1, atten_mask=am))


def test_additive_pse_and_alibi():
    q, k, v = dense(2, 12, 30, 4, 2, 32, torch.bfloat16)
    pse = (torch.randn(2, 4, 12, 30) * 2).to(torch.bfloat16)
    check_against_reference((q, k, v, 0.3), dict(pse_shift=pse, sparse_mode=4, pre_tokens=9,
                                                 next_tokens=0))
    alibi = alibi_pse_shift(4, 12, 30)
    check_against_reference((q, k, v, 0.3), dict(pse_shift=alibi, sparse_mode=3))


def test_additive_materialized_mask_as_pse_plus_bool():
    """A MAX 0 / -inf additive mask maps to pse_shift (soft part) + atten_mask (hard part)."""
    q, k, v = dense(1, 8, 8, 2, 2, 16, torch.float32)
    add = torch.randn(1, 1, 8, 8)
    add[..., ::3] = float("-inf")
    hard = torch.isinf(add)
    soft = torch.where(hard, torch.zeros_like(add), add).expand(1, 2, 8, 8)
    out, _, _ = check_against_reference((q, k, v, 0.5), dict(pse_shift=soft, atten_mask=hard[0],
                                                              sparse_mode=1))
    s = torch.einsum("bqhd,bkhd->bhqk", q, k) * 0.5 + add
    want = torch.einsum("bhqk,bkhd->bqhd", s.softmax(-1), v)
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)


def test_plain_softmax_matches_torch_sdpa():
    q, k, v = dense(2, 33, 33, 4, 4, 64, torch.float32)
    out, _, _ = OP(q, k, v, 0.125, sparse_mode=3)
    want = torch.nn.functional.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True, scale=0.125)
    torch.testing.assert_close(out, want.transpose(1, 2), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("platform", ["ASCEND_910B", "H100"])
def test_device_plans_run_on_cpu(platform):
    from cann_attention.op_host.common import platform as pf
    q, k, v = dense(1, 70, 300, 8, 2, 128, torch.float16)
    check_against_reference((q, k, v, 0.09), dict(sparse_mode=3, chunk_size=100),
                            platform=getattr(pf, platform))


@pytest.mark.parametrize("which", ["kv", "query"])
def test_zero_length_sequences_everywhere(which):
    """No work at all (every L_k or every L_q is 0): zeros and (-2e38, 0), nothing scheduled."""
    q, k, v = dense(2, 3, 4, 2, 1, 16, torch.bfloat16)
    lengths = {f"actual_seq_lengths_{which}": torch.tensor([0, 0], dtype=torch.int32)}
    out, smax, ssum = check_against_reference((q, k, v, 1.0), lengths)
    assert (out == 0).all()
    if which == "kv":
        assert (smax == -2e38).all() and (ssum == 0).all()
