"""Tight tier of npu_flash_attention (oracle.assert_within_ulp): the emulator, called through the
public op, agrees with ``reference.flash_attention(..., round_p=True)`` within 1 ULP of the
output dtype, fp16 and bf16.

Preconditions, as in test_sparse_flash_attention_tight.py: q, k and v on the grid of
``testing.oracle.on_grid`` and a power-of-two scale, so that scores, maxima and exp(s - m) are
bit-identical in both (pse_shift needs no grid: it is one fp32 addition to an exact score in
both); and P rounded once, against the row's final max (the emulator rounds against the
running max; the reference against the row max): small cases whose CPU plan has one key step
per task, checked on every run by ``testing.oracle.one_rounding_point``. Inputs come from the
emulate tests' builders (``dense``, ``paged``, ``mask_kwargs``).

``test_tight_tier_detects_missing_p_rounding`` removes the emulator's rounding of P and checks
that the tier fails.
"""
from __future__ import annotations

import zlib

import pytest
import torch

import cann_attention
from cann_attention.op_host.common.platform import CPU
from cann_attention.op_kernel.common.score_mods import alibi_pse_shift
from cann_attention.op_kernel.flash_attention import reference
from test_flash_attention_emulate import MASKS, dense, mask_kwargs, paged
from testing.oracle import assert_within_ulp, on_grid, one_rounding_point, without_p_rounding

OP = torch.ops.cann_attention.npu_flash_attention
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
SCALE = 2.0 ** -3


def _masks(name):
    def build(dtype):
        q, k, v = dense(2, 45, 150, 4, 2, 64, dtype)
        return (q, k, v), mask_kwargs(name, 2, 45, 150)
    return build


def _gqa(dtype):
    return dense(1, 20, 70, 16, 2, 32, dtype), dict(sparse_mode=3)


def _decode(dtype):
    return dense(3, 1, 200, 8, 2, 64, dtype), dict(
        actual_seq_lengths_kv=torch.tensor([200, 7, 0], dtype=torch.int32))


def _bnsd_padding(dtype):
    return dense(3, 16, 50, 4, 4, 32, dtype, layout="BNSD"), dict(
        layout_query="BNSD", sparse_mode=3,
        actual_seq_lengths_query=torch.tensor([16, 5, 0], dtype=torch.int32),
        actual_seq_lengths_kv=torch.tensor([50, 3, 20], dtype=torch.int64))


def _ragged_tnd(dtype):
    q_lens, kv_lens = [3, 0, 17, 1], [10, 4, 17, 33]
    q = torch.randn(sum(q_lens), 8, 64).to(dtype)
    k, v = (torch.randn(sum(kv_lens), 2, 64).to(dtype) for _ in range(2))
    cum = lambda x: torch.tensor(x).cumsum(0).to(torch.int32)  # noqa: E731
    return (q, k, v), dict(layout_query="TND", layout_kv="TND", sparse_mode=3,
                           actual_seq_lengths_query=cum(q_lens),
                           actual_seq_lengths_kv=cum(kv_lens))


def _paged(layout_query):
    def build(dtype):
        q_lens, cache = [5, 12, 1], [7, 0, 40]
        kv_lens = [c + n for c, n in zip(cache, q_lens)]
        q, k, v, table, aq, akv = paged(kv_lens, q_lens, 8, 2, 64, 16, dtype, layout_query)
        return (q, k, v), dict(layout_query=layout_query, layout_kv="PA_BSND",
                               block_table=table, sparse_mode=3, actual_seq_lengths_query=aq,
                               actual_seq_lengths_kv=akv)
    return build


def _pse_band(dtype):
    q, k, v = dense(2, 12, 30, 4, 2, 32, dtype)
    pse = (torch.randn(2, 4, 12, 30) * 2).to(dtype)
    return (q, k, v), dict(pse_shift=pse, sparse_mode=4, pre_tokens=9, next_tokens=0)


def _alibi(dtype):
    return dense(2, 12, 30, 4, 2, 32, dtype), dict(pse_shift=alibi_pse_shift(4, 12, 30),
                                                   sparse_mode=3)


CASES = {f"dense-{name}": _masks(name) for name in MASKS}
CASES.update({"gqa-G8": _gqa, "decode-lengths": _decode, "bnsd-padding-rows": _bnsd_padding,
              "tnd-ragged": _ragged_tnd, "paged-TND": _paged("TND"),
              "paged-BSND": _paged("BSND"), "pse-band": _pse_band, "alibi-causal": _alibi})


def tight_case(name, dtype):
    """(args, kwargs) of the named case on the grid, with a power-of-two scale; the builders
    draw from torch's global generator, seeded here per case so that a case has the same data
    wherever it is built."""
    torch.manual_seed(zlib.crc32(name.encode()))
    tensors, kwargs = CASES[name](dtype)
    q, k, v = (on_grid(t) for t in tensors)
    return (q, k, v, SCALE), dict(kwargs, return_softmax_lse=True)


def check_tight(args, kwargs, what, ulps=1):
    with one_rounding_point(), cann_attention.use(backend="emulate", platform=CPU):
        out, _, _ = OP(*args, **kwargs)
    want, _, _ = reference.flash_attention(*args, **kwargs, round_p=True)
    return assert_within_ulp(out, want, args[0].dtype, ulps, what=what)


@pytest.mark.parametrize("dt", list(DTYPES))
@pytest.mark.parametrize("name", list(CASES))
def test_emulator_within_one_ulp_of_reference_with_rounded_p(name, dt):
    args, kwargs = tight_case(name, DTYPES[dt])
    check_tight(args, kwargs, name)


@pytest.mark.parametrize("dt", list(DTYPES))
def test_sinks_below_the_row_max_within_one_ulp(dt):
    """The sink joins l only. The emulator rounds P against the score max and applies the sink
    in ``finalize``; the reference rounds against max(score max, sink). Below every row's score
    max the two coincide (a larger sink moves the reference's rounding point: no 1-ULP promise
    there), so each head's sink sits 1 below that head's smallest row max."""
    args, kwargs = tight_case("tnd-ragged", DTYPES[dt])
    _, smax, ssum = reference.flash_attention(*args, **kwargs)          # (N2, T1, G)
    valid_max = torch.where(ssum > 0, smax, torch.full_like(smax, float("inf")))
    kwargs["learnable_sink"] = valid_max.amin(1).reshape(-1) - 1.0      # (N1,) = (N2 * G)
    check_tight(args, kwargs, "tnd-ragged-sinks")


@pytest.mark.parametrize("dt", list(DTYPES))
def test_tight_tier_detects_missing_p_rounding(dt, monkeypatch):
    """With the emulator's rounding of P removed, every case leaves the 1-ULP tier."""
    without_p_rounding(monkeypatch)
    for name in CASES:
        args, kwargs = tight_case(name, DTYPES[dt])
        with pytest.raises(AssertionError, match="differ by more than 1 ULP"):
            check_tight(args, kwargs, name)
