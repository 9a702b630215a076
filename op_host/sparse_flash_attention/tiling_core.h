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

// The record the kernel reads, generated from the Python definition (TILING_DATA).
// BEGIN GENERATED TILING_DATA.c_struct()
// generated from the Python definition; layout version 1
#pragma pack(push, 4)
struct SparseFlashAttentionTilingData {
    uint32_t version;
    uint32_t tiling_key;
    int64_t num_rows;
    int64_t num_tasks;
    int64_t max_pieces;
    int64_t kv_capacity;
    int64_t block_num;
    uint32_t num_cores;
    uint32_t head_group;
    uint32_t groups;
    uint32_t block_s2;
    uint32_t entries_per_step;
    uint32_t stages;
    uint32_t num_warps;
    uint32_t max_slots;
    uint32_t max_split_tasks;
    int32_t split_cost;
    uint32_t batch;
    uint32_t rows_per_batch;
    uint32_t n1;
    uint32_t sparse_count;
    uint32_t sparse_block_size;
    uint32_t sparse_mode;
    uint32_t page_size;
    uint32_t max_blocks;
    uint32_t layout_query;
    uint32_t layout_kv;
    uint32_t return_softmax_lse;
    uint32_t has_sinks;
    float scale_value;
};
#pragma pack(pop)
static_assert(sizeof(SparseFlashAttentionTilingData) == 140, "SparseFlashAttentionTilingData layout");
// END GENERATED TILING_DATA.c_struct()

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
