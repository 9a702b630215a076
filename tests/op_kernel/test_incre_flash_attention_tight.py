"""Tight tier of npu_incre_flash_attention (oracle.assert_within_ulp): the emulator, called through
the public op, agrees with ``reference.incre_flash_attention(..., round_p=True)`` within 1 ULP
of the output dtype, fp16 and bf16.

Preconditions, as in test_sparse_flash_attention_tight.py: q and k (and v) on the grid of
``testing.oracle.on_grid``, int8 caches dequantised with power-of-two scales and integer
offsets, and power-of-two ``scale_value``, so that scores, maxima and exp(s - m) are
bit-identical in both; and P rounded once, against the row's final max (the emulator rounds
against the running max; the reference against the row max): windows that the CPU plan covers
in one step, checked on every run by ``testing.oracle.one_rounding_point``. Inputs come from
the emulate tests' ``Case`` / ``build``.

``test_tight_tier_detects_missing_p_rounding`` removes the emulator's rounding of P and checks
that the tier fails.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import cann_attention
from cann_attention.op_host.common.platform import CPU
from cann_attention.op_kernel.incre_flash_attention import reference
from testing.incre_flash_attention_cases import Case, build
from testing.oracle import assert_within_ulp, on_grid, one_rounding_point, without_p_rounding

OP = torch.ops.cann_attention.npu_incre_flash_attention
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}

CASES = [
    Case(b=2, n1=8, n2=2, d=64, s=96, layout="BSH", lens=(96, 50)),                 # GQA 4
    Case(b=2, n1=32, n2=8, d=128, s=72, layout="BSND", lens=(72, 41)),
    Case(b=2, n1=64, n2=64, d=128, s=160, layout="BNSD", lens=(160, 77)),           # MHA
    Case(b=3, n1=8, n2=1, d=64, s=96, lens=(0, 96, 17)),                             # L_b = 0
    Case(b=2, mask="4-uint8", pse="B", layout="BSND", lens=(30, 96)),
    Case(b=2, mask="2-bool", mask_all_b0=True, lens=(96, 50)),                      # all masked
    Case(b=2, lens=(40, 90), pad=10, mask="2-bool", pse="B", layout="BSND"),       # left pad
    Case(b=3, s=200, paged="PA3", block_size=16, layout="BSH", lens=(200, 33, 1)),
    Case(b=3, s=100, paged="PA4", block_size=16, layout="BNSD", lens=(17, 100, 64),
         mask="3-int8", pse="1"),
    Case(n1=16, n2=4, d=64, s=130, layout="BSH", int8="channel", lens=(130, 61)),
    Case(b=2, s=200, paged="PA3", block_size=32, int8="tensor", lens=(200, 31)),
    Case(b=2, n1=16, n2=4, s=260, paged="PA4S", block_size=128, layout="BSH", int8="channel",
         aq_offset=False, lens=(260, 129)),                                         # vLLM's
]


def tight_args(case: Case, dt: str) -> dict:
    """``build`` of the case in dtype ``dt``, moved onto the grid (module doc)."""
    args = build(replace(case, dtype=dt))
    for name in ("query", "key", "value"):
        args[name] = on_grid(args[name])
    args["scale_value"] = 2.0 ** -3 if case.d <= 64 else 2.0 ** -4
    if case.int8:                     # (k + offset) * 2^-e: exact, any summation order
        shape = args["antiquant_scale"].shape
        exps = torch.randint(5, 8, shape, generator=torch.Generator().manual_seed(7))
        args["antiquant_scale"] = (2.0 ** -exps.double()).to(DTYPES[dt])
    return args


def check_tight(args, dtype, what, ulps=1):
    with one_rounding_point(), cann_attention.use(backend="emulate", platform=CPU):
        out = OP(**args)
    ref_args = {k: v for k, v in args.items() if k != "inner_precise"}
    want = reference.incre_flash_attention(**ref_args, round_p=True)
    return assert_within_ulp(out, want, dtype, ulps, what=what)


@pytest.mark.parametrize("dt", list(DTYPES))
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id.replace("-bf16", ""))
def test_emulator_within_one_ulp_of_reference_with_rounded_p(case, dt):
    args = tight_args(case, dt)
    check_tight(args, DTYPES[dt], case.id)


@pytest.mark.parametrize("dt", list(DTYPES))
def test_tight_tier_detects_missing_p_rounding(dt, monkeypatch):
    """With the emulator's rounding of P removed, every case leaves the 1-ULP tier."""
    without_p_rounding(monkeypatch)
    for case in CASES:
        with pytest.raises(AssertionError, match="differ by more than 1 ULP"):
            check_tight(tight_args(case, dt), DTYPES[dt], case.id)
