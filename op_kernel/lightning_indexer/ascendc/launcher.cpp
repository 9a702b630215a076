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
    return li_ascendc::WorkspaceFloats(td->n1, td->block_s2, td->sparse_count) * sizeof(float) *
           num_blocks;
}

// dtype: 0 = float16, 1 = bfloat16. Buffer sizes in bytes. Returns 0, or non-zero with the
// twin's message in message[0 .. capacity).
int li_ascendc_run(int32_t dtype, uint32_t num_blocks, void* query, uint64_t query_bytes,
                   void* key, uint64_t key_bytes, void* weights, uint64_t weights_bytes,
                   void* indices, uint64_t indices_bytes, void* workspace,
                   uint64_t workspace_bytes, void* tiling, uint64_t tiling_bytes, char* message,
                   size_t capacity)
{
    return AscendC::twin::Guard(message, capacity, [&] {
        const std::vector<AscendC::twin::GmArg> gm = {
            {"query", query, query_bytes}, {"key", key, key_bytes},
            {"weights", weights, weights_bytes}, {"sparse_indices", indices, indices_bytes},
            {"workspace", workspace, workspace_bytes}, {"tiling", tiling, tiling_bytes}};
        auto q = static_cast<GM_ADDR>(query), k = static_cast<GM_ADDR>(key),
             w = static_cast<GM_ADDR>(weights), idx = static_cast<GM_ADDR>(indices),
             ws = static_cast<GM_ADDR>(workspace), t = static_cast<GM_ADDR>(tiling);
        if (dtype == 0) {
            AscendC::twin::RunMixKernel(num_blocks, gm, li_ascendc::Run<half>, q, k, w, idx, ws, t);
        } else if (dtype == 1) {
            AscendC::twin::RunMixKernel(num_blocks, gm, li_ascendc::Run<bfloat16_t>, q, k, w, idx,
                                        ws, t);
        } else {
            AscendC::twin::Fail("li_ascendc_run: dtype code ", dtype, " is not 0 or 1");
        }
    });
}

}  // extern "C"
