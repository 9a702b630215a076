"""Platform descriptors: what a tiling plan may assume about the chip it plans for.

A plan is a pure function of the op's parameters and a ``PlatformInfo``. The numbers below are
the public figures of each chip (DESIGN.md, "Host plans, device runs"):

- Ascend 910B / A3: 24 cube cores, each paired with 2 vector cores; UB 192 KiB per vector core,
  L1 512 KiB, L0A/L0B 64 KiB, L0C 128 KiB per cube core.
- H100 / H200: 132 SMs, 227 KiB of shared memory per block, 256 KiB register file per SM.
- CPU: a virtual platform for the emulator. Its "cores" are lanes that the emulator processes
  together in one vectorised PyTorch step, and its one buffer is a per-lane working-set budget
  (2 MiB, about a core's L2). It exists so that CPU plans are planned like device plans.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

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

    def buffer(self, name: str) -> int:
        for key, size in self.buffers:
            if key == name:
                return size
        raise KeyError(f"platform {self.name} has no buffer {name!r}")

    def fits(self, usage: dict[str, int]) -> bool:
        return all(nbytes <= self.buffer(name) for name, nbytes in usage.items())

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
H100 = PlatformInfo("H100", PlatformKind.GPU, 132, _HOPPER_BUFFERS)
H200 = PlatformInfo("H200", PlatformKind.GPU, 132, _HOPPER_BUFFERS)
CPU = PlatformInfo("CPU", PlatformKind.CPU, 64, (("CACHE", 2 * MiB),))

KNOWN_PLATFORMS = {p.name: p for p in (ASCEND_910B, ASCEND_A3, H100, H200, CPU)}


def platform_for_device(device) -> PlatformInfo:
    """The platform whose plan a call on ``device`` executes.

    CPU tensors run the CPU plan. A CUDA device is described from its properties (SM count,
    shared memory per block), so an H100 or H200 gets exactly the table's numbers. An NPU
    device gets the A3 descriptor (the A2 and A3 plans are the same numbers).
    """
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        name = "H200" if "H200" in props.name else "H100" if "H100" in props.name else props.name
        smem = getattr(props, "shared_memory_per_block_optin", 227 * KiB)
        regs = getattr(props, "regs_per_multiprocessor", 65536) * 4
        return PlatformInfo(name, PlatformKind.GPU, props.multi_processor_count,
                            (("SMEM", smem), ("REGISTERS", regs)))
    if device.type == "npu":
        return ASCEND_A3
    return CPU
