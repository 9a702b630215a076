"""The ``ascendc`` back end of npu_sparse_flash_attention on CPU tensors: our AscendC kernel run
through the AscendC twin.

The kernel source (``ascendc/sparse_flash_attention_kernel.cpp``) is compiled unchanged with g++
against the twin (``common/ascendc_twin``, selected by its ``kernel_operator.h``) into a host
library on first use, and launched as a mixed kernel: per block one AIC (cube) thread and two
AIV (vector) threads, synchronising by cross-core flags as on the NPU. It reads the TilingData
bytes of the Ascend plan (``op_host/sparse_flash_attention/tiling.tiling_data``, the bytes the
C++ tiling core writes too) and a GM workspace of the size the kernel asks for. The twin enforces
the platform's buffer capacities, the copy alignment rules and the flag protocol; a failure is
raised with the twin's message.

Scope: the whole CPU-path contract (every layout pair with its length lists, sparse_block_size
1..128, sparse_mode 0 / 3, sinks, softmax_max / softmax_sum, N1 up to 128 in the plan's head
groups), on an Ascend A2/A3 plan. ``unsupported`` is the registry's rule; ``run`` refuses a plan
of another platform kind (``cann_attention.use(platform=...)`` naming a GPU or the CPU). ``auto``
never picks this back end on CPU: it runs only when asked for by name
(``cann_attention.use(backend="ascendc")``).

Work split: the plan's schedule (schedule.py device_schedule, common/schedule.py partition):
launched on the plan's num_cores blocks, every block computes the balanced cut of the task line
from the lengths and runs its pieces; the pieces of split tasks leave their (m, l, acc) in
workspace slots, merged after a SyncAll (see the kernel's header comment).

Results agree with the emulator up to fp32 summation order (the cube sums the 576-wide dot
product in its own order, the vector core sums each row of P in element order), so the
probabilities rounded to the input dtype may differ by one rounding step now and then.
"""
from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import torch

from cann_attention.op_host.common import native
from cann_attention.op_host.common.errors import CannAttentionError
from cann_attention.op_host.common.layouts import Layout
from cann_attention.op_host.common.platform import PlatformKind
from cann_attention.op_host.sparse_flash_attention import tiling as sfa_tiling
from cann_attention.op_host.sparse_flash_attention.params import OP, lse_shape

from ..common import twin_kernel

KERNEL_DIR = Path(__file__).with_name("ascendc")
HOST_DIR = Path(sfa_tiling.__file__).parent
DTYPE_CODES = {torch.float16: 0, torch.bfloat16: 1}
MAX_HEAD_GROUP = 64       # the plan's head groups: [hg, 512] floats in L0C
MESSAGE_BYTES = 4096


def unsupported(p) -> str | None:
    """Why the kernel's scope does not cover the call ``p``, or None (the scope is the op's
    whole CPU-path contract; the bound below is what the kernel's buffers assume and what the
    Ascend plan always gives, stated so that a future plan change is refused, not miscomputed)."""
    if p.sparse_block_size > 256:
        return (f"the AscendC kernel covers sparse_block_size <= 256, not "
                f"{p.sparse_block_size}")
    return None


no_compiler = native.no_compiler       # the registry's availability


@functools.lru_cache(maxsize=1)
def library() -> ctypes.CDLL:
    """The kernel and its twin launcher as a shared library (common/twin_kernel.py)."""
    lib = twin_kernel.build("sparse_flash_attention_ascendc", KERNEL_DIR,
                            "sparse_flash_attention_kernel.cpp", HOST_DIR)
    lib.sfa_ascendc_workspace_bytes.argtypes = [ctypes.c_char_p, ctypes.c_uint32]
    lib.sfa_ascendc_workspace_bytes.restype = ctypes.c_uint64
    lib.sfa_ascendc_run.argtypes = [ctypes.c_int32, ctypes.c_uint32,
                                    *([ctypes.c_void_p, ctypes.c_uint64] * 15), ctypes.c_int32,
                                    ctypes.c_void_p, ctypes.c_uint64,
                                    ctypes.c_char_p, ctypes.c_size_t]
    lib.sfa_ascendc_run.restype = ctypes.c_int
    return lib


def check_plan(plan) -> None:
    """The kernel runs Ascend plans only (its buffers follow the Ascend tile rules)."""
    if plan.platform.kind is not PlatformKind.ASCEND or plan.head_group > MAX_HEAD_GROUP:
        raise CannAttentionError(
            OP, "platform", f"an Ascend A2/A3 plan (head_group <= {MAX_HEAD_GROUP}) for the "
            f"ascendc back end, got a plan for {plan.platform.name} (head_group "
            f"{plan.head_group})")


def num_blocks(plan) -> int:
    """Blocks of the launch: the plan's cores (the kernel cuts the plan's task line over
    GetBlockNum() cores, so that the cut is the plan's), none for a call without tasks."""
    return plan.num_cores if plan.num_tasks > 0 else 0


def record_shape(plan) -> tuple[int, int]:
    """The int32 record the kernel fills under ``run(..., record=...)``: per core (3 a block:
    AIC, AIV 0, AIV 1) the number of pieces it ran, then (task, step begin, step end, slot or
    -1) per piece."""
    blocks = num_blocks(plan)
    return 3 * blocks, 1 + 4 * (plan.num_tasks + blocks - 1)


def run(p, plan, t, record: torch.Tensor | None = None, drop_slot: int = -1):
    """Launch the kernel on the plan's platform (the plan's num_cores blocks: the kernel runs
    the plan's schedule); returns (attention_out, softmax_max, softmax_sum) as the other back
    ends do. ``record`` (tests): an int32 tensor of ``record_shape`` the cores fill with their
    pieces; with it, ``drop_slot`` >= 0 makes the merge leave that slot out (a fault)."""
    check_plan(plan)
    out = torch.full(t.query.shape, float("nan"), dtype=t.query.dtype)   # every row is written
    shape = lse_shape(t.query.shape, p.layout_query, p.return_softmax_lse)
    smax = torch.full(shape, float("nan"), dtype=torch.float32)
    ssum = torch.full(shape, float("nan"), dtype=torch.float32)
    nblocks = num_blocks(plan)
    if nblocks == 0:
        return out, smax, ssum
    lib = library()
    data = sfa_tiling.tiling_data(plan, p)
    tiling_buf = ctypes.create_string_buffer(data, len(data))
    # GM workspace as a device gives it: not zeroed (here: poisoned, so a read before a write
    # shows in the results)
    workspace = torch.full((lib.sfa_ascendc_workspace_bytes(data, nblocks),), 0xFF,
                           dtype=torch.uint8)
    paged = p.kv_layout is Layout.PA_BSND
    lse = p.return_softmax_lse
    def gm(x):          # (address, bytes) of a GM buffer; (None, 0): absent
        return [None, 0] if x is None else [x.data_ptr(), x.numel() * x.element_size()]
    # softmax_max / softmax_sum as CANN passes them: addresses even where the op returns no
    # statistics (0-byte buffers here, so a write the TilingData forbids is an error)
    no_lse = torch.empty(2, dtype=torch.float32)
    stats = (gm(smax) + gm(ssum) if lse
             else [no_lse.data_ptr(), 0, no_lse.data_ptr() + 4, 0])
    args = []
    for x in (t.query.contiguous(), t.key.contiguous(), t.value, t.sparse_indices.contiguous(),
              _contiguous(t.block_table) if paged else None,
              _contiguous(t.actual_seq_lengths_query), _contiguous(t.actual_seq_lengths_kv),
              t.query_rope.contiguous(), t.key_rope.contiguous(),
              None if t.sinks is None else t.sinks.float().contiguous(), out):
        args += gm(x)
    args += stats + gm(workspace)
    if record is not None:
        assert record.dtype == torch.int32 and tuple(record.shape) == record_shape(plan)
        assert record.is_contiguous()
    else:
        assert drop_slot < 0, "drop_slot needs a record (the twin-only RunRecorded)"
    args += gm(record) + [drop_slot]
    message = ctypes.create_string_buffer(MESSAGE_BYTES)
    rc = lib.sfa_ascendc_run(DTYPE_CODES[t.query.dtype], nblocks, *args,
                             ctypes.addressof(tiling_buf), len(data), message, MESSAGE_BYTES)
    if rc != 0:
        raise RuntimeError(f"{OP} (ascendc on the AscendC twin): "
                           f"{message.value.decode(errors='replace')}")
    return out, smax, ssum


def _contiguous(x):
    return None if x is None else x.contiguous()
