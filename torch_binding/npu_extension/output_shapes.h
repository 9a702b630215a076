// The output shapes of the op package's ops, as the NPU binding allocates them: the C++ form of
// op_host/sparse_flash_attention/params.py (lse_shape; attention_out has the query's shape) and
// op_host/lightning_indexer/params.py (output_shapes). Plain C++17 with no torch or CANN header,
// so that tests/torch_binding/test_npu_extension_compile.py builds it with g++ alone and compares
// it with the Python functions on a set of shapes.
//
// The caller has checked the query's rank for its layout (3 for TND, 4 otherwise).
#pragma once

#include <cstdint>
#include <vector>

namespace cann_attention_npu {

using Shape = std::vector<int64_t>;

// softmax_max / softmax_sum: (B, N2=1, S1, N1) for a BSND query, (N2=1, T1, N1) for a TND one,
// (0,) without return_softmax_lse.
inline Shape SoftmaxLseShape(const Shape& query, bool tnd, bool return_softmax_lse) {
    if (!return_softmax_lse) return {0};
    if (tnd) return {1, query[0], query[1]};
    return {query[0], 1, query[1], query[2]};
}

// sparse_indices: (B, S1, N2=1, sparse_count) for a BSND query, (T1, N2=1, sparse_count) for a
// TND one.
inline Shape SparseIndicesShape(const Shape& query, bool tnd, int64_t sparse_count) {
    if (tnd) return {query[0], 1, sparse_count};
    return {query[0], query[1], 1, sparse_count};
}

// sparse_values: sparse_indices' shape with return_value, else (0,).
inline Shape SparseValuesShape(const Shape& query, bool tnd, int64_t sparse_count,
                               bool return_value) {
    if (!return_value) return {0};
    return SparseIndicesShape(query, tnd, sparse_count);
}

}  // namespace cann_attention_npu
