"""The C++ tiling core of npu_sparse_flash_attention (op_host/sparse_flash_attention/tiling_core.cpp)
agrees with Python: byte-identical TilingData to ``tiling_data(plan(p, platform), p)`` on a sweep
of random valid calls on both Ascend platforms (and on A3s with shrunken buffers, which walk
the whole tile search); the same exception class and message as
``check.check`` for every static rule and for random invalid mutations; the header's struct is
the one ``TILING_DATA.c_struct()`` generates. Params are built from meta tensors (shapes only)."""
from __future__ import annotations

import dataclasses
import random
import struct
from pathlib import Path

import pytest
import torch

from cann_attention.op_host.common import native as common_native
from cann_attention.op_host.common import native_types
from cann_attention.op_host.common.errors import (
    CannAttentionError,
    CannAttentionTypeError,
    dtype_name,
)
from cann_attention.op_host.common.platform import ASCEND_910B, ASCEND_A3, CPU, H100, KiB
from cann_attention.op_host.sparse_flash_attention import check, native, tiling
from testing.calls import parse

if common_native.compiler() is None:
    pytest.skip("no C++ compiler (g++) on this machine: the tiling core cannot be built",
                allow_module_level=True)

OP = "npu_sparse_flash_attention"
HEADER = Path(native.SOURCE).with_name("tiling_core.h")
ASCEND = (ASCEND_A3, ASCEND_910B)
INT64_MAX = 2**63 - 1
BF16, FP16, FP32, I32, I64 = torch.bfloat16, torch.float16, torch.float32, torch.int32, torch.int64
SPARSE_BLOCK_SIZES = (1, 2, 4, 8, 16, 32, 64, 128)
HEAD_COUNTS = (1, 2, 4, 8, 16, 32, 64, 128)
SWEEP = 520            # random valid calls, each planned on both Ascend platforms
MUTATIONS = 400        # random invalid (or accidentally valid) mutations of valid calls
TENSORS = native.TENSOR_FIELDS
CACHES = ("key", "value", "key_rope")


def meta(*shape, dtype=BF16):
    return torch.empty(shape, dtype=dtype, device="meta")


def non_contiguous(t):
    """The same shape and dtype, as a strided view (a cache that would have to be copied)."""
    wide = torch.empty(t.shape[:-1] + (2 * t.shape[-1] + 1,), dtype=t.dtype, device="meta")
    return wide[..., :t.shape[-1]]


def params(kw: dict):
    return parse(OP, **kw)


# ---- valid calls -------------------------------------------------------------------------

def valid_call(rng: random.Random) -> dict:
    """A random call that passes every static rule (sweep)."""
    dtype = rng.choice((BF16, FP16))
    lq = rng.choice(("BSND", "TND"))
    lkv = rng.choice((lq, "PA_BSND"))
    n1, sbs = rng.choice(HEAD_COUNTS), rng.choice(SPARSE_BLOCK_SIZES)
    B = rng.randint(1, 8)
    K = rng.choice((1, 2, 3, 16, 64, 100, 512, 2048, rng.randint(1, 4096)))
    kw = dict(scale_value=rng.uniform(0.01, 2.0), sparse_block_size=sbs, layout_query=lq,
              layout_kv=lkv, sparse_mode=rng.choice((0, 3)),
              return_softmax_lse=rng.random() < 0.5)
    if lq == "BSND":
        rows = (B, rng.choice((1, 2, rng.randint(1, 64))))
        if rng.random() < 0.3:
            kw["actual_seq_lengths_query"] = meta(B, dtype=I32)
    else:
        rows = (rng.randint(1, 256),)
        kw["actual_seq_lengths_query"] = meta(B, dtype=I32)
    kw.update(query=meta(*rows, n1, 512, dtype=dtype), query_rope=meta(*rows, n1, 64, dtype=dtype),
              sparse_indices=meta(*rows, 1, K, dtype=I32))
    if lkv == "BSND":
        kv = (B, rng.randint(1, 8192))
        if rng.random() < 0.3:
            kw["actual_seq_lengths_kv"] = meta(B, dtype=I32)
    elif lkv == "TND":
        kv = (rng.randint(1, 20000),)
        kw["actual_seq_lengths_kv"] = meta(B, dtype=I32)
    else:
        page = rng.choice([p for p in range(16, 1025, 16) if p % sbs == 0])
        kv = (rng.randint(1, 300), page)
        kw["block_table"] = meta(B, rng.randint(1, 80), dtype=I32)
        kw["actual_seq_lengths_kv"] = meta(B, dtype=I32)
    kw.update(key=meta(*kv, 1, 512, dtype=dtype), value=meta(*kv, 1, 512, dtype=dtype),
              key_rope=meta(*kv, 1, 64, dtype=dtype))
    if rng.random() < 0.3:
        kw["sinks"] = meta(n1, dtype=FP32)
    return kw


def shrunk_ascend(rng: random.Random):
    """A3 with smaller buffers: the real ones always pick 256-key steps, these walk the rest of
    the tile search (and sometimes its refusal)."""
    buffers = tuple((name, size >> rng.randint(0, 5)) for name, size in ASCEND_A3.buffers)
    return dataclasses.replace(ASCEND_A3, buffers=buffers, num_cores=rng.choice((1, 8, 24, 40)))


def python_bytes(p, platform) -> bytes:
    check.check(p)
    return tiling.tiling_data(tiling.plan(p, platform), p)


def test_sweep_of_valid_calls_gives_python_tiling_data_byte_for_byte():
    rng = random.Random(20250611)
    seen = {"pairs": set(), "sbs": set(), "n1": set(), "tiles": set(), "lse": set(),
            "sinks": set(), "pages": set(), "shrunk_refused": 0}
    for i in range(SWEEP):
        kw = valid_call(rng)
        p = params(kw)
        for platform in ASCEND:
            want = python_bytes(p, platform)
            got = native.tiling_data(p, platform)
            assert got == want, (i, platform.name, {k: getattr(v, "shape", v) for k, v in kw.items()},
                                 tiling.TILING_DATA.unpack(want), tiling.TILING_DATA.unpack(got))
        shrunk = shrunk_ascend(rng)
        try:
            want = python_bytes(p, shrunk)
        except CannAttentionError as exc:
            with pytest.raises(CannAttentionError) as got:
                native.tiling_data(p, shrunk)
            assert str(got.value) == str(exc)
            seen["shrunk_refused"] += 1
        else:
            assert native.tiling_data(p, shrunk) == want, (i, shrunk)
            plan = tiling.plan(p, shrunk)
            seen["tiles"].add((plan.head_group, plan.block_s2))
        plan = tiling.plan(p, ASCEND_A3)
        seen["pairs"].add((p.layout_query, p.layout_kv))
        seen["sbs"].add(p.sparse_block_size)
        seen["n1"].add(p.n1)
        seen["tiles"].add((plan.head_group, plan.block_s2))
        seen["lse"].add(p.return_softmax_lse)
        seen["sinks"].add(p.sinks is not None)
        if p.layout_kv == "PA_BSND":
            seen["pages"].add(p.block_size)
    # the sweep reaches what it claims to cover
    assert seen["pairs"] == {("BSND", "BSND"), ("BSND", "PA_BSND"), ("TND", "TND"),
                             ("TND", "PA_BSND")}
    assert seen["sbs"] == set(SPARSE_BLOCK_SIZES) and seen["n1"] == set(HEAD_COUNTS)
    assert seen["lse"] == {False, True} and seen["sinks"] == {False, True}
    assert len(seen["tiles"]) >= 30 and len(seen["pages"]) >= 20 and seen["shrunk_refused"] > 0


# ---- every static rule -------------------------------------------------------------------

def bsnd(**changes) -> dict:
    kw = dict(query=meta(2, 3, 4, 512), key=meta(2, 32, 1, 512), value=meta(2, 32, 1, 512),
              sparse_indices=meta(2, 3, 1, 8, dtype=I32), scale_value=0.1,
              query_rope=meta(2, 3, 4, 64), key_rope=meta(2, 32, 1, 64))
    return {**kw, **changes}


def tnd(**changes) -> dict:
    kw = dict(query=meta(5, 4, 512), key=meta(40, 1, 512), value=meta(40, 1, 512),
              sparse_indices=meta(5, 1, 8, dtype=I32), scale_value=0.1,
              query_rope=meta(5, 4, 64), key_rope=meta(40, 1, 64), layout_query="TND",
              layout_kv="TND", actual_seq_lengths_query=meta(2, dtype=I32),
              actual_seq_lengths_kv=meta(2, dtype=I32))
    return {**kw, **changes}


def paged(page=32, **changes) -> dict:
    kw = dict(key=meta(6, page, 1, 512), value=meta(6, page, 1, 512),
              key_rope=meta(6, page, 1, 64), layout_kv="PA_BSND",
              block_table=meta(2, 4, dtype=I32), actual_seq_lengths_kv=meta(2, dtype=I32))
    return bsnd(**{**kw, **changes})


E, T = CannAttentionError, CannAttentionTypeError
RULES = [   # (id, call, exception class, start of the message after "<op>: ")
    ("r2-query-dtype", bsnd(query=meta(2, 3, 4, 512, dtype=FP32)), T, "query: expected dtype"),
    ("r2-key-dtype", bsnd(key=meta(2, 32, 1, 512, dtype=FP16)), T, "key: expected dtype"),
    ("r2-value-dtype", bsnd(value=meta(2, 32, 1, 512, dtype=FP16)), T, "value: expected dtype"),
    ("r3-layout-query", bsnd(layout_query="BNSD"), E, "layout_query: expected one of"),
    ("r3-layout-query-none", bsnd(layout_query=None), E, "layout_query: expected one of"),
    ("r3-layout-query-quote", bsnd(layout_query="it's"), E, "layout_query: expected one of"),
    ("r3-layout-query-escapes", bsnd(layout_query="a\"b'\\\t\n\r\x01\x7f\x85\xa0\xad\u00e9\u4e2d"),
     E, "layout_query: expected one of"),
    ("r3-layout-kv", bsnd(layout_kv="BSH"), E, "layout_kv: expected one of"),
    ("r4-sbs-3", bsnd(sparse_block_size=3), E, "sparse_block_size: expected a power"),
    ("r4-sbs-0", bsnd(sparse_block_size=0), E, "sparse_block_size: expected a power"),
    ("r4-sbs-256", bsnd(sparse_block_size=256), E, "sparse_block_size: expected a power"),
    ("r4-sbs-negative", bsnd(sparse_block_size=-8), E, "sparse_block_size: expected a power"),
    ("r5-query-rank", bsnd(query=meta(6, 4, 512)), E, "query: expected rank 4"),
    ("r5-query-zero-dim", bsnd(query=meta(2, 0, 4, 512)), E, "query: expected no zero"),
    ("r5-key-empty", bsnd(key=meta(2, 0, 1, 512)), E, "key: expected a non-empty"),
    ("r5-indices-empty", bsnd(sparse_indices=meta(2, 3, 1, 0, dtype=I32)), E,
     "sparse_indices: expected a non-empty"),
    ("r6-sparse-mode", bsnd(sparse_mode=1), E, "sparse_mode: expected 0 or 3"),
    ("r7-pre-tokens", bsnd(pre_tokens=100), E, "pre_tokens: expected"),
    ("r7-next-tokens", bsnd(next_tokens=-(2**63)), E, "next_tokens: expected"),
    ("r8-mode0-with-rope", bsnd(attention_mode=0), E, "attention_mode: expected query_rope"),
    ("r8-mode1", bsnd(attention_mode=1), E, "attention_mode: expected 2"),
    ("r8-only-query-rope", bsnd(key_rope=None), E, "query_rope/key_rope: expected both"),
    ("r8-only-key-rope", bsnd(query_rope=None), E, "query_rope/key_rope: expected both"),
    ("r8-no-rope", bsnd(query_rope=None, key_rope=None), E, "query_rope: expected a tensor"),
    ("r9-layout-pair", tnd(layout_kv="BSND"), E, "layout_kv: expected PA_BSND or"),
    ("r9-layout-pair-bsnd", bsnd(layout_kv="TND"), E, "layout_kv: expected PA_BSND or"),
    ("r10-paged-key-rank", paged(key=meta(6, 32, 512)), E, "key: expected rank 4 (block_num"),
    ("r11-block-table-unpaged", bsnd(block_table=meta(2, 4, dtype=I32)), E,
     "block_table: expected None"),
    ("r11-block-table-missing", paged(block_table=None), E, "block_table: expected a tensor"),
    ("r11-block-table-rank", paged(block_table=meta(8, dtype=I32)), E, "block_table: expected rank 2"),
    ("r11-block-table-width", paged(block_table=meta(2, 0, dtype=I32)), E,
     "block_table: expected shape[1] > 0"),
    ("r11-block-table-rows", paged(block_table=meta(3, 4, dtype=I32)), E,
     "block_table: expected shape[0] == B=2"),
    ("r11-block-table-rows-tnd", tnd(layout_kv="PA_BSND", key=meta(6, 32, 1, 512),
                                     value=meta(6, 32, 1, 512), key_rope=meta(6, 32, 1, 64),
                                     block_table=meta(3, 4, dtype=I32)), E,
     "block_table: expected shape[0] == B=2"),
    ("r11-page-too-large", paged(page=2048), E, "key: expected block_size (key.shape[1]) in"),
    ("r11-page-not-16", paged(page=24), E, "key: expected block_size (key.shape[1]) a multiple"),
    ("r11-page-vs-sbs", paged(page=16, sparse_block_size=32), E,
     "sparse_block_size: expected a divisor"),
    ("r12-key-rank", bsnd(key=meta(64, 1, 512)), E, "key: expected rank 4 for layout BSND"),
    ("r12-key-rank-tnd", tnd(key=meta(1, 40, 1, 512)), E, "key: expected rank 3 for layout TND"),
    ("r12-n2", bsnd(key=meta(2, 32, 2, 512)), E, "key: expected N2"),
    ("r12-n1", bsnd(query=meta(2, 3, 3, 512)), E, "query: expected N1"),
    ("r12-batch", tnd(actual_seq_lengths_query=meta(0, dtype=I32)), E,
     "actual_seq_lengths_query: expected B > 0"),
    ("r13-query-d", bsnd(query=meta(2, 3, 4, 256)), E, "query: expected D"),
    ("r13-key-d", bsnd(key=meta(2, 32, 1, 576)), E, "key: expected D"),
    ("r13-value-d", bsnd(value=meta(2, 32, 1, 128)), E, "value: expected D"),
    ("r13-rope-dr", bsnd(query_rope=meta(2, 3, 4, 32)), E, "query_rope: expected Dr"),
    ("r13-rope-rank", bsnd(query_rope=meta(6, 4, 64)), E, "query_rope: expected rank 4"),
    ("r14-value-shape", bsnd(value=meta(2, 16, 1, 512)), E, "value: expected shape"),
    ("r14-key-rope-shape", bsnd(key_rope=meta(2, 31, 1, 64)), E, "key_rope: expected shape"),
    ("r14-query-rope-shape", bsnd(query_rope=meta(2, 3, 2, 64)), E, "query_rope: expected shape"),
    ("r14-indices-shape", bsnd(sparse_indices=meta(2, 3, 2, 8, dtype=I32)), E,
     "sparse_indices: expected shape"),
    ("r14-indices-rank", bsnd(sparse_indices=meta(2, 3, 1, 1, 8, dtype=I32)), E,
     "sparse_indices: expected shape"),
    ("r15-key-rope-dtype", bsnd(key_rope=meta(2, 32, 1, 64, dtype=FP16)), T, "key_rope: expected"),
    ("r15-query-rope-dtype", bsnd(query_rope=meta(2, 3, 4, 64, dtype=FP32)), T,
     "query_rope: expected"),
    ("r15-indices-dtype", bsnd(sparse_indices=meta(2, 3, 1, 8, dtype=I64)), T,
     "sparse_indices: expected dtype int32"),
    ("r15-block-table-dtype", paged(block_table=meta(2, 4, dtype=I64)), T,
     "block_table: expected dtype int32"),
    ("r15-aq-dtype", tnd(actual_seq_lengths_query=meta(2, dtype=I64)), T,
     "actual_seq_lengths_query: expected dtype int32"),
    ("r15-akv-dtype", tnd(actual_seq_lengths_kv=meta(2, dtype=torch.uint8)), T,
     "actual_seq_lengths_kv: expected dtype int32"),
    ("r16-aq-missing", tnd(actual_seq_lengths_query=None), E,
     "actual_seq_lengths_query: expected a tensor"),
    ("r16-akv-missing-tnd", tnd(actual_seq_lengths_kv=None), E,
     "actual_seq_lengths_kv: expected a tensor"),
    ("r16-akv-missing-paged", paged(actual_seq_lengths_kv=None), E,
     "actual_seq_lengths_kv: expected a tensor"),
    ("r17-aq-rank", bsnd(actual_seq_lengths_query=meta(2, 1, dtype=I32)), E,
     "actual_seq_lengths_query: expected a non-empty 1-D"),
    ("r17-aq-count", bsnd(actual_seq_lengths_query=meta(3, dtype=I32)), E,
     "actual_seq_lengths_query: expected 2 elements"),
    ("r17-akv-empty", bsnd(actual_seq_lengths_kv=meta(0, dtype=I32)), E,
     "actual_seq_lengths_kv: expected a non-empty 1-D"),
    ("r17-akv-count", tnd(actual_seq_lengths_kv=meta(3, dtype=I32)), E,
     "actual_seq_lengths_kv: expected 2 elements"),
    ("P-key-contiguous", bsnd(key=non_contiguous(meta(2, 32, 1, 512))), E,
     "key: expected a contiguous"),
    ("P-value-contiguous", bsnd(value=non_contiguous(meta(2, 32, 1, 512))), E,
     "value: expected a contiguous"),
    ("P-key-rope-contiguous", bsnd(key_rope=non_contiguous(meta(2, 32, 1, 64))), E,
     "key_rope: expected a contiguous"),
    ("P-sinks-shape", bsnd(sinks=meta(8, dtype=FP32)), E, "sinks: expected shape (4,)"),
    ("P-sinks-dtype", bsnd(sinks=meta(4, dtype=BF16)), T, "sinks: expected dtype float32"),
]


def python_error(p) -> Exception | None:
    try:
        check.check(p)
    except CannAttentionError as exc:
        return exc
    return None


def assert_same_refusal(p, want: Exception) -> None:
    with pytest.raises(CannAttentionError) as got:
        native.check(p)
    assert type(got.value) is type(want)
    assert str(got.value) == str(want)
    assert (got.value.op, got.value.arg) == (want.op, want.arg)
    with pytest.raises(type(want), match=None) as planned:   # sfa_tiling checks first too
        native.tiling_data(p, ASCEND_A3)
    assert str(planned.value) == str(want)


@pytest.mark.parametrize("kw,exc,start", [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_each_static_rule_refuses_as_python(kw, exc, start):
    p = params(kw)
    want = python_error(p)
    assert type(want) is exc and str(want).startswith(f"{OP}: {start}"), want
    assert_same_refusal(p, want)


def test_the_base_calls_of_the_rules_pass():
    for kw in (bsnd(), tnd(), paged()):
        p = params(kw)
        for platform in ASCEND:
            assert native.tiling_data(p, platform) == python_bytes(p, platform)


def test_a_missing_required_tensor_is_refused_as_the_parser_refuses_it():
    for name in ("query", "key", "value", "sparse_indices"):
        with pytest.raises(CannAttentionTypeError) as want:
            params(bsnd(**{name: None}))
        p = dataclasses.replace(params(bsnd()), **{name: None})
        with pytest.raises(CannAttentionTypeError) as got:
            native.check(p)
        assert str(got.value) == str(want.value)


def test_a_tensor_the_shared_descriptor_cannot_hold_gets_the_python_refusal():
    """A rank above native_types.MAX_RANK: every rank rule of check.py refuses it, and the bridge
    lets the Python check say which rule refuses first."""
    p = params(bsnd())
    deep = (1,) * (native_types.MAX_RANK + 1)
    cases = [dataclasses.replace(p, query=dataclasses.replace(p.query,
                                                              shape=(2, 3, 4, 512) + deep)),
             dataclasses.replace(p, key_rope=dataclasses.replace(p.key_rope, shape=deep)),
             dataclasses.replace(p, sinks=dataclasses.replace(p.query, shape=deep, dtype=FP32))]
    for q in cases:
        want = python_error(q)
        assert want is not None
        assert_same_refusal(q, want)


# ---- random invalid mutations --------------------------------------------------------------

DTYPES = (BF16, FP16, FP32, I32, I64, torch.bool, torch.float8_e4m3fn, torch.uint8)
DIMS = (0, 1, 2, 3, 4, 8, 16, 24, 32, 63, 64, 128, 512, 576, 1024, 2048)
ATTRIBUTES = {
    "sparse_block_size": (0, 1, 2, 3, 4, 16, 32, 64, 128, 256, -1),
    "sparse_mode": (0, 1, 2, 3, 4, -1),
    "pre_tokens": (INT64_MAX, 0, 100, -1, -(2**63)),
    "next_tokens": (INT64_MAX, 0, 100, -1),
    "attention_mode": (0, 1, 2, 3),
    "layout_query": ("BSND", "TND", "PA_BSND", "BNSD", "bsnd", "", None, "it's", "a\"b\tc"),
    "layout_kv": ("BSND", "TND", "PA_BSND", "BSH", " TND", None),
}


def mutate(kw: dict, rng: random.Random) -> dict:
    kw = dict(kw)
    what = rng.random()
    if what < 0.3:
        name = rng.choice(sorted(ATTRIBUTES))
        kw[name] = rng.choice(ATTRIBUTES[name])
        return kw
    name = rng.choice(TENSORS)
    t = kw.get(name)
    if t is None:        # add an absent tensor (optional ones), of a plausible shape
        shape = {"block_table": (2, 4), "sinks": (rng.choice((1, 4, 8)),)}.get(
            name, (rng.randint(0, 4),))
        dtype = FP32 if name == "sinks" else I32
        kw[name] = meta(*shape, dtype=dtype)
        return kw
    shape = list(t.shape)
    if what < 0.55:
        shape[rng.randrange(len(shape))] = rng.choice(DIMS)
    elif what < 0.65 and len(shape) > 0:
        del shape[rng.randrange(len(shape))]
    elif what < 0.75:
        shape.insert(rng.randrange(len(shape) + 1), rng.choice((1, 2)))
    elif what < 0.85:
        kw[name] = meta(*shape, dtype=rng.choice(DTYPES))
        return kw
    elif what < 0.92 and name not in ("query", "key", "value", "sparse_indices"):
        kw[name] = None
        return kw
    else:
        kw[name] = non_contiguous(t)
        return kw
    kw[name] = meta(*shape, dtype=t.dtype)
    return kw


def test_random_mutations_refuse_or_plan_as_python():
    rng = random.Random(7)
    refused, passed = {}, 0
    for i in range(MUTATIONS):
        kw = valid_call(rng)
        for _ in range(rng.choice((1, 1, 2))):
            kw = mutate(kw, rng)
        p = params(kw)
        want = python_error(p)
        if want is None:
            platform = rng.choice(ASCEND)
            assert native.tiling_data(p, platform) == python_bytes(p, platform), i
            passed += 1
            continue
        assert_same_refusal(p, want)
        refused[want.arg] = refused.get(want.arg, 0) + 1
    assert sum(refused.values()) >= MUTATIONS // 2 and passed > 0
    assert len(refused) >= 15, refused


# ---- the plan's refusals ---------------------------------------------------------------------

def test_platform_refusals_match_python():
    p = params(bsnd(query=meta(2, 3, 128, 512), query_rope=meta(2, 3, 128, 64),
                    sparse_block_size=128))
    check.check(p)
    other_soc = dataclasses.replace(ASCEND_A3, name="Ascend310P")
    tiny = dataclasses.replace(ASCEND_A3, buffers=(("UB", 4 * KiB), ("L1", 64 * KiB),
                                                   ("L0A", 64 * KiB), ("L0B", 64 * KiB),
                                                   ("L0C", 128 * KiB)))
    for platform in (other_soc, tiny):
        with pytest.raises(CannAttentionError) as want:
            tiling.plan(p, platform)
        with pytest.raises(CannAttentionError) as got:
            native.tiling_data(p, platform)
        assert type(got.value) is type(want.value) and str(got.value) == str(want.value)
    assert "smallest tile (1 head x 128 keys" in str(want.value)


@pytest.mark.parametrize("platform", [H100, CPU], ids=lambda pl: pl.name)
def test_gpu_and_cpu_platforms_are_refused_by_name(platform):
    with pytest.raises(CannAttentionError, match=f"platform: expected an Ascend platform .*, "
                                                 f"got {platform.name}"):
        native.tiling_data(params(bsnd()), platform)


def test_values_that_overflow_a_field_are_refused_by_name():
    # Python's struct.pack raises struct.error / OverflowError there; the core names the field
    big_batch = params(bsnd(query=meta(2**33, 1, 1, 512), query_rope=meta(2**33, 1, 1, 64),
                            sparse_indices=meta(2**33, 1, 1, 8, dtype=I32),
                            key=meta(2**33, 2, 1, 512), value=meta(2**33, 2, 1, 512),
                            key_rope=meta(2**33, 2, 1, 64)))
    with pytest.raises(struct.error):
        python_bytes(big_batch, ASCEND_A3)
    with pytest.raises(CannAttentionError, match="tiling_data.batch: expected a value in"):
        native.tiling_data(big_batch, ASCEND_A3)
    huge_scale = params(bsnd(scale_value=1e39))
    with pytest.raises(OverflowError):
        python_bytes(huge_scale, ASCEND_A3)
    with pytest.raises(CannAttentionError, match="tiling_data.scale_value"):
        native.tiling_data(huge_scale, ASCEND_A3)


# ---- the struct and the dtype table --------------------------------------------------------

def test_header_struct_is_the_generated_python_definition():
    """tiling_data.h (which the core and the kernel include) is TILING_DATA.header() verbatim."""
    module = "cann_attention.op_host.sparse_flash_attention.tiling"
    assert HEADER.with_name("tiling_data.h").read_text() == tiling.TILING_DATA.header(module), (
        f"op_host/sparse_flash_attention/tiling_data.h is stale: write {module}.TILING_DATA"
        f".header({module!r}) into it")
    assert '#include "tiling_data.h"' in HEADER.read_text()
    assert native.library().sfa_tiling_data_size() == tiling.TILING_DATA.size


def test_every_torch_dtype_has_a_code_in_the_core():
    torch_names = {dtype_name(v) for v in vars(torch).values() if isinstance(v, torch.dtype)}
    core_names = {native.library().sfa_dtype_name(code).decode()
                  for code in range(len(native_types.DTYPE_NAMES))}
    assert torch_names <= core_names, torch_names - core_names
