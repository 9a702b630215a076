// The CANN tiling of CannAttentionLightningIndexer: a thin adapter over the C++ tiling core
// (tiling_core.h).
//
// It reads the call off gert's tiling context (shapes, dtypes, attributes, the platform) into
// LiCoreParams, lets li_tiling check and plan it, and gives CANN what the core wrote: the
// TilingData bytes, the tiling key, the number of blocks and the workspace. A refused call is
// logged with the core's message (the Python check's) and fails the tiling. Registered with
// IMPL_OP_OPTILING; the OpDef is op_def.cpp. Only CANN's build compiles this file (op_package/).
#include <algorithm>
#include <cstdint>

#include "register/op_impl_registry.h"

#include "cann_adapter.h"     // op_package/cann_adapter.h: gert -> core_common.h's structs
#include "tiling_core.h"

namespace {

namespace adapter = cann_attention::adapter;
using cann_attention::lightning_indexer::LiCoreParams;

constexpr char kOp[] = "npu_lightning_indexer";

// IR indices of op_def.cpp's OpDef
enum InputIndex : size_t {
    kQuery, kKey, kWeights, kLensQuery, kLensKey, kBlockTable
};
enum AttrIndex : size_t {
    kLayoutQuery, kLayoutKey, kSparseCount, kSparseMode, kPreTokens, kNextTokens, kReturnValues
};

// GM workspace of a launch on `blocks` blocks, in floats: the kernel's
// li_ascendc::WorkspaceTotalFloats (op_kernel/lightning_indexer/ascendc/lightning_indexer_kernel.h,
// which only the kernel's compiler can include). Per block: the cube's score chunk
// [n1, block_s2], then two exchange slots of the vector cores' top-k merge; after the blocks:
// the list slots of split-task pieces, min(num_rows + blocks - 1, 2 (blocks - 1)) of them
// (common/schedule.py max_slots). A list slot: 8 words of count, sparse_count scores, sparse_count
// indices.
uint64_t WorkspaceFloats(const LightningIndexerTilingData& t, uint32_t blocks) {
    const uint64_t list = 2 * static_cast<uint64_t>(t.sparse_count) + 8;
    const uint64_t perBlock = static_cast<uint64_t>(t.n1) * t.block_s2 + 2 * list;
    uint64_t slots = 0;
    if (t.num_rows > 0 && blocks > 1) {
        slots = std::min<uint64_t>(static_cast<uint64_t>(t.num_rows) + blocks - 1,
                                   2 * static_cast<uint64_t>(blocks - 1));
    }
    return perBlock * blocks + slots * list;
}

LiCoreParams ReadParams(const gert::TilingContext* context) {
    const gert::RuntimeAttrs* attrs = context->GetAttrs();
    LiCoreParams p{};
    p.query = adapter::Required(context, kOp, "query", kQuery);
    p.key = adapter::Required(context, kOp, "key", kKey);
    p.weights = adapter::Required(context, kOp, "weights", kWeights);
    p.actual_seq_lengths_query = adapter::Optional(context, kOp, "actual_seq_lengths_query", kLensQuery);
    p.actual_seq_lengths_key = adapter::Optional(context, kOp, "actual_seq_lengths_key", kLensKey);
    p.block_table = adapter::Optional(context, kOp, "block_table", kBlockTable);
    p.layout_query = adapter::Text(attrs, kOp, "layout_query", kLayoutQuery);
    p.layout_key = adapter::Text(attrs, kOp, "layout_key", kLayoutKey);
    p.sparse_count = adapter::Attr<int64_t>(attrs, kOp, "sparse_count", kSparseCount);
    p.sparse_mode = adapter::Attr<int64_t>(attrs, kOp, "sparse_mode", kSparseMode);
    p.pre_tokens = adapter::Attr<int64_t>(attrs, kOp, "pre_tokens", kPreTokens);
    p.next_tokens = adapter::Attr<int64_t>(attrs, kOp, "next_tokens", kNextTokens);
    p.return_value = adapter::Attr<bool>(attrs, kOp, "return_values", kReturnValues) ? 1 : 0;
    return p;
}

// The kernel (lightning_indexer_kernel.cpp) runs the plan's schedule, cut over GetBlockNum()
// cores: one block per cube core of the plan (each block: one AIC and two AIVs), so that the cut
// is the plan's; none without rows. It meets at SyncAll when a row is split, so the blocks must
// all be resident: num_cores <= the SoC's AI Cores.
adapter::Launch LaunchOf(const LightningIndexerTilingData& t) {
    const uint32_t blocks = t.num_rows > 0 ? t.num_cores : 0;
    return {blocks, WorkspaceFloats(t, blocks) * sizeof(float)};
}

ge::graphStatus TilingLightningIndexer(gert::TilingContext* context) {
    return adapter::Tile<LightningIndexerTilingData>(context, kOp, ReadParams, li_tiling,
                                                     LaunchOf);
}

// Nothing is parsed at compile time: the platform is read at tiling time.
struct LightningIndexerCompileInfo {};

ge::graphStatus TilingParseLightningIndexer(gert::TilingParseContext*) {
    return ge::GRAPH_SUCCESS;
}

}  // namespace

namespace optiling {
IMPL_OP_OPTILING(CannAttentionLightningIndexer)
    .Tiling(TilingLightningIndexer)
    .TilingParse<LightningIndexerCompileInfo>(TilingParseLightningIndexer);
}  // namespace optiling
