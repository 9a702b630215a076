"""The shared vocabulary of the C++ tiling cores (op_host/common/cpp/core_common.h) and its
Python mirror (op_host/common/native_types.py) agree: the dtype table (every torch dtype has one
code, named as the messages spell it, numbered as torch numbers it), the platform kinds, the
struct sizes and field offsets, Python's spellings (repr of a str, a shape's tuple) and the
rules shared by the ops (Layout.parse, the block table's shape, a cache's contiguity). The
header's helpers are reached through a small test-only library built here with
``native.build_library``; the op libraries answer for their own tables and structs."""
from __future__ import annotations

import ctypes
import re
from pathlib import Path

import pytest
import torch

from cann_attention.op_host.common import native, native_types
from cann_attention.op_host.common.batched_params import (
    check_block_table_shape,
    check_cache_contiguous,
)
from cann_attention.op_host.common.errors import (
    CannAttentionError,
    CannAttentionTypeError,
    CannAttentionValueError,
    Checker,
    dtype_name,
)
from cann_attention.op_host.common.layouts import Layout
from cann_attention.op_host.common.native_types import CoreText, TensorDesc
from cann_attention.op_host.common.platform import (
    ASCEND_910B,
    ASCEND_A3,
    CPU,
    H100,
    PlatformKind,
)
from cann_attention.op_host.common.tensor_meta import TensorMeta
from cann_attention.op_host.common.tiling_data import LAYOUT_CODES
from cann_attention.op_host.lightning_indexer import native as li_native
from cann_attention.op_host.sparse_flash_attention import native as sfa_native

pytestmark = pytest.mark.skipif(native.compiler() is None,
                                reason="no C++ compiler (g++) on this machine")

OP = "op"
MESSAGE = 1 << 16

# The header's helpers behind C entry points (test only; the op libraries export none of these).
TEST_SOURCE = r"""
#include <cstddef>
#include <stdexcept>

#include "core_common.h"

using namespace cann_attention;

namespace {
constexpr Checker kCheck("op");
}

extern "C" {

int32_t t_dtype_count(void) { return kDtypeCount; }
const char* t_dtype_name(int32_t code) { return DtypeNameOrEmpty(code); }
void t_dtype_message_name(int32_t code, char* out, int64_t n) {
    WriteMessage(DtypeName(code), out, n);
}
const char* t_kind_name(int32_t kind) { return PlatformKindName(kind); }
int32_t t_max_rank(void) { return kMaxRank; }
const char* t_layout_name(int32_t i) { return LayoutName(static_cast<Layout>(i)); }
uint32_t t_layout_code(int32_t i) { return LayoutCode(static_cast<Layout>(i)); }

void t_shape_text(const int64_t* dims, int64_t rank, char* out, int64_t n) {
    WriteMessage(ShapeText(dims, rank), out, n);
}
void t_repr(const CoreText* text, char* out, int64_t n) { WriteMessage(PyRepr(*text), out, n); }

int32_t t_parse_layout(const CoreText* text, int32_t which, int32_t* code, char* msg,
                       int64_t n) {
    return Guarded(kCheck, msg, n, [&] {
        const Layout layout =
            which == 0 ? ParseLayout(kCheck, *text, {Layout::kBSND, Layout::kTND}, "layout_query")
                       : ParseLayout(kCheck, *text, {Layout::kPA_BSND, Layout::kBSND, Layout::kTND},
                                     "layout_key");
        *code = static_cast<int32_t>(LayoutCode(layout));
    });
}

int32_t t_block_table(const TensorDesc* bt, int32_t layout, int64_t batch, const char* arg,
                      char* msg, int64_t n) {
    return Guarded(kCheck, msg, n, [&] {
        CheckBlockTableShape(kCheck, *bt, static_cast<Layout>(layout), batch, arg);
    });
}

int32_t t_cache_contiguous(const TensorDesc* t, const char* arg, char* msg, int64_t n) {
    return Guarded(kCheck, msg, n, [&] { CheckCacheContiguous(kCheck, arg, *t); });
}

int32_t t_raise(int32_t kind, const char* arg, const char* text, char* msg, int64_t n) {
    return Guarded(kCheck, msg, n, [&] { kCheck.Raise(static_cast<ErrorKind>(kind), arg, text); });
}

int32_t t_throw(char* msg, int64_t n) {
    return Guarded(kCheck, msg, n, [&] { throw std::runtime_error("boom"); });
}

int64_t t_struct_size(int32_t which) { return StructSize<TensorDesc>(which); }

// offsets of the shared structs' fields, in declaration order
int64_t t_offsets(int32_t which, int64_t* out) {
    int64_t n = 0;
    switch (which) {
        case kStructPlatform:
            for (size_t o : {offsetof(CorePlatform, name), offsetof(CorePlatform, kind),
                             offsetof(CorePlatform, vector_cores_per_core),
                             offsetof(CorePlatform, num_cores), offsetof(CorePlatform, ub),
                             offsetof(CorePlatform, l1), offsetof(CorePlatform, l0a),
                             offsetof(CorePlatform, l0b), offsetof(CorePlatform, l0c)})
                out[n++] = static_cast<int64_t>(o);
            break;
        case kStructTensorDesc:
            for (size_t o : {offsetof(TensorDesc, present), offsetof(TensorDesc, dtype),
                             offsetof(TensorDesc, rank), offsetof(TensorDesc, contiguous),
                             offsetof(TensorDesc, dims)})
                out[n++] = static_cast<int64_t>(o);
            break;
        case kStructText:
            for (size_t o : {offsetof(CoreText, data), offsetof(CoreText, size)})
                out[n++] = static_cast<int64_t>(o);
            break;
    }
    return n;
}

}  // extern "C"
"""

TEXT_P = ctypes.POINTER(CoreText)
DESC_P = ctypes.POINTER(TensorDesc)
MSG = (ctypes.c_char_p, ctypes.c_int64)
SIGNATURES = {
    "t_dtype_count": (ctypes.c_int32, ()),
    "t_dtype_name": (ctypes.c_char_p, (ctypes.c_int32,)),
    "t_dtype_message_name": (None, (ctypes.c_int32, *MSG)),
    "t_kind_name": (ctypes.c_char_p, (ctypes.c_int32,)),
    "t_max_rank": (ctypes.c_int32, ()),
    "t_layout_name": (ctypes.c_char_p, (ctypes.c_int32,)),
    "t_layout_code": (ctypes.c_uint32, (ctypes.c_int32,)),
    "t_shape_text": (None, (ctypes.POINTER(ctypes.c_int64), ctypes.c_int64, *MSG)),
    "t_repr": (None, (TEXT_P, *MSG)),
    "t_parse_layout": (ctypes.c_int32, (TEXT_P, ctypes.c_int32, ctypes.POINTER(ctypes.c_int32),
                                        *MSG)),
    "t_block_table": (ctypes.c_int32, (DESC_P, ctypes.c_int32, ctypes.c_int64, ctypes.c_char_p,
                                       *MSG)),
    "t_cache_contiguous": (ctypes.c_int32, (DESC_P, ctypes.c_char_p, *MSG)),
    "t_raise": (ctypes.c_int32, (ctypes.c_int32, ctypes.c_char_p, ctypes.c_char_p, *MSG)),
    "t_throw": (ctypes.c_int32, MSG),
    "t_struct_size": (ctypes.c_int64, (ctypes.c_int32,)),
    "t_offsets": (ctypes.c_int64, (ctypes.c_int32, ctypes.POINTER(ctypes.c_int64))),
}


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    source = tmp_path_factory.mktemp("native") / "core_common_test.cpp"
    source.write_text(TEST_SOURCE)
    lib = ctypes.CDLL(str(native.build_library("core_common_test", [source])))
    for name, (restype, argtypes) in SIGNATURES.items():
        getattr(lib, name).restype = restype
        getattr(lib, name).argtypes = argtypes
    return lib


@pytest.fixture(scope="module", params=["sfa", "li"])
def op_core(request):
    """(prefix, library, params mirror) of each op's core."""
    module = {"sfa": sfa_native, "li": li_native}[request.param]
    return request.param, module.library(), module.CoreParams


def _text_of(fill) -> str:
    out = ctypes.create_string_buffer(MESSAGE)
    fill(out, MESSAGE)
    return out.value.decode("utf-8", "surrogateescape")


def _outcome(function, *args):
    """None, or the exception the bridges raise for the refusal."""
    out = ctypes.create_string_buffer(MESSAGE)
    code = function(*args, out, MESSAGE)
    if not code:
        return None
    try:
        native_types.raise_refusal(code, out.value)
    except CannAttentionError as exc:
        return exc
    raise AssertionError("raise_refusal returned")


def _python_outcome(function, *args):
    try:
        function(*args)
    except CannAttentionError as exc:
        return exc
    return None


def _same(got, want):
    assert (type(got), str(got)) == (type(want), str(want))
    if want is not None:
        assert (got.op, got.arg) == (want.op, want.arg)


# ---- dtypes ------------------------------------------------------------------------------------

TORCH_DTYPES = sorted({v for v in vars(torch).values() if isinstance(v, torch.dtype)}, key=str)


def test_c_and_python_dtype_tables_are_one_table(lib, op_core):
    prefix, core, _ = op_core
    count = lib.t_dtype_count()
    assert count == len(native_types.DTYPE_NAMES) == len(set(native_types.DTYPE_NAMES))
    names = [lib.t_dtype_name(code).decode() for code in range(count)]
    assert names == list(native_types.DTYPE_NAMES)
    op_names = [getattr(core, f"{prefix}_dtype_name")(code).decode() for code in range(count)]
    assert op_names == names
    for code in (-1, count, 1000):
        assert lib.t_dtype_name(code) == b""
        assert getattr(core, f"{prefix}_dtype_name")(code) == b""
        assert _text_of(lambda out, n: lib.t_dtype_message_name(code, out, n)) == (
            f"<unknown dtype code {code}>")


def test_every_torch_dtype_has_one_code_named_as_the_messages_spell_it(lib):
    assert set(TORCH_DTYPES) == set(native_types.DTYPE_CODES)
    codes = [native_types.DTYPE_CODES[dtype] for dtype in TORCH_DTYPES]
    assert len(set(codes)) == len(codes)                   # aliases (torch.half) are one dtype
    for dtype in TORCH_DTYPES:
        code = native_types.DTYPE_CODES[dtype]
        name = str(dtype).removeprefix("torch.")
        assert native_types.DTYPE_NAMES[code] == name == dtype_name(dtype)
        assert _text_of(lambda out, n: lib.t_dtype_message_name(code, out, n)) == name
    assert native_types.DTYPE_CODES[torch.half] == native_types.DTYPE_CODES[torch.float16]


# c10::ScalarType's names that are not the Python name in upper camel case
C10_NAMES = {"Byte": "uint8", "Char": "int8", "Short": "int16", "Int": "int32", "Long": "int64",
             "Half": "float16", "Float": "float32", "Double": "float64",
             "ComplexHalf": "complex32", "ComplexFloat": "complex64",
             "ComplexDouble": "complex128"}


def test_dtype_codes_are_torchs_scalar_type_numbers():
    include = Path(torch.__file__).parent / "include"
    for header in (include / "torch" / "headeronly" / "core" / "ScalarType.h",
                   include / "c10" / "core" / "ScalarType.h"):
        text = header.read_text() if header.exists() else ""
        block = re.search(r"#define AT_FORALL_SCALAR_TYPES_WITH_COMPLEX_AND_QINTS\(_\)(.*?)\n\n",
                          text, re.S)
        if block:
            break
    else:
        pytest.skip("this torch has no C++ headers to read c10::ScalarType from")
    entries = re.findall(r"_\([^,]+,\s*(\w+)\)\s*/\*\s*(\d+)\s*\*/", block.group(1))
    assert entries
    for name, number in entries:
        python_name = C10_NAMES.get(name, name.lower())
        assert native_types.DTYPE_NAMES[int(number)] == python_name, (name, number)


# ---- platforms ---------------------------------------------------------------------------------

def test_platform_kinds_agree(lib):
    assert set(native_types.PLATFORM_KINDS) == set(PlatformKind)
    for kind, code in native_types.PLATFORM_KINDS.items():
        assert lib.t_kind_name(code).decode() == kind.value
    assert 0 not in native_types.PLATFORM_KINDS.values()
    assert lib.t_kind_name(0) == lib.t_kind_name(99) == b"unknown"


@pytest.mark.parametrize("platform", [ASCEND_A3, ASCEND_910B, H100, CPU], ids=lambda p: p.name)
def test_core_platform_fills_the_shared_struct(platform):
    core = native_types.core_platform(platform)
    assert core.name.decode() == platform.name
    assert core.kind == native_types.PLATFORM_KINDS[platform.kind]
    assert (core.num_cores, core.vector_cores_per_core) == (platform.num_cores,
                                                            platform.vector_cores_per_core)
    buffers = dict(platform.buffers)
    assert [core.ub, core.l1, core.l0a, core.l0b, core.l0c] == [
        buffers.get(name, 0) for name in native_types.ASCEND_BUFFERS]


# ---- the structs -------------------------------------------------------------------------------

def test_struct_sizes_of_every_core_equal_the_ctypes_mirrors(lib, op_core):
    prefix, core, params = op_core
    size = getattr(core, f"{prefix}_struct_size")
    assert size(native_types.STRUCT_PARAMS) == ctypes.sizeof(params)
    for which, mirror in native_types.SHARED_STRUCTS.items():
        assert size(which) == lib.t_struct_size(which) == ctypes.sizeof(mirror)
    assert size(99) == -1
    assert lib.t_max_rank() == native_types.MAX_RANK


@pytest.mark.parametrize("which", sorted(native_types.SHARED_STRUCTS))
def test_shared_struct_fields_sit_where_c_puts_them(lib, which):
    mirror = native_types.SHARED_STRUCTS[which]
    out = (ctypes.c_int64 * 16)()
    n = lib.t_offsets(which, out)
    assert list(out[:n]) == [getattr(mirror, name).offset for name, _ in mirror._fields_]


def test_a_mirror_out_of_step_with_its_struct_is_refused_at_load():
    core = native_types.TilingCore("sfa", sfa_native.SOURCE, li_native.CoreParams,
                                   sfa_native.core_params, lambda p: None)
    with pytest.raises(native.NativeBuildError, match="sfa_struct_size"):
        core.library()


def test_tensor_desc_and_text():
    meta = TensorMeta((2, 3, 4), torch.bfloat16, contiguous=False)
    desc = native_types.tensor_desc("query", meta)
    assert (desc.present, desc.dtype, desc.rank, desc.contiguous) == (
        1, native_types.DTYPE_CODES[torch.bfloat16], 3, 0)
    assert list(desc.dims[:3]) == [2, 3, 4]
    absent = native_types.tensor_desc("sinks", None)
    assert (absent.present, absent.rank) == (0, 0)
    with pytest.raises(native_types.Unrepresentable, match="query has rank 9"):
        native_types.tensor_desc("query", TensorMeta((1,) * 9, torch.float16))
    assert native_types.text(None).data is None
    text = native_types.text("é\ud800")
    assert (text.data, text.size) == ("é\ud800".encode("utf-8", "surrogatepass"), 5)


# ---- Python's spellings ------------------------------------------------------------------------

SHAPES = [(), (0,), (4,), (2, 3), (1, 2, 3, 4, 5, 6, 7, 8), (-1,), (2**63 - 1, -2**63),
          (0, 0), (10**18,)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_shape_text_is_pythons_tuple(lib, shape):
    dims = (ctypes.c_int64 * max(len(shape), 1))(*shape)
    assert _text_of(lambda out, n: lib.t_shape_text(dims, len(shape), out, n)) == str(shape)


TEXTS = ["", "BSND", "it's", 'say "x"', "both ' and \"", "'", '"', "\\", "back\\slash'",
         "tab\tnew\nline\rcr", "nul\x00", "\x01\x1b\x7f", "\x80\x85\x9f", "\xa0\xad", "é", "ÿ",
         "BSNÐ", "中文", "\u2028\u2029\u200b\ufeff", "\u0600\u061c\u180e", "\ud800", "\udfff",
         "\ue000", "\U0001f600", "\U000e0001\U000e0041", "\U000f0000\U0010fffd", "ア",
         "mixed 'é' \"\t\" \U0001f600"]


@pytest.mark.parametrize("value", TEXTS, ids=ascii)
def test_repr_is_pythons(lib, value):
    text = native_types.text(value)
    got = _text_of(lambda out, n: lib.t_repr(ctypes.byref(text), out, n))
    assert got == repr(value)


def test_repr_of_none_and_of_bytes_no_str_encodes(lib):
    none = native_types.text(None)
    assert _text_of(lambda out, n: lib.t_repr(ctypes.byref(none), out, n)) == "None"
    # not UTF-8 (no Python str gives these bytes): each stray byte as \x
    for raw, want in ((b"\xff", r"'\xff'"), (b"a\xc3", r"'a\xc3'"), (b"\xc0\x80", r"'\xc0\x80'"),
                      (b"\xf4\x90\x80\x80", r"'\xf4\x90\x80\x80'")):
        text = CoreText(raw, len(raw))
        assert _text_of(lambda out, n: lib.t_repr(ctypes.byref(text), out, n)) == want


# ---- rules shared by the ops -------------------------------------------------------------------

def test_layout_names_and_codes(lib):
    for layout, code in LAYOUT_CODES.items():
        assert lib.t_layout_name(code).decode() == layout.value
        assert lib.t_layout_code(code) == code
    assert set(LAYOUT_CODES) == set(Layout)


@pytest.mark.parametrize("value", ["BSND", "TND", "PA_BSND", "BNSD", "bsnd", "", "BSND ", None,
                                   "it's", "nul\x00", "TND\x00"], ids=ascii)
@pytest.mark.parametrize("which", [0, 1])
def test_parse_layout_is_layout_parse(lib, value, which):
    allowed, arg = (((Layout.BSND, Layout.TND), "layout_query") if which == 0 else
                    ((Layout.PA_BSND, Layout.BSND, Layout.TND), "layout_key"))
    text, code = native_types.text(value), ctypes.c_int32(-1)
    got = _outcome(lib.t_parse_layout, ctypes.byref(text), which, ctypes.byref(code))
    want = _python_outcome(Layout.parse, value, allowed, Checker(OP), arg)
    _same(got, want)
    if want is None:
        assert code.value == LAYOUT_CODES[Layout(value)]


def _desc(shape, contiguous=True):
    if shape is None:
        return None, TensorDesc()
    meta = TensorMeta(tuple(shape), torch.int32, contiguous=contiguous)
    return meta, native_types.tensor_desc("block_table", meta)


@pytest.mark.parametrize("shape", [None, (2, 4), (3, 4), (2, 0), (8,), (2, 4, 1), ()], ids=str)
@pytest.mark.parametrize("layout", [Layout.BSND, Layout.TND, Layout.PA_BSND], ids=str)
@pytest.mark.parametrize("batch", [2, None])
@pytest.mark.parametrize("arg", ["layout_kv", "layout_key"])
def test_block_table_shape_is_batched_params(lib, shape, layout, batch, arg):
    meta, desc = _desc(shape)
    got = _outcome(lib.t_block_table, ctypes.byref(desc), LAYOUT_CODES[layout],
                   -1 if batch is None else batch, arg.encode())
    want = _python_outcome(check_block_table_shape, Checker(OP), meta, layout, batch, arg)
    _same(got, want)


@pytest.mark.parametrize("shape", [(2, 16, 1, 512), (4,), ()], ids=str)
@pytest.mark.parametrize("contiguous", [True, False])
def test_cache_contiguous_is_batched_params(lib, shape, contiguous):
    meta, desc = _desc(shape, contiguous)
    got = _outcome(lib.t_cache_contiguous, ctypes.byref(desc), b"key")
    want = _python_outcome(check_cache_contiguous, Checker(OP), "key", meta)
    _same(got, want)


# ---- the error convention ----------------------------------------------------------------------

@pytest.mark.parametrize("kind,cls", [(1, CannAttentionError), (2, CannAttentionTypeError),
                                      (3, CannAttentionValueError)])
def test_refusals_map_to_the_python_exceptions(lib, kind, cls):
    got = _outcome(lib.t_raise, kind, b"arg", "expected x: y, got 'é'".encode())
    assert type(got) is cls and (got.op, got.arg) == (OP, "arg")
    assert str(got) == "op: arg: expected x: y, got 'é'"
    assert str(got) == str(cls(OP, "arg", "expected x: y, got 'é'"))
    assert native_types.ERRORS[kind] is cls


def test_an_unknown_kind_and_anything_thrown_are_runtime_errors(lib):
    with pytest.raises(CannAttentionError) as got:
        native_types.raise_refusal(7, b"op: arg: text")
    assert type(got.value) is CannAttentionError and str(got.value) == "op: arg: text"
    thrown = _outcome(lib.t_throw)
    assert type(thrown) is CannAttentionError
    assert str(thrown) == "op: tiling core: internal error: boom"


def test_message_size_holds_the_worst_repr():
    params = li_native.CoreParams(layout_query=native_types.text("\x7f" * 1000),
                                  layout_key=native_types.text("\U0001f600" * 10))
    assert native_types.message_size(params) == 4096 + 4 * (1000 + 40)
    assert len(repr("\x7f" * 1000)) + len(repr("\U0001f600" * 10)) < 4 * (1000 + 40)
