"""Tight tier of npu_nsa_compress_attention (oracle.assert_within_ulp): attention_out of the
emulator, called through the public op, agrees with
``reference.nsa_compress_attention(..., round_p=True)`` within 1 ULP of the output dtype,
fp16 and bf16.

Preconditions, as in test_sparse_flash_attention_tight.py: q, k and v on the grid of
``testing.oracle.on_grid`` and a power-of-two scale, so that scores, maxima and exp(s - m) are
bit-identical in both; and P rounded once, against the row's final max (the emulator rounds
against the running max; the reference against the row max): compressed sequences that the
CPU plan's attention pass covers in one chunk, checked on every run by
``testing.oracle.one_rounding_point``. Inputs come from ``testing.nsa_compress_attention``
(random atten_mask with a fully masked row per batch, topk_mask).

``test_tight_tier_detects_missing_p_rounding`` removes the emulator's rounding of P and checks
that the tier fails.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import cann_attention
from cann_attention.op_host.common.platform import CPU
from cann_attention.op_kernel.nsa_compress_attention import reference
from testing.nsa_compress_attention import Case, make
from testing.oracle import assert_within_ulp, on_grid, one_rounding_point, without_p_rounding

OP = torch.ops.cann_attention.npu_nsa_compress_attention
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}

CASES = [
    Case((5, 9, 1), (37, 20, 44), l=32, d=16, ls=64, k=2),
    Case((5, 9, 1), (37, 20, 44), l=128, d=64, ls=128, k=2),
    Case((5, 9, 1), (37, 20, 44), l=48, d=48, ls=96, k=2),
    Case((6, 3), (30, 17), n1=16, n2=2, k=3),                                      # G = 8
    Case((7, 0, 4), (40, 9, 25), n1=8, n2=1, d1=64, d2=32),                         # empty batch
    Case((7, 0, 4), (40, 9, 25), n1=8, n2=1, d1=64, d2=64, atten_mask=False,
         topk_mask=False),
    Case((13,), (70,), n1=16, n2=1, d1=32, d2=32, l=32, d=32, ls=32, k=32, topk_mask=False),
    Case((3, 11), (5, 64), n1=2, n2=2, l=64, d=16, ls=128, k=1),
    Case((3, 2), (20, 9), n1=64, n2=1, d1=16, d2=16, k=2),                          # G = 64
    Case((5, 9, 1), (37, 20, 44), n1=4, n2=2, d1=8, d2=7),                          # D < 16
    Case((5, 9, 1), (37, 20, 44), n1=4, n2=2, d1=40, d2=24),                        # D % 16
]


def _id(case):
    return case.id.replace("-fp16", "")


def tight_call(case: Case, dtype):
    """(args, kwargs) of the case in ``dtype`` with q, k, v on the grid, power-of-two scale."""
    case = replace(case, dtype=dtype, scale=2.0 ** -2 if case.d1 <= 16 else 2.0 ** -3)
    args, kwargs = make(case)
    return tuple(on_grid(a) if isinstance(a, torch.Tensor) else a for a in args), kwargs


def check_tight(args, kwargs, what, ulps=1):
    with one_rounding_point(), cann_attention.use(backend="emulate", platform=CPU):
        out = OP(*args, **kwargs)[0]
    want = reference.nsa_compress_attention(*args, **kwargs, round_p=True)[0]
    return assert_within_ulp(out, want, args[0].dtype, ulps, what=what)


@pytest.mark.parametrize("dt", list(DTYPES))
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_emulator_within_one_ulp_of_reference_with_rounded_p(case, dt):
    args, kwargs = tight_call(case, DTYPES[dt])
    check_tight(args, kwargs, _id(case))


@pytest.mark.parametrize("dt", list(DTYPES))
def test_tight_tier_detects_missing_p_rounding(dt, monkeypatch):
    """With the emulator's rounding of P removed, every case leaves the 1-ULP tier."""
    without_p_rounding(monkeypatch)
    for case in CASES:
        args, kwargs = tight_call(case, DTYPES[dt])
        with pytest.raises(AssertionError, match="differ by more than 1 ULP"):
            check_tight(args, kwargs, _id(case))
