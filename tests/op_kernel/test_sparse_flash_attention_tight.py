"""Tight tier of npu_sparse_flash_attention (oracle.assert_within_ulp): the emulator, called through
the public op, agrees with ``reference.sparse_flash_attention(..., round_p=True)`` within 1 ULP
of the output dtype, fp16 and bf16.

Two preconditions make the promise exact up to the order of fp32 sums (tests/testing/oracle.py):

- inputs on the grid of ``on_grid`` and a power-of-two scale, so that the scores, the row
  maxima and exp(s - m) are bit-identical in both (on random inputs the two sum q.k in
  different orders and a probability now and then rounds to the neighbouring fp16 value);
- P rounded once, against the row's final max: the emulator rounds exp(s - m_step) against
  the running max and rescales it by exp(m_step - m_row) afterwards, while the reference
  rounds exp(s - m_row); the two differ whenever a later step, a split-K merge or a sink
  raises the max. Small cases on the CPU plan (one step per task) satisfy this, and
  ``one_rounding_point`` checks it on every run.

``test_tight_tier_detects_missing_p_rounding`` removes the emulator's rounding of P and checks
that the tier fails.
"""
from __future__ import annotations

import pytest
import torch

import cann_attention
from cann_attention.op_host.common.platform import CPU
from cann_attention.op_kernel.sparse_flash_attention import reference
from testing.oracle import assert_within_ulp, on_grid, one_rounding_point, without_p_rounding
from testing.sparse_flash_attention_cases import make_case

OP = torch.ops.cann_attention.npu_sparse_flash_attention
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
SCALE = 2.0 ** -5                  # ~ 1 / sqrt(576), a power of two: scale * q.k stays exact

CASES = {
    "BSND-BSND-mode3-sbs1": dict(B=2, S1=3, S2=64, N1=4, K=16),
    "TND-TND-mode0-sbs2-ragged": dict(B=3, S1=3, S2=300, N1=4, K=12, layout_query="TND",
                                      layout_kv="TND", sbs=2, sparse_mode=0,
                                      q_lens=[3, 1, 2], kv_lens=[300, 37, 129]),
    "BSND-PA_BSND-mode3-sbs16": dict(B=3, S1=3, S2=300, N1=8, K=12, layout_kv="PA_BSND",
                                     sbs=16, q_lens=[3, 1, 2], kv_lens=[300, 37, 129]),
    "TND-PA_BSND-empty-batches-Lq_above_Lkv": dict(B=4, S1=6, S2=64, N1=32, K=8,
                                                   layout_query="TND", layout_kv="PA_BSND",
                                                   q_lens=[0, 3, 6, 2], kv_lens=[5, 0, 4, 64],
                                                   page=16),
    "BSND-BSND-malformed-rows": dict(B=3, S1=5, S2=20, N1=4, K=16, sbs=2, malformed=True),
    "BSND-BSND-N1_128": dict(B=2, S1=2, S2=96, N1=128, K=32),
}


def tight_case(name, dtype, seed=0):
    """The named case with q, k on the grid and a power-of-two scale (value is key)."""
    kw = CASES[name]
    case = make_case(dtype=dtype, return_softmax_lse=True, seed=seed, **kw)
    query, key, _, indices, _, sbs = case.args
    key = on_grid(key)
    case.args = (on_grid(query), key, key, indices, SCALE, sbs)
    for name_ in ("query_rope", "key_rope"):
        case.kwargs[name_] = on_grid(case.kwargs[name_])
    case.id = f"{name}-{case.id}"
    return case


def run_op(case):
    with cann_attention.use(backend="emulate", platform=CPU):
        return case.call(OP)


def check_tight(case, ulps=1):
    dtype = case.args[0].dtype
    with one_rounding_point():
        out, smax, ssum = run_op(case)
    want, wmax, wsum = case.call(reference.sparse_flash_attention, round_p=True)
    assert_within_ulp(out, want, dtype, ulps, what=case.id)
    return out, smax, ssum


@pytest.mark.parametrize("dt", list(DTYPES))
@pytest.mark.parametrize("name", list(CASES))
def test_emulator_within_one_ulp_of_reference_with_rounded_p(name, dt):
    case = tight_case(name, DTYPES[dt])
    check_tight(case)


@pytest.mark.parametrize("dt", list(DTYPES))
def test_duplicate_entries_within_one_ulp(dt):
    """Duplicated index entries are kept (each gathered block enters the softmax once per entry)."""
    case = tight_case("BSND-BSND-mode3-sbs1", DTYPES[dt])
    idx = case.args[3].clone()
    idx[..., :6] = torch.tensor([3, 3, 5, 3, 0, 5], dtype=torch.int32)
    case.args = case.args[:3] + (idx,) + case.args[4:]
    check_tight(case)


@pytest.mark.parametrize("dt", list(DTYPES))
def test_sinks_below_the_row_max_within_one_ulp(dt):
    """Sinks join l only. The emulator rounds P against the score max and applies the sink in
    ``finalize``; the reference rounds against max(score max, sink). Below every row's score
    max the two coincide (a sink above it shifts the reference's rounding point: no 1-ULP
    promise there), so each head's sink sits 1 below the smallest row max of that head."""
    case = tight_case("TND-TND-mode0-sbs2-ragged", DTYPES[dt])
    _, smax, ssum = case.call(reference.sparse_flash_attention)
    per_head = torch.where(ssum > 0, smax, torch.full_like(smax, float("inf")))
    case.kwargs["sinks"] = per_head.reshape(-1, smax.shape[-1]).amin(0) - 1.0
    check_tight(case)


@pytest.mark.parametrize("dt", list(DTYPES))
def test_tight_tier_detects_missing_p_rounding(dt, monkeypatch):
    """With the emulator's rounding of P removed, every case leaves the 1-ULP tier (and the
    same cases pass it with the rounding in place, test above): the tier sees the rounding."""
    without_p_rounding(monkeypatch)
    for name in CASES:
        case = tight_case(name, DTYPES[dt])
        with pytest.raises(AssertionError, match="differ by more than 1 ULP"):
            check_tight(case)


@pytest.mark.parametrize("dt", list(DTYPES))
def test_assert_within_ulp_counts_units_in_the_last_place(dt):
    """The helper itself: a neighbouring value is 1 ULP (0.5 just below a power of two), two
    representable steps fail, non-finite values must sit at the same positions."""
    dtype = DTYPES[dt]
    want = torch.tensor([1.0, -3.0, 0.0, 1e-6, 0.3, float("inf")]).to(dtype)
    bits = want.view(torch.int16)
    finite = torch.isfinite(want)
    step = lambda n: torch.where(finite, (bits + n).view(dtype), want)  # noqa: E731
    assert assert_within_ulp(step(1), want, dtype) == 1.0
    assert assert_within_ulp(want, step(1), dtype) <= 1.0
    with pytest.raises(AssertionError, match="differ by more than 1 ULP"):
        assert_within_ulp(step(2), want, dtype)
    assert_within_ulp(step(2), want, dtype, ulps=2)
    with pytest.raises(AssertionError, match="NaN positions differ"):
        assert_within_ulp(torch.where(finite, want, torch.tensor(float("nan"), dtype=dtype)),
                          want, dtype)
