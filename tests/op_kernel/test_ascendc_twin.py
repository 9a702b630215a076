"""The AscendC twin (op_kernel/common/ascendc_twin): kernels written against the AscendC API
(op_kernel/common/ascendc_twin/tests/*.cpp) are compiled with g++ against the twin's
kernel_operator.h and run on CPU through ctypes on torch tensors, compared with torch; then one
case per enforced rule, which the twin must refuse with a message naming what broke it.

The library is built by op_host/common/native.py with the twin's folder on the include path.
"""
from __future__ import annotations

import ctypes
import re
import threading
from pathlib import Path

import pytest
import torch

import cann_attention.op_kernel as op_kernel
from cann_attention.op_host.common import native
from cann_attention.op_host.common.platform import ASCEND_910B, ASCEND_A3

TWIN = Path(op_kernel.__file__).resolve().parent / "common" / "ascendc_twin"
KERNELS = TWIN / "tests"
MEMORIES = ("UB", "L1", "L0A", "L0B", "L0C")
ROUND_MODES = ("CAST_NONE", "CAST_RINT", "CAST_FLOOR", "CAST_CEIL", "CAST_ROUND", "CAST_TRUNC",
               "CAST_ODD")                      # RoundMode's order in twin/numeric.h

P, U32, I32, F32, U64 = (ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int32, ctypes.c_float,
                         ctypes.c_uint64)
S = ctypes.c_char_p
SIGNATURES = {                                  # entries.cpp, without the trailing (err, cap)
    "twin_add": (I32, U32, P, P, P, U32, U32),
    "twin_softmax_rows": (U32, P, P, U32, U32),
    "twin_scale_unaligned": (U32, P, P, U32, U32, F32),
    "twin_pad_rows": (P, U64, P, U64, U32, U32, U32, U32, U32, F32),
    "twin_cast": (I32, U32, P, P, P, U32, U32, I32),
    "twin_strided_rows": (P, U64, P, U64, U32, U32, U32, U32),
    "twin_rule": (S, U32, P, U32),
    "twin_misuse": (S,),
    "twin_take_memory": (S, U32),
    "twin_block_info": (U32, P),
    "twin_mix_matmul_softmax": (U32, P, P, P, P, P, U32, U32, U32),
    "twin_mix_rule": (S, U32, P, U32),
    "twin_sync_all": (S, U32, P, U32),
}


class TwinError(RuntimeError):
    """A rule of the hardware broken by a kernel, as the twin reported it."""


def build_twin_library(name: str = "ascendc_twin_tests", sources: list[Path] | None = None,
                       defines: tuple[str, ...] = ()) -> Path:
    """Kernel sources (default: all test kernels) and the twin in one shared library."""
    sources = sorted(KERNELS.glob("*.cpp")) if sources is None else sources
    return native.build_library(name, sources, include_dirs=(TWIN,), defines=defines)


class Twin:
    """The entry points of entries.cpp: each call raises TwinError with the twin's message."""

    def __init__(self, path: Path):
        self._lib = ctypes.CDLL(str(path))
        for name, args in SIGNATURES.items():
            fn = getattr(self._lib, name)
            fn.argtypes = [*args, ctypes.c_char_p, ctypes.c_size_t]
            fn.restype = ctypes.c_int
        self._lib.twin_capacity.argtypes = [ctypes.c_char_p]
        self._lib.twin_capacity.restype = ctypes.c_uint32

    def __getattr__(self, name):
        fn = getattr(self._lib, f"twin_{name}")

        def call(*args):
            err = ctypes.create_string_buffer(4096)
            args = [a.data_ptr() if isinstance(a, torch.Tensor) else
                    a.encode() if isinstance(a, str) else a for a in args]
            if fn(*args, err, len(err)) != 0:
                raise TwinError(err.value.decode())
        return call

    def capacity(self, memory: str) -> int:
        return self._lib.twin_capacity(memory.encode())


@pytest.fixture(scope="module")
def twin():
    if native.compiler() is None:
        pytest.skip("no C++ compiler (g++) on this machine: the AscendC twin cannot be built")
    return Twin(build_twin_library())


# ---- kernels that follow the rules, against torch ---------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["float", "half"])
def test_vector_add_double_buffered(twin, dtype):
    blocks, tile, tiles = 8, 512, 4
    total = blocks * tile * tiles
    x, y = torch.randn(total, dtype=dtype), torch.randn(total, dtype=dtype)
    z = torch.full((total,), float("nan"), dtype=dtype)
    twin.add(dtype == torch.float16, blocks, x, y, z, total, tile)
    assert torch.equal(z, x + y)


def test_softmax_rows(twin):
    blocks, rows, cols = 8, 64, 256
    x = (torch.randn(rows, cols) * 3).half()
    y = torch.full_like(x, float("nan"))
    twin.softmax_rows(blocks, x, y, rows, cols)
    reference = torch.softmax(x.float(), dim=-1)
    torch.testing.assert_close(y.float(), reference, rtol=2**-10, atol=2**-24)


def test_data_copy_strided(twin):
    rows, cols, src_gap, dst_gap = 6, 16, 8, 24
    x = torch.randn(rows, cols + src_gap)
    y = torch.full((rows, cols + dst_gap), -1.0)
    twin.strided_rows(x, x.numel() * 4, y, y.numel() * 4, rows, cols, src_gap, dst_gap)
    assert torch.equal(y[:, :cols], x[:, :cols])
    assert bool((y[:, cols:] == -1).all())             # the gaps are left alone


def test_data_copy_pad_unaligned_tails(twin):
    blocks, total, tile = 3, 1000, 128         # blocks of 334, 334, 332: tails of 78 and 76 floats
    x = torch.randn(total)
    y = torch.full_like(x, float("nan"))
    twin.scale_unaligned(blocks, x, y, total, tile, 0.5)
    assert torch.equal(y, x * 0.5)


NAN = float("nan")


@pytest.mark.parametrize("cols,gap,is_pad,right,value,tail", [
    # padding and dummy are paddingValue with isPad
    (5, 3, 1, 3, -1.0, lambda row: [-1.0] * 3),
    (7, 1, 1, 2, 9.0, lambda row: [9.0] * 9),
    # no padding: the dummy repeats the block's first element, isPad or not
    (5, 3, 0, 0, 0.0, lambda row: [row[0]] * 3),
    (5, 0, 1, 0, 7.0, lambda row: [row[0]] * 3),
    # padding without isPad: undefined, which the twin makes NaN
    (5, 2, 0, 3, 0.0, lambda row: [NAN] * 3),
], ids=["pad_value", "pad_and_dummy", "dummy_first", "dummy_first_is_pad", "undefined"])
def test_data_copy_pad_layout(twin, cols, gap, is_pad, right, value, tail):
    rows = 4
    row_elems = -(-(cols + right) // 8) * 8     # each block takes whole 32-byte blocks of UB
    x = torch.randn(rows * (cols + gap) - gap)
    y = torch.zeros(rows * row_elems)
    twin.pad_rows(x, x.numel() * 4, y, y.numel() * 4, rows, cols, gap, is_pad, right, value)
    for r in range(rows):
        data = x[r * (cols + gap):r * (cols + gap) + cols].tolist()
        expected = torch.tensor(data + tail(data))
        torch.testing.assert_close(y[r * row_elems:(r + 1) * row_elems], expected, equal_nan=True,
                                   rtol=0, atol=0)


# ---- Cast: every round mode against a reference over all 16-bit values ----------------------------

def _finite_table(dtype):
    """(sorted finite values as float64 without -0, their bit patterns) of a 16-bit float type."""
    bits = torch.arange(-2**15, 2**15, dtype=torch.int32).to(torch.int16)
    values = bits.view(dtype).double()
    keep = torch.isfinite(values) & ~((values == 0) & (bits < 0))
    values, order = torch.sort(values[keep])
    return values, bits[keep][order]


def _reference(x: torch.Tensor, dtype, mode: str) -> torch.Tensor:
    """x (float32) rounded to `dtype` in `mode` as the Cast page describes, saturating."""
    values, bits = _finite_table(dtype)
    xd = x.double()
    finite = torch.isfinite(xd)
    top = values[-1]
    clamped = xd.clamp(-top, top).where(finite, torch.zeros_like(xd))
    hi_i = torch.searchsorted(values, clamped).clamp(max=len(values) - 1)
    lo_i = (hi_i - (values[hi_i] > clamped).long()).clamp(min=0)
    lo, hi = values[lo_i], values[hi_i]
    lo_odd, hi_odd = (bits[lo_i] & 1).bool(), (bits[hi_i] & 1).bool()
    below, above = clamped - lo, hi - clamped
    exact = lo == hi
    if mode in ("CAST_NONE", "CAST_RINT"):
        pick_hi = (above < below) | ((above == below) & lo_odd)
    elif mode == "CAST_ROUND":
        pick_hi = (above < below) | ((above == below) & (clamped > 0))
    elif mode == "CAST_FLOOR":
        pick_hi = torch.zeros_like(exact)
    elif mode == "CAST_CEIL":
        pick_hi = torch.ones_like(exact)
    elif mode == "CAST_TRUNC":
        pick_hi = clamped < 0
    else:                                                        # CAST_ODD
        pick_hi = hi_odd & ~lo_odd
    out = torch.where(exact, lo, torch.where(pick_hi, hi, lo))
    out = torch.where(out == 0, torch.copysign(out, xd), out)   # a zero keeps the sign of x
    out = torch.where(finite, out, xd)                           # inf and NaN pass through
    return out.float()


def _cast_inputs(dtype, n):
    """Every kind of float32 a cast meets: representable values, exact ties, random values across
    the normal and subnormal range, overflow, infinities, NaN, zeros, tiny values."""
    gen = torch.Generator().manual_seed(5)
    values, _ = _finite_table(dtype)
    pick = torch.randint(0, len(values) - 1, (n // 4,), generator=gen)
    representable = values[pick]
    ties = (values[pick] + values[pick + 1]) / 2
    top = float(values[-1])
    magnitude = torch.exp2(torch.empty(n // 4, dtype=torch.float64).uniform_(
        -30 if dtype == torch.float16 else -140, 17 if dtype == torch.float16 else 128,
        generator=gen))
    sign = torch.where(torch.rand(n // 4, generator=gen) < 0.5, -1.0, 1.0).double()
    special = torch.tensor([0.0, -0.0, float("inf"), -float("inf"), float("nan"), top * 1.5,
                            -top * 1.5, 3e38, -3e38, 1e-45, -1e-45], dtype=torch.float64)
    rest = n - 3 * (n // 4) - len(special)
    filler = torch.randn(rest, generator=gen, dtype=torch.float64)
    x = torch.cat([representable, ties, magnitude * sign, special, filler]).float()
    return x[torch.randperm(n, generator=gen)]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["half", "bfloat16"])
def test_cast_round_modes(twin, dtype):
    blocks, tile, n = 4, 2048, 4 * 2048 * 2
    x = _cast_inputs(dtype, n)
    rint = None
    for code, mode in enumerate(ROUND_MODES):
        y = torch.zeros(n, dtype=dtype)
        back = torch.zeros(n)
        twin.cast(dtype == torch.bfloat16, blocks, x, y, back, n, tile, code)
        expected = _reference(x, dtype, mode)
        assert torch.equal(y.float().isnan(), expected.isnan()), mode
        same = (y.float() == expected) & (y.float().signbit() == expected.signbit())
        assert bool((same | expected.isnan()).all()), (mode, x[~same & ~expected.isnan()][:8])
        torch.testing.assert_close(back, y.float(), rtol=0, atol=0, equal_nan=True)
        if mode == "CAST_RINT":
            rint = y
    # in range, CAST_RINT is torch's own rounding
    in_range = x.abs() <= float(_finite_table(dtype)[0][-1])
    assert torch.equal(rint[in_range].view(torch.int16), x[in_range].to(dtype).view(torch.int16))


HALF_STRUCT_ENTRY = r"""
#include <type_traits>
#include "kernel_operator.h"
static_assert(!std::is_same_v<half, _Float16>, "ASCENDC_TWIN_HALF_STRUCT selects the struct half");
extern "C" void cast_to_half(GM_ADDR x, GM_ADDR y, GM_ADDR back, uint32_t n, uint32_t tile,
                             int32_t mode);
extern "C" int twin_cast_half(uint32_t blocks, GM_ADDR x, GM_ADDR y, GM_ADDR back, uint32_t n,
                              uint32_t tile, int32_t mode, char* err, size_t cap)
{
    return AscendC::twin::Guard(err, cap, [&] {
        AscendC::twin::RunKernel(blocks, cast_to_half, x, y, back, n, tile, mode);
    });
}
"""


def test_cast_with_the_half_struct(tmp_path):
    """Compilers without _Float16 get a struct half: the same cast kernel gives the same bits."""
    if native.compiler() is None:
        pytest.skip("no C++ compiler (g++) on this machine: the AscendC twin cannot be built")
    entry = tmp_path / "half_struct_entry.cpp"
    entry.write_text(HALF_STRUCT_ENTRY)
    lib = ctypes.CDLL(str(build_twin_library(
        "ascendc_twin_half_struct", [KERNELS / "cast.cpp", entry], ("ASCENDC_TWIN_HALF_STRUCT",))))
    n, tile = 4096, 1024
    x = _cast_inputs(torch.float16, n)
    for code, mode in enumerate(ROUND_MODES):
        y, back, err = torch.zeros(n, dtype=torch.float16), torch.zeros(n), ctypes.c_buffer(4096)
        assert lib.twin_cast_half(U32(2), P(x.data_ptr()), P(y.data_ptr()), P(back.data_ptr()),
                                  U32(n), U32(tile), I32(code), err, ctypes.c_size_t(4096)) == 0
        expected = _reference(x, torch.float16, mode)
        torch.testing.assert_close(y.float(), expected, rtol=0, atol=0, equal_nan=True)
        assert torch.equal(y.float().signbit(), expected.signbit())
        torch.testing.assert_close(back, expected, rtol=0, atol=0, equal_nan=True)


def test_cast_documented_example(twin):
    """The Cast page's example: 0.5 + 2^-12 to half in each mode; and overflow saturating."""
    n = 16
    x = torch.full((n,), 0.5 + 2**-12)
    x[1], x[2] = 1e6, -1e6
    expected = {"CAST_RINT": 0.5, "CAST_FLOOR": 0.5, "CAST_CEIL": 0.5 + 2**-11,
                "CAST_ROUND": 0.5 + 2**-11, "CAST_TRUNC": 0.5, "CAST_ODD": 0.5 + 2**-11}
    for mode, value in expected.items():
        y, back = torch.zeros(n, dtype=torch.float16), torch.zeros(n)
        twin.cast(0, 1, x, y, back, n, n, ROUND_MODES.index(mode))
        assert y[0].item() == value, mode
        assert (y[1].item(), y[2].item()) == (65504.0, -65504.0), mode


# ---- the core: block indices and per-block state ----------------------------------------------------

def test_blocks_run_on_fresh_cores(twin):
    blocks = 5
    out = torch.full((blocks, 8), -7, dtype=torch.int32)
    twin.block_info(blocks, out)                     # each block takes 150 KiB of the 192 KiB UB
    expected = torch.zeros(blocks, 8, dtype=torch.int32)
    expected[:, 0], expected[:, 1] = torch.arange(blocks), blocks
    assert torch.equal(out, expected)


@pytest.mark.parametrize("memory", MEMORIES)
def test_capacities_are_the_platform_buffers(twin, memory):
    capacity = twin.capacity(memory)
    assert capacity == ASCEND_A3.buffer(memory) == ASCEND_910B.buffer(memory)
    twin.take_memory(memory, capacity)               # all of it fits
    with pytest.raises(TwinError, match=rf"{memory} overflow: .* needs {capacity + 32} B"):
        twin.take_memory(memory, capacity + 1)       # rounded up to 32 B: one block too many


# ---- rules: each kernel breaks one, and the twin says which ----------------------------------------

RULES = {
    # name: (blocks, fragments of the message)
    "ub_overflow": (1, ["UB overflow", "TBuf<VECCALC> needs 98304 B", "holds 196608 B",
                        "131072 B are already taken"]),
    "l0a_overflow": (1, ["L0A overflow", "TQue<A2, 2> buffer 2 of 2 needs 33792 B",
                         "holds 65536 B"]),
    "misaligned_count": (1, ["DataCopy GM->VECIN", "7 elements of float = 28 B",
                             "not a multiple of 32 B", "use DataCopyPad"]),
    "misaligned_address": (1, ["DataCopy GM->VECIN: the destination", "(UB byte 12, 61 elements)",
                               "does not start 32-byte aligned"]),
    "gm_read_oob": (4, ["block 3 of 4", "elements [0, 72) are out of bounds of "
                        "GlobalTensor<float> 'x'[+192] (size 64 elements)"]),
    "gm_get_value_oob": (1, ["GlobalTensor::GetValue", "elements [256, 257)",
                             "GlobalTensor<float> 'x'[+0] (size 256 elements)"]),
    "gm_set_value_outside_buffer": (1, ["GlobalTensor::SetValue", "elements [260, 261)",
                                        "outside GM buffer 'x' (1024 B = 256 elements)"]),
    "wait_without_set": (1, ["WaitFlag<MTE2_V>(0): no SetFlag<MTE2_V>(0) precedes it",
                             "wait forever"]),
    "set_twice": (1, ["SetFlag<V_MTE3>(1): the flag is already set"]),
    "flag_left_set": (1, ["returned with SetFlag<MTE3_MTE2>(2) never waited for"]),
    "event_id_range": (1, ["SetFlag<V_S>(8): event id outside [0, 7]"]),
    "pipe_barrier_s": (1, ["PipeBarrier<PIPE_S>", "hardware error"]),
    "deque_empty": (1, ["DeQue: TQue<VECIN, 2> is empty", "wait forever"]),
    "double_free": (1, ["FreeTensor", "TQue<VECOUT, 1> buffer 1 of 1", "FreeTensor twice"]),
    "use_after_free": (1, ["LocalTensor::SetValue", "used after FreeTensor"]),
    "use_while_enqueued": (1, ["LocalTensor::SetValue", "between EnQue and DeQue"]),
    "alloc_exhausted": (1, ["AllocTensor: all 1 buffers of TQue<VECIN, 1> are in use"]),
    "two_pipes": (1, ["a second TPipe on this core"]),
    "vector_misaligned": (1, ["Add: the src0", "(UB byte 260, 127 elements)",
                              "does not start 32-byte aligned"]),
    "vector_count_oob": (1, ["Exp: elements [0, 72) are out of bounds of LocalTensor<float> of "
                             "TBuf<VECCALC> (UB byte 256, 64 elements)"]),
    "vector_on_l1": (1, ["Add: the src0", "(L1 byte 0, 64 elements) is in L1",
                         "vector operations work on VECIN / VECOUT / VECCALC"]),
    "negative_count": (1, ["Duplicate: count -8 is negative"]),
    "cast_widening_mode": (1, ["Cast: half -> float is exact and takes RoundMode::CAST_NONE, "
                               "not CAST_RINT"]),
    "pad_block_len": (1, ["DataCopyPad GM->UB: blockLen 6 B is not a whole number of float"]),
    "pad_block_count": (1, ["DataCopyPad GM->UB: blockCount 0 is outside [1, 4095]"]),
    "pad_too_wide": (1, ["DataCopyPad GM->UB: padding of 9 + 0 elements exceeds 32 B"]),
    "pad_gm_stride": (1, ["DataCopyPad GM->UB: the GM srcStride 6 B is not a whole number"]),
    "copy_out_of_l1": (1, ["DataCopy A1->GM: the source", "is in L1",
                           "moves data between GM and UB"]),
    "too_many_buffers": (1, ["TPipe::InitBuffer: more than 64 buffers in one kernel"]),
    "init_twice": (1, ["TQue<VECIN, 1> already has buffers (call TPipe::Reset"]),
    "init_zero_num": (1, ["TQue<VECIN, 1> with num = 0 buffers"]),
    "init_zero_len": (1, ["TBuf<VECCALC> asks for 0 bytes"]),
    "init_at_gm": (1, ["TBuf<CO2> is at CO2, which is Global Memory on A2/A3"]),
    "init_unmodelled": (1, ["position C2 is not modelled by the AscendC twin"]),
    "queue_uninitialised": (1, ["AllocTensor: TQue<VECIN, 1> has no buffers: call "
                                "TPipe::InitBuffer"]),
    "tbuf_uninitialised": (1, ["TBuf::Get: TBuf<VECCALC> has no buffer"]),
    "tbuf_get_beyond": (1, ["TBuf::Get: 65 elements of float at byte 0 exceed TBuf<VECCALC> "
                            "(256 B)"]),
    "enque_beyond_depth": (1, ["EnQue: TQue<VECIN, 1> already holds 1 tensors, its depth"]),
    "enque_foreign": (1, ["EnQue:", "of TQue<VECIN, 1> buffer 1 of 1", "does not belong to "
                          "TQue<VECOUT, 1>"]),
    "free_while_enqueued": (1, ["FreeTensor:", "is still in its queue"]),
    "use_after_reset": (1, ["LocalTensor::GetValue:", "used after its TPipe was reset"]),
    "local_without_buffer": (1, ["LocalTensor::GetValue: LocalTensor<float> has no buffer"]),
    "local_view_beyond": (1, ["LocalTensor::operator[]: offset 65 is beyond the end of "
                              "LocalTensor<float> of TBuf<VECCALC> (UB byte 0, 64 elements)"]),
    "gm_before_set": (1, ["GlobalTensor::GetValue: GlobalTensor<float> used before "
                          "SetGlobalBuffer"]),
    "gm_view_beyond": (1, ["GlobalTensor::operator[]: offset 257 is beyond the end of "
                           "GlobalTensor<float> 'x'[+0] (size 256 elements)"]),
    "gm_outside_launch_buffers": (1, ["GlobalTensor::GetValue:", "lies in none of the GM buffers "
                                      "of the launch"]),
    "release_unallocated_event": (1, ["ReleaseEventID<V_S>(3): the id was not taken with "
                                      "AllocEventID"]),
    "event_ids_exhausted": (1, ["AllocEventID<MTE2_V>: all 8 event ids are taken"]),
    "reduce_work_too_small": (1, ["ReduceMax: elements [0, 16) are out of bounds of "
                                  "LocalTensor<float> of TBuf<VECCALC>"]),
}


@pytest.mark.parametrize("case", RULES)
def test_twin_refuses(twin, case):
    blocks, fragments = RULES[case]
    x = torch.arange(256, dtype=torch.float32)
    with pytest.raises(TwinError) as info:
        twin.rule(case, blocks, x, x.numel())
    message = str(info.value)
    assert message.startswith(f"block {blocks - 1} of {blocks}: "), message
    for fragment in fragments:
        assert fragment in message, message
    # the core is left clean for the next launch
    out = torch.zeros(2, 8, dtype=torch.int32)
    twin.block_info(2, out)
    assert out[:, :2].tolist() == [[0, 2], [1, 2]]


@pytest.mark.parametrize("case", ["allowed_reset_then_init", "allowed_event_ids",
                                  "allowed_reuse_after_free"])
def test_twin_allows(twin, case):
    x = torch.arange(256, dtype=torch.float32)
    twin.rule(case, 1, x, x.numel())


def test_reduce_max_and_sum(twin):
    x = torch.randn(256, generator=torch.Generator().manual_seed(7))
    want_max, want_sum = x.max().item(), x.double().sum().item()
    twin.rule("allowed_reduce", 1, x, x.numel())
    assert x[0].item() == want_max
    assert abs(x[1].item() - want_sum) <= 1e-5 * x.abs().sum().item()


@pytest.mark.parametrize("case,fragment", [
    ("block_idx_outside_kernel", "GetBlockIdx called outside RunKernel"),
    ("tpipe_outside_kernel", "TPipe called outside RunKernel"),
    ("zero_blocks", "RunKernel: numBlocks is 0"),
    ("nested_launch", "block 0 of 1: RunKernel: called from inside a running kernel"),
])
def test_twin_refuses_misused_launch(twin, case, fragment):
    with pytest.raises(TwinError, match=re.escape(fragment)):
        twin.misuse(case)


# ---- the mixed cube/vector launch (RunMixKernel: 1 AIC + 2 AIV per block) -------------------------

def call_with_timeout(fn, *args, timeout: float = 20.0):
    """Runs fn(*args) on a daemon thread (ctypes releases the GIL): a twin that hangs fails the
    test after `timeout` seconds instead of hanging the suite."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = fn(*args)
        except BaseException as error:  # noqa: BLE001 - handed to the test below
            outcome["error"] = error
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"the twin hung for more than {timeout} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def test_mix_matmul_then_softmax(twin):
    blocks, m, k, n = 2, 32, 64, 48
    x = (torch.randn(blocks * m, k) / 4).half()
    w = (torch.randn(k, n) / 4).half()
    ws = torch.full((blocks * m, n), float("nan"), dtype=torch.float16)
    y = torch.full_like(ws, float("nan"))
    info = torch.full((blocks * 3, 8), -1, dtype=torch.int32)
    call_with_timeout(twin.mix_matmul_softmax, blocks, x, w, ws, y, info, m, k, n)
    product = x.float() @ w.float()
    torch.testing.assert_close(ws.float(), product.half().float(), rtol=2**-10, atol=1e-3)
    torch.testing.assert_close(y.float(), torch.softmax(ws.float(), dim=-1), rtol=2**-9,
                               atol=2**-14)
    # per core: GetBlockIdx, GetBlockNum, GetSubBlockIdx, GetTaskRation, ASCEND_IS_AIC
    expected = []
    for b in range(blocks):
        expected += [[b, blocks, 0, 1, 1], [2 * b, blocks, 0, 2, 0], [2 * b + 1, blocks, 1, 2, 0]]
    assert info[:, :5].tolist() == expected


@pytest.mark.parametrize("case,fragment", [
    ("deadlock_cube_never_sets", "CrossCoreWaitFlag(5) deadlock"),
    ("deadlock_both_wait", "AIC of block 0 on flag 1, AIV 0 of block 0 on flag 2"),
    ("one_aiv_sets", "CrossCoreWaitFlag(4) deadlock"),
])
def test_mix_deadlock_is_reported_not_hung(twin, case, fragment):
    x = torch.zeros(64)
    with pytest.raises(TwinError, match=re.escape(fragment)) as caught:
        call_with_timeout(twin.mix_rule, case, 2, x, x.numel(), timeout=20.0)
    assert "the device the kernel would hang" in str(caught.value)


def test_mix_deadlock_names_the_waiting_core_and_flag(twin):
    x = torch.zeros(64)
    with pytest.raises(TwinError) as caught:
        call_with_timeout(twin.mix_rule, "deadlock_cube_never_sets", 1, x, x.numel())
    message = str(caught.value)
    assert message.startswith("block 0 of 1, AIV ")
    assert "AIV 0 of block 0 on flag 5" in message and "AIV 1 of block 0 on flag 5" in message


def test_mix_aiv_to_aic_and_aiv_barrier(twin):
    x = torch.zeros(64)
    call_with_timeout(twin.mix_rule, "aiv_to_aic_ok", 3, x, x.numel())


@pytest.mark.parametrize("case,fragment", [
    ("pending_overflow", "already holds 16 sets not yet waited for"),
    ("flag_id_range", "CrossCoreSetFlag(11) on the AIC of block 0: flagId outside [0, 10]"),
    ("mode1_on_aic", "mode 1 synchronises the two AIVs"),
    ("ub_on_aic", "this code runs on the AIC of block 0, which has L1, L0A, L0B and L0C only"),
    ("l1_on_aiv", "which has UB only"),
    ("l0a_overflow", "L0A overflow: TBuf<A2> needs 32768 B at A2 but L0A holds 65536 B per core"),
    ("mmad_wrong_position", "Mmad: the left matrix (fmLocal) LocalTensor<half> of TBuf<B2>"),
    ("mmad_range", "m 4096, n 32, k 32: each must lie in [0, 4095]"),
    ("mmad_operand_small", "holds 1024 elements, but m 48, n 32, k 32 need 1536"),
    ("loaddata_wrong_source", "LoadData (2D): the source LocalTensor<half> of TBuf<B1>"),
    ("loaddata_out_of_bounds", "LoadData (2D): elements [1024, 1280) are out of bounds"),
    ("nd2nz_to_ub_position", "DataCopy GM->L1 (Nd2Nz): the destination"),
    ("fixpipe_bad_quant", "quantPre 0 with a half destination is not modelled"),
])
def test_mix_refuses(twin, case, fragment):
    x = torch.zeros(2048)
    with pytest.raises(TwinError, match=re.escape(fragment)):
        call_with_timeout(twin.mix_rule, case, 1, x, x.numel())


def test_mix_mmad_takes_unaligned_k(twin):
    x = torch.zeros(2048)
    call_with_timeout(twin.mix_rule, "mmad_ok_unaligned_k", 1, x, x.numel())


@pytest.mark.parametrize("case,fragment", [
    ("cross_flag_in_plain_launch", "cross-core synchronisation needs a mixed launch"),
    ("sync_all_in_plain_launch", "SyncAll<true>: the hard SyncAll needs a mixed launch"),
    ("mix_zero_blocks", "RunMixKernel: numBlocks is 0"),
])
def test_mix_refuses_misused_launch(twin, case, fragment):
    with pytest.raises(TwinError, match=re.escape(fragment)):
        twin.misuse(case)


# ---- SyncAll<isAIVOnly>() (sync_all.cpp): the hard all-core barrier of a mixed launch ------------

@pytest.mark.parametrize("blocks", [1, 3, 24])
def test_sync_all_is_a_barrier_over_every_core(twin, blocks):
    """Three barriers in a row: after each, every core sees the words all cores wrote before it."""
    cores = 3 * blocks
    x = torch.zeros(6 * cores, dtype=torch.int32)
    call_with_timeout(twin.sync_all, "rounds", blocks, x, x.numel())
    for r in range(3):
        assert torch.all(x[r * cores:(r + 1) * cores] == r + 1)
        assert torch.all(x[(3 + r) * cores:(4 + r) * cores] == cores), r


def test_sync_all_aiv_only_covers_the_vector_cores(twin):
    blocks = 4
    cores = 3 * blocks
    x = torch.zeros(6 * cores, dtype=torch.int32)
    call_with_timeout(twin.sync_all, "aiv_only", blocks, x, x.numel())
    aiv = torch.tensor([c % 3 != 0 for c in range(cores)])
    for r in range(3):
        words = x[r * cores:(r + 1) * cores]
        assert torch.all(words[aiv] == r + 1) and torch.all(words[~aiv] == 0)
        counts = x[(3 + r) * cores:(4 + r) * cores]
        assert torch.all(counts[aiv] == 2 * blocks) and torch.all(counts[~aiv] == 0)


def test_sync_all_missing_arrival_is_reported_with_the_core(twin):
    """A core that returns without reaching the SyncAll the others wait at: named, no hang."""
    x = torch.zeros(64, dtype=torch.int32)
    with pytest.raises(TwinError) as caught:
        call_with_timeout(twin.sync_all, "missing_arrival", 3, x, x.numel())
    message = str(caught.value)
    assert message.startswith("block 2 of 3, AIV 1 of block 2: returned from the kernel without "
                              "reaching SyncAll number 1"), message
    assert "the kernel would hang" in message


@pytest.mark.parametrize("case,blocks,fragment", [
    ("flag_then_sync", 2, "every core still running waits on a cross-core flag or at SyncAll"),
    ("aiv_only_on_aic", 1, "SyncAll<true> on the AIC of block 0: isAIVOnly = true"),
    ("rounds", 25, "numBlocks 25 exceeds the 24 AI Cores"),
])
def test_sync_all_refuses(twin, case, blocks, fragment):
    x = torch.zeros(6 * 3 * blocks, dtype=torch.int32)
    with pytest.raises(TwinError, match=re.escape(fragment)):
        call_with_timeout(twin.sync_all, case, blocks, x, x.numel())
