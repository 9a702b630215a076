// Shared by the lightning_indexer AscendC kernel and its host-side launcher: the GM workspace.
//   * per block (AI Core group): the cube's scores of one chunk [n1, block_s2] (float), then two
//     exchange slots of the AIVs' top-k merge (after SyncAll, slot 0 also holds the running list
//     of a split task's merge: no extra space, whatever sparse_count);
//   * after the blocks: the list slots of the pieces of split tasks (the plan's schedule).
// A list slot (exchange or split) is 8 words of count, sparse_count scores (float), then
// sparse_count indices (int32).
#ifndef CANN_ATTENTION_LIGHTNING_INDEXER_KERNEL_H
#define CANN_ATTENTION_LIGHTNING_INDEXER_KERNEL_H

#include <cstdint>

#include "balanced_cut.h"       // op_kernel/common/ascendc: MaxSlots

namespace li_ascendc {

__aicore__ inline uint64_t ListFloats(uint32_t sparseCount)
{
    return 2 * static_cast<uint64_t>(sparseCount) + 8;
}

// One block's part, in floats.
__aicore__ inline uint64_t WorkspaceFloats(uint32_t n1, uint32_t blockS2, uint32_t sparseCount)
{
    return static_cast<uint64_t>(n1) * blockS2 + 2 * ListFloats(sparseCount);
}

// The whole GM workspace of a launch on `blocks` blocks, in floats: the split-task slots are
// those of a cut of at most numRows tasks (balanced_cut.h MaxSlots).
__aicore__ inline uint64_t WorkspaceTotalFloats(uint32_t n1, uint32_t blockS2, uint32_t sparseCount,
                                                uint32_t blocks, uint64_t numRows)
{
    return WorkspaceFloats(n1, blockS2, sparseCount) * blocks +
           cann_attention_ascendc::MaxSlots(numRows, blocks) * ListFloats(sparseCount);
}

// One block's share of the kernel (AIC: scores; AIV: ReLU, head sum, top-k), for query and key
// of type T and weights of type W (T or float); lightning_indexer_kernel.cpp defines it
// (instantiated for the twin). The length lists, the block table and values may be null
// (absent; return_value False).
template <typename T, typename W>
__aicore__ void Run(GM_ADDR query, GM_ADDR key, GM_ADDR weights, GM_ADDR lensQuery,
                    GM_ADDR lensKey, GM_ADDR blockTable, GM_ADDR indices, GM_ADDR values,
                    GM_ADDR workspace, GM_ADDR tiling);

#ifdef ASCENDC_TWIN
// Twin only: Run, and every core records the pieces it ran into `record`, int32
// [3 * GetBlockNum(), 1 + 4 * num_rows]: row 3 * block + {0: AIC, 1 + sub: AIV} holds the count,
// then (task, step begin, step end, slot or -1) per piece, in the order run.
template <typename T, typename W>
__aicore__ void RunRecorded(GM_ADDR query, GM_ADDR key, GM_ADDR weights, GM_ADDR lensQuery,
                            GM_ADDR lensKey, GM_ADDR blockTable, GM_ADDR indices, GM_ADDR values,
                            GM_ADDR workspace, GM_ADDR tiling, GM_ADDR record);
#endif

}  // namespace li_ascendc

#endif
