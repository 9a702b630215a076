// The C++ tiling core of npu_sparse_flash_attention (see tiling_core.h).
//
// Each rule below carries the number check.py gives it, and runs in check.py's order, because
// the first broken rule is the one reported: a different order would name a different argument.
// Messages are built as the Python f-strings build them (Python's tuple, repr and dict
// spellings included), so a refusal reads the same from either side.
#include "tiling_core.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

// ErrorKind, Refusal, Expected, WriteMessage (the shared error convention).
#include "core_common.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "TilingData is little-endian (common/tiling_data.py); this core copies the struct as is"
#endif

namespace {

using cann_attention::ErrorKind;
using cann_attention::Expected;
using cann_attention::Refusal;
using Shape = std::vector<int64_t>;

constexpr const char* kOp = "npu_sparse_flash_attention";
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kD = 512;            // nope (latent) head dim (params.py D)
constexpr int64_t kDr = 64;            // rope head dim (params.py DR)
constexpr int64_t kDk = kD + kDr;      // contraction length of the score matmul
constexpr int64_t kMaxPageSize = 1024;
constexpr int64_t kAscendMaxBlockS2 = 512;   // tiling.py MAX_BLOCK_S2[ASCEND]
constexpr int64_t kAscendMinBlockS2 = 1;
// tiling.py tile_usage splits the score rows over two vector cores whatever the platform says
constexpr int64_t kVectorCoresInUsage = 2;
constexpr uint32_t kTilingVersion = 1;       // TILING_DATA.version
constexpr uint32_t kAscendTilingKey = 2;     // tiling.py TILING_KEYS["ascend"]
constexpr const char* kAscendSocs[] = {"Ascend910B", "Ascend910_93"};

// ---- Python spellings ------------------------------------------------------------------

std::string Str(int64_t v) { return std::to_string(v); }

// str(tuple): "(2, 3)", "(5,)", "()".
std::string Tuple(const std::vector<std::string>& items) {
    std::string out = "(";
    for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
    return out + (items.size() == 1 ? ",)" : ")");
}

std::vector<std::string> Items(const Shape& shape) {
    std::vector<std::string> items;
    for (int64_t d : shape) items.push_back(Str(d));
    return items;
}

std::string ShapeText(const Shape& shape) { return Tuple(Items(shape)); }

std::string Hex(const char* prefix, uint32_t value, int digits) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%s%0*x", prefix, digits, value);
    return buf;
}

// repr() of a Python str (a misspelled layout is quoted this way). Non-ASCII characters are
// kept as Python keeps printable ones; of the non-printable ones only those of Latin-1 (C1
// controls, NBSP, soft hyphen) are escaped: the rest would need Unicode's character tables.
std::string PyRepr(const char* value) {
    if (value == nullptr) return "None";
    const std::string text(value);
    const bool single = text.find('\'') != std::string::npos;
    const bool dbl = text.find('"') != std::string::npos;
    const char quote = (single && !dbl) ? '"' : '\'';
    std::string out(1, quote);
    for (size_t i = 0; i < text.size();) {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        if (c < 0x80) {
            if (c == quote || c == '\\') out += {'\\', static_cast<char>(c)};
            else if (c == '\t') out += "\\t";
            else if (c == '\n') out += "\\n";
            else if (c == '\r') out += "\\r";
            else if (c < 0x20 || c == 0x7f) out += Hex("\\x", c, 2);
            else out += static_cast<char>(c);
            ++i;
            continue;
        }
        const size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        if (i + n > text.size()) {          // a cut sequence: not from a Python str; keep it
            out += text.substr(i);
            break;
        }
        uint32_t cp = c & ((1u << (7 - n)) - 1);
        for (size_t j = 1; j < n; ++j) cp = (cp << 6) | (static_cast<unsigned char>(text[i + j]) & 0x3F);
        if ((cp >= 0x80 && cp <= 0xA0) || cp == 0xAD) out += Hex("\\x", cp, 2);
        else out += text.substr(i, n);
        i += n;
    }
    return out + quote;
}

struct DtypeEntry {
    int32_t code;
    const char* name;
};

constexpr DtypeEntry kDtypes[] = {
    {kSfaFloat16, "float16"}, {kSfaBfloat16, "bfloat16"}, {kSfaFloat32, "float32"},
    {kSfaFloat64, "float64"}, {kSfaInt8, "int8"}, {kSfaInt16, "int16"}, {kSfaInt32, "int32"},
    {kSfaInt64, "int64"}, {kSfaUint8, "uint8"}, {kSfaUint16, "uint16"},
    {kSfaUint32, "uint32"}, {kSfaUint64, "uint64"}, {kSfaBool, "bool"},
    {kSfaComplex32, "complex32"}, {kSfaComplex64, "complex64"},
    {kSfaComplex128, "complex128"}, {kSfaFloat8E4m3fn, "float8_e4m3fn"},
    {kSfaFloat8E4m3fnuz, "float8_e4m3fnuz"}, {kSfaFloat8E5m2, "float8_e5m2"},
    {kSfaFloat8E5m2fnuz, "float8_e5m2fnuz"}, {kSfaFloat8E8m0fnu, "float8_e8m0fnu"},
    {kSfaFloat4E2m1fnX2, "float4_e2m1fn_x2"}, {kSfaQint8, "qint8"}, {kSfaQuint8, "quint8"},
    {kSfaQint32, "qint32"}, {kSfaQuint4x2, "quint4x2"}, {kSfaQuint2x4, "quint2x4"},
    {kSfaBits1x8, "bits1x8"}, {kSfaBits2x4, "bits2x4"}, {kSfaBits4x2, "bits4x2"},
    {kSfaBits8, "bits8"}, {kSfaBits16, "bits16"}, {kSfaInt1, "int1"}, {kSfaInt2, "int2"},
    {kSfaInt3, "int3"}, {kSfaInt4, "int4"}, {kSfaInt5, "int5"}, {kSfaInt6, "int6"},
    {kSfaInt7, "int7"}, {kSfaUint1, "uint1"}, {kSfaUint2, "uint2"}, {kSfaUint3, "uint3"},
    {kSfaUint4, "uint4"}, {kSfaUint5, "uint5"}, {kSfaUint6, "uint6"}, {kSfaUint7, "uint7"},
};
static_assert(sizeof(kDtypes) / sizeof(kDtypes[0]) == kSfaDtypeCount, "a name per dtype code");

const char* DtypeNameOrNull(int32_t code) {
    for (const DtypeEntry& e : kDtypes)
        if (e.code == code) return e.name;
    return nullptr;
}

std::string DtypeName(int32_t code) {
    const char* name = DtypeNameOrNull(code);
    return name ? name : "<unknown dtype code " + std::to_string(code) + ">";
}

// ---- the checker (common/errors.py Checker) ----------------------------------------------

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

// ---- tensors -----------------------------------------------------------------------------

// A tensor argument as TensorMeta holds it. Shapes are torch's (non-negative dims, an int64
// element count); anything else cannot come from torch and is refused before any rule.
class Tensor {
  public:
    Tensor(const SfaTensorDesc& desc, const char* arg) : arg_(arg), present_(desc.present != 0) {
        if (!present_) return;
        dtype_ = desc.dtype;
        contiguous_ = desc.contiguous != 0;
        if (desc.rank < 0 || (desc.rank > 0 && desc.shape == nullptr))
            Fail(ErrorKind::kRuntime, arg, "a shape of rank >= 0", "rank " + Str(desc.rank));
        shape_.assign(desc.shape, desc.shape + desc.rank);
        bool empty = false;
        for (int64_t d : shape_) {
            if (d < 0) Fail(ErrorKind::kRuntime, arg, "non-negative dims", "shape " + text());
            empty = empty || d == 0;
        }
        numel_ = empty ? 0 : 1;
        for (int64_t d : shape_) {
            if (empty) break;
            if (numel_ > kInt64Max / d)
                Fail(ErrorKind::kRuntime, arg, "fewer than 2**63 elements", "shape " + text());
            numel_ *= d;
        }
    }

    bool present() const { return present_; }
    int64_t rank() const { return static_cast<int64_t>(shape_.size()); }
    const Shape& shape() const { return shape_; }
    int64_t numel() const { return numel_; }
    int32_t dtype() const { return dtype_; }
    bool contiguous() const { return contiguous_; }
    std::string text() const { return ShapeText(shape_); }

    // shape[i] with Python's negative indices. The rules index only dims whose rank an earlier
    // rule fixed, except the last dim of value and query_rope: a rank-0 one makes check.py
    // raise IndexError, and this core refuse by name.
    int64_t dim(int64_t i) const {
        const int64_t j = i < 0 ? i + rank() : i;
        if (j < 0 || j >= rank())
            Fail(ErrorKind::kRuntime, arg_, "a dimension at index " + Str(i), "shape " + text());
        return shape_[static_cast<size_t>(j)];
    }

  private:
    const char* arg_;
    bool present_;
    int32_t dtype_ = 0;
    bool contiguous_ = true;
    Shape shape_;
    int64_t numel_ = 0;
};

// shape[:-n]
Shape DropLast(const Shape& shape, size_t n) {
    return Shape(shape.begin(), shape.size() > n ? shape.end() - n : shape.begin());
}

Shape Append(Shape shape, int64_t d) {
    shape.push_back(d);
    return shape;
}

// ---- layouts (common/layouts.py) -----------------------------------------------------------

enum class Layout { kBSND, kTND, kPA_BSND };

const char* Name(Layout layout) {
    switch (layout) {
        case Layout::kBSND: return "BSND";
        case Layout::kTND: return "TND";
        case Layout::kPA_BSND: return "PA_BSND";
    }
    return "?";
}

// TilingData's layout codes (common/tiling_data.py LAYOUT_CODES)
uint32_t Code(Layout layout) {
    switch (layout) {
        case Layout::kBSND: return 0;
        case Layout::kTND: return 1;
        case Layout::kPA_BSND: return 2;
    }
    return 0;
}

Layout ParseLayout(const char* value, std::initializer_list<Layout> allowed, const char* arg) {
    std::string names;
    for (Layout layout : allowed) {
        if (!names.empty()) names += "/";
        names += Name(layout);
    }
    if (value != nullptr)
        for (Layout layout : allowed)
            if (std::string(Name(layout)) == value) return layout;
    Fail(ErrorKind::kRuntime, arg, "one of " + names, PyRepr(value));
}

// ---- the call: params.py's derived quantities ----------------------------------------------

struct Call {
    Tensor query, key, value, sparse_indices, block_table, aq, akv, query_rope, key_rope, sinks;
    Layout q_layout = Layout::kBSND;
    Layout kv_layout = Layout::kBSND;
    bool batch_known = false;   // unknown for TND until actual_seq_lengths_query is given
    int64_t batch = 0;

    explicit Call(const SfaCoreParams& p)
        : query(p.query, "query"), key(p.key, "key"), value(p.value, "value"),
          sparse_indices(p.sparse_indices, "sparse_indices"),
          block_table(p.block_table, "block_table"),
          aq(p.actual_seq_lengths_query, "actual_seq_lengths_query"),
          akv(p.actual_seq_lengths_kv, "actual_seq_lengths_kv"),
          query_rope(p.query_rope, "query_rope"), key_rope(p.key_rope, "key_rope"),
          sinks(p.sinks, "sinks") {}
};

struct Named {
    const Tensor* tensor;
    const char* name;
};

// TensorMeta.required: the parser refuses a missing required tensor (rule 1).
void CheckRequired(const Call& call) {
    const Named required[] = {{&call.query, "query"}, {&call.key, "key"}, {&call.value, "value"},
                              {&call.sparse_indices, "sparse_indices"}};
    for (const Named& t : required) RequireType(t.tensor->present(), t.name, "a torch.Tensor", "None");
}

bool IsFloat16Or32(int32_t dtype) { return dtype == kSfaFloat16 || dtype == kSfaBfloat16; }

bool IsPowerOfTwoUpTo128(int64_t v) { return v >= 1 && v <= 128 && (v & (v - 1)) == 0; }

// common/batched_params.py check_block_table_shape
void CheckBlockTableShape(const Call& call) {
    const Tensor& bt = call.block_table;
    if (call.kv_layout != Layout::kPA_BSND) {
        Require(!bt.present(), "block_table",
                std::string("None when layout_kv is ") + Name(call.kv_layout),
                bt.present() ? "a tensor of shape " + bt.text() : "None");
        return;
    }
    Require(bt.present(), "block_table", "a tensor when layout_kv is PA_BSND", "None");
    Require(bt.rank() == 2, "block_table", "rank 2 (B, max_blocks_per_seq)", "shape " + bt.text());
    Require(bt.dim(1) > 0, "block_table", "shape[1] > 0", "shape " + bt.text());
    if (call.batch_known)
        Require(bt.dim(0) == call.batch, "block_table", "shape[0] == B=" + Str(call.batch),
                "shape " + bt.text());
}

// (P) rules: caches read in place, sinks well formed (check.py _check_project_rules).
void CheckProjectRules(const Call& call) {
    const Named caches[] = {{&call.key, "key"}, {&call.value, "value"},
                            {&call.key_rope, "key_rope"}};
    for (const Named& t : caches)
        Require(t.tensor->contiguous(), t.name,
                "a contiguous tensor (a cache is read in place, never copied per call)",
                "a non-contiguous tensor of shape " + t.tensor->text());
    const Tensor& sinks = call.sinks;
    if (sinks.present()) {
        const int64_t n1 = call.query.dim(-2);
        Require(sinks.shape() == Shape{n1}, "sinks", "shape (" + Str(n1) + ",) (N1)",
                sinks.text());
        RequireType(sinks.dtype() == kSfaFloat32, "sinks", "dtype float32",
                    DtypeName(sinks.dtype()));
    }
}

// check.py check(p): every static rule, in its order.
void Check(const SfaCoreParams& p, Call& call) {
    CheckRequired(call);
    const Tensor &q = call.query, &k = call.key, &v = call.value, &si = call.sparse_indices;
    const Tensor &qr = call.query_rope, &kr = call.key_rope, &bt = call.block_table;
    // 2. dtypes of query/key/value
    RequireType(IsFloat16Or32(q.dtype()), "query", "dtype float16 or bfloat16",
                DtypeName(q.dtype()));
    RequireType(k.dtype() == q.dtype(), "key", "dtype " + DtypeName(q.dtype()) + " (= query)",
                DtypeName(k.dtype()));
    RequireType(v.dtype() == q.dtype(), "value", "dtype " + DtypeName(q.dtype()) + " (= query)",
                DtypeName(v.dtype()));
    // 3. layouts
    call.q_layout = ParseLayout(p.layout_query, {Layout::kBSND, Layout::kTND}, "layout_query");
    call.kv_layout = ParseLayout(p.layout_kv, {Layout::kBSND, Layout::kTND, Layout::kPA_BSND},
                                 "layout_kv");
    const Layout ql = call.q_layout, kvl = call.kv_layout;
    const bool paged = kvl == Layout::kPA_BSND;
    // 4. sparse_block_size
    Require(IsPowerOfTwoUpTo128(p.sparse_block_size), "sparse_block_size",
            "a power of 2 in [1, 128]", Str(p.sparse_block_size));
    // 5. ranks and empty tensors
    const int64_t want_rank = ql == Layout::kBSND ? 4 : 3;
    Require(q.rank() == want_rank, "query",
            "rank " + Str(want_rank) + " for layout " + Name(ql), "shape " + q.text());
    Require(q.numel() > 0, "query", "no zero dimension", "shape " + q.text());
    Require(k.numel() > 0, "key", "a non-empty tensor", "shape " + k.text());
    Require(si.numel() > 0, "sparse_indices", "a non-empty tensor", "shape " + si.text());
    // 6. / 7. sparse_mode, pre_tokens, next_tokens
    Require(p.sparse_mode == 0 || p.sparse_mode == 3, "sparse_mode", "0 or 3",
            Str(p.sparse_mode));
    Require(p.pre_tokens == kInt64Max, "pre_tokens", Str(kInt64Max) + " (the default)",
            Str(p.pre_tokens));
    Require(p.next_tokens == kInt64Max, "next_tokens", Str(kInt64Max) + " (the default)",
            Str(p.next_tokens));
    // 8. attention_mode and the rope pair
    if (p.attention_mode == 0 && (qr.present() || kr.present()))
        Fail(ErrorKind::kRuntime, "attention_mode",
             "query_rope and key_rope to be None in MHA/GQA mode (attention_mode=0); only "
             "attention_mode=2 is supported", "rope tensors");
    Require(p.attention_mode == 2, "attention_mode", "2 (MLA-absorb)", Str(p.attention_mode));
    Require(qr.present() == kr.present(), "query_rope/key_rope", "both given or both None",
            std::string("only ") + (kr.present() ? "key_rope" : "query_rope"));
    Require(qr.present(), "query_rope", "a tensor (required when attention_mode=2)", "None");
    // 9. layout pair
    if (!paged)
        Require(kvl == ql, "layout_kv", std::string("PA_BSND or the query layout ") + Name(ql),
                Name(kvl));
    // batch size: TND learns it from actual_seq_lengths_query (rule 16 reports it missing)
    if (ql == Layout::kBSND) {
        call.batch_known = true;
        call.batch = q.dim(0);
    } else if (call.aq.present()) {
        call.batch_known = true;
        call.batch = call.aq.numel();
    }
    // 10. / 11. paged cache and block_table
    if (paged)
        Require(k.rank() == 4, "key", "rank 4 (block_num, block_size, 1, 512) for PA_BSND",
                "shape " + k.text());
    CheckBlockTableShape(call);
    if (paged) {
        const int64_t block_size = k.dim(1);
        Require(0 < block_size && block_size <= kMaxPageSize, "key",
                "block_size (key.shape[1]) in (0, " + Str(kMaxPageSize) + "]", Str(block_size));
        Require(block_size % 16 == 0, "key", "block_size (key.shape[1]) a multiple of 16",
                Str(block_size));
        Require(block_size % p.sparse_block_size == 0, "sparse_block_size",
                "a divisor of block_size=" + Str(block_size), Str(p.sparse_block_size));
        Require(k.dim(0) > 0, "key", "block_num (key.shape[0]) > 0", Str(k.dim(0)));
    }
    // 12. heads and batch
    const int64_t kv_rank = kvl == Layout::kTND ? 3 : 4;
    Require(k.rank() == kv_rank, "key", "rank " + Str(kv_rank) + " for layout " + Name(kvl),
            "shape " + k.text());
    const int64_t n1 = q.dim(-2), n2 = k.dim(-2);
    Require(n2 == 1, "key", "N2 (key.shape[-2]) == 1", Str(n2));
    Require(IsPowerOfTwoUpTo128(n1), "query", "N1 (query.shape[-2]) in {1, 2, 4, ..., 128}",
            Str(n1));
    if (call.batch_known)
        Require(call.batch > 0, "actual_seq_lengths_query", "B > 0", Str(call.batch));
    // 13. head dims
    Require(q.dim(-1) == kD, "query", "D (last dim) == " + Str(kD), Str(q.dim(-1)));
    Require(k.dim(-1) == kD, "key", "D (last dim) == " + Str(kD), Str(k.dim(-1)));
    Require(v.dim(-1) == q.dim(-1), "value", "D (last dim) == " + Str(q.dim(-1)) + " (= query)",
            Str(v.dim(-1)));
    Require(qr.dim(-1) == kDr, "query_rope", "Dr (last dim) == " + Str(kDr), Str(qr.dim(-1)));
    Require(qr.rank() == q.rank(), "query_rope", "rank " + Str(q.rank()) + " (= query)",
            Str(qr.rank()));
    // 14. shape consistency
    Require(v.shape() == k.shape(), "value", "shape " + k.text() + " (= key)", v.text());
    const Shape want_kr = Append(DropLast(k.shape(), 1), kDr);
    Require(kr.shape() == want_kr, "key_rope", "shape " + ShapeText(want_kr), kr.text());
    const Shape want_qr = Append(DropLast(q.shape(), 1), kDr);
    Require(qr.shape() == want_qr, "query_rope", "shape " + ShapeText(want_qr), qr.text());
    const Shape want_idx = Append(DropLast(q.shape(), 2), 1);
    std::vector<std::string> want_idx_k = Items(want_idx);
    want_idx_k.push_back("'K'");
    Require(DropLast(si.shape(), 1) == want_idx && si.rank() == q.rank(), "sparse_indices",
            "shape " + Tuple(want_idx_k), si.text());
    // 15. dtype consistency
    RequireType(kr.dtype() == k.dtype(), "key_rope", "dtype " + DtypeName(k.dtype()) + " (= key)",
                DtypeName(kr.dtype()));
    RequireType(qr.dtype() == q.dtype(), "query_rope",
                "dtype " + DtypeName(q.dtype()) + " (= query)", DtypeName(qr.dtype()));
    const Named int32s[] = {{&si, "sparse_indices"}, {&bt, "block_table"},
                            {&call.aq, "actual_seq_lengths_query"},
                            {&call.akv, "actual_seq_lengths_kv"}};
    for (const Named& t : int32s)
        if (t.tensor->present())
            RequireType(t.tensor->dtype() == kSfaInt32, t.name, "dtype int32",
                        DtypeName(t.tensor->dtype()));
    // 16. required lengths
    if (ql == Layout::kTND)
        Require(call.aq.present(), "actual_seq_lengths_query", "a tensor when layout_query is TND",
                "None");
    if (kvl == Layout::kTND || paged)
        Require(call.akv.present(), "actual_seq_lengths_kv",
                std::string("a tensor when layout_kv is ") + Name(kvl), "None");
    // 17. length vectors: non-empty, one entry per batch
    const Named lengths[] = {{&call.aq, "actual_seq_lengths_query"},
                             {&call.akv, "actual_seq_lengths_kv"}};
    for (const Named& t : lengths) {
        if (!t.tensor->present()) continue;
        Require(t.tensor->rank() == 1 && t.tensor->numel() > 0, t.name, "a non-empty 1-D tensor",
                "shape " + t.tensor->text());
        Require(call.batch_known && t.tensor->numel() == call.batch, t.name,
                (call.batch_known ? Str(call.batch) : "None") + " elements (B)",
                Str(t.tensor->numel()));
    }
    if (ql == Layout::kTND && bt.present())
        Require(bt.dim(0) == call.batch, "block_table", "shape[0] == B=" + Str(call.batch),
                "shape " + bt.text());
    // 18. (none): return_softmax_lse is accepted with every key layout (check.py says why)
    CheckProjectRules(call);
}

// ---- the Ascend plan (tiling.py) -------------------------------------------------------------

// Bytes each Ascend buffer needs for a [head_group x block_s2] step (tiling.py tile_usage).
struct Usage {
    int64_t l1, l0a, l0b, l0c, ub;
};

Usage AscendUsage(int64_t hg, int64_t bs, int64_t e) {
    const int64_t rows_per_vector_core = (hg + kVectorCoresInUsage - 1) / kVectorCoresInUsage;
    return {(hg + bs) * kDk * e, hg * 64 * e, bs * 64 * e, std::max(hg * bs, hg * kD) * 4,
            rows_per_vector_core * (bs * 4 + bs * e + kD * 4)};
}

bool Fits(const Usage& u, const SfaCorePlatform& pl) {
    return u.l1 <= pl.l1 && u.l0a <= pl.l0a && u.l0b <= pl.l0b && u.l0c <= pl.l0c &&
           u.ub <= pl.ub;
}

// Python dict spellings of tile_usage (its key order) and of PlatformInfo.buffers (platform.py
// lists the Ascend buffers UB, L1, L0A, L0B, L0C).
std::string UsageText(const Usage& u) {
    return "{'L1': " + Str(u.l1) + ", 'L0A': " + Str(u.l0a) + ", 'L0B': " + Str(u.l0b) +
           ", 'L0C': " + Str(u.l0c) + ", 'UB': " + Str(u.ub) + "}";
}

std::string BuffersText(const SfaCorePlatform& pl) {
    return "{'UB': " + Str(pl.ub) + ", 'L1': " + Str(pl.l1) + ", 'L0A': " + Str(pl.l0a) +
           ", 'L0B': " + Str(pl.l0b) + ", 'L0C': " + Str(pl.l0c) + "}";
}

int64_t HighestPowerOfTwoAtMost(int64_t v) {
    int64_t p = 1;
    while (p <= v / 2) p *= 2;
    return p;
}

struct Tiles {
    int64_t head_group, block_s2;
};

// tiling.py choose_tiles: most heads first (they share the gathered keys), then the longest step.
Tiles ChooseTiles(int64_t n1, int64_t sparse_block_size, int64_t itemsize,
                  const SfaCorePlatform& pl, const std::string& platform_name) {
    const int64_t max_bs2 = std::max(kAscendMaxBlockS2, sparse_block_size);
    const int64_t min_bs2 = std::max(kAscendMinBlockS2, sparse_block_size);
    for (int64_t hg = HighestPowerOfTwoAtMost(n1); hg >= 1; hg /= 2)
        for (int64_t bs2 = HighestPowerOfTwoAtMost(max_bs2); bs2 >= min_bs2; bs2 /= 2)
            if (Fits(AscendUsage(hg, bs2, itemsize), pl)) return {hg, bs2};
    // CannAttentionError(OP, "platform", ...) without Checker's ", got"
    throw Refusal{ErrorKind::kRuntime,
                  std::string(kOp) + ": platform: expected buffers that hold the smallest tile "
                  "(1 head x " + Str(min_bs2) + " keys: " +
                  UsageText(AscendUsage(1, min_bs2, itemsize)) + " B), " + platform_name +
                  " has " + BuffersText(pl)};
}

// struct.pack's ranges, refused by name here instead of struct.error in Python.
uint32_t U32(const char* field, int64_t v) {
    if (v < 0 || v > std::numeric_limits<uint32_t>::max())
        Fail(ErrorKind::kRuntime, std::string("tiling_data.") + field,
             "a value in [0, 4294967295] (a u32 field)", Str(v));
    return static_cast<uint32_t>(v);
}

int64_t Mul(const char* field, int64_t a, int64_t b) {
    int64_t out;
    if (__builtin_mul_overflow(a, b, &out))
        Fail(ErrorKind::kRuntime, std::string("tiling_data.") + field,
             "a value below 2**63 (an i64 field)", Str(a) + " * " + Str(b));
    return out;
}

std::string Double(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

// struct.pack("f"): the nearest float; a finite double that rounds to infinity is refused.
float F32(const char* field, double v) {
    const double limit = std::ldexp(1.0, 128) - std::ldexp(1.0, 103);  // rounds up to inf
    if (std::isfinite(v) && std::fabs(v) >= limit)
        Fail(ErrorKind::kRuntime, std::string("tiling_data.") + field,
             "a value that fits a float32", Double(v));
    return static_cast<float>(v);
}

SparseFlashAttentionTilingData Plan(const SfaCoreParams& p, const Call& call,
                                    const SfaCorePlatform& pl) {
    const std::string name = pl.name ? pl.name : "None";
    if (pl.kind != kSfaAscend)
        Fail(ErrorKind::kRuntime, "platform",
             "an Ascend platform (the C++ tiling core plans A2/A3 only; GPU and CPU plans are "
             "Python's)", name + (pl.kind == kSfaGpu ? " (gpu)" : pl.kind == kSfaCpu ? " (cpu)"
                                                                                   : " (unknown)"));
    bool soc = false;
    for (const char* s : kAscendSocs) soc = soc || name == s;
    Require(soc, "platform", "an Ascend A2/A3 SoC ('Ascend910B', 'Ascend910_93')", name);

    const Tensor &q = call.query, &k = call.key, &bt = call.block_table;
    const bool paged = call.kv_layout == Layout::kPA_BSND;
    const int64_t n1 = q.dim(-2);
    const int64_t itemsize = 2;   // float16 / bfloat16, the only dtypes rule 2 lets through
    const Tiles tiles = ChooseTiles(n1, p.sparse_block_size, itemsize, pl, name);

    const int64_t num_rows = q.numel() / (n1 * q.dim(-1));
    const int64_t groups = n1 / tiles.head_group;
    const int64_t num_tasks = Mul("num_tasks", num_rows, groups);
    const int64_t cores = pl.num_cores;
    // common/schedule.py max_pieces / max_slots / max_split_tasks
    int64_t max_pieces = 0;
    if (num_tasks > 0 && __builtin_add_overflow(num_tasks, cores - 1, &max_pieces))
        Fail(ErrorKind::kRuntime, "tiling_data.max_pieces", "a value below 2**63 (an i64 field)",
             Str(num_tasks) + " + " + Str(cores - 1));
    const int64_t max_slots = std::min(max_pieces, Mul("max_slots", 2, cores - 1));
    const int64_t max_split_tasks = std::min(num_tasks, cores - 1);
    int64_t kv_capacity = 0;   // common/seqlens.py key_capacity
    switch (call.kv_layout) {
        case Layout::kBSND: kv_capacity = k.dim(1); break;
        case Layout::kTND: kv_capacity = k.dim(0); break;
        case Layout::kPA_BSND: kv_capacity = Mul("kv_capacity", bt.dim(1), k.dim(1)); break;
    }

    SparseFlashAttentionTilingData t{};
    t.version = kTilingVersion;
    t.tiling_key = kAscendTilingKey;
    t.num_rows = num_rows;
    t.num_tasks = num_tasks;
    t.max_pieces = max_pieces;
    t.kv_capacity = kv_capacity;
    t.block_num = paged ? k.dim(0) : 0;
    t.num_cores = U32("num_cores", cores);
    t.head_group = U32("head_group", tiles.head_group);
    t.groups = U32("groups", groups);
    t.block_s2 = U32("block_s2", tiles.block_s2);
    t.entries_per_step = U32("entries_per_step", tiles.block_s2 / p.sparse_block_size);
    t.stages = 1;
    t.num_warps = 1;
    t.max_slots = U32("max_slots", max_slots);
    t.max_split_tasks = U32("max_split_tasks", max_split_tasks);
    t.split_cost = -1;        // Ascend cuts tasks wherever the balance asks
    t.batch = U32("batch", call.batch);
    t.rows_per_batch = U32("rows_per_batch", call.q_layout == Layout::kBSND ? q.dim(1) : num_rows);
    t.n1 = U32("n1", n1);
    t.sparse_count = U32("sparse_count", call.sparse_indices.dim(-1));
    t.sparse_block_size = U32("sparse_block_size", p.sparse_block_size);
    t.sparse_mode = U32("sparse_mode", p.sparse_mode);
    t.page_size = paged ? U32("page_size", k.dim(1)) : 0;
    t.max_blocks = paged ? U32("max_blocks", bt.dim(1)) : 0;
    t.layout_query = Code(call.q_layout);
    t.layout_kv = Code(call.kv_layout);
    t.return_softmax_lse = p.return_softmax_lse ? 1 : 0;
    t.has_sinks = call.sinks.present() ? 1 : 0;
    t.scale_value = F32("scale_value", p.scale_value);
    return t;
}

// Runs `body`, turning a refusal (or anything unexpected) into (kind, message).
template <typename Body>
int32_t Guarded(char* message, int64_t message_size, Body body) {
    try {
        body();
        cann_attention::WriteMessage("", message, message_size);
        return 0;
    } catch (const Refusal& r) {
        cann_attention::WriteMessage(r.message, message, message_size);
        return static_cast<int32_t>(r.kind);
    } catch (const std::exception& e) {
        cann_attention::WriteMessage(std::string(kOp) + ": internal error: " + e.what(), message,
                                     message_size);
        return static_cast<int32_t>(ErrorKind::kRuntime);
    }
}

void RequireArgument(bool ok, const char* what) {
    if (!ok) Fail(ErrorKind::kRuntime, what, "a non-null pointer", "null");
}

}  // namespace

extern "C" int32_t sfa_check(const SfaCoreParams* params, char* message, int64_t message_size) {
    return Guarded(message, message_size, [&] {
        RequireArgument(params != nullptr, "params");
        Call call(*params);
        Check(*params, call);
    });
}

extern "C" int32_t sfa_tiling(const SfaCoreParams* params, const SfaCorePlatform* platform,
                              uint8_t* tiling_data, int64_t size, char* message,
                              int64_t message_size) {
    return Guarded(message, message_size, [&] {
        RequireArgument(params != nullptr, "params");
        RequireArgument(platform != nullptr, "platform");
        RequireArgument(tiling_data != nullptr, "tiling_data");
        const int64_t need = static_cast<int64_t>(sizeof(SparseFlashAttentionTilingData));
        Require(size >= need, "tiling_data", "a buffer of at least " + Str(need) + " bytes",
                Str(size) + " bytes");
        Call call(*params);
        Check(*params, call);
        const SparseFlashAttentionTilingData t = Plan(*params, call, *platform);
        std::memcpy(tiling_data, &t, sizeof t);
    });
}

extern "C" int64_t sfa_tiling_data_size(void) {
    return static_cast<int64_t>(sizeof(SparseFlashAttentionTilingData));
}

extern "C" const char* sfa_dtype_name(int32_t code) { return DtypeNameOrNull(code); }
