"""Platform descriptors: what a tiling plan may assume about the chip it plans for.

A plan is a pure function of the op's parameters and a ``PlatformInfo``. The numbers below are
the public figures of each chip:

- Ascend 910B / A3: 24 cube cores, each paired with 2 vector cores; UB 192 KiB per vector core,
  L1 512 KiB, L0A/L0B 64 KiB, L0C 128 KiB per cube core.
- H100 / H200: 132 SMs, 227 KiB of shared memory per block, 256 KiB register file per SM.
- CPU: a virtual platform for the emulator. Its "cores" are lanes that the emulator processes
  together in one vectorised PyTorch step, and its one buffer is a per-lane working-set budget
  (2 MiB, about a core's L2). It exists so that CPU plans are planned like device plans.

Besides sizes, a platform lists ``features``: what the software stack on it can build. A GPU plan
chooses its kernel variant (its tiling key) from them: ``"triton"`` (Triton can compile for the
device) and ``"gluon"`` (a Triton whose Gluon dialect our Hopper kernels are written for, on an
sm_90 device). ``platform_for_device`` reads them off the device and the installed Triton once
per device.
"""
from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, replace

KiB = 1024
MiB = 1024 * KiB


class PlatformKind(enum.Enum):
    ASCEND = "ascend"   # cube + vector cores (A2 / A3 class)
    GPU = "gpu"         # streaming multiprocessors with shared memory
    CPU = "cpu"         # the emulator's virtual lanes


@dataclass(frozen=True)
class PlatformInfo:
    name: str
    kind: PlatformKind
    num_cores: int                 # cube cores (Ascend), SMs (GPU), lanes (CPU)
    buffers: tuple[tuple[str, int], ...]   # (buffer name, bytes) available to one core
    vector_cores_per_core: int = 0  # Ascend: vector cores paired with each cube core
    features: frozenset = frozenset()      # what can be built for it (module doc)

    def buffer(self, name: str) -> int:
        for key, size in self.buffers:
            if key == name:
                return size
        raise KeyError(f"platform {self.name} has no buffer {name!r}")

    def fits(self, usage: dict[str, int]) -> bool:
        return all(nbytes <= self.buffer(name) for name, nbytes in usage.items())

    def without(self, *features: str) -> "PlatformInfo":
        """The same chip with ``features`` missing (e.g. a Triton without Gluon)."""
        return replace(self, features=self.features - set(features))

    def assert_fits(self, usage: dict[str, int], what: str) -> None:
        """Used by emulators: every tile actually processed must fit the declared buffers."""
        for name, nbytes in usage.items():
            cap = self.buffer(name)
            if nbytes > cap:
                raise AssertionError(
                    f"{what}: tile needs {nbytes} B of {name} but {self.name} has {cap} B")


_ASCEND_BUFFERS = (("UB", 192 * KiB), ("L1", 512 * KiB), ("L0A", 64 * KiB),
                   ("L0B", 64 * KiB), ("L0C", 128 * KiB))
_HOPPER_BUFFERS = (("SMEM", 227 * KiB), ("REGISTERS", 256 * KiB))

ASCEND_910B = PlatformInfo("Ascend910B", PlatformKind.ASCEND, 24, _ASCEND_BUFFERS, 2)
ASCEND_A3 = PlatformInfo("Ascend910_93", PlatformKind.ASCEND, 24, _ASCEND_BUFFERS, 2)
_HOPPER_FEATURES = frozenset({"triton", "gluon"})
H100 = PlatformInfo("H100", PlatformKind.GPU, 132, _HOPPER_BUFFERS, features=_HOPPER_FEATURES)
H200 = PlatformInfo("H200", PlatformKind.GPU, 132, _HOPPER_BUFFERS, features=_HOPPER_FEATURES)
CPU = PlatformInfo("CPU", PlatformKind.CPU, 64, (("CACHE", 2 * MiB),))

KNOWN_PLATFORMS = {p.name: p for p in (ASCEND_910B, ASCEND_A3, H100, H200, CPU)}


MIN_GLUON_TRITON = (3, 6)   # Gluon's API moves between releases; our kernels need 3.6+


@functools.lru_cache(maxsize=1)
def triton_version() -> tuple[int, int] | None:
    """(major, minor) of the installed Triton, read from its metadata (not imported), or None."""
    from importlib import metadata
    try:
        major, minor = metadata.version("triton").split(".")[:2]
    except metadata.PackageNotFoundError:
        return None
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def gpu_features(capability: tuple[int, int]) -> frozenset:
    """Features of a CUDA device of ``capability`` with the installed Triton."""
    version = triton_version()
    if version is None:
        return frozenset()
    features = {"triton"}
    if capability[0] == 9 and version >= MIN_GLUON_TRITON:
        features.add("gluon")
    return frozenset(features)


def platform_for_device(device) -> PlatformInfo:
    """The platform whose plan a call on ``device`` executes (looked up once per device).

    CPU tensors run the CPU plan. A CUDA device is described from its properties (SM count,
    shared memory per block, compute capability) and the installed Triton, so an H100 or H200
    gets exactly the table's numbers. An NPU device gets the A3 descriptor (the A2 and A3 plans
    are the same numbers).
    """
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return _cuda_platform(device.index if device.index is not None
                              else torch.cuda.current_device())
    if device.type == "npu":
        return ASCEND_A3
    return CPU


@functools.lru_cache(maxsize=16)
def _cuda_platform(index: int) -> PlatformInfo:
    import torch

    props = torch.cuda.get_device_properties(index)
    name = "H200" if "H200" in props.name else "H100" if "H100" in props.name else props.name
    smem = getattr(props, "shared_memory_per_block_optin", 227 * KiB)
    regs = getattr(props, "regs_per_multiprocessor", 65536) * 4
    return PlatformInfo(name, PlatformKind.GPU, props.multi_processor_count,
                        (("SMEM", smem), ("REGISTERS", regs)),
                        features=gpu_features((props.major, props.minor)))
