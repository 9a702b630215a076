// Shared by the sparse_flash_attention AscendC kernel and its host-side launcher: the GM
// workspace of one block (AI Core group), in bytes, for a head group of hg heads and steps of
// block_s2 gathered positions (bsPad = block_s2 rounded up to 16):
//   scores  [hg, bsPad] float   (AIC Fixpipe -> AIV)
//   P       [hg, bsPad] T       (AIV, rounded to the input dtype -> AIC)
//   P.V     [hg, 512]   float   (AIC Fixpipe -> AIV)
// then, after the blocks' areas, the split tasks' workspace slots (op_host/common/schedule.py
// max_slots(T, C) of them), each the fp32 partial state of one piece of a split task:
//   acc [hg, 512], m [Pad8(hg)], l [Pad8(hg)]
#ifndef CANN_ATTENTION_SPARSE_FLASH_ATTENTION_KERNEL_H
#define CANN_ATTENTION_SPARSE_FLASH_ATTENTION_KERNEL_H

#include <cstdint>

#include "balanced_cut.h"       // op_kernel/common/ascendc: MaxSlots

namespace sfa_ascendc {

constexpr uint32_t kD = 512;      // nope head dim (and the value's)
constexpr uint32_t kDr = 64;      // rope head dim

__aicore__ inline uint32_t Pad16(uint32_t v) { return (v + 15) / 16 * 16; }

__aicore__ inline uint64_t ScoreBytes(uint32_t hg, uint32_t bs)
{
    return static_cast<uint64_t>(hg) * Pad16(bs) * 4;
}

__aicore__ inline uint64_t ProbBytes(uint32_t hg, uint32_t bs)   // at most 2 B an element
{
    return static_cast<uint64_t>(hg) * Pad16(bs) * 2;
}

__aicore__ inline uint64_t WorkspaceBytes(uint32_t hg, uint32_t bs)
{
    return ScoreBytes(hg, bs) + ProbBytes(hg, bs) + static_cast<uint64_t>(hg) * kD * 4;
}

__aicore__ inline uint32_t Pad8(uint32_t v) { return (v + 7) / 8 * 8; }

// Floats of one split-task slot: acc [hg, 512], m and l [Pad8(hg)] each (32-byte aligned parts).
__aicore__ inline uint64_t SlotFloats(uint32_t hg)
{
    return static_cast<uint64_t>(hg) * kD + 2 * static_cast<uint64_t>(Pad8(hg));
}

// Slots of the plan's cut of tasks tasks over blocks cores (schedule.py max_slots).
using cann_attention_ascendc::MaxSlots;

// The whole GM workspace of a launch of blocks blocks.
__aicore__ inline uint64_t WorkspaceTotalBytes(uint32_t hg, uint32_t bs, uint64_t tasks,
                                               uint64_t blocks)
{
    return WorkspaceBytes(hg, bs) * blocks + MaxSlots(tasks, blocks) * SlotFloats(hg) * 4;
}

// One block's share of the kernel (AIC: gather, Q.K^T, P.V; AIV: online softmax, output), for
// query / key of type T; sparse_flash_attention_kernel.cpp defines it (instantiated for the twin).
// block_table, the length lists, sinks and softmax_max / softmax_sum may be null (absent;
// return_softmax_lse False). value is never read (the value is the key's first 512 columns).
template <typename T>
__aicore__ void Run(GM_ADDR query, GM_ADDR key, GM_ADDR value, GM_ADDR sparseIndices,
                    GM_ADDR blockTable, GM_ADDR lensQuery, GM_ADDR lensKv, GM_ADDR queryRope,
                    GM_ADDR keyRope, GM_ADDR sinks, GM_ADDR out, GM_ADDR softmaxMax,
                    GM_ADDR softmaxSum, GM_ADDR workspace, GM_ADDR tiling);

#ifdef ASCENDC_TWIN
// Twin only (tests): Run, and every core records the pieces it runs in record (int32
// [3 * blocks, 1 + 4 * (tasks + blocks - 1)]: per core (AIC, AIV 0, AIV 1 of each block) the
// count, then (task, step begin, step end, slot or -1) per piece). dropSlot >= 0: the merge
// leaves that slot out (a fault, to show the tests see it).
template <typename T>
__aicore__ void RunRecorded(GM_ADDR query, GM_ADDR key, GM_ADDR value, GM_ADDR sparseIndices,
                            GM_ADDR blockTable, GM_ADDR lensQuery, GM_ADDR lensKv,
                            GM_ADDR queryRope, GM_ADDR keyRope, GM_ADDR sinks, GM_ADDR out,
                            GM_ADDR softmaxMax, GM_ADDR softmaxSum, GM_ADDR workspace,
                            GM_ADDR tiling, GM_ADDR record, int32_t dropSlot);
#endif

}  // namespace sfa_ascendc

#endif
