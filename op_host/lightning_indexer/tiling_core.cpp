// The C++ tiling core of npu_lightning_indexer (see tiling_core.h). Each step names the Python
// function it mirrors; the parity tests (tests/op_host/test_lightning_indexer_tiling_core.py)
// hold the two to the same messages and the same TilingData bytes.
#include "tiling_core.h"

#include <cstdio>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

namespace cann_attention {
namespace lightning_indexer {
namespace {

const char kOp[] = "npu_lightning_indexer";
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kHeadDim = 128;                 // params.D
constexpr int64_t kMaxSparseCount = 2048;         // check.MAX_SPARSE_COUNT
constexpr int64_t kExtraSparseCounts[] = {3072, 4096, 5120, 6144, 7168, 8192};
constexpr int64_t kMaxN1 = 64;                    // check.MAX_N1
constexpr int64_t kMaxPageSize = 1024;            // check.MAX_PAGE_SIZE
constexpr int64_t kMaxBlockS2 = 512;              // tiling.MAX_BLOCK_S2[ASCEND]
constexpr int64_t kMinBlockS2 = 16;               // tiling.MIN_BLOCK_S2
constexpr int64_t kPairBytes = 8;                 // tiling.PAIR_BYTES
constexpr uint32_t kTilingKeyAscend = 2;          // tiling.TILING_KEYS["ascend"]
constexpr uint32_t kTilingDataVersion = 1;        // tiling.TILING_DATA.version

// torch's dtype names in DtypeCode order (the Python bridge numbers dtypes from this table).
const char* const kDtypeNames[kDtypeCount] = {
    "bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32",
    "float64", "complex32", "complex64", "complex128", "qint8", "quint8", "qint32",
    "quint4x2", "quint2x4", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz",
    "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2", "uint16", "uint32", "uint64",
    "bits1x8", "bits2x4", "bits4x2", "bits8", "bits16", "int1", "int2", "int3", "int4", "int5",
    "int6", "int7", "uint1", "uint2", "uint3", "uint4", "uint5", "uint6", "uint7",
};

// ---- Python's spelling of values in messages ---------------------------------------------

std::string DtypeName(int32_t code) {
    return code >= 0 && code < kDtypeCount ? kDtypeNames[code] : "dtype#" + std::to_string(code);
}

std::string Int(int64_t v) { return std::to_string(v); }

// str(tuple): "()", "(3,)", "(2, 3)".
std::string Tuple(const int64_t* dims, int32_t rank) {
    std::string s = "(";
    for (int32_t i = 0; i < rank; ++i) s += (i ? ", " : "") + Int(dims[i]);
    return s + (rank == 1 ? ",)" : ")");
}

std::string ShapeOf(const LiTensor& t) { return "shape " + Tuple(t.dims, t.rank); }

// Code points str.isprintable() rejects above ASCII, other than unassigned ones (Cn), as
// Python 3.11 (Unicode 14.0) has them: C1 controls, separators, format characters,
// surrogates and private use. Unassigned code points would need the whole Unicode table.
constexpr uint32_t kNonPrintable[][2] = {
    {0x80, 0xa0}, {0xad, 0xad}, {0x600, 0x605}, {0x61c, 0x61c}, {0x6dd, 0x6dd},
    {0x70f, 0x70f}, {0x890, 0x891}, {0x8e2, 0x8e2}, {0x1680, 0x1680}, {0x180e, 0x180e},
    {0x2000, 0x200f}, {0x2028, 0x202f}, {0x205f, 0x2064}, {0x2066, 0x206f}, {0x3000, 0x3000},
    {0xd800, 0xf8ff}, {0xfeff, 0xfeff}, {0xfff9, 0xfffb}, {0x110bd, 0x110bd},
    {0x110cd, 0x110cd}, {0x13430, 0x13438}, {0x1bca0, 0x1bca3}, {0x1d173, 0x1d17a},
    {0xe0001, 0xe0001}, {0xe0020, 0xe007f}, {0xf0000, 0xffffd}, {0x100000, 0x10fffd},
};

bool Printable(uint32_t cp) {
    if (cp < 0x80) return cp >= 0x20 && cp != 0x7f;
    for (const auto& range : kNonPrintable) {
        if (cp >= range[0] && cp <= range[1]) return false;
    }
    return true;
}

void AppendUtf8(std::string& out, uint32_t cp) {
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

void AppendHex(std::string& out, const char* prefix, int digits, uint32_t value) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%s%0*x", prefix, digits, static_cast<unsigned>(value));
    out += buf;
}

// Decodes UTF-8 as Python's "surrogatepass" encodes a str (surrogates allowed). A byte that
// starts no valid sequence comes back as kRawByte | byte (no Python str produces one).
constexpr uint32_t kRawByte = 0x80000000u;

std::vector<uint32_t> DecodeUtf8(const LiText& text) {
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

// repr(str) as CPython writes it: single quotes unless the text has ' and no ", then
// backslash escapes for the quote, backslash, \t \n \r, and \x \u \U for what is not printable.
std::string Repr(const LiText& text) {
    const std::vector<uint32_t> cps = DecodeUtf8(text);
    bool single = false, dbl = false;
    for (uint32_t cp : cps) {
        single |= cp == '\'';
        dbl |= cp == '"';
    }
    const char quote = single && !dbl ? '"' : '\'';
    std::string out(1, quote);
    for (uint32_t cp : cps) {
        if (cp & kRawByte) {
            AppendHex(out, "\\x", 2, cp & 0xffu);
        } else if (cp == static_cast<uint32_t>(quote) || cp == '\\') {
            out += '\\';
            out += static_cast<char>(cp);
        } else if (cp == '\t') {
            out += "\\t";
        } else if (cp == '\n') {
            out += "\\n";
        } else if (cp == '\r') {
            out += "\\r";
        } else if (Printable(cp)) {
            AppendUtf8(out, cp);
        } else if (cp < 0x100) {
            AppendHex(out, "\\x", 2, cp);
        } else if (cp < 0x10000) {
            AppendHex(out, "\\u", 4, cp);
        } else {
            AppendHex(out, "\\U", 8, cp);
        }
    }
    return out + quote;
}

// ---- the Checker (common/errors.py) -------------------------------------------------------

[[noreturn]] void Fail(ErrorKind kind, const std::string& arg, const std::string& expected,
                       const std::string& actual) {
    throw Refusal{kind, Expected(kOp, arg, expected, actual)};
}

void Require(bool ok, const std::string& arg, const std::string& expected,
             const std::string& actual) {
    if (!ok) Fail(ErrorKind::kRuntime, arg, expected, actual);
}

void RequireType(bool ok, const std::string& arg, const std::string& expected,
                 const std::string& actual) {
    if (!ok) Fail(ErrorKind::kType, arg, expected, actual);
}

// ---- the rules of check.py ----------------------------------------------------------------

enum class Layout { kBsnd, kTnd, kPaBsnd };

const char* LayoutName(Layout layout) {
    switch (layout) {
        case Layout::kBsnd: return "BSND";
        case Layout::kTnd: return "TND";
        case Layout::kPaBsnd: return "PA_BSND";
    }
    return "?";
}

uint32_t LayoutCode(Layout layout) {      // tiling_data.LAYOUT_CODES
    switch (layout) {
        case Layout::kBsnd: return 0;
        case Layout::kTnd: return 1;
        case Layout::kPaBsnd: return 2;
    }
    return 0;
}

// Layout.parse: exact, case-sensitive names; the message lists the allowed ones in order.
Layout ParseLayout(const LiText& text, std::initializer_list<Layout> allowed,
                   const std::string& arg) {
    const std::string value = text.data == nullptr ? std::string()
                                                   : std::string(text.data, text.size);
    std::string names;
    for (Layout layout : allowed) {
        if (value == LayoutName(layout)) return layout;
        names += (names.empty() ? "" : "/") + std::string(LayoutName(layout));
    }
    Fail(ErrorKind::kRuntime, arg, "one of " + names, Repr(text));
}

// Shapes come from tensors, whose element count torch keeps within int64; saturating keeps a
// hand-made shape from overflowing all the same.
int64_t Product(const int64_t* dims, int32_t n) {
    int64_t p = 1;
    for (int32_t i = 0; i < n; ++i) {
        if (__builtin_mul_overflow(p, dims[i], &p)) return kInt64Max;
    }
    return p;
}

int64_t Numel(const LiTensor& t) { return Product(t.dims, t.rank); }
int64_t Dim(const LiTensor& t, int32_t i) { return t.dims[i < 0 ? t.rank + i : i]; }

bool ValidSparseCount(int64_t k) {
    if (k >= 1 && k <= kMaxSparseCount) return true;
    for (int64_t extra : kExtraSparseCounts) {
        if (k == extra) return true;
    }
    return false;
}

std::string SparseCountsText() {
    std::string s = "a value in [1, " + Int(kMaxSparseCount) + "] or one of [";
    for (size_t i = 0; i < sizeof kExtraSparseCounts / sizeof kExtraSparseCounts[0]; ++i) {
        s += (i ? ", " : "") + Int(kExtraSparseCounts[i]);
    }
    return s + "]";
}

// What the plan needs from a checked call.
struct Checked {
    Layout q_layout, k_layout;
    int64_t batch;
};

// batched_params.check_block_table_shape (batch < 0: unknown).
void CheckBlockTableShape(const LiTensor& bt, Layout k_layout, int64_t batch) {
    if (k_layout != Layout::kPaBsnd) {
        Require(!bt.present, "block_table",
                std::string("None when layout_key is ") + LayoutName(k_layout),
                "a tensor of " + ShapeOf(bt));
        return;
    }
    Require(bt.present, "block_table", "a tensor when layout_key is PA_BSND", "None");
    Require(bt.rank == 2, "block_table", "rank 2 (B, max_blocks_per_seq)", ShapeOf(bt));
    Require(bt.dims[1] > 0, "block_table", "shape[1] > 0", ShapeOf(bt));
    if (batch >= 0) {
        Require(bt.dims[0] == batch, "block_table", "shape[0] == B=" + Int(batch), ShapeOf(bt));
    }
}

// check.check, rule for rule.
Checked Check(const LiCoreParams& p) {
    const LiTensor &q = p.query, &k = p.key, &w = p.weights;
    const LiTensor &aq = p.actual_seq_lengths_query, &ak = p.actual_seq_lengths_key,
                   &bt = p.block_table;
    // layouts, then the non-PA layout pair
    const Layout q_layout = ParseLayout(p.layout_query, {Layout::kBsnd, Layout::kTnd},
                                        "layout_query");
    const Layout k_layout = ParseLayout(
        p.layout_key, {Layout::kPaBsnd, Layout::kBsnd, Layout::kTnd}, "layout_key");
    if (k_layout != Layout::kPaBsnd) {
        Require(k_layout == q_layout, "layout_key",
                std::string("under non-PA conditions, layout_query and layout_key should be "
                            "equal (layout_key ") + LayoutName(q_layout) + " or PA_BSND)",
                LayoutName(k_layout));
    }
    // sparse_count, sparse_mode, pre/next tokens, return_value
    Require(ValidSparseCount(p.sparse_count), "sparse_count", SparseCountsText(),
            Int(p.sparse_count));
    Require(p.sparse_mode == 0 || p.sparse_mode == 3, "sparse_mode",
            "0 or 3 (input attr sparse_mode only supported 0 or 3)", Int(p.sparse_mode));
    Require(p.pre_tokens == kInt64Max, "pre_tokens", Int(kInt64Max) + " (the default)",
            Int(p.pre_tokens));
    Require(p.next_tokens == kInt64Max, "next_tokens", Int(kInt64Max) + " (the default)",
            Int(p.next_tokens));
    if (p.return_value) {
        Require(k_layout != Layout::kPaBsnd, "return_value", "False when layout_key is PA_BSND",
                "True");
    }
    // dtypes
    RequireType(q.dtype == kFloat16 || q.dtype == kBfloat16, "query",
                "dtype float16 or bfloat16", DtypeName(q.dtype));
    RequireType(k.dtype == q.dtype, "key", "dtype " + DtypeName(q.dtype) + " (= query)",
                DtypeName(k.dtype));
    RequireType(w.dtype == q.dtype || w.dtype == kFloat32, "weights",
                "dtype " + DtypeName(q.dtype) + " (= query) or float32", DtypeName(w.dtype));
    const std::pair<const char*, const LiTensor*> int_tensors[] = {
        {"actual_seq_lengths_query", &aq}, {"actual_seq_lengths_key", &ak},
        {"block_table", &bt}};
    for (const auto& [name, meta] : int_tensors) {
        if (meta->present) {
            RequireType(meta->dtype == kInt32, name, "dtype int32", DtypeName(meta->dtype));
        }
    }
    // ranks and empty tensors
    const int32_t q_rank = q_layout == Layout::kBsnd ? 4 : 3;
    const int32_t k_rank = k_layout == Layout::kTnd ? 3 : 4;
    Require(q.rank == q_rank, "query",
            "rank " + Int(q_rank) + " for layout_query " + LayoutName(q_layout), ShapeOf(q));
    bool no_zero = true;
    for (int32_t i = 0; i < q.rank; ++i) no_zero &= q.dims[i] > 0;
    Require(no_zero, "query", "no zero dimension", ShapeOf(q));
    Require(k.rank == k_rank, "key",
            "rank " + Int(k_rank) + " for layout_key " + LayoutName(k_layout), ShapeOf(k));
    Require(w.rank == q_rank - 1, "weights",
            "rank " + Int(q_rank - 1) + (q_rank == 4 ? " ((B, S1, N1))" : " ((T1, N1))"),
            ShapeOf(w));
    // batch size (TND: from actual_seq_lengths_query; -1 while it is missing, reported below)
    const int64_t batch = q_layout == Layout::kBsnd ? q.dims[0] : aq.present ? Numel(aq) : -1;
    // paged cache
    CheckBlockTableShape(bt, k_layout, batch);
    if (k_layout == Layout::kPaBsnd) {
        Require(ak.present, "actual_seq_lengths_key", "a tensor when layout_key is PA_BSND",
                "None");
        const int64_t block_size = k.dims[1];
        Require(block_size > 0 && block_size <= kMaxPageSize, "key",
                "block_size (key.shape[1]) in (0, " + Int(kMaxPageSize) + "]", Int(block_size));
        Require(block_size % 16 == 0, "key", "block_size (key.shape[1]) a multiple of 16",
                Int(block_size));
        Require(k.dims[0] > 0, "key", "block_count (key.shape[0]) > 0", Int(k.dims[0]));
    }
    // required lengths
    if (k_layout == Layout::kTnd) {
        Require(ak.present, "actual_seq_lengths_key", "a tensor when layout_key is TND", "None");
    }
    if (q_layout == Layout::kTnd) {
        Require(aq.present, "actual_seq_lengths_query", "a tensor when layout_query is TND",
                "None");
    }
    // heads and head dims (with N2 == 1, CANN's N1 % N2 == 0 always holds)
    Require(Dim(k, -2) == 1, "key", "N2 (key.shape[-2]) == 1 (only support 1)", Int(Dim(k, -2)));
    Require(Dim(q, -1) == kHeadDim, "query", "head_dim (last dim) == " + Int(kHeadDim),
            Int(Dim(q, -1)));
    Require(Dim(k, -1) == kHeadDim, "key", "head_dim (last dim) == " + Int(kHeadDim) +
            " (= query)", Int(Dim(k, -1)));
    // length vectors: non-empty, one entry per batch (the batch is known by now)
    const std::pair<const char*, const LiTensor*> lengths[] = {
        {"actual_seq_lengths_query", &aq}, {"actual_seq_lengths_key", &ak}};
    for (const auto& [name, meta] : lengths) {
        if (!meta->present) continue;
        Require(meta->rank == 1 && Numel(*meta) > 0, name, "a non-empty 1-D tensor",
                ShapeOf(*meta));
        Require(Numel(*meta) == batch, name, Int(batch) + " elements (B)", Int(Numel(*meta)));
    }
    if (k_layout == Layout::kBsnd) {
        Require(k.dims[0] == batch, "key", "shape[0] == B=" + Int(batch), ShapeOf(k));
    }
    // weights shape: the query's without D
    bool same = w.rank == q.rank - 1;
    for (int32_t i = 0; same && i < w.rank; ++i) same = w.dims[i] == q.dims[i];
    Require(same, "weights", "shape " + Tuple(q.dims, q.rank - 1) +
            " (query shape without D; weights N1 == query N1)", Tuple(w.dims, w.rank));
    // (P) N1 within the documented limit; the key cache read in place
    Require(Dim(q, -2) <= kMaxN1, "query", "N1 (query.shape[-2]) <= " + Int(kMaxN1),
            Int(Dim(q, -2)));
    Require(k.contiguous != 0, "key",
            "a contiguous tensor (a cache is read in place, never copied per call)",
            "a non-contiguous tensor of " + ShapeOf(k));
    return Checked{q_layout, k_layout, batch};
}

// ---- the plan of tiling.py on Ascend -------------------------------------------------------

struct Usage {       // tiling.tile_usage for Ascend, in its key order
    int64_t l1, l0a, l0b, l0c, ub;
};

// The vector core owning a row's top-k list holds half of the score tile's rows: A2/A3 pair two
// vector cores with each cube core (tiling.py writes the 2 as -(-hg // 2), not from
// vector_cores_per_core, and so does the core). The merge buffers hold K + bs candidate pairs
// and the sort's scratch of the same size.
Usage TileUsage(int64_t n1, int64_t hg, int64_t bs, int64_t k, int64_t e) {
    const int64_t merge = 2 * (k + bs) * kPairBytes;
    return Usage{(n1 + bs) * kHeadDim * e, hg * kHeadDim * e, bs * kHeadDim * e, hg * bs * 4,
                 (hg + 1) / 2 * bs * 4 + n1 * 4 + bs * 4 + merge};
}

bool Fits(const Usage& u, const CorePlatform& pf) {
    return u.l1 <= pf.l1 && u.l0a <= pf.l0a && u.l0b <= pf.l0b && u.l0c <= pf.l0c &&
           u.ub <= pf.ub;
}

std::string UsageText(const Usage& u) {       // str(dict), tile_usage's order
    return "{'L1': " + Int(u.l1) + ", 'L0A': " + Int(u.l0a) + ", 'L0B': " + Int(u.l0b) +
           ", 'L0C': " + Int(u.l0c) + ", 'UB': " + Int(u.ub) + "}";
}

std::string BuffersText(const CorePlatform& pf) {   // str(dict(platform.buffers)), A2/A3 order
    return "{'UB': " + Int(pf.ub) + ", 'L1': " + Int(pf.l1) + ", 'L0A': " + Int(pf.l0a) +
           ", 'L0B': " + Int(pf.l0b) + ", 'L0C': " + Int(pf.l0c) + "}";
}

const char* KindName(int32_t kind) {
    switch (kind) {
        case kCpu: return "cpu";
        case kAscend: return "ascend";
        case kGpu: return "gpu";
    }
    return "unknown";
}

// tiling.choose_tiles: the largest head group (a divisor of N1), then the largest chunk of
// keys (a power of two) that fits every buffer.
void ChooseTiles(int64_t n1, int64_t k, int64_t e, const CorePlatform& pf, int64_t* head_group,
                 int64_t* block_s2) {
    for (int64_t hg = n1; hg >= 1; --hg) {
        if (n1 % hg != 0) continue;
        for (int64_t bs = kMaxBlockS2; bs >= kMinBlockS2; bs /= 2) {
            if (Fits(TileUsage(n1, hg, bs, k, e), pf)) {
                *head_group = hg;
                *block_s2 = bs;
                return;
            }
        }
    }
    // no ", got": tiling.choose_tiles words this refusal as one sentence
    throw Refusal{ErrorKind::kRuntime,
                  std::string(kOp) + ": platform: expected buffers that hold the smallest tile "
                  "(1 head x " + Int(kMinBlockS2) + " keys, sparse_count=" + Int(k) + ": " +
                  UsageText(TileUsage(n1, 1, kMinBlockS2, k, e)) + " B), " + pf.name +
                  " has " + BuffersText(pf)};
}

// Python's struct.pack refuses a value outside a field's type; so does the core, by name.
uint32_t U32(const char* field, int64_t v) {
    Require(v >= 0 && v <= std::numeric_limits<uint32_t>::max(), field,
            "a value in [0, 4294967295] (a uint32 field of the TilingData)", Int(v));
    return static_cast<uint32_t>(v);
}

LightningIndexerTilingData Plan(const LiCoreParams& p, const Checked& c,
                                const CorePlatform& pf) {
    const std::string name = pf.name == nullptr ? "" : pf.name;
    Require(pf.kind == kAscend, "platform",
            "an Ascend platform (the C++ tiling core plans Ascend A2/A3 only; CPU and GPU "
            "plans are tiling.py's)", name + " (" + KindName(pf.kind) + ")");
    Require(name == "Ascend910B" || name == "Ascend910_93", "platform",
            "an Ascend A2/A3 SoC ('Ascend910B', 'Ascend910_93')", name);
    const LiTensor &q = p.query, &k = p.key;
    const int64_t n1 = Dim(q, -2);
    const int64_t itemsize = 2;     // float16 / bfloat16, the only query dtypes check allows
    int64_t head_group = 0, block_s2 = 0;
    ChooseTiles(n1, p.sparse_count, itemsize, pf, &head_group, &block_s2);

    const bool paged = c.k_layout == Layout::kPaBsnd;
    int64_t key_capacity = 0;       // BatchedRows.s2 (seqlens.key_capacity)
    if (c.k_layout == Layout::kBsnd) {
        key_capacity = k.dims[1];
    } else if (c.k_layout == Layout::kTnd) {
        key_capacity = k.dims[0];
    } else if (__builtin_mul_overflow(p.block_table.dims[1], k.dims[1], &key_capacity)) {
        Fail(ErrorKind::kRuntime, "key_capacity",
             "a value in [0, 9223372036854775807] (an int64 field of the TilingData)",
             "max_blocks_per_seq * block_size = " + Int(p.block_table.dims[1]) + " * " +
                 Int(k.dims[1]));
    }
    LightningIndexerTilingData t{};
    t.version = kTilingDataVersion;
    t.tiling_key = kTilingKeyAscend;
    t.num_rows = Product(q.dims, q.rank - 2);     // B * S1 or T1: query.numel // (N1 * D)
    t.key_capacity = key_capacity;
    t.num_cores = U32("num_cores", pf.num_cores);
    t.batch = U32("batch", c.batch);
    t.n1 = U32("n1", n1);
    t.head_group = U32("head_group", head_group);
    t.block_s2 = U32("block_s2", block_s2);
    t.sparse_count = U32("sparse_count", p.sparse_count);
    t.sparse_mode = U32("sparse_mode", p.sparse_mode);
    t.layout_query = LayoutCode(c.q_layout);
    t.layout_key = LayoutCode(c.k_layout);
    t.page_size = U32("page_size", paged ? k.dims[1] : 0);
    return t;
}

// Runs one step, turning a refusal (or anything thrown) into (kind, message).
template <typename Step>
int32_t Guarded(char* message, int64_t message_size, Step step) {
    try {
        step();
        WriteMessage("", message, message_size);
        return 0;
    } catch (const Refusal& r) {
        WriteMessage(r.message, message, message_size);
        return static_cast<int32_t>(r.kind);
    } catch (const std::exception& e) {
        WriteMessage(std::string(kOp) + ": tiling core: " + e.what(), message, message_size);
        return static_cast<int32_t>(ErrorKind::kRuntime);
    }
}

}  // namespace
}  // namespace lightning_indexer
}  // namespace cann_attention

using cann_attention::ErrorKind;
using cann_attention::Refusal;
namespace li = cann_attention::lightning_indexer;

extern "C" int32_t li_check(const li::LiCoreParams* params, char* message,
                            int64_t message_size) {
    return li::Guarded(message, message_size, [&] { li::Check(*params); });
}

extern "C" int32_t li_tiling(const li::LiCoreParams* params, const li::CorePlatform* platform,
                             uint8_t* tiling_data, int64_t size, char* message,
                             int64_t message_size) {
    return li::Guarded(message, message_size, [&] {
        const int64_t need = sizeof(LightningIndexerTilingData);
        if (tiling_data == nullptr || size < need) {
            throw Refusal{ErrorKind::kRuntime,
                          cann_attention::Expected(li::kOp, "tiling_data",
                                                   "a buffer of at least " +
                                                       std::to_string(need) + " bytes",
                                                   std::to_string(size) + " bytes")};
        }
        const li::Checked checked = li::Check(*params);
        const LightningIndexerTilingData t = li::Plan(*params, checked, *platform);
        // the struct's memory is the record: fixed-width fields, no padding, little-endian on
        // every host CANN runs on (x86-64, AArch64)
        std::memcpy(tiling_data, &t, sizeof t);
    });
}

extern "C" int64_t li_tiling_data_size(void) { return sizeof(LightningIndexerTilingData); }

extern "C" uint32_t li_tiling_data_version(void) { return li::kTilingDataVersion; }

extern "C" int32_t li_max_rank(void) { return li::kMaxRank; }

extern "C" const char* li_dtype_name(int32_t code) {
    return code >= 0 && code < li::kDtypeCount ? li::kDtypeNames[code] : "";
}
