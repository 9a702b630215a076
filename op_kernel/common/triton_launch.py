"""Launching a Triton kernel of a fixed plan without Triton's per-call binding.

``kernel[grid](*args, **constexprs)`` binds every argument, computes its specialisation key and
looks the compiled kernel up on each call: tens of microseconds for kernels of 30-50 arguments,
more than a decode step's whole host budget. A back end that launches the same kernel with the
same grid, constexprs and options on every call of a plan does that work once: ``Launcher``
launches through ``jit_fn[grid]`` the first time, keeps the compiled kernel it returns, and
afterwards calls the compiled kernel's launcher directly (what Triton's own ``run`` does after
its lookup, and what Inductor's generated launchers call).

The contract that keeps the shortcut exact: the compiled kernel is specialised on the pointer
alignment of tensor arguments (16 bytes or not), on integer values (1, multiple of 16) and on
dtypes. ``Launcher`` keys its compiled kernels by the current device and the 16-byte alignment of
every tensor argument; dtypes and integer arguments must be the same on every call of one
``Launcher`` (a back end makes one per plan, whose shapes and dtypes are fixed). A pointer
argument may be passed as an integer address (with ``tensor_args`` giving its tensor form for
the first launch) when it points into a region with the alignment the tensor had on the first
call, so per-call views of a workspace need not be built.

The shortcut is off (every launch goes through ``jit_fn[grid]``) where it cannot be exact: a
Triton older than 3.3 (another launcher signature), launch hooks set (profilers read them on
each launch), or ``CANN_ATTENTION_TRITON_FAST_LAUNCH=0``.
"""
from __future__ import annotations

import inspect

import torch


def _fast_launch_supported() -> bool:
    from cann_attention.config import triton_fast_launch
    if not triton_fast_launch():
        return False
    from cann_attention.op_host.common.platform import triton_version
    version = triton_version()
    if version is None or version < (3, 3):
        return False
    import triton
    return hasattr(triton, "knobs")      # 3.3+: where the launch hooks live


class Launcher:
    """``fn`` launched on ``grid`` with fixed ``constexprs`` and options (num_warps, ...)."""

    _supported = None

    def __init__(self, fn, grid, **kwargs):
        self.fn, self.grid, self.kwargs = fn, tuple(grid) + (1,) * (3 - len(grid)), kwargs
        self.tail = None       # the constexprs' values, appended on the fast path; None: off
        self._compiled: dict = {}
        from triton.runtime.jit import JITFunction
        if not isinstance(fn, JITFunction):   # e.g. Triton's interpreter: always fn[grid]
            return
        params = fn.params
        flags = [p.is_constexpr for p in params]
        first = flags.index(True) if True in flags else len(flags)
        if any(flags[:first]) or not all(flags[first:]):
            return                            # constexprs not trailing: keep Triton's binding
        tail = tuple(kwargs.get(p.name, p.default) for p in params[first:])
        if any(v is inspect.Parameter.empty for v in tail):
            return                            # a constexpr without value: Triton will say so
        self.tail, self.n_runtime = tail, first

    def __call__(self, args: tuple, tensor_args=None, aligned=None) -> None:
        """Launch with runtime arguments ``args``. Pointers into a call's workspace may be
        integer addresses in ``args`` when ``tensor_args`` is given: a function returning the
        same arguments with those pointers as tensors (views), called only when the kernel
        must go through ``jit_fn[grid]`` (first call of an alignment key, shortcut off).
        ``aligned``: ``alignment(...)`` of every tensor in ``args``, when the caller has it
        (one call's launches share it); computed here otherwise."""
        if self.tail is None or not _enabled():
            self.fn[self.grid](*(args if tensor_args is None else tensor_args()), **self.kwargs)
            return
        if aligned is None:
            aligned = alignment(*[a for a in args if type(a) is torch.Tensor])
        device = torch.cuda.current_device()
        key = (device, aligned)
        kernel = self._compiled.get(key)
        if kernel is None:
            self._compiled[key] = self._first(args, tensor_args)
            return
        g = self.grid
        try:
            kernel.run(g[0], g[1], g[2], torch._C._cuda_getCurrentRawStream(device),
                       kernel.function, kernel.packed_metadata, None, None, None, *args,
                       *self.tail)
        except TypeError:     # refused before launching: bad arguments, or another signature
            self.fn[self.grid](*(args if tensor_args is None else tensor_args()),
                               **self.kwargs)   # raises for bad arguments; else the signature
            Launcher._supported = False         # differs: Triton's binding from now on

    def _first(self, args, tensor_args):
        """Compile (or find) and launch through Triton; the compiled kernel for the key."""
        if len(args) != self.n_runtime:
            raise TypeError(f"{self.fn.__name__}: {len(args)} runtime arguments, expected "
                            f"{self.n_runtime}")
        if tensor_args is not None:
            full = tensor_args()
            for a, t in zip(args, full):     # the addresses are the views' (module doc)
                if type(a) is int and isinstance(t, torch.Tensor) and a != t.data_ptr():
                    raise ValueError(f"{self.fn.__name__}: an integer pointer differs from "
                                     f"its tensor form")
            args = full
        kernel = self.fn[self.grid](*args, **self.kwargs)
        if kernel is None or not hasattr(kernel, "packed_metadata"):
            raise RuntimeError(f"{self.fn.__name__}: Triton returned no compiled kernel")
        return kernel


def alignment(*tensors) -> int:
    """Which of ``tensors`` (None allowed) start 16-byte aligned, as bits: what a compiled
    Triton kernel is specialised on besides dtypes and integer values."""
    bits = 0
    for t in tensors:
        bits = bits + bits + (t is not None and t.data_ptr() & 15 == 0)
    return bits


_runtime = None     # triton.knobs.runtime, imported on first use


def _enabled() -> bool:
    """Whether the shortcut applies now (module doc); the launch hooks are read per call."""
    global _runtime
    if Launcher._supported is None:
        Launcher._supported = _fast_launch_supported()
    if not Launcher._supported:
        return False
    if _runtime is None:
        from triton import knobs
        _runtime = knobs.runtime
    return not (_hook_set(_runtime.launch_enter_hook) or _hook_set(_runtime.launch_exit_hook))


def _hook_set(hook) -> bool:
    """A launch hook: None or a callable, or (Triton 3.6+) a HookChain, set while it has calls."""
    return hook is not None and bool(getattr(hook, "calls", True))
