"""The ``ascendc`` back end of npu_lightning_indexer on CPU tensors: our AscendC kernel run
through the AscendC twin.

The kernel source (``ascendc/lightning_indexer_kernel.cpp``) is compiled unchanged with g++
against the twin (``common/ascendc_twin``, selected by its ``kernel_operator.h``) into a host
library on first use, and launched as a mixed kernel: per block one AIC (cube) thread and two
AIV (vector) threads, synchronising by the cross-core flags and SyncAll as on the NPU, on the
plan's num_cores blocks: every core computes the plan's schedule (tiling.schedule) from the
lengths and runs its pieces; split rows are merged after a SyncAll. It reads the
TilingData bytes of the plan (``op_host/lightning_indexer/tiling.tiling_data``, the layout the C++
tiling core writes too) and a GM workspace of the size the kernel asks for. The twin enforces the
platform's buffer capacities and the copy alignment rules, and reports a flag waited on but never
set; any such failure is raised with the twin's message.

The kernel covers its scope (its header comment: every layout with its length lists, the
paged key included; weights of the query dtype or float32; N1 <= 64; every sparse_count the op
accepts, 1..2048 and 3072..8192);
``unsupported`` is the registry's rule, so a call outside it is refused with the reason, and
``auto`` never picks this back end on CPU (it runs only when asked for by name: ``cann_attention.use(backend="ascendc")``).

Results: ``sparse_indices`` are the golden's where scores are distinct; the kernel sums the head
scores in its own order (Mmad over D, then the heads left to right), so two keys whose scores lie
within a few ulp of each other may come in the other order, and ``sparse_values`` (the scores
rounded to the query dtype) may differ from the golden's by that rounding.
"""
from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import torch

from cann_attention.op_host.common import native
from cann_attention.op_host.common.layouts import Layout
from cann_attention.op_host.lightning_indexer import tiling as li_tiling
from cann_attention.op_host.lightning_indexer.params import output_shapes

from ..common import twin_kernel

KERNEL_DIR = Path(__file__).with_name("ascendc")
HOST_DIR = Path(li_tiling.__file__).parent
DTYPE_CODES = {torch.float16: 0, torch.bfloat16: 1}
MAX_HEADS = 64            # all heads in one Mmad: N1 x block_s2 floats in L0C
MESSAGE_BYTES = 4096


def unsupported(p) -> str | None:
    """Why the kernel's scope does not cover the call ``p``, or None."""
    if p.n1 > MAX_HEADS:      # the op refuses these too today; the kernel's bound stays stated
        return f"the AscendC kernel covers N1 <= {MAX_HEADS}, not {p.n1}"
    return None


no_compiler = native.no_compiler       # the registry's availability


@functools.lru_cache(maxsize=1)
def library() -> ctypes.CDLL:
    """The kernel and its twin launcher as a shared library (common/twin_kernel.py)."""
    lib = twin_kernel.build("lightning_indexer_ascendc", KERNEL_DIR,
                            "lightning_indexer_kernel.cpp", HOST_DIR)
    lib.li_ascendc_workspace_bytes.argtypes = [ctypes.c_char_p, ctypes.c_uint32]
    lib.li_ascendc_workspace_bytes.restype = ctypes.c_uint64
    lib.li_ascendc_run.argtypes = [ctypes.c_int32, ctypes.c_int32, ctypes.c_uint32,
                                   *([ctypes.c_void_p, ctypes.c_uint64] * 11),
                                   ctypes.c_char_p, ctypes.c_size_t]
    lib.li_ascendc_run.restype = ctypes.c_int
    return lib


def num_blocks(p, plan) -> int:
    """Blocks of the launch: the plan's cores (the kernel cuts the plan's task line over
    GetBlockNum() cores, so that the cut is the plan's), none for a call without rows."""
    return plan.platform.num_cores if p.num_rows > 0 else 0


def record_shape(p, plan) -> tuple[int, int]:
    """The int32 record the kernel fills under ``run(..., record=...)``: per core (3 a block:
    AIC, AIV 0, AIV 1) the number of pieces it ran, then (task, step begin, step end, slot or
    -1) per piece."""
    return 3 * num_blocks(p, plan), 1 + 4 * p.num_rows


def run(p, plan, t, record: torch.Tensor | None = None):
    """Launch the kernel on the plan's platform (the plan's num_cores blocks: the kernel runs
    the plan's schedule); returns (sparse_indices, sparse_values) as the other back ends do.
    ``record`` (tests): an int32 tensor of ``record_shape`` the cores fill with their pieces."""
    idx_shape, val_shape = output_shapes(t.query.shape, p.layout_query, p.sparse_count,
                                         p.return_value)
    indices = torch.empty(idx_shape, dtype=torch.int32)
    values = torch.empty(val_shape, dtype=t.query.dtype)
    blocks = num_blocks(p, plan)
    if blocks == 0:
        return indices, values
    lib = library()
    data = li_tiling.tiling_data(plan, p)
    tiling_buf = ctypes.create_string_buffer(data, len(data))
    # GM workspace as a device gives it: not zeroed (here: poisoned, so a read before a write
    # shows in the results)
    workspace = torch.full((lib.li_ascendc_workspace_bytes(data, blocks),), 0xFF,
                           dtype=torch.uint8)
    # sparse_values as CANN passes it: an address even where the op returns no values (a
    # buffer of 0 bytes here, so a write the TilingData's return_value = 0 forbids is an error)
    no_values = None if p.return_value else torch.empty(1, dtype=t.query.dtype)
    if record is not None:
        assert record.dtype == torch.int32 and tuple(record.shape) == record_shape(p, plan)
        assert record.is_contiguous()
    args = []
    for x in (t.query.contiguous(), t.key.contiguous(), t.weights.contiguous(),
              _contiguous(t.actual_seq_lengths_query), _contiguous(t.actual_seq_lengths_key),
              _contiguous(t.block_table) if p.kv_layout is Layout.PA_BSND else None, indices,
              values if p.return_value else no_values, workspace, record):
        args += ([None, 0] if x is None else [x.data_ptr(), 0] if x is no_values
                 else [x.data_ptr(), x.numel() * x.element_size()])
    message = ctypes.create_string_buffer(MESSAGE_BYTES)
    rc = lib.li_ascendc_run(DTYPE_CODES[t.query.dtype], int(t.weights.dtype == torch.float32),
                            blocks, *args, ctypes.addressof(tiling_buf), len(data), message,
                            MESSAGE_BYTES)
    if rc != 0:
        raise RuntimeError(f"npu_lightning_indexer (ascendc on the AscendC twin): "
                           f"{message.value.decode(errors='replace')}")
    return indices, values


def _contiguous(x):
    return None if x is None else x.contiguous()
