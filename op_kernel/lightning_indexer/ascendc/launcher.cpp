// Twin-only launcher of the lightning_indexer AscendC kernel (g++ with the AscendC twin): an
// extern "C" entry that runs the mixed kernel with AscendC::twin::RunMixKernel on CPU threads.
// On the device, CANN's generated launch code plays this part.
#include "kernel_operator.h"
#include "tiling_core.h"

#include "lightning_indexer_kernel.h"

extern "C" {

// Bytes of GM workspace the kernel needs for num_blocks blocks under this TilingData.
uint64_t li_ascendc_workspace_bytes(const uint8_t* tiling, uint32_t num_blocks)
{
    const auto* td = reinterpret_cast<const LightningIndexerTilingData*>(tiling);
    return li_ascendc::WorkspaceTotalFloats(td->n1, td->block_s2, td->sparse_count, num_blocks,
                                            static_cast<uint64_t>(td->num_rows)) * sizeof(float);
}

// dtype: 0 = float16, 1 = bfloat16 (query and key); weights_float: weights are float32, else of
// the query dtype. Buffer sizes in bytes; the length lists, the block table and values may be
// null (absent inputs; return_value False), as CANN passes absent optional tensors. record:
// null, or int32 [3 * num_blocks, 1 + 4 * num_rows] where every core records the pieces it ran
// (RunRecorded, lightning_indexer_kernel.h). Returns 0, or non-zero with the twin's message in
// message[0 .. capacity).
int li_ascendc_run(int32_t dtype, int32_t weights_float, uint32_t num_blocks, void* query,
                   uint64_t query_bytes, void* key, uint64_t key_bytes, void* weights, uint64_t weights_bytes,
                   void* lens_query, uint64_t lens_query_bytes, void* lens_key,
                   uint64_t lens_key_bytes, void* block_table, uint64_t block_table_bytes,
                   void* indices, uint64_t indices_bytes, void* values,
                   uint64_t values_bytes, void* workspace, uint64_t workspace_bytes,
                   void* record, uint64_t record_bytes, void* tiling, uint64_t tiling_bytes,
                   char* message, size_t capacity)
{
    return AscendC::twin::Guard(message, capacity, [&] {
        std::vector<AscendC::twin::GmArg> gm = {
            {"query", query, query_bytes}, {"key", key, key_bytes},
            {"weights", weights, weights_bytes}, {"sparse_indices", indices, indices_bytes},
            {"workspace", workspace, workspace_bytes}, {"tiling", tiling, tiling_bytes}};
        if (lens_query != nullptr) gm.push_back({"actual_seq_lengths_query", lens_query,
                                                 lens_query_bytes});
        if (lens_key != nullptr) gm.push_back({"actual_seq_lengths_key", lens_key,
                                               lens_key_bytes});
        if (block_table != nullptr) gm.push_back({"block_table", block_table, block_table_bytes});
        if (values != nullptr) gm.push_back({"sparse_values", values, values_bytes});
        if (record != nullptr) gm.push_back({"record", record, record_bytes});
        auto g = [](void* p) { return static_cast<GM_ADDR>(p); };
        auto run = [&](auto kernel, auto recorded) {
            if (record == nullptr) {
                AscendC::twin::RunMixKernel(num_blocks, gm, kernel, g(query), g(key), g(weights),
                                            g(lens_query), g(lens_key), g(block_table),
                                            g(indices), g(values), g(workspace), g(tiling));
            } else {
                AscendC::twin::RunMixKernel(num_blocks, gm, recorded, g(query), g(key),
                                            g(weights), g(lens_query), g(lens_key),
                                            g(block_table), g(indices), g(values), g(workspace),
                                            g(tiling), g(record));
            }
        };
        using li_ascendc::Run;
        using li_ascendc::RunRecorded;
        if (dtype == 0) {
            weights_float ? run(Run<half, float>, RunRecorded<half, float>)
                          : run(Run<half, half>, RunRecorded<half, half>);
        } else if (dtype == 1) {
            weights_float ? run(Run<bfloat16_t, float>, RunRecorded<bfloat16_t, float>)
                          : run(Run<bfloat16_t, bfloat16_t>, RunRecorded<bfloat16_t, bfloat16_t>);
        } else {
            AscendC::twin::Fail("li_ascendc_run: dtype code ", dtype, " is not 0 or 1");
        }
    });
}

}  // extern "C"
