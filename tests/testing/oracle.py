"""The dtype-aware comparison every op's tests use.

A kernel output passes when its max error against the fp32 reference is at most twice the error
that the same computation done in the input dtype makes, plus one rounding step of the output
dtype at the reference's magnitude; NaN and inf must sit at exactly the same positions.

The tight tier (``assert_within_ulp``) is for the places where the semantics promise agreement
to the last bit but for summation order: an emulator against the reference run with the same
roundings (P rounded to the input dtype before P.V), within ``ulps`` units in the last place of
the output dtype, measured at the reference value.
"""
from __future__ import annotations

import contextlib

import torch


def _nonfinite_positions_match(actual, expected, what):
    for name, test in (("NaN", torch.isnan), ("+inf", torch.isposinf), ("-inf", torch.isneginf)):
        a, e = test(actual), test(expected)
        if not torch.equal(a, e):
            raise AssertionError(f"{what}: {name} positions differ "
                                 f"({int((a != e).sum())} mismatches)")


def max_error(actual, expected) -> float:
    actual, expected = actual.double(), expected.double()
    finite = torch.isfinite(expected)
    if not finite.any():
        return 0.0
    return float((actual[finite] - expected[finite]).abs().max())


def assert_close(actual: torch.Tensor, expected: torch.Tensor, baseline: torch.Tensor,
                 what: str = "output") -> None:
    """``expected``: fp32 reference; ``baseline``: the same computation in the input dtype."""
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    actual, expected, baseline = (x.detach().cpu() for x in (actual, expected, baseline))
    _nonfinite_positions_match(actual, expected, what)
    err = max_error(actual, expected)
    base = max_error(baseline, expected)
    finite = torch.isfinite(expected)
    scale = float(expected[finite].abs().max()) if finite.any() else 0.0
    eps = torch.finfo(actual.dtype).eps if actual.is_floating_point() else 0.0
    bound = 2.0 * base + eps * max(scale, 1e-30)
    if err > bound:
        raise AssertionError(f"{what}: max error {err:.3e} exceeds bound {bound:.3e} "
                             f"(2 x baseline error {base:.3e} + rounding {eps * scale:.3e})")


def assert_stats_close(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-4,
                       what: str = "statistics") -> None:
    """fp32 softmax statistics (max, sum): relative tolerance, exact special values."""
    actual, expected = actual.detach().cpu(), expected.detach().cpu()
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    _nonfinite_positions_match(actual, expected, what)
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=1e-5, msg=lambda m: f"{what}: {m}")


def ulp_of(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """fp64 spacing of ``dtype`` at the magnitude of ``x``: the distance from |x| rounded down to
    a power of two to the next value of ``dtype`` (2^floor(log2|x|) * eps); the subnormal
    spacing (tiny * eps) at zero and below the smallest normal number."""
    fi = torch.finfo(dtype)
    x = x.double().abs()
    _, e = torch.frexp(x)                                    # x = m * 2^e, m in [0.5, 1)
    spacing = torch.ldexp(torch.full_like(x, fi.eps), (e - 1).to(torch.int64).double())
    return torch.where(x >= fi.tiny, spacing, torch.full_like(x, fi.tiny * fi.eps))


def ulp_distance(got: torch.Tensor, want: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """|got - want| in units of ``dtype``'s spacing at ``want`` (fp64); 0 where want is not
    finite (``assert_within_ulp`` requires those positions to match exactly)."""
    got, want = got.detach().cpu().double(), want.detach().cpu().double()
    finite = torch.isfinite(want)
    diff = torch.where(finite, (got - want).abs(), torch.zeros_like(got))
    return diff / ulp_of(torch.where(finite, want, torch.zeros_like(want)), dtype)


def assert_within_ulp(got: torch.Tensor, want: torch.Tensor, dtype: torch.dtype, ulps: float = 1,
                      what: str = "output") -> float:
    """Tight tier: every finite element of ``got`` within ``ulps`` spacings of ``dtype`` of the
    reference ``want`` (measured at ``want``); NaN / +inf / -inf at exactly the same positions.
    Returns the largest distance in ULPs (for reports)."""
    assert got.shape == want.shape, f"{what}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    got, want = got.detach().cpu(), want.detach().cpu()
    _nonfinite_positions_match(got, want, what)
    dist = ulp_distance(got, want, dtype)
    worst = float(dist.max()) if dist.numel() else 0.0
    if worst > ulps:
        bad = dist > ulps
        at = tuple(int(i) for i in torch.nonzero(dist == dist.max())[0])
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {dist.numel()} elements differ by more than {ulps} "
            f"ULP of {dtype}; worst {worst:.2f} ULP at {at}: got {float(got[at]):.8g}, "
            f"want {float(want[at]):.8g}")
    return worst


def on_grid(x: torch.Tensor, step: float = 0.25, bound: float = 7.75) -> torch.Tensor:
    """``x`` rounded to multiples of ``step`` (a power of two) and clamped to [-bound, bound],
    same dtype; NaN kept.

    Inputs for the tight tier. With q and k on a grid of 1/4 (|x| < 8) and a power-of-two
    scale, every product is a multiple of 2^-4 below 2^6 in magnitude, so an fp32 score q.k of
    up to 2^14 terms is exact *whatever the summation order*: the emulator and the reference
    then see bit-identical scores, row maxima and exp(s - m). On unrounded inputs their scores
    differ in the last fp32 bits (they sum q.k in different orders), which now and then moves a
    probability across a rounding midpoint of the input dtype; that one flipped P alone costs
    tens of ULPs on outputs near zero. What is left to differ on the grid is the order of the
    fp32 sums l and P.V, which the 1-ULP bound absorbs.
    """
    if not x.is_floating_point():
        return x
    return (x.float() / step).round().mul(step).clamp(-bound, bound).to(x.dtype)


@contextlib.contextmanager
def one_rounding_point():
    """Context for the tight tier: fails unless every probability the emulator rounded was
    rounded against its row's final max, as the reference's ``round_p`` does.

    The emulators round P = exp(s - m) with m the running max of the keys seen so far
    (``online_softmax.update``); the rounded values are rescaled by exp(m - m') when a later
    step raises the max to m' (update), when split-K pieces merge (``combine``) and when a sink
    above m joins (``finalize``). Rounding and rescaling do not commute, so any such rescale of
    accumulated P moves the emulator off the reference by more than summation order (tens to
    thousands of ULPs on outputs near zero). This watches the three functions and counts the
    rows that were rescaled with P accumulated; it also fails if nothing went through
    ``update`` (an emulator that bypasses it would make the check vacuous).
    """
    from cann_attention.op_kernel.common import online_softmax as osm
    update, combine, finalize = osm.update, osm.combine, osm.finalize
    seen = {"updates": 0, "update": 0, "combine": 0, "finalize": 0}

    def watched_update(m, l, acc, scores, values, p_dtype):
        out = update(m, l, acc, scores, values, p_dtype)
        seen["updates"] += 1
        seen["update"] += int(((out[0] != m) & (l > 0)).sum())
        return out

    def watched_combine(m, l, acc, group, num_groups):
        out = combine(m, l, acc, group, num_groups)
        seen["combine"] += int(((m != out[0][group]) & (l > 0)).sum())
        return out

    def watched_finalize(m, l, acc, sinks=None):
        if sinks is not None:
            seen["finalize"] += int(((sinks > m) & (l > 0)).sum())
        return finalize(m, l, acc, sinks)

    osm.update, osm.combine, osm.finalize = watched_update, watched_combine, watched_finalize
    try:
        yield seen
    finally:
        osm.update, osm.combine, osm.finalize = update, combine, finalize
    assert seen["updates"] > 0, "the emulator never called online_softmax.update"
    moved = {k: seen[k] for k in ("update", "combine", "finalize") if seen[k]}
    assert not moved, (f"rows whose rounded P were rescaled to a new max ({moved}): multi-step "
                       f"or split-K plan, or a sink above the max: outside the tight tier")


def without_p_rounding(monkeypatch) -> None:
    """Make the emulators skip rounding P before P.V (to show a tight test can fail)."""
    from cann_attention.op_kernel.common import online_softmax
    update = online_softmax.update

    def update_without_rounding(m, l, acc, scores, values, p_dtype):
        return update(m, l, acc, scores, values, None)

    monkeypatch.setattr(online_softmax, "update", update_without_rounding)
