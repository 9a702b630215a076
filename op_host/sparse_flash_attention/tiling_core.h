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

// Tensor dtypes as the core sees them. The messages spell them as torch does (sfa_dtype_name);
// the Python bridge maps torch dtypes to codes by those names, so every torch dtype has one.
enum SfaDtype : int32_t {
    kSfaFloat16 = 0, kSfaBfloat16 = 1, kSfaFloat32 = 2, kSfaFloat64 = 3,
    kSfaInt8 = 4, kSfaInt16 = 5, kSfaInt32 = 6, kSfaInt64 = 7,
    kSfaUint8 = 8, kSfaUint16 = 9, kSfaUint32 = 10, kSfaUint64 = 11, kSfaBool = 12,
    kSfaComplex32 = 13, kSfaComplex64 = 14, kSfaComplex128 = 15,
    kSfaFloat8E4m3fn = 16, kSfaFloat8E4m3fnuz = 17, kSfaFloat8E5m2 = 18,
    kSfaFloat8E5m2fnuz = 19, kSfaFloat8E8m0fnu = 20, kSfaFloat4E2m1fnX2 = 21,
    kSfaQint8 = 22, kSfaQuint8 = 23, kSfaQint32 = 24, kSfaQuint4x2 = 25, kSfaQuint2x4 = 26,
    kSfaBits1x8 = 27, kSfaBits2x4 = 28, kSfaBits4x2 = 29, kSfaBits8 = 30, kSfaBits16 = 31,
    kSfaInt1 = 32, kSfaInt2 = 33, kSfaInt3 = 34, kSfaInt4 = 35, kSfaInt5 = 36, kSfaInt6 = 37,
    kSfaInt7 = 38, kSfaUint1 = 39, kSfaUint2 = 40, kSfaUint3 = 41, kSfaUint4 = 42,
    kSfaUint5 = 43, kSfaUint6 = 44, kSfaUint7 = 45,
    kSfaDtypeCount = 46,
};

// One tensor argument: what TensorMeta holds (shape, dtype, contiguity), never its values.
struct SfaTensorDesc {
    const int64_t* shape;   // `rank` dims (may be null when rank is 0 or the tensor is absent)
    int64_t rank;
    int32_t present;        // 0: the optional argument is None
    int32_t dtype;          // SfaDtype
    int32_t contiguous;     // caches (key, value, key_rope) must be: they are read in place
};

// SparseFlashAttentionParams (params.py) without tensor values.
struct SfaCoreParams {
    SfaTensorDesc query, key, value, sparse_indices;          // required
    SfaTensorDesc block_table, actual_seq_lengths_query, actual_seq_lengths_kv;
    SfaTensorDesc query_rope, key_rope, sinks;
    double scale_value;
    int64_t sparse_block_size;
    const char* layout_query;   // UTF-8, NUL-terminated; null stands for None
    const char* layout_kv;
    int64_t sparse_mode;
    int64_t pre_tokens;
    int64_t next_tokens;
    int64_t attention_mode;
    int32_t return_softmax_lse;
};

enum SfaPlatformKind : int32_t { kSfaAscend = 0, kSfaGpu = 1, kSfaCpu = 2 };

// The facts of PlatformInfo (common/platform.py) that the Ascend plan reads. The buffers are
// per cube core (L1, L0A/B/C) and per vector core (UB), in bytes.
struct SfaCorePlatform {
    const char* name;        // the SoC, e.g. "Ascend910_93"
    int32_t kind;            // SfaPlatformKind
    int32_t vector_cores_per_core;
    int64_t num_cores;       // cube cores
    int64_t ub, l1, l0a, l0b, l0c;
};

extern "C" {

// Checks `params` and plans the call for `platform`, writing SparseFlashAttentionTilingData
// into `tiling_data` (`size` bytes, at least sfa_tiling_data_size()). Returns 0, or an ErrorKind
// (common/cpp/core_common.h) with the refusal's message in `message` (NUL-terminated, cut to
// `message_size`).
int32_t sfa_tiling(const SfaCoreParams* params, const SfaCorePlatform* platform,
                   uint8_t* tiling_data, int64_t size, char* message, int64_t message_size);

// The static rules only (check.py `check`), same return convention.
int32_t sfa_check(const SfaCoreParams* params, char* message, int64_t message_size);

int64_t sfa_tiling_data_size(void);

// torch's name of a dtype code ("bfloat16"), or null for an unknown code.
const char* sfa_dtype_name(int32_t code);

}  // extern "C"
