// The NPU binding of the op package: what its sources share.
//
// torch_binding/npu_extension/ builds one torch extension, cann_attention._npu_extension
// (setup.py, only where torch_npu and CANN are installed). For each op of the op package
// (op_package/, vendor cann_attention) it implements, for NPU tensors (PrivateUse1), the torch op
// cann_attention::_aclnn_<op> whose schema op_kernel/common/ascendc_npu.py defines (arguments in
// the OpDef's order: inputs, then attributes; returns: the OpDef's outputs). A kernel allocates
// the outputs on the query's device and calls the package's aclnn<OpType> through torch_npu's op
// command machinery (EXEC_NPU_CMD_EXT: workspace, task queue, executor cache). The pipeline's
// `ascendc` back end reaches it on NPU tensors once the checks passed and the op package is found
// (op_kernel/common/ascendc_npu.py: the detection rule).
//
// NEVER RUN. No machine this was written on has an NPU, CANN or torch_npu installed. What is
// verified: every source compiles (g++ -fsyntax-only) against the headers of the torch-npu 2.13.0
// wheel and torch 2.13 (tests/torch_binding/test_npu_extension_compile.py), the output shapes
// equal params.py's, and the argument lists equal the OpDefs' and the Python schemas'.
//
// What it assumes (read from torch-npu 2.13.0's headers and op-plugin's sources, not observed):
// - torch_npu >= 2.13: its include/third_party/op-plugin/op_plugin/include/npu_cpp_extension.h
//   declares EXEC_NPU_CMD_EXT, which calls only functions libtorch_npu.so exports (GetApiFunc,
//   RunAclCall, ConvertType, ...). EXEC_NPU_CMD of op_plugin/utils/op_api_common.h, which the
//   wheel also ships, uses globals libtorch_npu.so does not export (g_hash_buf, g_hash_offset):
//   an extension using it would not load.
// - torch_npu looks an aclnn entry up in the custom vendors first (each ASCEND_CUSTOM_OPP_PATH
//   entry, then $ASCEND_OPP_PATH/vendors/<name> in the order of config.ini's load_priority), then
//   in CANN's own libopapi.so. CANN ships built-in ops with our OpTypes (SparseFlashAttention,
//   LightningIndexer), so the Python side routes a call here only when our vendor is the first
//   to provide the op's aclnn header.
// - CANN's generated aclnn<OpType>GetWorkspaceSize takes the OpDef's inputs (an absent optional
//   one as a null aclTensor*), then its attributes (Float as double, Int as int64_t, String as
//   char*, Bool as bool), then its outputs, then (uint64_t* workspaceSize,
//   aclOpExecutor** executor). EXEC_NPU_CMD_EXT derives the function type from the C++ types of
//   the arguments it is given, so they must be exactly these.
// - Inputs need not be contiguous (every input of both OpDefs is AutoContiguous); outputs are
//   fresh contiguous tensors of the OpDef's InferDataType dtypes.
#pragma once

#include <cstdint>
#include <string>

#include <torch/version.h>

// op-plugin's headers choose code by CURRENT_VERSION, which op-plugin's own build defines as its
// V2R<minor> number (op_plugin/utils/Version.h: V2R1 = 0, ..., V2R13 = 12). An extension build
// does not define it; this is the torch the binding is compiled against.
static_assert(TORCH_VERSION_MAJOR == 2, "the NPU binding is written for torch 2.x");
#ifndef CURRENT_VERSION
#define CURRENT_VERSION (TORCH_VERSION_MINOR - 1)
#endif

#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>
#include <torch/library.h>

#include "op_plugin/include/npu_cpp_extension.h"   // EXEC_NPU_CMD_EXT (torch_npu's wheel)

#include "output_shapes.h"

namespace cann_attention_npu {

inline Shape SizesOf(const at::Tensor& tensor) { return tensor.sizes().vec(); }

// The query's rank for its layout, with the package's message form (op: argument: expected,
// got). The pipeline has checked it; a direct call of torch.ops.cann_attention._aclnn_* has not.
inline void CheckQueryRank(const char* op, const at::Tensor& query, bool tnd) {
    const int64_t rank = tnd ? 3 : 4;
    TORCH_CHECK(query.dim() == rank, op, ": query: expected rank ", rank, " for layout_query ",
                tnd ? "TND" : "BSND", ", got ", query.dim());
}

}  // namespace cann_attention_npu
