// Shared by the sparse_flash_attention AscendC kernel and its host-side launcher: the GM
// workspace of one block (AI Core group), in bytes, for a head group of hg heads and steps of
// block_s2 gathered positions (bsPad = block_s2 rounded up to 16):
//   scores  [hg, bsPad] float   (AIC Fixpipe -> AIV)
//   P       [hg, bsPad] T       (AIV, rounded to the input dtype -> AIC)
//   P.V     [hg, 512]   float   (AIC Fixpipe -> AIV)
#ifndef CANN_ATTENTION_SPARSE_FLASH_ATTENTION_KERNEL_H
#define CANN_ATTENTION_SPARSE_FLASH_ATTENTION_KERNEL_H

#include <cstdint>

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

// One block's share of the kernel (AIC: gather, Q.K^T, P.V; AIV: online softmax, output), for
// query / key of type T; sparse_flash_attention_kernel.cpp defines it (instantiated for the twin).
// block_table, the length lists, sinks and softmax_max / softmax_sum may be null (absent;
// return_softmax_lse False). value is never read (the value is the key's first 512 columns).
template <typename T>
__aicore__ void Run(GM_ADDR query, GM_ADDR key, GM_ADDR value, GM_ADDR sparseIndices,
                    GM_ADDR blockTable, GM_ADDR lensQuery, GM_ADDR lensKv, GM_ADDR queryRope,
                    GM_ADDR keyRope, GM_ADDR sinks, GM_ADDR out, GM_ADDR softmaxMax,
                    GM_ADDR softmaxSum, GM_ADDR workspace, GM_ADDR tiling);

}  // namespace sfa_ascendc

#endif
