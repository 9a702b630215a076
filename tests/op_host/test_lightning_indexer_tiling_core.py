"""The C++ tiling core of npu_lightning_indexer (op_host/lightning_indexer/tiling_core.cpp)
against the Python host side: byte-identical TilingData over a random sweep of valid calls on
both Ascend platforms; on invalid calls (one per static rule of check.py, then random
mutations) the same exception class and message as check.check and tiling.plan; the C struct
of the header is the Python definition's text."""
from __future__ import annotations

import dataclasses
import random
import unicodedata
from pathlib import Path

import pytest
import torch

from cann_attention.op_host.common import native as common_native
from cann_attention.op_host.common import native_types
from cann_attention.op_host.common.errors import (
    CannAttentionError, CannAttentionTypeError, dtype_name)
from cann_attention.op_host.common.platform import (
    ASCEND_910B, ASCEND_A3, CPU, H100, KiB, PlatformInfo, PlatformKind)
from cann_attention.op_host.lightning_indexer import check, native, tiling
from testing.calls import parse

OP = "npu_lightning_indexer"
HEADER = Path(native.SOURCE).with_name("tiling_core.h")
ASCEND = (ASCEND_A3, ASCEND_910B)
INT64_MAX = 2**63 - 1
F16, BF16, F32, I32 = torch.float16, torch.bfloat16, torch.float32, torch.int32
SWEEP = 600              # valid calls, each planned on both Ascend platforms
MUTATIONS = 3000         # random invalid (and some valid) variants of them


@pytest.fixture(scope="module")
def core():
    """The built library; skipped (with the reason) where there is no C++ compiler."""
    if common_native.compiler() is None:
        pytest.skip("no C++ compiler (g++) on this machine: the C++ tiling core cannot be built")
    return native.library()


def _meta(*shape, dtype=BF16):
    return torch.empty(*shape, dtype=dtype, device="meta")


def python_outcome(p, platform):
    """check.check then plan and packing in Python: the bytes, or (class, message)."""
    try:
        check.check(p)
        return tiling.tiling_data(tiling.plan(p, platform), p)
    except CannAttentionError as e:
        return type(e), str(e)


def core_outcome(p, platform):
    try:
        return native.tiling_data(p, platform)
    except CannAttentionError as e:
        return type(e), str(e)


# ---- the valid sweep ---------------------------------------------------------------------

def _sparse_count(rng):
    r = rng.random()
    if r < 0.15:
        return rng.choice(check.EXTRA_SPARSE_COUNTS)
    if r < 0.3:
        return rng.choice((1, 2, 16, 512, 1024, 2047, 2048))
    return int(2 ** rng.uniform(0, 11))            # log-uniform in [1, 2048]


def _n1(rng):
    return rng.choice((1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, rng.randint(1, 64)))


LAYOUT_PAIRS = (("BSND", "BSND"), ("TND", "TND"), ("BSND", "PA_BSND"), ("TND", "PA_BSND"))


def random_call(rng, layouts):
    """Positional and keyword arguments of one valid call (meta tensors: shapes only)."""
    q_layout, k_layout = layouts
    dtype = rng.choice((F16, BF16))
    w_dtype = rng.choice((dtype, F32))
    b, n1 = rng.choice((1, 1, 2, 3, 4, 8, rng.randint(1, 64))), _n1(rng)
    kw = dict(layout_query=q_layout, layout_key=k_layout, sparse_count=_sparse_count(rng),
              sparse_mode=rng.choice((0, 3)),
              return_value=k_layout != "PA_BSND" and rng.random() < 0.5)
    lengths = _meta(b, dtype=I32)
    if q_layout == "BSND":
        s1 = rng.choice((1, 2, 4, rng.randint(1, 4096)))
        query, weights = _meta(b, s1, n1, 128, dtype=dtype), _meta(b, s1, n1, dtype=w_dtype)
        if rng.random() < 0.5:
            kw["actual_seq_lengths_query"] = lengths
    else:
        t1 = rng.randint(1, 8192)
        query, weights = _meta(t1, n1, 128, dtype=dtype), _meta(t1, n1, dtype=w_dtype)
        kw["actual_seq_lengths_query"] = lengths
    if k_layout == "BSND":
        key = _meta(b, rng.choice((1, 128, rng.randint(1, 131072))), 1, 128, dtype=dtype)
        if rng.random() < 0.5:
            kw["actual_seq_lengths_key"] = lengths
    elif k_layout == "TND":
        key = _meta(rng.randint(1, 131072), 1, 128, dtype=dtype)
        kw["actual_seq_lengths_key"] = lengths
    else:
        page = 16 * rng.randint(1, 64)
        key = _meta(rng.randint(1, 4096), page, 1, 128, dtype=dtype)
        kw["block_table"] = _meta(b, rng.randint(1, 512), dtype=I32)
        kw["actual_seq_lengths_key"] = lengths
    return (query, key, weights), kw


def sweep(seed=20240, count=SWEEP):
    rng = random.Random(seed)
    calls = [random_call(rng, LAYOUT_PAIRS[i % 4]) for i in range(count)]
    return [parse(OP, *args, **kw) for args, kw in calls]


def test_lightning_indexer_tiling_core_parity_sweep(core):
    """Every valid call: the same TilingData bytes from C++ as from Python, on A2 and A3."""
    params = sweep()
    mixes, mismatches = set(), []
    for i, p in enumerate(params):
        for platform in ASCEND:
            want = python_outcome(p, platform)
            assert isinstance(want, bytes), (i, want)          # the sweep is valid
            got = core_outcome(p, platform)
            if got != want:
                mismatches.append((i, platform.name, p, want, got))
            mixes.add((p.layout_query, p.layout_key, p.sparse_mode, p.return_value,
                       p.query.dtype, p.weights.dtype == F32,
                       p.actual_seq_lengths_query is None))
    assert not mismatches, mismatches[:3]
    assert len(params) >= 500
    # every layout pair with every attribute, dtype and optional-lengths mix: BSND/BSND 32,
    # TND/TND 16, BSND/PA_BSND 16 and TND/PA_BSND 8 (no return_value with PA_BSND)
    assert len(mixes) == 72


def _platform(ub, l0c):
    return dataclasses.replace(ASCEND_A3, buffers=(
        ("UB", ub), ("L1", 512 * KiB), ("L0A", 64 * KiB), ("L0B", 64 * KiB), ("L0C", l0c)))


def test_lightning_indexer_tiling_core_parity_small_buffers(core):
    """On A2/A3 every valid call gets the whole head group and 256-key chunks; platforms with
    smaller buffers push the choice to smaller head groups and chunks, and to refusals."""
    tiles, refused = set(), 0
    for platform in (_platform(96 * KiB, 16 * KiB), _platform(160 * KiB, 8 * KiB),
                     _platform(64 * KiB, 2 * KiB)):
        for p in sweep(seed=7, count=120):
            want = python_outcome(p, platform)
            assert core_outcome(p, platform) == want
            if isinstance(want, bytes):
                fields = tiling.TILING_DATA.unpack(want)
                tiles.add((fields["head_group"] < fields["n1"], fields["block_s2"]))
            else:
                refused += 1
    assert refused and (True, 16) in tiles and len({bs for _, bs in tiles}) >= 5


# ---- one call per rule -------------------------------------------------------------------

def _bsnd(b=2, s1=3, n1=8, s2=40, dtype=BF16, **kw):
    args = (_meta(b, s1, n1, 128, dtype=dtype), _meta(b, s2, 1, 128, dtype=dtype),
            _meta(b, s1, n1, dtype=dtype))
    return args, dict(dict(sparse_count=16), **kw)


def _tnd(**kw):
    args = (_meta(5, 8, 128), _meta(30, 1, 128), _meta(5, 8))
    return args, dict(dict(layout_query="TND", layout_key="TND",
                           actual_seq_lengths_query=_meta(2, dtype=I32),
                           actual_seq_lengths_key=_meta(2, dtype=I32), sparse_count=16), **kw)


def _pa(block_size=16, blocks=6, **kw):
    args = (_meta(2, 1, 8, 128), _meta(blocks, block_size, 1, 128), _meta(2, 1, 8))
    return args, dict(dict(layout_key="PA_BSND", block_table=_meta(2, 3, dtype=I32),
                           actual_seq_lengths_key=_meta(2, dtype=I32), sparse_count=16), **kw)


def _with(call, *, query=None, key=None, weights=None, **kw):
    (q, k, w), base = call
    args = (q if query is None else query, k if key is None else key,
            w if weights is None else weights)
    merged = dict(base)
    for name, value in kw.items():
        if value is _DROP:
            merged.pop(name, None)
        else:
            merged[name] = value
    return args, merged


_DROP = object()

RULES = {
    "layout_query": _bsnd(layout_query="BNSD"),
    "layout_key": _bsnd(layout_key="BSH"),
    "layout_pair_TND_BSND": _with(_tnd(), layout_key="BSND"),
    "layout_pair_BSND_TND": _bsnd(layout_key="TND"),
    "sparse_count_0": _bsnd(sparse_count=0),
    "sparse_count_2049": _bsnd(sparse_count=2049),
    "sparse_count_3000": _bsnd(sparse_count=3000),
    "sparse_count_9000": _bsnd(sparse_count=9000),
    "sparse_count_negative": _bsnd(sparse_count=-7),
    "sparse_mode": _bsnd(sparse_mode=1),
    "pre_tokens": _bsnd(pre_tokens=100),
    "next_tokens": _bsnd(next_tokens=-1),
    "return_value_PA": _pa(return_value=True),
    "query_dtype": _bsnd(dtype=F32),
    "key_dtype": _with(_bsnd(), key=_meta(2, 40, 1, 128, dtype=F16)),
    "weights_dtype": _with(_bsnd(), weights=_meta(2, 3, 8, dtype=F16)),
    "aq_dtype": _bsnd(actual_seq_lengths_query=_meta(2, dtype=torch.int64)),
    "ak_dtype": _bsnd(actual_seq_lengths_key=_meta(2, dtype=torch.uint8)),
    "block_table_dtype": _pa(block_table=_meta(2, 3, dtype=torch.int64)),
    "query_rank": _with(_bsnd(), query=_meta(2, 3, 8)),
    "query_rank_TND": _with(_tnd(), query=_meta(1, 5, 8, 128)),
    "query_zero_dim": _with(_bsnd(), query=_meta(2, 0, 8, 128)),
    "key_rank": _with(_tnd(), key=_meta(1, 30, 1, 128)),
    "key_rank_PA": _with(_pa(), key=_meta(96, 1, 128)),
    "weights_rank": _with(_bsnd(), weights=_meta(6, 8)),
    "weights_rank_TND": _with(_tnd(), weights=_meta(1, 5, 8)),
    "nonPA_block_table": _bsnd(block_table=_meta(2, 2, dtype=I32)),
    "PA_no_block_table": _with(_pa(), block_table=_DROP),
    "PA_block_table_rank": _pa(block_table=_meta(6, dtype=I32)),
    "PA_block_table_empty": _pa(block_table=_meta(2, 0, dtype=I32)),
    "PA_block_table_batch": _pa(block_table=_meta(3, 3, dtype=I32)),
    "PA_block_table_batch_TND": _with(_tnd(), layout_key="PA_BSND", key=_meta(4, 16, 1, 128),
                                      block_table=_meta(3, 2, dtype=I32)),
    "PA_block_table_batch_TND_2d_aq": _with(
        _tnd(), layout_key="PA_BSND", key=_meta(4, 16, 1, 128), block_table=_meta(3, 2, dtype=I32),
        actual_seq_lengths_query=_meta(2, 2, dtype=I32)),
    "PA_no_ak": _with(_pa(), actual_seq_lengths_key=_DROP),
    "PA_block_size_16": _pa(block_size=24),
    "PA_block_size_1024": _pa(block_size=1040, blocks=1),
    "PA_block_size_0": _pa(block_size=0),
    "PA_block_count_0": _pa(blocks=0),
    "TND_no_ak": _with(_tnd(), actual_seq_lengths_key=_DROP),
    "TND_no_aq": _with(_tnd(), layout_key="PA_BSND", key=_meta(4, 16, 1, 128),
                       block_table=_meta(2, 2, dtype=I32), actual_seq_lengths_query=_DROP),
    "TND_no_aq_no_ak": _with(_tnd(), actual_seq_lengths_query=_DROP,
                             actual_seq_lengths_key=_DROP),
    "key_N2": _with(_bsnd(), key=_meta(2, 40, 2, 128)),
    "query_D": _with(_bsnd(), query=_meta(2, 3, 8, 64)),
    "key_D": _with(_bsnd(), key=_meta(2, 40, 1, 64)),
    "aq_empty": _bsnd(actual_seq_lengths_query=_meta(0, dtype=I32)),
    "aq_scalar": _bsnd(actual_seq_lengths_query=_meta((), dtype=I32)),
    "ak_2d": _bsnd(actual_seq_lengths_key=_meta(1, 2, dtype=I32)),
    "aq_len_BSND": _bsnd(actual_seq_lengths_query=_meta(1, dtype=I32)),
    "TND_len_ak": _with(_tnd(), actual_seq_lengths_key=_meta(1, dtype=I32)),
    "PA_len_ak": _pa(actual_seq_lengths_key=_meta(3, dtype=I32)),
    "BSND_key_batch": _with(_bsnd(), key=_meta(3, 40, 1, 128)),
    "weights_N1": _with(_bsnd(), weights=_meta(2, 3, 4)),
    "weights_T1": _with(_tnd(), weights=_meta(4, 8)),
    "P_N1_64": _bsnd(n1=72),
    "P_key_not_contiguous": _with(_bsnd(), key=_meta(2, 128, 1, 40).permute(0, 3, 2, 1)),
    "P_PA_key_not_contiguous": _with(_pa(), key=_meta(6, 128, 1, 16).permute(0, 3, 2, 1)),
}


@pytest.mark.parametrize("name", list(RULES))
def test_lightning_indexer_tiling_core_rule(core, name):
    """The call breaks one rule: the core refuses it as check.check does, class and text."""
    args, kw = RULES[name]
    p = parse(OP, *args, **kw)
    with pytest.raises(CannAttentionError) as python:
        check.check(p)
    with pytest.raises(CannAttentionError) as cpp:
        native.check(p)
    assert (type(cpp.value), str(cpp.value)) == (type(python.value), str(python.value))
    assert python_outcome(p, ASCEND_A3) == core_outcome(p, ASCEND_A3)


LAYOUT_TEXTS = ["", "bsnd", "BSND ", " TND", "PA-BSND", "it's", 'say "BSND"', "both ' and \"",
                "back\\slash", "tab\tnew\nline\rcr", "nul\x00", "\x7f\x1b", "é", "BSNÐ",
                "\xa0\xad", "\u2028\u200b\ufeff", "\ud800", "\U0001f600", "\U000e0041",
                "\U000f0000", "ア"]


@pytest.mark.parametrize("text", LAYOUT_TEXTS, ids=[ascii(t) for t in LAYOUT_TEXTS])
@pytest.mark.parametrize("arg", ["layout_query", "layout_key"])
def test_lightning_indexer_tiling_core_layout_repr(core, arg, text):
    """An unknown layout is quoted as Python's repr quotes it."""
    p = parse(OP, *_bsnd()[0], sparse_count=16, **{arg: text})
    assert core_outcome(p, ASCEND_A3) == python_outcome(p, ASCEND_A3)


def test_lightning_indexer_tiling_core_repr_every_assigned_code_point(core):
    """repr of a text of every assigned code point (the core's table is Python 3.11's Unicode
    14.0; unassigned code points, which Python escapes, would need the whole table)."""
    if unicodedata.unidata_version != "14.0.0":
        pytest.skip(f"the core's table of non-printable code points is Unicode 14.0; this "
                    f"Python has {unicodedata.unidata_version}")
    text = "".join(chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) != "Cn")
    for quotes in (text, text.replace('"', ""), text.replace("'", "")):
        p = dataclasses.replace(parse(OP, *_bsnd()[0]), layout_query=quotes)
        with pytest.raises(CannAttentionError) as python:
            check.check(p)
        with pytest.raises(CannAttentionError) as cpp:
            native.check(p)
        assert str(cpp.value) == str(python.value)


def test_lightning_indexer_tiling_core_unrepresentable(core):
    """What no C type holds (a layout that is no str, an int beyond 64 bits, rank > 8) gets
    the Python check's error, which refuses each of them."""
    p = parse(OP, *_bsnd()[0], sparse_count=16)
    cases = [dataclasses.replace(p, layout_query=None),
             dataclasses.replace(p, layout_key=3),
             dataclasses.replace(p, sparse_count=2**70),
             dataclasses.replace(p, layout_key=None, sparse_count=2**70),   # the layout first
             dataclasses.replace(p, next_tokens=-2**64),
             dataclasses.replace(p, query=dataclasses.replace(p.query, shape=(1,) * 9)),
             dataclasses.replace(p, actual_seq_lengths_key=dataclasses.replace(
                 p.weights, shape=(2,) * 10, dtype=I32))]
    for q in cases:
        assert native.unrepresentable(q) is not None
        want = python_outcome(q, ASCEND_A3)
        assert isinstance(want, tuple) and core_outcome(q, ASCEND_A3) == want


# ---- the plan's refusals -----------------------------------------------------------------

def test_lightning_indexer_tiling_core_refuses_other_platforms(core):
    """The core plans Ascend A2/A3 only: a CPU or GPU platform is refused by name, and an
    Ascend SoC other than A2/A3 as tiling.plan refuses it."""
    p = parse(OP, *_bsnd()[0], sparse_count=16)
    for platform in (CPU, H100):
        with pytest.raises(CannAttentionError, match=rf"^{OP}: platform: expected an Ascend "
                           rf"platform .*got {platform.name} \({platform.kind.value}\)$"):
            native.tiling_data(p, platform)
    other = dataclasses.replace(ASCEND_A3, name="Ascend310P")
    assert core_outcome(p, other) == python_outcome(p, other)
    assert python_outcome(p, other)[1].endswith("got Ascend310P")


def test_lightning_indexer_tiling_core_refuses_small_buffers(core):
    """No tile fits: the same sentence as tiling.choose_tiles (the usage and the buffers)."""
    p = parse(OP, *_bsnd(n1=64)[0], sparse_count=8192)
    tiny = PlatformInfo("Ascend910B", PlatformKind.ASCEND, 24, (
        ("UB", 64 * KiB), ("L1", 512 * KiB), ("L0A", 64 * KiB), ("L0B", 64 * KiB),
        ("L0C", 128 * KiB)), 2)
    want = python_outcome(p, tiny)
    assert want[0] is CannAttentionError and "smallest tile" in want[1]
    assert core_outcome(p, tiny) == want


def test_lightning_indexer_tiling_core_refuses_field_overflow(core):
    """A value beyond its TilingData field (Python's struct.pack raises struct.error there):
    the core names the field."""
    p = parse(OP, _meta(2**32, 1, 1, 128), _meta(2**32, 1, 1, 128), _meta(2**32, 1, 1),
              sparse_count=16)
    with pytest.raises(CannAttentionError, match=rf"^{OP}: batch: expected a value in "
                       r"\[0, 4294967295\] .*got 4294967296$"):
        native.tiling_data(p, ASCEND_A3)


# ---- random mutations --------------------------------------------------------------------

DTYPE_CHOICES = (F16, BF16, F32, I32, torch.int64, torch.float64, torch.bool, torch.int8)
DIM_CHOICES = (0, 1, 2, 3, 8, 15, 16, 17, 40, 64, 65, 72, 128, 256, 1024, 1040)


def _mutate_tensor(rng, meta):
    r = rng.random()
    if r < 0.25:
        return dataclasses.replace(meta, dtype=rng.choice(DTYPE_CHOICES))
    shape = list(meta.shape)
    if r < 0.4 and shape:
        shape.pop(rng.randrange(len(shape)))
    elif r < 0.5:
        shape.insert(rng.randint(0, len(shape)), rng.choice(DIM_CHOICES))
    elif r < 0.9 and shape:
        shape[rng.randrange(len(shape))] = rng.choice(DIM_CHOICES + (meta.shape[0],))
    else:
        return dataclasses.replace(meta, contiguous=not meta.contiguous)
    return dataclasses.replace(meta, shape=tuple(shape))


# attributes come first in check.py, so they are changed less often than the tensors
FIELDS = (("layout_query", 1), ("layout_key", 1), ("sparse_count", 1), ("sparse_mode", 1),
          ("pre_tokens", 0.5), ("next_tokens", 0.5), ("return_value", 1), ("tensor", 12),
          ("presence", 3), ("n1", 1))


def mutate(rng, p):
    field = rng.choices([f for f, _ in FIELDS], [w for _, w in FIELDS])[0]
    if field == "n1":           # query and weights together: the N1 limit, head groups
        n1 = rng.choice((1, 5, 63, 64, 65, 72, 128))
        return dataclasses.replace(
            p, query=dataclasses.replace(p.query, shape=p.query.shape[:-2] + (n1, 128)),
            weights=dataclasses.replace(p.weights, shape=p.weights.shape[:-1] + (n1,)))
    if field in ("layout_query", "layout_key"):
        value = rng.choice(("BSND", "TND", "PA_BSND", "BNSD", "BSH", "tnd"))
    elif field == "sparse_count":
        value = rng.choice((0, -1, 2049, 3072, 3000, 8192, 8193, rng.randint(-10, 10000)))
    elif field == "sparse_mode":
        value = rng.randint(-1, 4)
    elif field in ("pre_tokens", "next_tokens"):
        value = rng.choice((INT64_MAX, 0, -1, 2048, -INT64_MAX - 1))
    elif field == "return_value":
        value = not p.return_value
    elif field == "tensor":
        field = rng.choice(native.TENSORS)
        if getattr(p, field) is None:
            return p
        value = _mutate_tensor(rng, getattr(p, field))
    else:
        field = rng.choice(native.TENSORS[3:])
        value = (None if getattr(p, field) is not None else
                 dataclasses.replace(p.weights, dtype=I32, shape=tuple(
                     rng.choice((1, 2, 3, 8)) for _ in range(rng.choice((1, 1, 2))))))
    return dataclasses.replace(p, **{field: value})


def test_lightning_indexer_tiling_core_random_mutations(core):
    """1 to 3 random changes to valid calls (several rules broken at once test the order):
    the same refusal, or the same bytes where the change left the call valid."""
    rng = random.Random(4242)
    base = sweep(seed=99, count=200)
    refused, accepted, mismatches = 0, 0, []
    for i in range(MUTATIONS):
        p = base[i % len(base)]
        for _ in range(rng.randint(1, 3)):
            p = mutate(rng, p)
        platform = ASCEND[i % 2]
        want = python_outcome(p, platform)
        got = core_outcome(p, platform)
        if got != want:
            mismatches.append((i, p, want, got))
        refused += isinstance(want, tuple)
        accepted += isinstance(want, bytes)
    assert not mismatches, mismatches[:3]
    assert refused > MUTATIONS // 2 and accepted > 100


# ---- the C struct and the tables ---------------------------------------------------------

def test_lightning_indexer_tiling_data_header_is_python_definition():
    """tiling_data.h (which the core and the kernel include) is TILING_DATA.header() verbatim."""
    module = "cann_attention.op_host.lightning_indexer.tiling"
    assert HEADER.with_name("tiling_data.h").read_text() == tiling.TILING_DATA.header(module), (
        f"op_host/lightning_indexer/tiling_data.h is stale: write {module}.TILING_DATA.header("
        f"{module!r}) into it")
    assert '#include "tiling_data.h"' in HEADER.read_text()


def test_lightning_indexer_tiling_core_sizes_and_tables(core):
    assert core.li_tiling_data_size() == tiling.TILING_DATA.size
    assert core.li_tiling_data_version() == tiling.TILING_DATA.version
    assert core.li_max_rank() == native_types.MAX_RANK
    names = [core.li_dtype_name(code).decode() for code in range(len(native_types.DTYPE_NAMES))]
    assert names == list(native_types.DTYPE_NAMES) and core.li_dtype_name(len(names)) == b""
    for dtype, code in native_types.DTYPE_CODES.items():
        assert dtype_name(dtype) == native_types.DTYPE_NAMES[code]
    assert CannAttentionTypeError in native_types.ERRORS.values()
