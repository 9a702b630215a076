// npu_lightning_indexer on NPU tensors: the op package's aclnnCannAttentionLightningIndexer
// (OpType CannAttentionLightningIndexer, op_host/lightning_indexer/op_def.cpp) behind the torch op
// cann_attention::_aclnn_lightning_indexer (schema: op_kernel/common/ascendc_npu.py).
//
// NEVER RUN (no NPU, CANN or torch_npu where it was written); compiled against the torch-npu
// 2.13.0 wheel's headers only. aclnn_call.h lists what it assumes. The OpDef spells the last
// attribute return_values (CANN's name); the schema calls it return_value (torch_npu's).
#include "aclnn_call.h"

namespace cann_attention_npu {
namespace {

constexpr const char* kOp = "npu_lightning_indexer";

// Arguments: the OpDef's inputs, then its attributes, in its order.
// Returns: its outputs (sparse_indices, sparse_values).
std::tuple<at::Tensor, at::Tensor> LightningIndexer(
    const at::Tensor& query, const at::Tensor& key, const at::Tensor& weights,
    const c10::optional<at::Tensor>& actual_seq_lengths_query,
    const c10::optional<at::Tensor>& actual_seq_lengths_key,
    const c10::optional<at::Tensor>& block_table, c10::string_view layout_query,
    c10::string_view layout_key, int64_t sparse_count, int64_t sparse_mode, int64_t pre_tokens,
    int64_t next_tokens, bool return_value) {
    const c10::DeviceGuard guard(query.device());
    std::string layout_query_str(layout_query);
    std::string layout_key_str(layout_key);
    const bool tnd = layout_query_str == "TND";
    CheckQueryRank(kOp, query, tnd);

    // InferShape / InferDataType of the OpDef, as params.py's output_shapes: sparse_indices
    // int32, sparse_values of the query's dtype ((0,) without return_value).
    const Shape query_shape = SizesOf(query);
    at::Tensor sparse_indices = at::empty(SparseIndicesShape(query_shape, tnd, sparse_count),
                                          query.options().dtype(at::kInt));
    at::Tensor sparse_values = at::empty(
        SparseValuesShape(query_shape, tnd, sparse_count, return_value), query.options());

    char* layout_query_ptr = layout_query_str.data();    // String attributes go as char*
    char* layout_key_ptr = layout_key_str.data();
    EXEC_NPU_CMD_EXT(aclnnCannAttentionLightningIndexer,
                     // inputs
                     query, key, weights, actual_seq_lengths_query, actual_seq_lengths_key,
                     block_table,
                     // attributes
                     layout_query_ptr, layout_key_ptr, sparse_count, sparse_mode, pre_tokens,
                     next_tokens, return_value,
                     // outputs
                     sparse_indices, sparse_values);
    return {sparse_indices, sparse_values};
}

}  // namespace
}  // namespace cann_attention_npu

TORCH_LIBRARY_IMPL(cann_attention, PrivateUse1, m) {
    m.impl("_aclnn_lightning_indexer", TORCH_FN(cann_attention_npu::LightningIndexer));
}
