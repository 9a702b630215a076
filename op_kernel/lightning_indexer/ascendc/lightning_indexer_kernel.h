// Shared by the lightning_indexer AscendC kernel and its host-side launcher: the GM workspace of
// one block (AI Core group), in floats: the cube's scores of one chunk [n1, block_s2], then two
// exchange slots of the AIV top-k merge (8 words of count, sparse_count scores, sparse_count
// indices each).
#ifndef CANN_ATTENTION_LIGHTNING_INDEXER_KERNEL_H
#define CANN_ATTENTION_LIGHTNING_INDEXER_KERNEL_H

#include <cstdint>

namespace li_ascendc {

__aicore__ inline uint64_t WorkspaceFloats(uint32_t n1, uint32_t blockS2, uint32_t sparseCount)
{
    return static_cast<uint64_t>(n1) * blockS2 + 2 * (2 * static_cast<uint64_t>(sparseCount) + 8);
}

// One block's share of the kernel (AIC: scores; AIV: ReLU, head sum, top-k), for query and key
// of type T and weights of type W (T or float); lightning_indexer_kernel.cpp defines it
// (instantiated for the twin). The length lists, the block table and values may be null (absent; return_value False).
template <typename T, typename W>
__aicore__ void Run(GM_ADDR query, GM_ADDR key, GM_ADDR weights, GM_ADDR lensQuery,
                    GM_ADDR lensKey, GM_ADDR blockTable, GM_ADDR indices, GM_ADDR values,
                    GM_ADDR workspace, GM_ADDR tiling);

}  // namespace li_ascendc

#endif
