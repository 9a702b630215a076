// Twin-only launcher of the sparse_flash_attention AscendC kernel (g++ with the AscendC twin): an
// extern "C" entry that runs the mixed kernel with AscendC::twin::RunMixKernel on CPU threads.
// On the device, CANN's generated launch code plays this part.
#include "kernel_operator.h"
#include "tiling_core.h"

#include "sparse_flash_attention_kernel.h"

extern "C" {

// Bytes of GM workspace the kernel needs for num_blocks blocks under this TilingData (the blocks'
// areas and the split tasks' slots).
uint64_t sfa_ascendc_workspace_bytes(const uint8_t* tiling, uint32_t num_blocks)
{
    const auto* td = reinterpret_cast<const SparseFlashAttentionTilingData*>(tiling);
    return sfa_ascendc::WorkspaceTotalBytes(td->head_group, td->block_s2, td->num_tasks,
                                            num_blocks);
}

// dtype: 0 = float16, 1 = bfloat16 (query, key and their rope parts). Buffer sizes in bytes;
// block_table, the length lists, sinks and softmax_max / softmax_sum may be null (absent inputs;
// return_softmax_lse False), as CANN passes absent optional tensors. record: null, or int32
// [3 * num_blocks, 1 + 4 * (num_tasks + num_blocks - 1)] where every core records the pieces it
// ran (RunRecorded, sparse_flash_attention_kernel.h); drop_slot (with record only; -1: none): a
// slot the merge leaves out. Returns 0, or non-zero with the twin's message in
// message[0 .. capacity).
int sfa_ascendc_run(int32_t dtype, uint32_t num_blocks, void* query, uint64_t query_bytes,
                    void* key, uint64_t key_bytes, void* value, uint64_t value_bytes,
                    void* indices, uint64_t indices_bytes, void* block_table,
                    uint64_t block_table_bytes, void* lens_query, uint64_t lens_query_bytes,
                    void* lens_kv, uint64_t lens_kv_bytes, void* query_rope,
                    uint64_t query_rope_bytes, void* key_rope, uint64_t key_rope_bytes,
                    void* sinks, uint64_t sinks_bytes, void* out, uint64_t out_bytes,
                    void* softmax_max, uint64_t softmax_max_bytes, void* softmax_sum,
                    uint64_t softmax_sum_bytes, void* workspace, uint64_t workspace_bytes,
                    void* record, uint64_t record_bytes, int32_t drop_slot,
                    void* tiling, uint64_t tiling_bytes, char* message, size_t capacity)
{
    return AscendC::twin::Guard(message, capacity, [&] {
        std::vector<AscendC::twin::GmArg> gm = {
            {"query", query, query_bytes}, {"key", key, key_bytes},
            {"value", value, value_bytes}, {"sparse_indices", indices, indices_bytes},
            {"query_rope", query_rope, query_rope_bytes}, {"key_rope", key_rope, key_rope_bytes},
            {"attention_out", out, out_bytes}, {"workspace", workspace, workspace_bytes},
            {"tiling", tiling, tiling_bytes}};
        auto optional = [&](const char* name, void* p, uint64_t bytes) {
            if (p != nullptr) gm.push_back({name, p, bytes});
        };
        optional("block_table", block_table, block_table_bytes);
        optional("actual_seq_lengths_query", lens_query, lens_query_bytes);
        optional("actual_seq_lengths_kv", lens_kv, lens_kv_bytes);
        optional("sinks", sinks, sinks_bytes);
        optional("softmax_max", softmax_max, softmax_max_bytes);
        optional("softmax_sum", softmax_sum, softmax_sum_bytes);
        optional("record", record, record_bytes);
        auto g = [](void* p) { return static_cast<GM_ADDR>(p); };
        auto run = [&](auto kernel, auto recorded) {
            if (record == nullptr) {
                AscendC::twin::RunMixKernel(num_blocks, gm, kernel, g(query), g(key), g(value),
                                            g(indices), g(block_table), g(lens_query),
                                            g(lens_kv), g(query_rope), g(key_rope), g(sinks),
                                            g(out), g(softmax_max), g(softmax_sum),
                                            g(workspace), g(tiling));
            } else {
                AscendC::twin::RunMixKernel(num_blocks, gm, recorded, g(query), g(key), g(value),
                                            g(indices), g(block_table), g(lens_query),
                                            g(lens_kv), g(query_rope), g(key_rope), g(sinks),
                                            g(out), g(softmax_max), g(softmax_sum),
                                            g(workspace), g(tiling), g(record), drop_slot);
            }
        };
        if (dtype == 0) {
            run(sfa_ascendc::Run<half>, sfa_ascendc::RunRecorded<half>);
        } else if (dtype == 1) {
            run(sfa_ascendc::Run<bfloat16_t>, sfa_ascendc::RunRecorded<bfloat16_t>);
        } else {
            AscendC::twin::Fail("sfa_ascendc_run: dtype code ", dtype, " is not 0 or 1");
        }
    });
}

}  // extern "C"
