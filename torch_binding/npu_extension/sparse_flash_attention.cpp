// npu_sparse_flash_attention on NPU tensors: the op package's
// aclnnCannAttentionSparseFlashAttention (OpType CannAttentionSparseFlashAttention,
// op_host/sparse_flash_attention/op_def.cpp) behind the torch op
// cann_attention::_aclnn_sparse_flash_attention (schema: op_kernel/common/ascendc_npu.py).
//
// NEVER RUN (no NPU, CANN or torch_npu where it was written); compiled against the torch-npu
// 2.13.0 wheel's headers only. aclnn_call.h lists what it assumes. The OpType has our prefix so
// that its aclnn entry never shadows CANN's aclnnSparseFlashAttention, which torch_npu's
// built-in op calls with another argument list (no sinks) and which torch_npu looks up in the
// custom vendors first.
#include "aclnn_call.h"

namespace cann_attention_npu {
namespace {

constexpr const char* kOp = "npu_sparse_flash_attention";

// Arguments: the OpDef's inputs, then its attributes, in its order.
// Returns: its outputs (attention_out, softmax_max, softmax_sum).
std::tuple<at::Tensor, at::Tensor, at::Tensor> SparseFlashAttention(
    const at::Tensor& query, const at::Tensor& key, const at::Tensor& value,
    const at::Tensor& sparse_indices, const c10::optional<at::Tensor>& block_table,
    const c10::optional<at::Tensor>& actual_seq_lengths_query,
    const c10::optional<at::Tensor>& actual_seq_lengths_kv,
    const c10::optional<at::Tensor>& query_rope, const c10::optional<at::Tensor>& key_rope,
    const c10::optional<at::Tensor>& sinks, double scale_value, int64_t sparse_block_size,
    c10::string_view layout_query, c10::string_view layout_kv, int64_t sparse_mode,
    int64_t pre_tokens, int64_t next_tokens, int64_t attention_mode, bool return_softmax_lse) {
    const c10::DeviceGuard guard(query.device());
    std::string layout_query_str(layout_query);
    std::string layout_kv_str(layout_kv);
    const bool tnd = layout_query_str == "TND";
    CheckQueryRank(kOp, query, tnd);

    // InferShape / InferDataType of the OpDef, as params.py: attention_out like the query, the
    // statistics float32 of lse_shape.
    at::Tensor attention_out = at::empty(query.sizes(), query.options());
    const Shape lse = SoftmaxLseShape(SizesOf(query), tnd, return_softmax_lse);
    at::Tensor softmax_max = at::empty(lse, query.options().dtype(at::kFloat));
    at::Tensor softmax_sum = at::empty(lse, query.options().dtype(at::kFloat));

    char* layout_query_ptr = layout_query_str.data();    // String attributes go as char*
    char* layout_kv_ptr = layout_kv_str.data();
    EXEC_NPU_CMD_EXT(aclnnCannAttentionSparseFlashAttention,
                     // inputs
                     query, key, value, sparse_indices, block_table, actual_seq_lengths_query,
                     actual_seq_lengths_kv, query_rope, key_rope, sinks,
                     // attributes
                     scale_value, sparse_block_size, layout_query_ptr, layout_kv_ptr, sparse_mode,
                     pre_tokens, next_tokens, attention_mode, return_softmax_lse,
                     // outputs
                     attention_out, softmax_max, softmax_sum);
    return {attention_out, softmax_max, softmax_sum};
}

}  // namespace
}  // namespace cann_attention_npu

TORCH_LIBRARY_IMPL(cann_attention, PrivateUse1, m) {
    m.impl("_aclnn_sparse_flash_attention", TORCH_FN(cann_attention_npu::SparseFlashAttention));
}
