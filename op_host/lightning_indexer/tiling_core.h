// The C++ tiling core of npu_lightning_indexer: plain C++17, no CANN header.
//
// It does what the Python host side does for a call on an Ascend A2/A3 platform: the static
// rules of op_host/lightning_indexer/check.py (same order, same messages and error kinds) and
// the plan of op_host/lightning_indexer/tiling.py, written as the TilingData bytes that
// tiling.tiling_data packs. CANN's build links it into the op package through a thin adapter
// (gert shapes and attributes -> LiCoreParams); tests and the CPU path reach it through ctypes
// (native.py). The rules that read tensor values (check_values) stay on the Python side.
#pragma once

#include <cstdint>

// The shared error convention (common/cpp/core_common.h).
#include "core_common.h"

// generated from the Python definition; layout version 1
struct LightningIndexerTilingData {
    uint32_t version;
    uint32_t tiling_key;
    int64_t num_rows;
    int64_t key_capacity;
    uint32_t num_cores;
    uint32_t batch;
    uint32_t n1;
    uint32_t head_group;
    uint32_t block_s2;
    uint32_t sparse_count;
    uint32_t sparse_mode;
    uint32_t layout_query;
    uint32_t layout_key;
    uint32_t page_size;
};
static_assert(sizeof(LightningIndexerTilingData) == 64, "LightningIndexerTilingData layout");
// (end of the generated text: tiling.TILING_DATA.c_struct(); a test compares the two)

namespace cann_attention {
namespace lightning_indexer {

// Ranks above this are refused by every rank rule of the op before they matter, so a caller
// that cannot fit a shape here may report the Python check's error instead (native.py does).
constexpr int32_t kMaxRank = 8;

// Tensor dtypes, numbered by this core (the CANN adapter maps ge::DataType onto them). The
// names are torch's, as the messages spell dtypes (errors.dtype_name).
enum DtypeCode : int32_t {
    kBool = 0, kUint8, kInt8, kInt16, kInt32, kInt64, kFloat16, kBfloat16, kFloat32, kFloat64,
    kComplex32, kComplex64, kComplex128, kQint8, kQuint8, kQint32, kQuint4x2, kQuint2x4,
    kFloat8E4m3fn, kFloat8E5m2, kFloat8E4m3fnuz, kFloat8E5m2fnuz, kFloat8E8m0fnu,
    kFloat4E2m1fnX2, kUint16, kUint32, kUint64, kBits1x8, kBits2x4, kBits4x2, kBits8,
    kBits16, kInt1, kInt2, kInt3, kInt4, kInt5, kInt6, kInt7, kUint1, kUint2, kUint3, kUint4,
    kUint5, kUint6, kUint7,
    kDtypeCount
};

// What a plan may use of a platform (common/platform.py PlatformInfo). Buffers are the bytes
// one core may use; an Ascend platform has all five.
enum PlatformKindCode : int32_t { kCpu = 1, kAscend = 2, kGpu = 3 };

struct CorePlatform {
    const char* name;                  // NUL-terminated, e.g. "Ascend910_93"
    int32_t kind;                      // PlatformKindCode
    int32_t num_cores;                 // cube cores
    int32_t vector_cores_per_core;
    int32_t reserved;                  // explicit padding: the same layout in C and ctypes
    int64_t ub, l1, l0a, l0b, l0c;     // bytes
};

// One tensor argument without its values (common/tensor_meta.py TensorMeta).
struct LiTensor {
    int32_t present;                   // 0: an optional tensor passed as None
    int32_t dtype;                     // DtypeCode
    int32_t rank;                      // 0 .. kMaxRank
    int32_t contiguous;
    int64_t dims[kMaxRank];
};

// A string attribute as bytes (UTF-8; may hold NUL, hence the size).
struct LiText {
    const char* data;
    int64_t size;
};

// npu_lightning_indexer's arguments as the host sees them (params.py LightningIndexerParams).
struct LiCoreParams {
    LiTensor query, key, weights;
    LiTensor actual_seq_lengths_query, actual_seq_lengths_key, block_table;
    LiText layout_query, layout_key;
    int64_t sparse_count, sparse_mode, pre_tokens, next_tokens;
    int32_t return_value;              // 0 or 1
    int32_t reserved;                  // explicit padding
};

}  // namespace lightning_indexer
}  // namespace cann_attention

// Every entry point returns 0 or the ErrorKind of its refusal, whose text ("<op>: <argument>:
// expected <x>, got <y>") it writes NUL-terminated into message (cut to message_size).
extern "C" {

// The static check alone (check.check without check_values).
int32_t li_check(const cann_attention::lightning_indexer::LiCoreParams* params, char* message,
                 int64_t message_size);

// check, then the plan on an Ascend A2/A3 platform; writes sizeof(LightningIndexerTilingData)
// bytes to tiling_data (size: the buffer's bytes).
int32_t li_tiling(const cann_attention::lightning_indexer::LiCoreParams* params,
                  const cann_attention::lightning_indexer::CorePlatform* platform,
                  uint8_t* tiling_data, int64_t size, char* message, int64_t message_size);

int64_t li_tiling_data_size(void);
uint32_t li_tiling_data_version(void);
int32_t li_max_rank(void);
// torch's name of a dtype code ("" for an unknown code): lets a test compare the two tables.
const char* li_dtype_name(int32_t code);

}  // extern "C"
