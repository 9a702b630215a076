// The Python module of the NPU binding, cann_attention._npu_extension: importing it loads the
// library, whose TORCH_LIBRARY_IMPL blocks (sparse_flash_attention.cpp, lightning_indexer.cpp)
// register the PrivateUse1 kernels of cann_attention::_aclnn_*. It exports the ops it implements
// and their aclnn entries, which op_kernel/common/ascendc_npu.py compares with its own table.
//
// NEVER RUN (no NPU, CANN or torch_npu where it was written); see aclnn_call.h.
#include <torch/extension.h>

#ifndef TORCH_EXTENSION_NAME
#define TORCH_EXTENSION_NAME _npu_extension
#endif

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "cann_attention's NPU binding: the op package's aclnn entries as torch ops";
    pybind11::dict ops;
    ops["_aclnn_sparse_flash_attention"] = "aclnnCannAttentionSparseFlashAttention";
    ops["_aclnn_lightning_indexer"] = "aclnnCannAttentionLightningIndexer";
    m.attr("OPS") = ops;
}
