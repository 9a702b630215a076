// npu_sparse_flash_attention as a CANN op (OpType CannAttentionSparseFlashAttention): its OpDef (inputs,
// outputs, attributes, dtypes, the A2/A3 configs), InferShape and InferDataType.
//
// The schema is CANN's (hicann/ops-transformer attention/sparse_flash_attention, which
// torch_npu's npu_sparse_flash_attention calls): inputs, outputs and attributes in that order,
// with its defaults (attention_mode 0, as torch_npu; only 2 passes the check). value is required
// here as in CANN; torch_npu's optional value is filled with key before the op is called. The
// shapes are params.py lse_shape's; the tiling is tiling_adapter.cpp.
// Only CANN's build compiles this file (op_package/); it needs CANN's public headers (metadef).
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "register/op_def_registry.h"

#include "op_def_configs.h"

namespace {

// IR indices (the order of the OpDef below)
constexpr size_t kQuery = 0;
constexpr size_t kAttentionOut = 0;          // outputs
constexpr size_t kSoftmaxMax = 1;
constexpr size_t kSoftmaxSum = 2;
constexpr size_t kAttrLayoutQuery = 2;       // attributes
constexpr size_t kAttrReturnSoftmaxLse = 8;

ge::graphStatus Fail(const char* what) {
    std::fprintf(stderr, "[ERROR] npu_sparse_flash_attention: InferShape: %s\n", what);
    return ge::GRAPH_FAILED;
}

// attention_out has the query's shape. params.lse_shape: softmax_max and softmax_sum are
// (B, N2=1, S1, N1) for a BSND query, (N2=1, T1, N1) for a TND one, and (0,) without
// return_softmax_lse. The rules on the shapes are the tiling's (the core's messages); this only
// refuses what it cannot index.
ge::graphStatus InferShape(gert::InferShapeContext* context) {
    const gert::Shape* query = context->GetInputShape(kQuery);
    gert::Shape* out = context->GetOutputShape(kAttentionOut);
    gert::Shape* softmax_max = context->GetOutputShape(kSoftmaxMax);
    gert::Shape* softmax_sum = context->GetOutputShape(kSoftmaxSum);
    const gert::RuntimeAttrs* attrs = context->GetAttrs();
    if (query == nullptr || out == nullptr || softmax_max == nullptr || softmax_sum == nullptr ||
        attrs == nullptr)
        return Fail("the context lacks the query shape, an output shape or the attributes");
    const char* layout = attrs->GetStr(kAttrLayoutQuery);
    const bool* return_lse = attrs->GetAttrPointer<bool>(kAttrReturnSoftmaxLse);
    if (layout == nullptr || return_lse == nullptr)
        return Fail("the context lacks layout_query or return_softmax_lse");

    *out = *query;
    gert::Shape lse;
    if (!*return_lse) {
        lse.AppendDim(0);
    } else if (std::strcmp(layout, "TND") == 0) {
        if (query->GetDimNum() < 2) return Fail("query: expected rank 3 for layout_query TND");
        lse.AppendDim(1).AppendDim(query->GetDim(0)).AppendDim(query->GetDim(1));
    } else {
        if (query->GetDimNum() < 3) return Fail("query: expected rank 4 for layout_query BSND");
        lse.AppendDim(query->GetDim(0)).AppendDim(1).AppendDim(query->GetDim(1))
            .AppendDim(query->GetDim(2));
    }
    *softmax_max = lse;
    *softmax_sum = lse;
    return ge::GRAPH_SUCCESS;
}

// attention_out of the query's dtype; the softmax statistics float32.
ge::graphStatus InferDataType(gert::InferDataTypeContext* context) {
    context->SetOutputDataType(kAttentionOut, context->GetInputDataType(kQuery));
    context->SetOutputDataType(kSoftmaxMax, ge::DT_FLOAT);
    context->SetOutputDataType(kSoftmaxSum, ge::DT_FLOAT);
    return ge::GRAPH_SUCCESS;
}

}  // namespace

namespace ops {

class CannAttentionSparseFlashAttention : public OpDef {
  public:
    explicit CannAttentionSparseFlashAttention(const char* name) : OpDef(name) {
        // Two dtype combinations, one per column: float16 and bfloat16 (query, key, value, the
        // rope tensors and attention_out share it). AutoContiguous: CANN hands the kernel
        // contiguous tensors, which the tiling adapter tells the core (check.py's (P) rule: the
        // caches are read in place).
        const std::vector<ge::DataType> half = {ge::DT_FLOAT16, ge::DT_BF16};
        const std::vector<ge::DataType> int32 = {ge::DT_INT32, ge::DT_INT32};
        const std::vector<ge::DataType> fp32 = {ge::DT_FLOAT, ge::DT_FLOAT};
        const std::vector<ge::Format> nd = {ge::FORMAT_ND, ge::FORMAT_ND};
        Input("query").ParamType(REQUIRED).DataType(half).Format(nd).AutoContiguous();
        Input("key").ParamType(REQUIRED).DataType(half).Format(nd).AutoContiguous();
        Input("value").ParamType(REQUIRED).DataType(half).Format(nd).AutoContiguous();
        Input("sparse_indices").ParamType(REQUIRED).DataType(int32).Format(nd).AutoContiguous();
        Input("block_table").ParamType(OPTIONAL).DataType(int32).Format(nd).AutoContiguous();
        Input("actual_seq_lengths_query").ParamType(OPTIONAL).DataType(int32).Format(nd)
            .AutoContiguous();
        Input("actual_seq_lengths_kv").ParamType(OPTIONAL).DataType(int32).Format(nd)
            .AutoContiguous();
        Input("query_rope").ParamType(OPTIONAL).DataType(half).Format(nd).AutoContiguous();
        Input("key_rope").ParamType(OPTIONAL).DataType(half).Format(nd).AutoContiguous();
        Input("sinks").ParamType(OPTIONAL).DataType(fp32).Format(nd).AutoContiguous();
        Output("attention_out").ParamType(REQUIRED).DataType(half).Format(nd);
        Output("softmax_max").ParamType(REQUIRED).DataType(fp32).Format(nd);
        Output("softmax_sum").ParamType(REQUIRED).DataType(fp32).Format(nd);

        Attr("scale_value").AttrType(REQUIRED).Float(1.0f);
        Attr("sparse_block_size").AttrType(OPTIONAL).Int(1);
        Attr("layout_query").AttrType(OPTIONAL).String("BSND");
        Attr("layout_kv").AttrType(OPTIONAL).String("BSND");
        Attr("sparse_mode").AttrType(OPTIONAL).Int(3);
        Attr("pre_tokens").AttrType(OPTIONAL).Int(INT64_MAX);
        Attr("next_tokens").AttrType(OPTIONAL).Int(INT64_MAX);
        Attr("attention_mode").AttrType(OPTIONAL).Int(0);
        Attr("return_softmax_lse").AttrType(OPTIONAL).Bool(false);

        SetInferShape(InferShape).SetInferDataType(InferDataType);

        cann_attention::AddAscendConfigs(*this);     // op_package/op_def_configs.h
    }
};

OP_ADD(CannAttentionSparseFlashAttention);

}  // namespace ops
