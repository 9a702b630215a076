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
#include <string>
#include <vector>

namespace {

using cann_attention::AscendUsage;
using cann_attention::Checker;
using cann_attention::CorePlatform;
using cann_attention::DtypeName;
using cann_attention::ErrorKind;
using cann_attention::FieldMul;
using cann_attention::FieldU32;
using cann_attention::Layout;
using cann_attention::LayoutCode;
using cann_attention::LayoutName;
using cann_attention::ParseLayout;
using cann_attention::PyTuple;
using cann_attention::ShapeText;
using cann_attention::Str;
using cann_attention::TensorDesc;
using cann_attention::kBfloat16;
using cann_attention::kFloat16;
using cann_attention::kFloat32;
using cann_attention::kInt32;
using cann_attention::kInt64Max;
using Shape = std::vector<int64_t>;

constexpr char kOp[] = "npu_sparse_flash_attention";
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
constexpr Checker kCheck(kOp);

// ---- Python spellings (the shared ones are core_common.h's) ------------------------------------

std::vector<std::string> Items(const Shape& shape) {
    std::vector<std::string> items;
    for (int64_t d : shape) items.push_back(Str(d));
    return items;
}

// ---- tensors -----------------------------------------------------------------------------

// A tensor argument as TensorMeta holds it. Shapes are torch's (non-negative dims, an int64
// element count); anything else cannot come from torch and is refused before any rule.
class Tensor {
  public:
    Tensor(const TensorDesc& desc, const char* arg) : arg_(arg), present_(desc.present != 0) {
        if (!present_) return;
        dtype_ = desc.dtype;
        contiguous_ = desc.contiguous != 0;
        if (desc.rank < 0 || desc.rank > cann_attention::kMaxRank)
            kCheck.Fail(ErrorKind::kRuntime, arg, "a shape of rank in [0, " +
                        Str(cann_attention::kMaxRank) + "]", "rank " + Str(desc.rank));
        shape_.assign(desc.dims, desc.dims + desc.rank);
        bool empty = false;
        for (int64_t d : shape_) {
            if (d < 0)
                kCheck.Fail(ErrorKind::kRuntime, arg, "non-negative dims", "shape " + text());
            empty = empty || d == 0;
        }
        numel_ = empty ? 0 : 1;
        for (int64_t d : shape_) {
            if (empty) break;
            if (numel_ > kInt64Max / d)
                kCheck.Fail(ErrorKind::kRuntime, arg, "fewer than 2**63 elements",
                            "shape " + text());
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
            kCheck.Fail(ErrorKind::kRuntime, arg_, "a dimension at index " + Str(i),
                        "shape " + text());
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
    for (const Named& t : required)
        kCheck.RequireType(t.tensor->present(), t.name, "a torch.Tensor", "None");
}

bool IsFloat16Or32(int32_t dtype) { return dtype == kFloat16 || dtype == kBfloat16; }

bool IsPowerOfTwoUpTo128(int64_t v) { return v >= 1 && v <= 128 && (v & (v - 1)) == 0; }

// (P) rules: caches read in place, sinks well formed (check.py _check_project_rules).
void CheckProjectRules(const SfaCoreParams& p, const Call& call) {
    cann_attention::CheckCacheContiguous(kCheck, "key", p.key);
    cann_attention::CheckCacheContiguous(kCheck, "value", p.value);
    cann_attention::CheckCacheContiguous(kCheck, "key_rope", p.key_rope);
    const Tensor& sinks = call.sinks;
    if (sinks.present()) {
        const int64_t n1 = call.query.dim(-2);
        kCheck.Require(sinks.shape() == Shape{n1}, "sinks", "shape (" + Str(n1) + ",) (N1)",
                       sinks.text());
        kCheck.RequireType(sinks.dtype() == kFloat32, "sinks", "dtype float32",
                           DtypeName(sinks.dtype()));
    }
}

// check.py check(p): every static rule, in its order.
void Check(const SfaCoreParams& p, Call& call) {
    CheckRequired(call);
    const Tensor &q = call.query, &k = call.key, &v = call.value, &si = call.sparse_indices;
    const Tensor &qr = call.query_rope, &kr = call.key_rope, &bt = call.block_table;
    // 2. dtypes of query/key/value
    kCheck.RequireType(IsFloat16Or32(q.dtype()), "query", "dtype float16 or bfloat16",
                       DtypeName(q.dtype()));
    kCheck.RequireType(k.dtype() == q.dtype(), "key",
                       "dtype " + DtypeName(q.dtype()) + " (= query)", DtypeName(k.dtype()));
    kCheck.RequireType(v.dtype() == q.dtype(), "value",
                       "dtype " + DtypeName(q.dtype()) + " (= query)", DtypeName(v.dtype()));
    // 3. layouts
    call.q_layout =
        ParseLayout(kCheck, p.layout_query, {Layout::kBSND, Layout::kTND}, "layout_query");
    call.kv_layout = ParseLayout(kCheck, p.layout_kv,
                                 {Layout::kBSND, Layout::kTND, Layout::kPA_BSND}, "layout_kv");
    const Layout ql = call.q_layout, kvl = call.kv_layout;
    const bool paged = kvl == Layout::kPA_BSND;
    // 4. sparse_block_size
    kCheck.Require(IsPowerOfTwoUpTo128(p.sparse_block_size), "sparse_block_size",
                   "a power of 2 in [1, 128]", Str(p.sparse_block_size));
    // 5. ranks and empty tensors
    const int64_t want_rank = ql == Layout::kBSND ? 4 : 3;
    kCheck.Require(q.rank() == want_rank, "query",
                   "rank " + Str(want_rank) + " for layout " + LayoutName(ql), "shape " + q.text());
    kCheck.Require(q.numel() > 0, "query", "no zero dimension", "shape " + q.text());
    kCheck.Require(k.numel() > 0, "key", "a non-empty tensor", "shape " + k.text());
    kCheck.Require(si.numel() > 0, "sparse_indices", "a non-empty tensor", "shape " + si.text());
    // 6. / 7. sparse_mode, pre_tokens, next_tokens
    kCheck.Require(p.sparse_mode == 0 || p.sparse_mode == 3, "sparse_mode", "0 or 3",
                   Str(p.sparse_mode));
    kCheck.Require(p.pre_tokens == kInt64Max, "pre_tokens", Str(kInt64Max) + " (the default)",
                   Str(p.pre_tokens));
    kCheck.Require(p.next_tokens == kInt64Max, "next_tokens", Str(kInt64Max) + " (the default)",
                   Str(p.next_tokens));
    // 8. attention_mode and the rope pair
    if (p.attention_mode == 0 && (qr.present() || kr.present()))
        kCheck.Fail(ErrorKind::kRuntime, "attention_mode",
                    "query_rope and key_rope to be None in MHA/GQA mode (attention_mode=0); only "
                    "attention_mode=2 is supported", "rope tensors");
    kCheck.Require(p.attention_mode == 2, "attention_mode", "2 (MLA-absorb)",
                   Str(p.attention_mode));
    kCheck.Require(qr.present() == kr.present(), "query_rope/key_rope", "both given or both None",
                   std::string("only ") + (kr.present() ? "key_rope" : "query_rope"));
    kCheck.Require(qr.present(), "query_rope", "a tensor (required when attention_mode=2)", "None");
    // 9. layout pair
    if (!paged)
        kCheck.Require(kvl == ql, "layout_kv",
                       std::string("PA_BSND or the query layout ") + LayoutName(ql),
                       LayoutName(kvl));
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
        kCheck.Require(k.rank() == 4, "key", "rank 4 (block_num, block_size, 1, 512) for PA_BSND",
                       "shape " + k.text());
    cann_attention::CheckBlockTableShape(kCheck, p.block_table, kvl,
                                         call.batch_known ? call.batch : -1, "layout_kv");
    if (paged) {
        const int64_t block_size = k.dim(1);
        kCheck.Require(0 < block_size && block_size <= kMaxPageSize, "key",
                       "block_size (key.shape[1]) in (0, " + Str(kMaxPageSize) + "]",
                       Str(block_size));
        kCheck.Require(block_size % 16 == 0, "key", "block_size (key.shape[1]) a multiple of 16",
                       Str(block_size));
        kCheck.Require(block_size % p.sparse_block_size == 0, "sparse_block_size",
                       "a divisor of block_size=" + Str(block_size), Str(p.sparse_block_size));
        kCheck.Require(k.dim(0) > 0, "key", "block_num (key.shape[0]) > 0", Str(k.dim(0)));
    }
    // 12. heads and batch
    const int64_t kv_rank = kvl == Layout::kTND ? 3 : 4;
    kCheck.Require(k.rank() == kv_rank, "key",
                   "rank " + Str(kv_rank) + " for layout " + LayoutName(kvl), "shape " + k.text());
    const int64_t n1 = q.dim(-2), n2 = k.dim(-2);
    kCheck.Require(n2 == 1, "key", "N2 (key.shape[-2]) == 1", Str(n2));
    kCheck.Require(IsPowerOfTwoUpTo128(n1), "query", "N1 (query.shape[-2]) in {1, 2, 4, ..., 128}",
                   Str(n1));
    if (call.batch_known)
        kCheck.Require(call.batch > 0, "actual_seq_lengths_query", "B > 0", Str(call.batch));
    // 13. head dims
    kCheck.Require(q.dim(-1) == kD, "query", "D (last dim) == " + Str(kD), Str(q.dim(-1)));
    kCheck.Require(k.dim(-1) == kD, "key", "D (last dim) == " + Str(kD), Str(k.dim(-1)));
    kCheck.Require(v.dim(-1) == q.dim(-1), "value",
                   "D (last dim) == " + Str(q.dim(-1)) + " (= query)", Str(v.dim(-1)));
    kCheck.Require(qr.dim(-1) == kDr, "query_rope", "Dr (last dim) == " + Str(kDr),
                   Str(qr.dim(-1)));
    kCheck.Require(qr.rank() == q.rank(), "query_rope", "rank " + Str(q.rank()) + " (= query)",
                   Str(qr.rank()));
    // 14. shape consistency
    kCheck.Require(v.shape() == k.shape(), "value", "shape " + k.text() + " (= key)", v.text());
    const Shape want_kr = Append(DropLast(k.shape(), 1), kDr);
    kCheck.Require(kr.shape() == want_kr, "key_rope", "shape " + ShapeText(want_kr), kr.text());
    const Shape want_qr = Append(DropLast(q.shape(), 1), kDr);
    kCheck.Require(qr.shape() == want_qr, "query_rope", "shape " + ShapeText(want_qr), qr.text());
    const Shape want_idx = Append(DropLast(q.shape(), 2), 1);
    std::vector<std::string> want_idx_k = Items(want_idx);
    want_idx_k.push_back("'K'");
    kCheck.Require(DropLast(si.shape(), 1) == want_idx && si.rank() == q.rank(), "sparse_indices",
                   "shape " + PyTuple(want_idx_k), si.text());
    // 15. dtype consistency
    kCheck.RequireType(kr.dtype() == k.dtype(), "key_rope",
                       "dtype " + DtypeName(k.dtype()) + " (= key)", DtypeName(kr.dtype()));
    kCheck.RequireType(qr.dtype() == q.dtype(), "query_rope",
                       "dtype " + DtypeName(q.dtype()) + " (= query)", DtypeName(qr.dtype()));
    const Named int32s[] = {{&si, "sparse_indices"}, {&bt, "block_table"},
                            {&call.aq, "actual_seq_lengths_query"},
                            {&call.akv, "actual_seq_lengths_kv"}};
    for (const Named& t : int32s)
        if (t.tensor->present())
            kCheck.RequireType(t.tensor->dtype() == kInt32, t.name, "dtype int32",
                               DtypeName(t.tensor->dtype()));
    // 16. required lengths
    if (ql == Layout::kTND)
        kCheck.Require(call.aq.present(), "actual_seq_lengths_query",
                       "a tensor when layout_query is TND", "None");
    if (kvl == Layout::kTND || paged)
        kCheck.Require(call.akv.present(), "actual_seq_lengths_kv",
                       std::string("a tensor when layout_kv is ") + LayoutName(kvl), "None");
    // 17. length vectors: non-empty, one entry per batch
    const Named lengths[] = {{&call.aq, "actual_seq_lengths_query"},
                             {&call.akv, "actual_seq_lengths_kv"}};
    for (const Named& t : lengths) {
        if (!t.tensor->present()) continue;
        kCheck.Require(t.tensor->rank() == 1 && t.tensor->numel() > 0, t.name,
                       "a non-empty 1-D tensor", "shape " + t.tensor->text());
        kCheck.Require(call.batch_known && t.tensor->numel() == call.batch, t.name,
                       (call.batch_known ? Str(call.batch) : "None") + " elements (B)",
                       Str(t.tensor->numel()));
    }
    if (ql == Layout::kTND && bt.present())
        kCheck.Require(bt.dim(0) == call.batch, "block_table", "shape[0] == B=" + Str(call.batch),
                       "shape " + bt.text());
    // 18. (none): return_softmax_lse is accepted with every key layout (check.py says why)
    CheckProjectRules(p, call);
}

// ---- the Ascend plan (tiling.py) -------------------------------------------------------------

// Bytes each Ascend buffer needs for a [head_group x block_s2] step (tiling.py tile_usage).
AscendUsage TileUsage(int64_t hg, int64_t bs, int64_t e) {
    const int64_t rows_per_vector_core = (hg + kVectorCoresInUsage - 1) / kVectorCoresInUsage;
    return {(hg + bs) * kDk * e, hg * 64 * e, bs * 64 * e, std::max(hg * bs, hg * kD) * 4,
            rows_per_vector_core * (bs * 4 + bs * e + kD * 4)};
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
Tiles ChooseTiles(int64_t n1, int64_t sparse_block_size, int64_t itemsize, const CorePlatform& pl,
                  const std::string& platform_name) {
    const int64_t max_bs2 = std::max(kAscendMaxBlockS2, sparse_block_size);
    const int64_t min_bs2 = std::max(kAscendMinBlockS2, sparse_block_size);
    for (int64_t hg = HighestPowerOfTwoAtMost(n1); hg >= 1; hg /= 2)
        for (int64_t bs2 = HighestPowerOfTwoAtMost(max_bs2); bs2 >= min_bs2; bs2 /= 2)
            if (cann_attention::Fits(TileUsage(hg, bs2, itemsize), pl)) return {hg, bs2};
    // CannAttentionError(OP, "platform", ...) without Checker's ", got"
    kCheck.Raise(ErrorKind::kRuntime, "platform",
                 "expected buffers that hold the smallest tile (1 head x " + Str(min_bs2) +
                     " keys: " + cann_attention::UsageText(TileUsage(1, min_bs2, itemsize)) +
                     " B), " + platform_name + " has " + cann_attention::BuffersText(pl));
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
        kCheck.Fail(ErrorKind::kRuntime, std::string("tiling_data.") + field,
                    "a value that fits a float32", Double(v));
    return static_cast<float>(v);
}

SparseFlashAttentionTilingData Plan(const SfaCoreParams& p, const Call& call,
                                    const CorePlatform& pl) {
    const std::string name = cann_attention::RequireAscendA2A3(kCheck, pl);

    const Tensor &q = call.query, &k = call.key, &bt = call.block_table;
    const bool paged = call.kv_layout == Layout::kPA_BSND;
    const int64_t n1 = q.dim(-2);
    const int64_t itemsize = 2;   // float16 / bfloat16, the only dtypes rule 2 lets through
    const Tiles tiles = ChooseTiles(n1, p.sparse_block_size, itemsize, pl, name);

    const int64_t num_rows = q.numel() / (n1 * q.dim(-1));
    const int64_t groups = n1 / tiles.head_group;
    const int64_t num_tasks = FieldMul(kCheck, "tiling_data.num_tasks", num_rows, groups);
    const int64_t cores = pl.num_cores;
    // common/schedule.py max_pieces / max_slots / max_split_tasks
    const int64_t max_pieces =
        num_tasks > 0 ? cann_attention::FieldAdd(kCheck, "tiling_data.max_pieces", num_tasks,
                                                 cores - 1)
                      : 0;
    const int64_t max_slots =
        std::min(max_pieces, FieldMul(kCheck, "tiling_data.max_slots", 2, cores - 1));
    const int64_t max_split_tasks = std::min(num_tasks, cores - 1);
    int64_t kv_capacity = 0;   // common/seqlens.py key_capacity
    switch (call.kv_layout) {
        case Layout::kBSND: kv_capacity = k.dim(1); break;
        case Layout::kTND: kv_capacity = k.dim(0); break;
        case Layout::kPA_BSND:
            kv_capacity = FieldMul(kCheck, "tiling_data.kv_capacity", bt.dim(1), k.dim(1));
            break;
        case Layout::kBNSD:
        case Layout::kBSH: break;    // refused by the check
    }

    SparseFlashAttentionTilingData t{};
    t.version = kTilingVersion;
    t.tiling_key = kAscendTilingKey;
    t.num_rows = num_rows;
    t.num_tasks = num_tasks;
    t.max_pieces = max_pieces;
    t.kv_capacity = kv_capacity;
    t.block_num = paged ? k.dim(0) : 0;
    t.num_cores = FieldU32(kCheck, "tiling_data.num_cores", cores);
    t.head_group = FieldU32(kCheck, "tiling_data.head_group", tiles.head_group);
    t.groups = FieldU32(kCheck, "tiling_data.groups", groups);
    t.block_s2 = FieldU32(kCheck, "tiling_data.block_s2", tiles.block_s2);
    t.entries_per_step =
        FieldU32(kCheck, "tiling_data.entries_per_step", tiles.block_s2 / p.sparse_block_size);
    t.stages = 1;
    t.num_warps = 1;
    t.max_slots = FieldU32(kCheck, "tiling_data.max_slots", max_slots);
    t.max_split_tasks = FieldU32(kCheck, "tiling_data.max_split_tasks", max_split_tasks);
    t.split_cost = -1;        // Ascend cuts tasks wherever the balance asks
    t.batch = FieldU32(kCheck, "tiling_data.batch", call.batch);
    t.rows_per_batch = FieldU32(kCheck, "tiling_data.rows_per_batch",
                                call.q_layout == Layout::kBSND ? q.dim(1) : num_rows);
    t.n1 = FieldU32(kCheck, "tiling_data.n1", n1);
    t.sparse_count = FieldU32(kCheck, "tiling_data.sparse_count", call.sparse_indices.dim(-1));
    t.sparse_block_size = FieldU32(kCheck, "tiling_data.sparse_block_size", p.sparse_block_size);
    t.sparse_mode = FieldU32(kCheck, "tiling_data.sparse_mode", p.sparse_mode);
    t.page_size = paged ? FieldU32(kCheck, "tiling_data.page_size", k.dim(1)) : 0;
    t.max_blocks = paged ? FieldU32(kCheck, "tiling_data.max_blocks", bt.dim(1)) : 0;
    t.layout_query = LayoutCode(call.q_layout);
    t.layout_kv = LayoutCode(call.kv_layout);
    t.return_softmax_lse = p.return_softmax_lse ? 1 : 0;
    t.has_sinks = call.sinks.present() ? 1 : 0;
    t.scale_value = F32("scale_value", p.scale_value);
    return t;
}

}  // namespace

extern "C" int32_t sfa_check(const SfaCoreParams* params, char* message, int64_t message_size) {
    return cann_attention::Guarded(kCheck, message, message_size, [&] {
        kCheck.RequireNonNull(params, "params");
        Call call(*params);
        Check(*params, call);
    });
}

extern "C" int32_t sfa_tiling(const SfaCoreParams* params, const CorePlatform* platform,
                              uint8_t* tiling_data, int64_t size, char* message,
                              int64_t message_size) {
    return cann_attention::Guarded(kCheck, message, message_size, [&] {
        kCheck.RequireNonNull(params, "params");
        kCheck.RequireNonNull(platform, "platform");
        cann_attention::RequireOutput(kCheck, tiling_data, size,
                                      sizeof(SparseFlashAttentionTilingData));
        Call call(*params);
        Check(*params, call);
        const SparseFlashAttentionTilingData t = Plan(*params, call, *platform);
        std::memcpy(tiling_data, &t, sizeof t);
    });
}

extern "C" int64_t sfa_tiling_data_size(void) {
    return static_cast<int64_t>(sizeof(SparseFlashAttentionTilingData));
}

extern "C" const char* sfa_dtype_name(int32_t code) {
    return cann_attention::DtypeNameOrEmpty(code);
}

extern "C" int64_t sfa_struct_size(int32_t which) {
    return cann_attention::StructSize<SfaCoreParams>(which);
}
