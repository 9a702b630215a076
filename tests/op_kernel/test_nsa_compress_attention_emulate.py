"""Emulator == reference: attention_out (dtype-aware oracle), top-k indices identical,
softmax statistics (the kernel's flat order) close, on the CPU plan and on device plans."""
from __future__ import annotations

import pytest
import torch

import cann_attention
from cann_attention.nsa_compress_attention import stats_by_row
from cann_attention.op_host.common.platform import (
    ASCEND_910B, ASCEND_A3, CPU, H100, H200, KiB, PlatformInfo, PlatformKind)
from cann_attention.op_host.nsa_compress_attention import check, tiling
from cann_attention.op_kernel.nsa_compress_attention import reference as ref
from testing.calls import parse
from testing.nsa_compress_attention import Case, attention_out, make
from testing.oracle import assert_close, assert_stats_close

OP = torch.ops.cann_attention.npu_nsa_compress_attention

# (l, d, l') combinations the op accepts (M = l'/d, Nw = l/d)
LDL = [(16, 16, 16), (16, 16, 80), (32, 16, 64), (64, 16, 64), (48, 48, 96), (64, 32, 128),
       (128, 16, 128), (64, 64, 64), (96, 48, 96), (128, 64, 128)]
CASES = [Case((5, 9, 1), (37, 20, 44), l=l, d=d, ls=ls, k=2) for l, d, ls in LDL]
CASES += [Case((6, 3), (30, 17), n1=g * 2, n2=2, k=3) for g in (1, 2, 4, 8, 16)]
CASES += [
    Case((7, 0, 4), (40, 9, 25), n1=8, n2=1, d1=64, d2=32, dtype=torch.bfloat16),
    Case((7, 0, 4), (40, 9, 25), n1=8, n2=1, d1=64, d2=64, atten_mask=False, topk_mask=False),
    Case((1, 1, 1), (12, 8, 30), n1=4, n2=4, d1=48, d2=16, k=2, atten_mask=False),
    Case((13,), (70,), n1=16, n2=1, d1=32, d2=32, l=32, d=32, ls=32, k=32, topk_mask=False),
    Case((3, 11), (5, 64), n1=2, n2=2, l=64, d=16, ls=128, k=1, dtype=torch.bfloat16),
]
# head dims that are not multiples of 16 (the tiling pads them; upstream tests use 8 / 7)
CASES += [Case((5, 9, 1), (37, 20, 44), n1=4, n2=2, d1=d1, d2=d2, dtype=dt)
          for d1, d2 in ((8, 7), (40, 24)) for dt in (torch.float16, torch.bfloat16)]


def _check(case: Case, platform=None):
    args, kwargs = make(case)
    with cann_attention.use(backend="emulate", platform=platform):
        out, idx, smax, ssum = OP(*args, **kwargs)
    want = ref.nsa_compress_attention(*args, **kwargs, output_fp32=True)
    base = ref.nsa_compress_attention(*args, **kwargs, compute_dtype=case.dtype)
    assert_close(out, want[0], base[0].float(), "attention_out")
    assert idx.dtype == torch.int32
    assert torch.equal(idx, want[1]), "topk_indices_out differs from the reference"
    assert_stats_close(smax, want[2], what="softmax_max_out")
    assert_stats_close(ssum, want[3], what="softmax_sum_out")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_emulate_matches_reference(case):
    _check(case)


PLATFORM_CASE = Case((9, 2), (50, 33), n1=8, n2=2, d1=64, d2=32, l=32, d=16, ls=64, k=4)


@pytest.mark.parametrize("platform", [ASCEND_910B, ASCEND_A3, H100, H200, CPU],
                         ids=lambda p: p.name)
def test_emulate_device_plans_match_reference(platform):
    """The Ascend and GPU plans (other tiles, other core cuts) give the same results."""
    _check(PLATFORM_CASE, platform)


def test_fully_masked_rows_are_uniform():
    """Fully masked: every score -FLT_MAX -> P = 1/C, out = mean(V), max = -FLT_MAX, sum = C."""
    case = Case((4,), (10,), n1=2, n2=1, d1=16, d2=16, k=2, topk_mask=False)
    args, kwargs = make(case)
    kwargs["atten_mask"] = torch.ones(4, 10, dtype=torch.bool)
    out, idx, smax, ssum = OP(*args, **kwargs)
    v = args[2][:10, 0].float()
    torch.testing.assert_close(out[:4].float(), v.mean(0).expand(4, 2, 16), atol=2e-3, rtol=2e-3)
    assert torch.all(smax[:4] == -3.4028234663852886e38)
    assert torch.all(ssum[:4] == 10.0)
    # uniform P: block importance [w-sum over in-range taps] = [8, 8, 3] / 10 -> blocks 0, 1
    assert idx[:4, 0].tolist() == [[0, 1]] * 4


def test_uint8_masks_equal_bool_masks():
    case = Case((5, 3), (21, 30), n1=4, n2=2, k=2)
    args, kwargs = make(case)
    a = OP(*args, **kwargs)
    kwargs8 = dict(kwargs, atten_mask=kwargs["atten_mask"].to(torch.uint8),
                   topk_mask=kwargs["topk_mask"].to(torch.uint8))
    b = OP(*args, **kwargs8)
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_rows_beyond_the_sequences_are_zero():
    case = Case((3,), (12,), extra_rows=4, k=2)
    args, kwargs = make(case)
    out, idx, smax, ssum = OP(*args, **kwargs)
    assert torch.all(out[3:] == 0) and torch.all(idx[3:] == 0)
    assert torch.all(smax.reshape(-1)[8 * 3 * case.n1:] == 0)


SMALL_CPU = PlatformInfo("CPU-small-cache", PlatformKind.CPU, 3, (("CACHE", 12 * KiB),))


@pytest.mark.parametrize("l,d,ls", [(32, 16, 64), (128, 16, 128), (64, 16, 64), (16, 16, 16),
                                    (96, 48, 96)], ids=lambda x: str(x))
def test_many_chunks_streaming_topk_and_halo(l, d, ls):
    """A small cache forces several chunks per task: the importance windows' halos cross chunk
    boundaries and the top-k is merged across chunks; results still equal the reference."""
    case = Case((6, 9), (61, 90), n1=4, n2=2, d1=32, d2=16, l=l, d=d, ls=ls, k=5)
    args, kwargs = make(case)
    p = parse("npu_nsa_compress_attention", *args, **kwargs)
    check.check(p)
    assert int(tiling.plan(p, SMALL_CPU).task_chunks.max()) >= 3
    _check(case, SMALL_CPU)


def test_largest_group_g64():
    _check(Case((3, 2), (20, 9), n1=64, n2=1, d1=16, d2=16, k=2))


@pytest.mark.parametrize("case", [
    Case((5, 9, 1), (37, 20, 44), n1=8, n2=2, d1=8, d2=7, dtype=torch.float64),
    Case((7, 0, 4), (40, 9, 25), n1=4, n2=1, d1=40, d2=24, dtype=torch.float64,
         atten_mask=False),
], ids=lambda c: c.id)
@pytest.mark.parametrize("platform", [ASCEND_A3, CPU, SMALL_CPU], ids=lambda p: p.name)
def test_fp64_emulator_computes_in_fp64(case, platform):
    """fp64 inputs (CPU only): attention_out and the fp64 statistics within 1e-12 of an fp64
    computation, the top-k of the reference run in fp64."""
    args, kwargs = make(case)
    with cann_attention.use(backend="emulate", platform=platform):
        out, idx, smax, ssum = OP(*args, **kwargs)
    assert out.dtype == smax.dtype == ssum.dtype == torch.float64
    torch.testing.assert_close(out, attention_out(*args[:4], **kwargs), rtol=1e-12, atol=1e-12)
    want = ref.nsa_compress_attention(*args, **kwargs, compute_dtype=torch.float64)
    assert torch.equal(idx, want[1])
    q, key, scale, g = args[0], args[1], args[3], case.n1 // case.n2
    m_row, l_row = (stats_by_row(x, kwargs["actual_seq_qlen"]) for x in (smax, ssum))
    q0 = c0 = 0
    for qe, ce in zip(kwargs["actual_seq_qlen"], kwargs["actual_cmp_seq_kvlen"]):
        s = scale * torch.einsum("thd,chd->htc", q[q0:qe], key[c0:ce].repeat_interleave(g, 1))
        if kwargs["atten_mask"] is not None:
            s = s.masked_fill(kwargs["atten_mask"][:qe - q0, :ce - c0], -3.4028234663852886e38)
        m = s.amax(-1)
        torch.testing.assert_close(m_row[q0:qe].T, m, rtol=1e-12, atol=0)
        torch.testing.assert_close(l_row[q0:qe].T, torch.exp(s - m[..., None]).sum(-1),
                                   rtol=1e-12, atol=0)
        q0, c0 = qe, ce


def test_fp32_emulator_matches_reference():
    case = Case((5, 9, 1), (37, 20, 44), n1=4, n2=2, d1=24, d2=16, dtype=torch.float32)
    args, kwargs = make(case)
    out, idx, smax, ssum = OP(*args, **kwargs)
    want = ref.nsa_compress_attention(*args, **kwargs)
    assert out.dtype == torch.float32 and smax.dtype == torch.float32
    torch.testing.assert_close(out, want[0], rtol=1e-5, atol=1e-5)
    assert torch.equal(idx, want[1])
    assert_stats_close(smax, want[2], what="softmax_max_out")
    assert_stats_close(ssum, want[3], what="softmax_sum_out")
