// The CANN tiling of CannAttentionSparseFlashAttention: a thin adapter over the C++ tiling core
// (tiling_core.h).
//
// It reads the call off gert's tiling context (shapes, dtypes, attributes, the platform) into
// SfaCoreParams, lets sfa_tiling check and plan it, and gives CANN what the core wrote: the
// TilingData bytes, the tiling key, the number of blocks and the workspace. A refused call is
// logged with the core's message (the Python check's) and fails the tiling. Registered with
// IMPL_OP_OPTILING; the OpDef is op_def.cpp. Only CANN's build compiles this file (op_package/).
// The block count and the workspace are the kernel's
// (op_kernel/sparse_flash_attention/ascendc/sparse_flash_attention_kernel.h), restated below.
#include <algorithm>
#include <cstdint>

#include "register/op_impl_registry.h"

#include "cann_adapter.h"     // op_package/cann_adapter.h: gert -> core_common.h's structs
#include "tiling_core.h"

namespace {

namespace adapter = cann_attention::adapter;

constexpr char kOp[] = "npu_sparse_flash_attention";
constexpr uint64_t kD = 512;      // params.D: the latent head dim (the value's columns)

// GM workspace of one block, in bytes: the kernel's sfa_ascendc::WorkspaceBytes
// (op_kernel/sparse_flash_attention/ascendc/sparse_flash_attention_kernel.h, which only the
// kernel's compiler can include): fp32 scores and the input-dtype P of a step [head_group,
// block_s2 rounded up to 16], then the fp32 P.V [head_group, 512].
uint64_t BlockWorkspaceBytes(const SparseFlashAttentionTilingData& t) {
    const uint64_t bs = (static_cast<uint64_t>(t.block_s2) + 15) / 16 * 16;
    return t.head_group * bs * 4 + t.head_group * bs * 2 + t.head_group * kD * 4;
}

// One split-task slot, in bytes: the kernel's sfa_ascendc::SlotFloats * 4 (fp32 acc
// [head_group, 512], then m and l [head_group rounded up to 8] each).
uint64_t SlotBytes(const SparseFlashAttentionTilingData& t) {
    const uint64_t hg8 = (static_cast<uint64_t>(t.head_group) + 7) / 8 * 8;
    return (static_cast<uint64_t>(t.head_group) * kD + 2 * hg8) * 4;
}

// Slots of the plan's cut of num_tasks tasks over blocks cores: the kernel's
// sfa_ascendc::MaxSlots, schedule.py max_slots (the TilingData's max_slots for blocks =
// num_cores).
uint64_t MaxSlots(uint64_t tasks, uint64_t blocks) {
    if (tasks == 0 || blocks == 0) return 0;
    return std::min<uint64_t>(tasks + blocks - 1, 2 * (blocks - 1));
}

// IR indices of op_def.cpp's OpDef
enum InputIndex : size_t {
    kQuery, kKey, kValue, kSparseIndices, kBlockTable, kLensQuery, kLensKv, kQueryRope, kKeyRope,
    kSinks
};
enum AttrIndex : size_t {
    kScaleValue, kSparseBlockSize, kLayoutQuery, kLayoutKv, kSparseMode, kPreTokens,
    kNextTokens, kAttentionMode, kReturnSoftmaxLse
};

SfaCoreParams ReadParams(const gert::TilingContext* context) {
    const gert::RuntimeAttrs* attrs = context->GetAttrs();
    SfaCoreParams p{};
    p.query = adapter::Required(context, kOp, "query", kQuery);
    p.key = adapter::Required(context, kOp, "key", kKey);
    p.value = adapter::Required(context, kOp, "value", kValue);
    p.sparse_indices = adapter::Required(context, kOp, "sparse_indices", kSparseIndices);
    p.block_table = adapter::Optional(context, kOp, "block_table", kBlockTable);
    p.actual_seq_lengths_query = adapter::Optional(context, kOp, "actual_seq_lengths_query", kLensQuery);
    p.actual_seq_lengths_kv = adapter::Optional(context, kOp, "actual_seq_lengths_kv", kLensKv);
    p.query_rope = adapter::Optional(context, kOp, "query_rope", kQueryRope);
    p.key_rope = adapter::Optional(context, kOp, "key_rope", kKeyRope);
    p.sinks = adapter::Optional(context, kOp, "sinks", kSinks);
    p.scale_value = adapter::Attr<float>(attrs, kOp, "scale_value", kScaleValue);
    p.sparse_block_size = adapter::Attr<int64_t>(attrs, kOp, "sparse_block_size", kSparseBlockSize);
    p.layout_query = adapter::Text(attrs, kOp, "layout_query", kLayoutQuery);
    p.layout_kv = adapter::Text(attrs, kOp, "layout_kv", kLayoutKv);
    p.sparse_mode = adapter::Attr<int64_t>(attrs, kOp, "sparse_mode", kSparseMode);
    p.pre_tokens = adapter::Attr<int64_t>(attrs, kOp, "pre_tokens", kPreTokens);
    p.next_tokens = adapter::Attr<int64_t>(attrs, kOp, "next_tokens", kNextTokens);
    p.attention_mode = adapter::Attr<int64_t>(attrs, kOp, "attention_mode", kAttentionMode);
    p.return_softmax_lse =
        adapter::Attr<bool>(attrs, kOp, "return_softmax_lse", kReturnSoftmaxLse) ? 1 : 0;
    return p;
}

// The kernel (sparse_flash_attention_kernel.cpp) runs the plan's schedule: it cuts the task line
// over GetBlockNum() cores, so it is launched on the plan's num_cores blocks (each: one AIC and
// two AIVs), each with its GM workspace, then the split tasks' slots.
adapter::Launch LaunchOf(const SparseFlashAttentionTilingData& t) {
    const uint32_t blocks = t.num_tasks > 0 ? t.num_cores : 0;
    return {blocks, BlockWorkspaceBytes(t) * blocks +
                        MaxSlots(static_cast<uint64_t>(t.num_tasks), blocks) * SlotBytes(t)};
}

ge::graphStatus TilingSparseFlashAttention(gert::TilingContext* context) {
    return adapter::Tile<SparseFlashAttentionTilingData>(context, kOp, ReadParams, sfa_tiling,
                                                         LaunchOf);
}

// Nothing is parsed at compile time: the platform is read at tiling time.
struct SparseFlashAttentionCompileInfo {};

ge::graphStatus TilingParseSparseFlashAttention(gert::TilingParseContext*) {
    return ge::GRAPH_SUCCESS;
}

}  // namespace

namespace optiling {
IMPL_OP_OPTILING(CannAttentionSparseFlashAttention)
    .Tiling(TilingSparseFlashAttention)
    .TilingParse<SparseFlashAttentionCompileInfo>(TilingParseSparseFlashAttention);
}  // namespace optiling
