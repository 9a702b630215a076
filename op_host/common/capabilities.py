"""Back-end registries: what each back end of an op runs, and how to reach it.

Each op's ``capabilities.py`` lists one ``Backend`` per back end in ``BACKENDS``. Dispatch, error
messages, test parametrisation and the support matrices of README.md and docs/<op>.md read the
same table, so they cannot disagree. Adding a back end to an op is one module in
``op_kernel/<op>/`` with a ``run(params, plan, tensors)`` function and one entry here.

An entry says:
- ``verify``: ``None`` when the back end can run the call, else the reason it cannot (its
  software is missing, the device type, the dtype, or a rule of its own on the params);
- ``priority``: ``auto`` dispatch tries the back ends from the highest priority down;
- ``plan``: the op_host function that plans the kernel this back end runs on a platform (a back
  end owns its plan); ``platform_for``: which platform (the device's, or for the emulator the
  Ascend A3 whose kernel it stands in for, unless config.platform names another);
- ``runner``: ``"module:function"`` in ``cann_attention.op_kernel``, imported on first use, so
  importing the package never imports Triton or a device library.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

_PACKAGE = "cann_attention.op_kernel."


@dataclass(frozen=True)
class Backend:
    name: str                                  # "emulate", "triton", "ascendc"
    priority: int
    device_types: tuple[str, ...]              # torch device types it runs on
    dtypes: tuple                              # input dtypes
    status: str                                # one line for the support matrices
    runner: str | None = None                  # "<op>.<module>:<function>" under op_kernel
    plan: Callable | None = None               # (params, platform) -> plan
    auto: bool = True                          # False: runs only when asked for by name
    named_only_on: tuple[str, ...] = ()        # device types where it runs only when named
    emulates: bool = False                     # runs any platform's plan from host values
    platform: object = None                    # the platform it plans for (None: the device's)
    available: Callable[[], str | None] = field(default=lambda: None)
    # extra per-call rule: params -> reason it is unsupported, or None
    rule: Callable[[object], str | None] = field(default=lambda params: None)
    # device type -> the entry (same name) that serves it instead, e.g. the AscendC kernel as
    # our op package on NPU tensors next to the same kernel on the AscendC twin on CPU tensors
    on_device: tuple[tuple[str, "Backend"], ...] = ()

    def for_device(self, device_type: str) -> "Backend":
        """The entry that runs a call on ``device_type`` tensors: its ``on_device`` one, or
        itself."""
        return dict(self.on_device).get(device_type, self)

    def verify(self, params, device_type: str, dtype) -> str | None:
        """Why this back end cannot run the call, or None when it can."""
        variant = self.for_device(device_type)
        if variant is not self:
            return variant.verify(params, device_type, dtype)
        reason = self.available()
        if reason:
            return reason
        if device_type not in self.device_types:
            return f"runs on {'/'.join(self.device_types)} tensors, not {device_type}"
        if dtype not in self.dtypes:
            return f"supports dtypes {[str(d) for d in self.dtypes]}, not {dtype}"
        return self.rule(params)

    def platform_for(self, device, configured=None):
        """The platform whose plan it runs: an emulating back end runs ``configured``
        (config.platform) when set, else its own platform; a device back end plans for the
        device it runs on."""
        from .platform import platform_for_device
        if self.emulates:
            return configured if configured is not None else self.platform
        return platform_for_device(device)

    def load(self) -> Callable:
        """The back end's ``run(params, plan, tensors)`` (imported here, on first use)."""
        module, function = self.runner.split(":")
        return getattr(importlib.import_module(_PACKAGE + module), function)


def by_priority(*backends: Backend) -> tuple[Backend, ...]:
    """A registry: the entries from the highest priority down (names must be unique)."""
    names = [b.name for b in backends]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate back-end names in {names}")
    return tuple(sorted(backends, key=lambda b: -b.priority))


def not_built(what: str) -> Callable[[], str]:
    return lambda: f"not available: {what}"


def triton_importable() -> str | None:
    """None when Triton is installed (GPU, or CPU with TRITON_INTERPRET=1), else why not."""
    from .platform import triton_version
    return None if triton_version() else "not available: triton is not installed"


def triton_not_built(op: str) -> Backend:
    """The Triton entry of an op that has no Triton kernel yet."""
    import torch
    return Backend(
        name="triton", priority=20, device_types=("cuda",),
        dtypes=(torch.float16, torch.bfloat16), status="planned: no Triton kernel yet",
        available=not_built(f"no Triton kernel for {op} yet"))


def torch_npu_builtin(op: str, dtypes: tuple, priority: int = 25) -> Backend:
    """torch_npu's own kernel of ``op`` for NPU tensors, while our op package is not installed:
    the call's arguments, by name, to torch_npu's ``torch.ops.npu.<op>`` (same schema as our
    torch_npu face). Its plan is just the op it calls."""
    return Backend(
        name="torch_npu", priority=priority, device_types=("npu",), dtypes=dtypes,
        status=f"torch_npu's built-in {op} (native NPU speed) while our op package is not "
               "installed; never run here (no NPU)",
        runner="common.torch_npu_builtin:run", plan=lambda params, platform: op,
        available=lambda: torch_npu_op_missing(op))


def torch_npu_op_missing(op: str) -> str | None:
    """None when torch_npu is loaded and has its own NPU kernel of ``op``, else why not."""
    import sys

    import torch
    if "torch_npu" not in sys.modules:
        return "not available: torch_npu is not loaded"
    try:
        has = torch._C._dispatch_has_kernel_for_dispatch_key(f"npu::{op}", "PrivateUse1")
    except RuntimeError:
        has = False
    return None if has else f"not available: this torch_npu has no NPU kernel of {op}"


def ascendc_op_package(op: str, dtypes: tuple, status: str,
                       rule: Callable[[object], str | None] = lambda params: None) -> Backend:
    """The ``ascendc`` entry's NPU side (an ``on_device`` entry): ``op``'s aclnn entry in our
    CANN op package, called through the C++ NPU binding (op_kernel/common/ascendc_npu.py:
    available only where torch_npu is loaded, the op package is the one torch_npu finds first
    and the binding is built). Its plan is the op it calls (the tiling is the package's)."""
    return Backend(
        name="ascendc", priority=30, device_types=("npu",), dtypes=dtypes, status=status,
        runner="common.ascendc_npu:run", plan=lambda params, platform: op,
        available=lambda: _ascendc_npu().unavailable(op), rule=rule)


def _ascendc_npu():
    """op_kernel/common/ascendc_npu.py, imported on first use (it imports nothing heavy)."""
    from cann_attention.op_kernel.common import ascendc_npu
    return ascendc_npu


def ascendc_not_built() -> Backend:
    """The AscendC entry every op lists until its kernel is built with the CANN toolchain."""
    import torch
    return Backend(
        name="ascendc", priority=30, device_types=("npu",),
        dtypes=(torch.float16, torch.bfloat16), status="not built: needs the CANN toolchain",
        available=not_built("the AscendC kernel is not built in this package"))
