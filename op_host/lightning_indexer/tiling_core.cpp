// The C++ tiling core of npu_lightning_indexer (see tiling_core.h). Each step names the Python
// function it mirrors; the parity tests (tests/op_host/test_lightning_indexer_tiling_core.py)
// hold the two to the same messages and the same TilingData bytes.
#include "tiling_core.h"

#include <cstring>
#include <string>
#include <utility>

namespace cann_attention {
namespace lightning_indexer {
namespace {

const char kOp[] = "npu_lightning_indexer";
constexpr int64_t kHeadDim = 128;                 // params.D
constexpr int64_t kMaxSparseCount = 2048;         // check.MAX_SPARSE_COUNT
constexpr int64_t kExtraSparseCounts[] = {3072, 4096, 5120, 6144, 7168, 8192};
constexpr int64_t kMaxN1 = 64;                    // check.MAX_N1
constexpr int64_t kMaxPageSize = 1024;            // check.MAX_PAGE_SIZE
constexpr int64_t kMaxBlockS2 = 512;              // tiling.MAX_BLOCK_S2[ASCEND]
constexpr int64_t kMinBlockS2 = 16;               // tiling.MIN_BLOCK_S2
constexpr int64_t kPairBytes = 8;                 // tiling.PAIR_BYTES
constexpr uint32_t kTilingKeyAscend = 2;          // tiling.TILING_KEYS["ascend"]
constexpr uint32_t kTilingDataVersion = 3;        // tiling.TILING_DATA.version
constexpr Checker kCheck(kOp);

// ---- Python's spelling of values in messages (the shared ones are core_common.h's) -----------

std::string ShapeOf(const TensorDesc& t) { return "shape " + ShapeText(t.dims, t.rank); }

// ---- the rules of check.py ----------------------------------------------------------------

// Shapes come from tensors, whose element count torch keeps within int64; saturating keeps a
// hand-made shape from overflowing all the same.
int64_t Product(const int64_t* dims, int32_t n) {
    int64_t p = 1;
    for (int32_t i = 0; i < n; ++i) {
        if (__builtin_mul_overflow(p, dims[i], &p)) return kInt64Max;
    }
    return p;
}

int64_t Numel(const TensorDesc& t) { return Product(t.dims, t.rank); }
int64_t Dim(const TensorDesc& t, int32_t i) { return t.dims[i < 0 ? t.rank + i : i]; }

bool ValidSparseCount(int64_t k) {
    if (k >= 1 && k <= kMaxSparseCount) return true;
    for (int64_t extra : kExtraSparseCounts) {
        if (k == extra) return true;
    }
    return false;
}

std::string SparseCountsText() {
    std::string s = "a value in [1, " + Str(kMaxSparseCount) + "] or one of [";
    for (size_t i = 0; i < sizeof kExtraSparseCounts / sizeof kExtraSparseCounts[0]; ++i) {
        s += (i ? ", " : "") + Str(kExtraSparseCounts[i]);
    }
    return s + "]";
}

// What the plan needs from a checked call.
struct Checked {
    Layout q_layout, k_layout;
    int64_t batch;
};

// check.check, rule for rule.
Checked Check(const LiCoreParams& p) {
    const TensorDesc &q = p.query, &k = p.key, &w = p.weights;
    const TensorDesc &aq = p.actual_seq_lengths_query, &ak = p.actual_seq_lengths_key,
                     &bt = p.block_table;
    // layouts, then the non-PA layout pair
    const Layout q_layout = ParseLayout(kCheck, p.layout_query, {Layout::kBSND, Layout::kTND},
                                        "layout_query");
    const Layout k_layout = ParseLayout(
        kCheck, p.layout_key, {Layout::kPA_BSND, Layout::kBSND, Layout::kTND}, "layout_key");
    if (k_layout != Layout::kPA_BSND) {
        kCheck.Require(k_layout == q_layout, "layout_key",
                       std::string("under non-PA conditions, layout_query and layout_key "
                                   "should be equal (layout_key ") +
                           LayoutName(q_layout) + " or PA_BSND)",
                       LayoutName(k_layout));
    }
    // sparse_count, sparse_mode, pre/next tokens, return_value
    kCheck.Require(ValidSparseCount(p.sparse_count), "sparse_count", SparseCountsText(),
                   Str(p.sparse_count));
    kCheck.Require(p.sparse_mode == 0 || p.sparse_mode == 3, "sparse_mode",
                   "0 or 3 (input attr sparse_mode only supported 0 or 3)", Str(p.sparse_mode));
    kCheck.Require(p.pre_tokens == kInt64Max, "pre_tokens", Str(kInt64Max) + " (the default)",
                   Str(p.pre_tokens));
    kCheck.Require(p.next_tokens == kInt64Max, "next_tokens", Str(kInt64Max) + " (the default)",
                   Str(p.next_tokens));
    if (p.return_value) {
        kCheck.Require(k_layout != Layout::kPA_BSND, "return_value",
                       "False when layout_key is PA_BSND", "True");
    }
    // dtypes
    kCheck.RequireType(q.dtype == kFloat16 || q.dtype == kBfloat16, "query",
                       "dtype float16 or bfloat16", DtypeName(q.dtype));
    kCheck.RequireType(k.dtype == q.dtype, "key", "dtype " + DtypeName(q.dtype) + " (= query)",
                       DtypeName(k.dtype));
    kCheck.RequireType(w.dtype == q.dtype || w.dtype == kFloat32, "weights",
                       "dtype " + DtypeName(q.dtype) + " (= query) or float32", DtypeName(w.dtype));
    const std::pair<const char*, const TensorDesc*> int_tensors[] = {
        {"actual_seq_lengths_query", &aq}, {"actual_seq_lengths_key", &ak},
        {"block_table", &bt}};
    for (const auto& [name, meta] : int_tensors) {
        if (meta->present) {
            kCheck.RequireType(meta->dtype == kInt32, name, "dtype int32", DtypeName(meta->dtype));
        }
    }
    // ranks and empty tensors
    const int32_t q_rank = q_layout == Layout::kBSND ? 4 : 3;
    const int32_t k_rank = k_layout == Layout::kTND ? 3 : 4;
    kCheck.Require(q.rank == q_rank, "query",
                   "rank " + Str(q_rank) + " for layout_query " + LayoutName(q_layout), ShapeOf(q));
    bool no_zero = true;
    for (int32_t i = 0; i < q.rank; ++i) no_zero &= q.dims[i] > 0;
    kCheck.Require(no_zero, "query", "no zero dimension", ShapeOf(q));
    kCheck.Require(k.rank == k_rank, "key",
                   "rank " + Str(k_rank) + " for layout_key " + LayoutName(k_layout), ShapeOf(k));
    kCheck.Require(w.rank == q_rank - 1, "weights",
                   "rank " + Str(q_rank - 1) + (q_rank == 4 ? " ((B, S1, N1))" : " ((T1, N1))"),
                   ShapeOf(w));
    // batch size (TND: from actual_seq_lengths_query; -1 while it is missing, reported below)
    const int64_t batch = q_layout == Layout::kBSND ? q.dims[0] : aq.present ? Numel(aq) : -1;
    // paged cache
    CheckBlockTableShape(kCheck, bt, k_layout, batch, "layout_key");
    if (k_layout == Layout::kPA_BSND) {
        kCheck.Require(ak.present, "actual_seq_lengths_key", "a tensor when layout_key is PA_BSND",
                       "None");
        const int64_t block_size = k.dims[1];
        kCheck.Require(block_size > 0 && block_size <= kMaxPageSize, "key",
                       "block_size (key.shape[1]) in (0, " + Str(kMaxPageSize) + "]",
                       Str(block_size));
        kCheck.Require(block_size % 16 == 0, "key", "block_size (key.shape[1]) a multiple of 16",
                       Str(block_size));
        kCheck.Require(k.dims[0] > 0, "key", "block_count (key.shape[0]) > 0", Str(k.dims[0]));
    }
    // required lengths
    if (k_layout == Layout::kTND) {
        kCheck.Require(ak.present, "actual_seq_lengths_key", "a tensor when layout_key is TND",
                       "None");
    }
    if (q_layout == Layout::kTND) {
        kCheck.Require(aq.present, "actual_seq_lengths_query", "a tensor when layout_query is TND",
                       "None");
    }
    // heads and head dims (with N2 == 1, CANN's N1 % N2 == 0 always holds)
    kCheck.Require(Dim(k, -2) == 1, "key", "N2 (key.shape[-2]) == 1 (only support 1)",
                   Str(Dim(k, -2)));
    kCheck.Require(Dim(q, -1) == kHeadDim, "query", "head_dim (last dim) == " + Str(kHeadDim),
                   Str(Dim(q, -1)));
    kCheck.Require(Dim(k, -1) == kHeadDim, "key", "head_dim (last dim) == " + Str(kHeadDim) +
                   " (= query)", Str(Dim(k, -1)));
    // length vectors: non-empty, one entry per batch (the batch is known by now)
    const std::pair<const char*, const TensorDesc*> lengths[] = {
        {"actual_seq_lengths_query", &aq}, {"actual_seq_lengths_key", &ak}};
    for (const auto& [name, meta] : lengths) {
        if (!meta->present) continue;
        kCheck.Require(meta->rank == 1 && Numel(*meta) > 0, name, "a non-empty 1-D tensor",
                       ShapeOf(*meta));
        kCheck.Require(Numel(*meta) == batch, name, Str(batch) + " elements (B)",
                       Str(Numel(*meta)));
    }
    if (k_layout == Layout::kBSND) {
        kCheck.Require(k.dims[0] == batch, "key", "shape[0] == B=" + Str(batch), ShapeOf(k));
    }
    // weights shape: the query's without D
    bool same = w.rank == q.rank - 1;
    for (int32_t i = 0; same && i < w.rank; ++i) same = w.dims[i] == q.dims[i];
    kCheck.Require(same, "weights", "shape " + ShapeText(q.dims, q.rank - 1) +
                   " (query shape without D; weights N1 == query N1)", ShapeText(w.dims, w.rank));
    // (P) N1 within the documented limit; the key cache read in place
    kCheck.Require(Dim(q, -2) <= kMaxN1, "query", "N1 (query.shape[-2]) <= " + Str(kMaxN1),
                   Str(Dim(q, -2)));
    CheckCacheContiguous(kCheck, "key", k);
    return Checked{q_layout, k_layout, batch};
}

// ---- the plan of tiling.py on Ascend -------------------------------------------------------

// The vector core owning a row's top-k list holds half of the score tile's rows: A2/A3 pair two
// vector cores with each cube core (tiling.py writes the 2 as -(-hg // 2), not from
// vector_cores_per_core, and so does the core). The merge buffers hold K + bs candidate pairs
// and the sort's scratch of the same size.
AscendUsage TileUsage(int64_t n1, int64_t hg, int64_t bs, int64_t k, int64_t e) {
    const int64_t merge = 2 * (k + bs) * kPairBytes;
    return AscendUsage{(n1 + bs) * kHeadDim * e, hg * kHeadDim * e, bs * kHeadDim * e,
                       hg * bs * 4, (hg + 1) / 2 * bs * 4 + n1 * 4 + bs * 4 + merge};
}

// tiling.choose_tiles: the largest head group (a divisor of N1), then the largest chunk of
// keys (a power of two) that fits every buffer.
void ChooseTiles(int64_t n1, int64_t k, int64_t e, const CorePlatform& pf,
                 const std::string& name, int64_t* head_group, int64_t* block_s2) {
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
    kCheck.Raise(ErrorKind::kRuntime, "platform",
                 "expected buffers that hold the smallest tile (1 head x " + Str(kMinBlockS2) +
                     " keys, sparse_count=" + Str(k) + ": " +
                     UsageText(TileUsage(n1, 1, kMinBlockS2, k, e)) + " B), " + name + " has " +
                     BuffersText(pf));
}

LightningIndexerTilingData Plan(const LiCoreParams& p, const Checked& c,
                                const CorePlatform& pf) {
    const std::string name = RequireAscendA2A3(kCheck, pf);
    const TensorDesc &q = p.query, &k = p.key;
    const int64_t n1 = Dim(q, -2);
    const int64_t itemsize = 2;     // float16 / bfloat16, the only query dtypes check allows
    int64_t head_group = 0, block_s2 = 0;
    ChooseTiles(n1, p.sparse_count, itemsize, pf, name, &head_group, &block_s2);

    const bool paged = c.k_layout == Layout::kPA_BSND;
    int64_t key_capacity = 0;       // BatchedRows.s2 (seqlens.key_capacity)
    if (c.k_layout == Layout::kBSND) {
        key_capacity = k.dims[1];
    } else if (c.k_layout == Layout::kTND) {
        key_capacity = k.dims[0];
    } else {
        key_capacity = FieldMul(kCheck, "key_capacity", p.block_table.dims[1], k.dims[1],
                                "max_blocks_per_seq * block_size = ");
    }
    LightningIndexerTilingData t{};
    t.version = kTilingDataVersion;
    t.tiling_key = kTilingKeyAscend;
    t.num_rows = Product(q.dims, q.rank - 2);     // B * S1 or T1: query.numel // (N1 * D)
    t.key_capacity = key_capacity;
    t.num_cores = FieldU32(kCheck, "num_cores", pf.num_cores);
    t.batch = FieldU32(kCheck, "batch", c.batch);
    t.n1 = FieldU32(kCheck, "n1", n1);
    t.head_group = FieldU32(kCheck, "head_group", head_group);
    t.block_s2 = FieldU32(kCheck, "block_s2", block_s2);
    t.sparse_count = FieldU32(kCheck, "sparse_count", p.sparse_count);
    t.sparse_mode = FieldU32(kCheck, "sparse_mode", p.sparse_mode);
    t.layout_query = LayoutCode(c.q_layout);
    t.layout_key = LayoutCode(c.k_layout);
    t.page_size = FieldU32(kCheck, "page_size", paged ? k.dims[1] : 0);
    t.block_count = FieldU32(kCheck, "block_count", paged ? k.dims[0] : 0);
    t.return_value = p.return_value ? 1 : 0;
    return t;
}

}  // namespace
}  // namespace lightning_indexer
}  // namespace cann_attention

namespace li = cann_attention::lightning_indexer;

extern "C" int32_t li_check(const li::LiCoreParams* params, char* message,
                            int64_t message_size) {
    return cann_attention::Guarded(li::kCheck, message, message_size, [&] {
        li::kCheck.RequireNonNull(params, "params");
        li::Check(*params);
    });
}

extern "C" int32_t li_tiling(const li::LiCoreParams* params,
                             const cann_attention::CorePlatform* platform, uint8_t* tiling_data,
                             int64_t size, char* message, int64_t message_size) {
    return cann_attention::Guarded(li::kCheck, message, message_size, [&] {
        li::kCheck.RequireNonNull(params, "params");
        li::kCheck.RequireNonNull(platform, "platform");
        cann_attention::RequireOutput(li::kCheck, tiling_data, size,
                                      sizeof(LightningIndexerTilingData));
        const li::Checked checked = li::Check(*params);
        const LightningIndexerTilingData t = li::Plan(*params, checked, *platform);
        // the struct's memory is the record: fixed-width fields, no padding, little-endian on
        // every host CANN runs on (x86-64, AArch64)
        std::memcpy(tiling_data, &t, sizeof t);
    });
}

extern "C" int64_t li_tiling_data_size(void) { return sizeof(LightningIndexerTilingData); }

extern "C" uint32_t li_tiling_data_version(void) { return li::kTilingDataVersion; }

extern "C" int32_t li_max_rank(void) { return cann_attention::kMaxRank; }

extern "C" const char* li_dtype_name(int32_t code) {
    return cann_attention::DtypeNameOrEmpty(code);
}

extern "C" int64_t li_struct_size(int32_t which) {
    return cann_attention::StructSize<li::LiCoreParams>(which);
}
