"""The dtype-aware comparison every op's tests use (DESIGN.md, Testing).

A kernel output passes when its max error against the fp32 reference is at most twice the error
that the same computation done in the input dtype makes, plus one rounding step of the output
dtype at the reference's magnitude; NaN and inf must sit at exactly the same positions.
"""
from __future__ import annotations

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
