// The C++ tiling core of npu_lightning_indexer: plain C++17, no CANN header.
//
// It does what the Python host side does for a call on an Ascend A2/A3 platform: the static
// rules of op_host/lightning_indexer/check.py (same order, same messages and error kinds) and
// the plan of op_host/lightning_indexer/tiling.py, written as the TilingData bytes that
// tiling.tiling_data packs. CANN's build links it into the op package through a thin adapter
// (gert shapes and attributes -> LiCoreParams, made of core_common.h's structs); tests and the
// CPU path reach it through ctypes (native.py). The rules that read tensor values (check_values)
// stay on the Python side.
#pragma once

#include <cstdint>

// The shared vocabulary and error convention (common/cpp/core_common.h).
#include "core_common.h"

// The record the kernel reads (generated from tiling.TILING_DATA).
#include "tiling_data.h"

namespace cann_attention {
namespace lightning_indexer {

// npu_lightning_indexer's arguments as the host sees them (params.py LightningIndexerParams).
struct LiCoreParams {
    TensorDesc query, key, weights;
    TensorDesc actual_seq_lengths_query, actual_seq_lengths_key, block_table;
    CoreText layout_query, layout_key;
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
                  const cann_attention::CorePlatform* platform,
                  uint8_t* tiling_data, int64_t size, char* message, int64_t message_size);

int64_t li_tiling_data_size(void);
uint32_t li_tiling_data_version(void);
int32_t li_max_rank(void);
// torch's name of a dtype code ("" for an unknown code; core_common.h DtypeCode).
const char* li_dtype_name(int32_t code);
// sizeof the C ABI's structs (core_common.h CoreStruct): the bridge checks its ctypes mirrors.
int64_t li_struct_size(int32_t which);

}  // extern "C"
