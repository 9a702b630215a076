"""triton_launch.Launcher: the first launch of an alignment key goes through Triton's binding,
later ones straight to the compiled kernel, with the same results; the shortcut steps aside for
Triton's interpreter and for launch hooks; integer pointers must be the views' addresses.

CPU (interpreter) checks run everywhere; the shortcut itself needs a CUDA device."""
from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
triton = pytest.importorskip("triton", reason="Triton is not importable")
import triton.language as tl  # noqa: E402

from cann_attention.op_kernel.common import triton_launch  # noqa: E402
from cann_attention.op_kernel.common.triton_launch import Launcher, alignment  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@triton.jit
def _axpy(x, y, out, a, n, BLOCK: tl.constexpr, TWICE: tl.constexpr):
    o = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = o < n
    v = a * tl.load(x + o, mask=m) + tl.load(y + o, mask=m)
    if TWICE:
        v = v * 2
    tl.store(out + o, v, mask=m)


def _launcher(n, twice=False):
    return Launcher(_axpy, (triton.cdiv(n, 128),), BLOCK=128, TWICE=twice, num_warps=4)


def test_alignment_bits():
    base = torch.empty(64, dtype=torch.float32)
    assert alignment(base, base[1:], None, base[4:]) == 0b1001
    assert alignment() == 0


def test_results_and_tensor_form():
    """Through whichever path this machine takes: equal to torch; the tensor form is what an
    interpreted (or first) launch receives."""
    n = 1000
    x, y = torch.randn(n, device=DEVICE), torch.randn(n, device=DEVICE)
    for twice in (False, True):
        launch = _launcher(n, twice)
        for a in (0.5, -2.0):
            out = torch.empty(n, device=DEVICE)
            launch((x, y, out, a, n))
            want = (a * x + y) * (2 if twice else 1)
            torch.testing.assert_close(out, want)
            out2 = torch.empty(n, device=DEVICE)
            launch((x, y, out2.data_ptr(), a, n), lambda: (x, y, out2, a, n))
            torch.testing.assert_close(out2, want)


def test_interpreted_functions_keep_tritons_binding():
    if os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("Triton's interpreter is off on this machine (a CUDA device is present)")
    assert _launcher(10).tail is None


@pytest.mark.gpu
def test_fast_path_after_first_launch_per_key(monkeypatch):
    """Triton's binding runs once per (device, alignment); a misaligned view is a new key and
    still right; every call's result is exact."""
    if _launcher(8).tail is None or not triton_launch._enabled():
        pytest.skip("the shortcut is off with this Triton (module doc)")
    calls = []
    real = type(_axpy).run

    def counting(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)
    monkeypatch.setattr(type(_axpy), "run", counting)
    n = 4099
    launch = _launcher(n)
    base = torch.randn(n + 1, device=DEVICE)
    y = torch.randn(n, device=DEVICE)
    for i in range(3):
        out = torch.empty(n, device=DEVICE)
        launch((base[:n], y, out, float(i), n))
        torch.testing.assert_close(out, i * base[:n] + y)
    assert len(calls) == 1
    out = torch.empty(n, device=DEVICE)
    launch((base[1:], y, out, 3.0, n))                      # 4-byte offset: another key
    torch.testing.assert_close(out, 3.0 * base[1:] + y)
    assert len(calls) == 2
    launch((base[1:], y, out, 1.0, n))
    torch.testing.assert_close(out, base[1:] + y)
    assert len(calls) == 2


@pytest.mark.gpu
def test_launch_hooks_take_tritons_path(monkeypatch):
    if _launcher(8).tail is None:
        pytest.skip("the shortcut is off with this Triton (module doc)")
    from triton import knobs
    seen = []
    monkeypatch.setattr(knobs.runtime, "launch_enter_hook", lambda metadata: seen.append(1))
    n = 256
    launch = _launcher(n)
    x, y, out = (torch.randn(n, device=DEVICE) for _ in range(3))
    for _ in range(3):
        launch((x, y, out, 1.0, n))
    assert len(seen) == 3
    torch.testing.assert_close(out, x + y)


@pytest.mark.gpu
def test_integer_pointer_must_be_the_views_address():
    if _launcher(8).tail is None or not triton_launch._enabled():
        pytest.skip("the shortcut is off with this Triton (module doc)")
    n = 256
    x, y, out = (torch.randn(n, device=DEVICE) for _ in range(3))
    with pytest.raises(ValueError, match="integer pointer"):
        _launcher(n)((x, y, out.data_ptr() + 16, 1.0, n), lambda: (x, y, out, 1.0, n))
