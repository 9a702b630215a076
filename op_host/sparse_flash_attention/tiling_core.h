// The C++ tiling core of npu_sparse_flash_attention: plain C++17, no CANN header.
//
// It is the C++ twin of two Python functions and must agree with them exactly:
// - the static rules of op_host/sparse_flash_attention/check.py `check` (shapes, dtypes,
//   attributes; not `check_values`, which reads the lengths and page tables), refusing with
//   the same message and ErrorKind;
// - the Ascend plan of tiling.py `plan` and its bytes, `tiling_data` (A2 / A3 SoCs; GPU and CPU
//   plans are made in Python only).
// CANN's build links it into the op package through a thin adapter that fills SfaCoreParams from
// gert's tiling context; tests call it through ctypes (native.py) and compare with Python.
#pragma once

#include <cstdint>

// The shared vocabulary and error convention (common/cpp/core_common.h).
#include "core_common.h"

// The record the kernel reads (generated from tiling.TILING_DATA).
#include "tiling_data.h"

// SparseFlashAttentionParams (params.py) without tensor values, in the shared vocabulary of
// common/cpp/core_common.h (TensorDesc, CoreText).
struct SfaCoreParams {
    cann_attention::TensorDesc query, key, value, sparse_indices;          // required
    cann_attention::TensorDesc block_table, actual_seq_lengths_query, actual_seq_lengths_kv;
    cann_attention::TensorDesc query_rope, key_rope, sinks;
    cann_attention::CoreText layout_query, layout_kv;   // data null stands for None
    double scale_value;
    int64_t sparse_block_size;
    int64_t sparse_mode;
    int64_t pre_tokens;
    int64_t next_tokens;
    int64_t attention_mode;
    int32_t return_softmax_lse;
    int32_t reserved;           // explicit padding: the same layout in C and ctypes
};

extern "C" {

// Checks `params` and plans the call for `platform`, writing SparseFlashAttentionTilingData
// into `tiling_data` (`size` bytes, at least sfa_tiling_data_size()). Returns 0, or an ErrorKind
// (common/cpp/core_common.h) with the refusal's message in `message` (NUL-terminated, cut to
// `message_size`).
int32_t sfa_tiling(const SfaCoreParams* params, const cann_attention::CorePlatform* platform,
                   uint8_t* tiling_data, int64_t size, char* message, int64_t message_size);

// The static rules only (check.py `check`), same return convention.
int32_t sfa_check(const SfaCoreParams* params, char* message, int64_t message_size);

int64_t sfa_tiling_data_size(void);

// torch's name of a dtype code ("bfloat16"), "" for an unknown code (core_common.h DtypeCode).
const char* sfa_dtype_name(int32_t code);

// sizeof the C ABI's structs (core_common.h CoreStruct): the bridge checks its ctypes mirrors.
int64_t sfa_struct_size(int32_t which);

}  // extern "C"
