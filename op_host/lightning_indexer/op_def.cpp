// npu_lightning_indexer as a CANN op (OpType CannAttentionLightningIndexer): its OpDef (inputs, outputs,
// attributes, dtypes, the A2/A3 configs), InferShape and InferDataType.
//
// The schema is CANN's (hicann/ops-transformer attention/lightning_indexer, which torch_npu's
// npu_lightning_indexer calls): inputs, outputs and attributes in that order, with its defaults.
// One difference of spelling: CANN names the flag attribute `return_values`, torch_npu's argument
// is `return_value`. The shapes are params.py output_shapes'; the tiling is tiling_adapter.cpp.
// Only CANN's build compiles this file (op_package/); it needs CANN's public headers (metadef).
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "register/op_def_registry.h"

#include "op_def_configs.h"

namespace {

// IR indices (the order of the OpDef below)
constexpr size_t kQuery = 0;
constexpr size_t kSparseIndices = 0;     // outputs
constexpr size_t kSparseValues = 1;
constexpr size_t kAttrLayoutQuery = 0;   // attributes
constexpr size_t kAttrSparseCount = 2;
constexpr size_t kAttrReturnValues = 6;

ge::graphStatus Fail(const char* what) {
    std::fprintf(stderr, "[ERROR] npu_lightning_indexer: InferShape: %s\n", what);
    return ge::GRAPH_FAILED;
}

// params.output_shapes: sparse_indices is (B, S1, 1, sparse_count) for a BSND query and
// (T1, 1, sparse_count) for a TND one; sparse_values has its shape when return_values, else (0,).
// The rules on the shapes are the tiling's (the core's messages); this only refuses what it
// cannot index.
ge::graphStatus InferShape(gert::InferShapeContext* context) {
    const gert::Shape* query = context->GetInputShape(kQuery);
    gert::Shape* indices = context->GetOutputShape(kSparseIndices);
    gert::Shape* values = context->GetOutputShape(kSparseValues);
    const gert::RuntimeAttrs* attrs = context->GetAttrs();
    if (query == nullptr || indices == nullptr || values == nullptr || attrs == nullptr)
        return Fail("the context lacks the query shape, an output shape or the attributes");
    const char* layout = attrs->GetStr(kAttrLayoutQuery);
    const int64_t* sparse_count = attrs->GetInt(kAttrSparseCount);
    const bool* return_values = attrs->GetAttrPointer<bool>(kAttrReturnValues);
    if (layout == nullptr || sparse_count == nullptr || return_values == nullptr)
        return Fail("the context lacks layout_query, sparse_count or return_values");

    const bool tnd = std::strcmp(layout, "TND") == 0;
    if (query->GetDimNum() < (tnd ? 1u : 2u))
        return Fail(tnd ? "query: expected rank 3 for layout_query TND"
                        : "query: expected rank 4 for layout_query BSND");
    indices->SetDimNum(0);
    indices->AppendDim(query->GetDim(0));
    if (!tnd) indices->AppendDim(query->GetDim(1));
    indices->AppendDim(1).AppendDim(*sparse_count);
    if (*return_values) {
        *values = *indices;
    } else {
        values->SetDimNum(0);
        values->AppendDim(0);
    }
    return ge::GRAPH_SUCCESS;
}

// sparse_indices int32; sparse_values of the query's dtype (also with float32 weights:
// docs/lightning_indexer.md, project decisions).
ge::graphStatus InferDataType(gert::InferDataTypeContext* context) {
    context->SetOutputDataType(kSparseIndices, ge::DT_INT32);
    context->SetOutputDataType(kSparseValues, context->GetInputDataType(kQuery));
    return ge::GRAPH_SUCCESS;
}

}  // namespace

namespace ops {

class CannAttentionLightningIndexer : public OpDef {
  public:
    explicit CannAttentionLightningIndexer(const char* name) : OpDef(name) {
        // Four dtype combinations, one per column: query/key/sparse_values share a dtype,
        // weights has it or float32. The int32 inputs hold for every column (DataTypeList).
        const std::vector<ge::DataType> qk = {ge::DT_BF16, ge::DT_FLOAT16, ge::DT_BF16,
                                              ge::DT_FLOAT16};
        const std::vector<ge::DataType> weights = {ge::DT_BF16, ge::DT_FLOAT16, ge::DT_FLOAT,
                                                   ge::DT_FLOAT};
        // AutoContiguous: CANN hands the kernel contiguous tensors, which the tiling adapter
        // tells the core (the key cache is read in place, check.py's rule).
        Input("query").ParamType(REQUIRED).DataType(qk).FormatList({ge::FORMAT_ND}).AutoContiguous();
        Input("key").ParamType(REQUIRED).DataType(qk).FormatList({ge::FORMAT_ND}).AutoContiguous();
        Input("weights").ParamType(REQUIRED).DataType(weights).FormatList({ge::FORMAT_ND})
            .AutoContiguous();
        for (const char* lengths : {"actual_seq_lengths_query", "actual_seq_lengths_key",
                                    "block_table"}) {
            Input(lengths).ParamType(OPTIONAL).DataTypeList({ge::DT_INT32})
                .FormatList({ge::FORMAT_ND}).AutoContiguous();
        }
        Output("sparse_indices").ParamType(REQUIRED).DataTypeList({ge::DT_INT32})
            .FormatList({ge::FORMAT_ND});
        Output("sparse_values").ParamType(REQUIRED).DataType(qk).FormatList({ge::FORMAT_ND});

        Attr("layout_query").AttrType(OPTIONAL).String("BSND");
        Attr("layout_key").AttrType(OPTIONAL).String("BSND");
        Attr("sparse_count").AttrType(OPTIONAL).Int(2048);
        Attr("sparse_mode").AttrType(OPTIONAL).Int(3);
        Attr("pre_tokens").AttrType(OPTIONAL).Int(INT64_MAX);
        Attr("next_tokens").AttrType(OPTIONAL).Int(INT64_MAX);
        Attr("return_values").AttrType(OPTIONAL).Bool(false);

        SetInferShape(InferShape).SetInferDataType(InferDataType);

        cann_attention::AddAscendConfigs(*this);     // op_package/op_def_configs.h
    }
};

OP_ADD(CannAttentionLightningIndexer);

}  // namespace ops
