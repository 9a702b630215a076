// The vocabulary every C++ tiling core (op_host/<op>/tiling_core.cpp) shares: plain C++17, no
// CANN header. A CANN adapter maps gert's types onto these once, for every op:
//
// - the error convention: a core refuses a call the way the Python check does, with the message
//   "<op>: <argument>: expected <what>, got <what>" (op_host/common/errors.py) and an ErrorKind
//   saying which Python exception carries it (TypeError for dtypes and Python types, ValueError
//   where MindSpore documents one, RuntimeError otherwise);
// - the plain structs of the C ABI: DtypeCode, TensorDesc, CoreText, CorePlatform (their ctypes
//   mirrors are op_host/common/native_types.py; a test compares the two);
// - Python's spellings of values in messages (repr of a str, tuple of a shape, dict of buffers),
//   the layouts of common/layouts.py and the TilingData field ranges of struct.pack.
//
// Everything here is inline: CANN's build links several cores into one library.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "TilingData is little-endian (common/tiling_data.py); the cores copy their structs as is"
#endif

namespace cann_attention {

// ---- the error convention ---------------------------------------------------------------------

enum class ErrorKind : int32_t { kNone = 0, kRuntime = 1, kType = 2, kValue = 3 };

// Thrown by a core's checks; the C entry point turns it into (kind, message).
struct Refusal {
    ErrorKind kind;
    std::string message;
};

inline std::string Expected(const std::string& op, const std::string& arg,
                            const std::string& expected, const std::string& actual) {
    return op + ": " + arg + ": expected " + expected + ", got " + actual;
}

// Copies a message into a caller's buffer (always NUL-terminated).
inline void WriteMessage(const std::string& message, char* buffer, int64_t size) {
    if (buffer == nullptr || size <= 0) return;
    const size_t n = std::min<size_t>(message.size(), static_cast<size_t>(size - 1));
    std::memcpy(buffer, message.data(), n);
    buffer[n] = '\0';
}

// common/errors.py Checker: the refusals of one op, which keeps the op's name out of every rule.
class Checker {
  public:
    explicit constexpr Checker(const char* op) : op_(op) {}

    const char* op() const { return op_; }

    // CannAttentionError(op, arg, message) of the given kind
    [[noreturn]] void Raise(ErrorKind kind, const std::string& arg,
                            const std::string& message) const {
        throw Refusal{kind, std::string(op_) + ": " + arg + ": " + message};
    }

    [[noreturn]] void Fail(ErrorKind kind, const std::string& arg, const std::string& expected,
                           const std::string& actual) const {
        throw Refusal{kind, Expected(op_, arg, expected, actual)};
    }

    void Require(bool ok, const std::string& arg, const std::string& expected,
                 const std::string& actual) const {
        if (!ok) Fail(ErrorKind::kRuntime, arg, expected, actual);
    }

    void RequireType(bool ok, const std::string& arg, const std::string& expected,
                     const std::string& actual) const {
        if (!ok) Fail(ErrorKind::kType, arg, expected, actual);
    }

    void RequireValue(bool ok, const std::string& arg, const std::string& expected,
                      const std::string& actual) const {
        if (!ok) Fail(ErrorKind::kValue, arg, expected, actual);
    }

    // An argument of the C entry point itself (a C caller's mistake; Python never passes null).
    void RequireNonNull(const void* pointer, const std::string& arg) const {
        if (pointer == nullptr) Fail(ErrorKind::kRuntime, arg, "a non-null pointer", "null");
    }

  private:
    const char* op_;
};

// Runs one entry point's `body`, turning a refusal (or anything thrown) into (kind, message):
// returns 0 or the ErrorKind, with the message written NUL-terminated (cut to message_size).
template <typename Body>
int32_t Guarded(const Checker& check, char* message, int64_t message_size, Body body) {
    try {
        body();
        WriteMessage("", message, message_size);
        return 0;
    } catch (const Refusal& r) {
        WriteMessage(r.message, message, message_size);
        return static_cast<int32_t>(r.kind);
    } catch (const std::exception& e) {
        WriteMessage(std::string(check.op()) + ": tiling core: internal error: " + e.what(),
                     message, message_size);
    } catch (...) {
        WriteMessage(std::string(check.op()) + ": tiling core: internal error", message,
                     message_size);
    }
    return static_cast<int32_t>(ErrorKind::kRuntime);
}

// INT64_MAX (params.py), the default of pre_tokens / next_tokens
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

// ---- dtypes -----------------------------------------------------------------------------------

// Tensor dtypes, numbered as torch numbers them (c10::ScalarType): every torch dtype has a code.
// A CANN adapter maps ge::DataType onto them; the messages spell them as torch does.
enum DtypeCode : int32_t {
    kUint8 = 0, kInt8 = 1, kInt16 = 2, kInt32 = 3, kInt64 = 4, kFloat16 = 5, kFloat32 = 6,
    kFloat64 = 7, kComplex32 = 8, kComplex64 = 9, kComplex128 = 10, kBool = 11, kQint8 = 12,
    kQuint8 = 13, kQint32 = 14, kBfloat16 = 15, kQuint4x2 = 16, kQuint2x4 = 17, kBits1x8 = 18,
    kBits2x4 = 19, kBits4x2 = 20, kBits8 = 21, kBits16 = 22, kFloat8E5m2 = 23,
    kFloat8E4m3fn = 24, kFloat8E5m2fnuz = 25, kFloat8E4m3fnuz = 26, kUint16 = 27, kUint32 = 28,
    kUint64 = 29, kUint1 = 30, kUint2 = 31, kUint3 = 32, kUint4 = 33, kUint5 = 34, kUint6 = 35,
    kUint7 = 36, kInt1 = 37, kInt2 = 38, kInt3 = 39, kInt4 = 40, kInt5 = 41, kInt6 = 42,
    kInt7 = 43, kFloat8E8m0fnu = 44, kFloat4E2m1fnX2 = 45,
    kDtypeCount = 46
};

// torch's names in DtypeCode order (str(dtype) without "torch."; native_types.DTYPE_NAMES).
inline constexpr const char* kDtypeNames[kDtypeCount] = {
    "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64", "complex32",
    "complex64", "complex128", "bool", "qint8", "quint8", "qint32", "bfloat16", "quint4x2",
    "quint2x4", "bits1x8", "bits2x4", "bits4x2", "bits8", "bits16", "float8_e5m2",
    "float8_e4m3fn", "float8_e5m2fnuz", "float8_e4m3fnuz", "uint16", "uint32", "uint64", "uint1",
    "uint2", "uint3", "uint4", "uint5", "uint6", "uint7", "int1", "int2", "int3", "int4", "int5",
    "int6", "int7", "float8_e8m0fnu", "float4_e2m1fn_x2",
};
static_assert(kDtypeNames[kDtypeCount - 1] != nullptr, "a name for every DtypeCode");

// torch's name of a dtype code, "" for an unknown code (what the <op>_dtype_name exports give).
inline const char* DtypeNameOrEmpty(int32_t code) {
    return code >= 0 && code < kDtypeCount ? kDtypeNames[code] : "";
}

// The name as a message spells it.
inline std::string DtypeName(int32_t code) {
    const char* name = DtypeNameOrEmpty(code);
    return *name ? std::string(name) : "<unknown dtype code " + std::to_string(code) + ">";
}

// ---- the C ABI's structs ----------------------------------------------------------------------

// Ranks above this are refused by every rank rule of the ops before they matter (gert::Shape
// holds as many dims); the Python bridges hand a call with more to the Python check.
constexpr int32_t kMaxRank = 8;

// One tensor argument without its values (common/tensor_meta.py TensorMeta).
struct TensorDesc {
    int32_t present;                   // 0: an optional tensor passed as None
    int32_t dtype;                     // DtypeCode
    int32_t rank;                      // 0 .. kMaxRank
    int32_t contiguous;
    int64_t dims[kMaxRank];
};

// A str attribute as UTF-8 bytes (Python's "surrogatepass"; may hold NUL, hence the size).
struct CoreText {
    const char* data;                  // null stands for None
    int64_t size;
};

// common/platform.py PlatformKind; 0 is no kind.
enum PlatformKindCode : int32_t { kPlatformAscend = 1, kPlatformGpu = 2, kPlatformCpu = 3 };

// PlatformKind.value of a code ("unknown" for another code).
inline const char* PlatformKindName(int32_t kind) {
    switch (kind) {
        case kPlatformAscend: return "ascend";
        case kPlatformGpu: return "gpu";
        case kPlatformCpu: return "cpu";
    }
    return "unknown";
}

// What a plan may use of a platform (common/platform.py PlatformInfo). The buffers are the bytes
// one core may use: per cube core (L1, L0A/B/C) and per vector core (UB); an Ascend platform has
// all five, another kind none of them (0).
struct CorePlatform {
    const char* name;                  // NUL-terminated, e.g. "Ascend910_93"; null: None
    int32_t kind;                      // PlatformKindCode
    int32_t vector_cores_per_core;
    int64_t num_cores;                 // cube cores (Ascend), SMs (GPU), lanes (CPU)
    int64_t ub, l1, l0a, l0b, l0c;
};

// The structs of a core's C ABI, for <op>_struct_size(which): the Python bridge compares each
// with its ctypes mirror when it loads the library.
enum CoreStruct : int32_t {
    kStructParams = 0, kStructPlatform = 1, kStructTensorDesc = 2, kStructText = 3
};

template <typename Params>
int64_t StructSize(int32_t which) {
    switch (which) {
        case kStructParams: return sizeof(Params);
        case kStructPlatform: return sizeof(CorePlatform);
        case kStructTensorDesc: return sizeof(TensorDesc);
        case kStructText: return sizeof(CoreText);
    }
    return -1;
}

// ---- Python's spellings of values in messages -------------------------------------------------

// str(int)
inline std::string Str(int64_t v) { return std::to_string(v); }

// str(tuple) of items already spelled: "()", "(3,)", "(2, 3)".
inline std::string PyTuple(const std::vector<std::string>& items) {
    std::string out = "(";
    for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
    return out + (items.size() == 1 ? ",)" : ")");
}

// str(shape) of a tensor: the tuple of its dims.
inline std::string ShapeText(const int64_t* dims, int64_t rank) {
    std::vector<std::string> items;
    for (int64_t i = 0; i < rank; ++i) items.push_back(Str(dims[i]));
    return PyTuple(items);
}

inline std::string ShapeText(const std::vector<int64_t>& shape) {
    return ShapeText(shape.data(), static_cast<int64_t>(shape.size()));
}

namespace detail {

// Code points str.isprintable() rejects above ASCII, other than unassigned ones (Cn), as
// Python 3.11 (Unicode 14.0) has them: C1 controls, separators, format characters,
// surrogates and private use. Unassigned code points would need the whole Unicode table.
inline constexpr uint32_t kNonPrintable[][2] = {
    {0x80, 0xa0}, {0xad, 0xad}, {0x600, 0x605}, {0x61c, 0x61c}, {0x6dd, 0x6dd},
    {0x70f, 0x70f}, {0x890, 0x891}, {0x8e2, 0x8e2}, {0x1680, 0x1680}, {0x180e, 0x180e},
    {0x2000, 0x200f}, {0x2028, 0x202f}, {0x205f, 0x2064}, {0x2066, 0x206f}, {0x3000, 0x3000},
    {0xd800, 0xf8ff}, {0xfeff, 0xfeff}, {0xfff9, 0xfffb}, {0x110bd, 0x110bd},
    {0x110cd, 0x110cd}, {0x13430, 0x13438}, {0x1bca0, 0x1bca3}, {0x1d173, 0x1d17a},
    {0xe0001, 0xe0001}, {0xe0020, 0xe007f}, {0xf0000, 0xffffd}, {0x100000, 0x10fffd},
};

inline bool Printable(uint32_t cp) {
    if (cp < 0x80) return cp >= 0x20 && cp != 0x7f;
    for (const auto& range : kNonPrintable) {
        if (cp >= range[0] && cp <= range[1]) return false;
    }
    return true;
}

inline void AppendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xc0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xe0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
        out += static_cast<char>(0xf0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    }
}

inline void AppendHex(std::string& out, const char* prefix, int digits, uint32_t value) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%s%0*x", prefix, digits, static_cast<unsigned>(value));
    out += buf;
}

// Decodes UTF-8 as Python's "surrogatepass" encodes a str (surrogates allowed). A byte that
// starts no valid sequence comes back as kRawByte | byte (no Python str produces one).
constexpr uint32_t kRawByte = 0x80000000u;

inline std::vector<uint32_t> DecodeUtf8(const CoreText& text) {
    std::vector<uint32_t> cps;
    const auto* s = reinterpret_cast<const unsigned char*>(text.data);
    const int64_t n = text.data == nullptr ? 0 : text.size;
    for (int64_t i = 0; i < n;) {
        const unsigned char b = s[i];
        const int len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xe ? 3
                        : (b >> 3) == 0x1e ? 4 : 0;
        uint32_t cp = len == 1 ? b : len == 2 ? (b & 0x1fu) : len == 3 ? (b & 0x0fu) : (b & 0x07u);
        bool ok = len > 0 && i + len <= n;
        for (int k = 1; ok && k < len; ++k) {
            ok = (s[i + k] & 0xc0) == 0x80;
            cp = (cp << 6) | (s[i + k] & 0x3fu);
        }
        // overlong forms and values past U+10FFFF are not UTF-8
        static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
        ok = ok && cp >= kMin[len] && cp <= 0x10ffff;
        cps.push_back(ok ? cp : kRawByte | b);
        i += ok ? len : 1;
    }
    return cps;
}

}  // namespace detail

// repr() of a str (or None) as CPython writes it: single quotes unless the text has ' and no ",
// then backslash escapes for the quote, backslash, \t \n \r, and \x \u \U for what is not
// printable.
inline std::string PyRepr(const CoreText& text) {
    if (text.data == nullptr) return "None";
    const std::vector<uint32_t> cps = detail::DecodeUtf8(text);
    bool single = false, dbl = false;
    for (uint32_t cp : cps) {
        single |= cp == '\'';
        dbl |= cp == '"';
    }
    const char quote = single && !dbl ? '"' : '\'';
    std::string out(1, quote);
    for (uint32_t cp : cps) {
        if (cp & detail::kRawByte) {
            detail::AppendHex(out, "\\x", 2, cp & 0xffu);
        } else if (cp == static_cast<uint32_t>(quote) || cp == '\\') {
            out += '\\';
            out += static_cast<char>(cp);
        } else if (cp == '\t') {
            out += "\\t";
        } else if (cp == '\n') {
            out += "\\n";
        } else if (cp == '\r') {
            out += "\\r";
        } else if (detail::Printable(cp)) {
            detail::AppendUtf8(out, cp);
        } else if (cp < 0x100) {
            detail::AppendHex(out, "\\x", 2, cp);
        } else if (cp < 0x10000) {
            detail::AppendHex(out, "\\u", 4, cp);
        } else {
            detail::AppendHex(out, "\\U", 8, cp);
        }
    }
    return out + quote;
}

// ---- layouts (common/layouts.py) --------------------------------------------------------------

enum class Layout { kBSND, kTND, kPA_BSND, kBNSD, kBSH };

inline const char* LayoutName(Layout layout) {
    switch (layout) {
        case Layout::kBSND: return "BSND";
        case Layout::kTND: return "TND";
        case Layout::kPA_BSND: return "PA_BSND";
        case Layout::kBNSD: return "BNSD";
        case Layout::kBSH: return "BSH";
    }
    return "?";
}

// TilingData's layout codes (common/tiling_data.py LAYOUT_CODES)
inline uint32_t LayoutCode(Layout layout) {
    switch (layout) {
        case Layout::kBSND: return 0;
        case Layout::kTND: return 1;
        case Layout::kPA_BSND: return 2;
        case Layout::kBNSD: return 3;
        case Layout::kBSH: return 4;
    }
    return 0;
}

// Layout.parse: exact, case-sensitive names; the refusal lists the allowed ones in their order
// and quotes the value as repr() does.
inline Layout ParseLayout(const Checker& check, const CoreText& value,
                          std::initializer_list<Layout> allowed, const std::string& arg) {
    std::string names;
    for (Layout layout : allowed) {
        if (!names.empty()) names += "/";
        names += LayoutName(layout);
    }
    if (value.data != nullptr) {
        const std::string text(value.data, static_cast<size_t>(value.size));
        for (Layout layout : allowed)
            if (text == LayoutName(layout)) return layout;
    }
    check.Fail(ErrorKind::kRuntime, arg, "one of " + names, PyRepr(value));
}

// ---- rules shared by the ops (common/batched_params.py) -----------------------------------------

// check_block_table_shape: a block_table exactly when the keys are PA_BSND (`layout_arg` names
// the key layout argument), of rank 2 (B, max_blocks_per_seq) with a nonzero second dim and,
// when the batch is known (batch >= 0; -1 stands for None), B rows.
inline void CheckBlockTableShape(const Checker& check, const TensorDesc& bt, Layout kv_layout,
                                 int64_t batch, const std::string& layout_arg) {
    const std::string shape = "shape " + ShapeText(bt.dims, bt.present ? bt.rank : 0);
    if (kv_layout != Layout::kPA_BSND) {
        check.Require(!bt.present, "block_table",
                      "None when " + layout_arg + " is " + LayoutName(kv_layout),
                      bt.present ? "a tensor of " + shape : "None");
        return;
    }
    check.Require(bt.present, "block_table", "a tensor when " + layout_arg + " is PA_BSND",
                  "None");
    check.Require(bt.rank == 2, "block_table", "rank 2 (B, max_blocks_per_seq)", shape);
    check.Require(bt.dims[1] > 0, "block_table", "shape[1] > 0", shape);
    if (batch >= 0)
        check.Require(bt.dims[0] == batch, "block_table", "shape[0] == B=" + Str(batch), shape);
}

// check_cache_contiguous: a cache is read in place, never copied per call.
inline void CheckCacheContiguous(const Checker& check, const std::string& arg,
                                 const TensorDesc& cache) {
    check.Require(cache.contiguous != 0, arg,
                  "a contiguous tensor (a cache is read in place, never copied per call)",
                  "a non-contiguous tensor of shape " + ShapeText(cache.dims, cache.rank));
}

// ---- Ascend A2/A3 platforms -------------------------------------------------------------------

// Bytes each Ascend buffer needs for one step (tiling.py tile_usage, in its key order).
struct AscendUsage {
    int64_t l1, l0a, l0b, l0c, ub;
};

inline bool Fits(const AscendUsage& u, const CorePlatform& pf) {
    return u.l1 <= pf.l1 && u.l0a <= pf.l0a && u.l0b <= pf.l0b && u.l0c <= pf.l0c &&
           u.ub <= pf.ub;
}

// str(tile_usage(...)): a dict in tile_usage's key order
inline std::string UsageText(const AscendUsage& u) {
    return "{'L1': " + Str(u.l1) + ", 'L0A': " + Str(u.l0a) + ", 'L0B': " + Str(u.l0b) +
           ", 'L0C': " + Str(u.l0c) + ", 'UB': " + Str(u.ub) + "}";
}

// str(dict(platform.buffers)) of an A2/A3 platform (platform.py lists UB, L1, L0A, L0B, L0C)
inline std::string BuffersText(const CorePlatform& pf) {
    return "{'UB': " + Str(pf.ub) + ", 'L1': " + Str(pf.l1) + ", 'L0A': " + Str(pf.l0a) +
           ", 'L0B': " + Str(pf.l0b) + ", 'L0C': " + Str(pf.l0c) + "}";
}

inline std::string PlatformName(const CorePlatform& pf) {
    return pf.name == nullptr ? "None" : pf.name;
}

// The cores plan Ascend A2/A3 only (GPU and CPU plans are made in Python): refuses another kind
// by name, and another SoC as tiling.py's plans refuse it. Returns the platform's name.
inline std::string RequireAscendA2A3(const Checker& check, const CorePlatform& pf) {
    const std::string name = PlatformName(pf);
    check.Require(pf.kind == kPlatformAscend, "platform",
                  "an Ascend platform (the C++ tiling core plans Ascend A2/A3 only; CPU and GPU "
                  "plans are tiling.py's)",
                  name + " (" + PlatformKindName(pf.kind) + ")");
    check.Require(name == "Ascend910B" || name == "Ascend910_93", "platform",
                  "an Ascend A2/A3 SoC ('Ascend910B', 'Ascend910_93')", name);
    return name;
}

// ---- TilingData fields (struct.pack's ranges, refused by name instead of struct.error) ----------

inline uint32_t FieldU32(const Checker& check, const std::string& field, int64_t v) {
    check.Require(v >= 0 && v <= std::numeric_limits<uint32_t>::max(), field,
                  "a value in [0, 4294967295] (a uint32 field of the TilingData)", Str(v));
    return static_cast<uint32_t>(v);
}

constexpr const char kInt64Field[] =
    "a value in [0, 9223372036854775807] (an int64 field of the TilingData)";

// a * b for an int64 field; `what` names the operands in the refusal ("max_blocks * page = ").
inline int64_t FieldMul(const Checker& check, const std::string& field, int64_t a, int64_t b,
                        const std::string& what = "") {
    int64_t out = 0;
    if (__builtin_mul_overflow(a, b, &out))
        check.Fail(ErrorKind::kRuntime, field, kInt64Field, what + Str(a) + " * " + Str(b));
    return out;
}

inline int64_t FieldAdd(const Checker& check, const std::string& field, int64_t a, int64_t b,
                        const std::string& what = "") {
    int64_t out = 0;
    if (__builtin_add_overflow(a, b, &out))
        check.Fail(ErrorKind::kRuntime, field, kInt64Field, what + Str(a) + " + " + Str(b));
    return out;
}

// The entry point's output: refused before the check when it cannot hold the TilingData.
inline void RequireOutput(const Checker& check, const uint8_t* out, int64_t size, int64_t need) {
    check.RequireNonNull(out, "tiling_data");
    check.Require(size >= need, "tiling_data", "a buffer of at least " + Str(need) + " bytes",
                  Str(size) + " bytes");
}

}  // namespace cann_attention
