// Mixed kernels around SyncAll (the hard all-core barrier), one per case; x is int32 [n].
//   "rounds"        every core (AICs and AIVs), for r = 0, 1, 2: writes r + 1 to its own word of
//                   round r, SyncAll<false>(), then counts the words of round r that hold r + 1
//                   (all cores' writes must be visible) into its word of the result rows.
//                   Layout (C = 3 x blocks cores, core = 3 x block + {0: AIC, 1 + sub: AIV}):
//                   x[r * C + core] the round-r words, x[3 * C + r * C + core] the counts.
//   "aiv_only"      the same over the AIVs only, with SyncAll<true>(); the AIC writes nothing.
//   "missing_arrival"  every core reaches SyncAll<false>() but AIV 1 of the last block, which
//                   returns: reported, naming that core.
//   "flag_then_sync"   the AIC waits on a cross-core flag its AIVs set only after a
//                   SyncAll<false>() the AIC never reaches: a deadlock, reported.
//   "aiv_only_on_aic"  SyncAll<true>() called on an AIC.
#include <string>

#include "kernel_operator.h"

using namespace AscendC;

namespace {

__aicore__ inline int32_t CoreId()
{
    if ASCEND_IS_AIC {
        return static_cast<int32_t>(GetBlockIdx() * 3);
    }
    return static_cast<int32_t>(GetBlockIdx() / GetTaskRation() * 3 + 1 + GetSubBlockIdx());
}

template <bool isAIVOnly>
__aicore__ inline void Rounds(GlobalTensor<int32_t>& x)
{
    const int32_t cores = static_cast<int32_t>(GetBlockNum()) * 3;
    const int32_t self = CoreId();
    for (int32_t r = 0; r < 3; ++r) {
        x.SetValue(r * cores + self, r + 1);
        SyncAll<isAIVOnly>();
        int32_t seen = 0;
        for (int32_t c = 0; c < cores; ++c) seen += x.GetValue(r * cores + c) == r + 1 ? 1 : 0;
        x.SetValue(3 * cores + r * cores + self, seen);
    }
}

}  // namespace

extern "C" __global__ __aicore__ void sync_all_case(const char* name, GM_ADDR x, uint32_t n)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    const std::string c = name;
    GlobalTensor<int32_t> xGm;
    xGm.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(x), n);
    if (c == "rounds") {
        Rounds<false>(xGm);
    } else if (c == "aiv_only") {
        if ASCEND_IS_AIV {
            Rounds<true>(xGm);
        }
    } else if (c == "missing_arrival") {
        const bool last = GetBlockIdx() / GetTaskRation() == GetBlockNum() - 1;
        if (ASCEND_IS_AIV && last && GetSubBlockIdx() == 1) return;
        SyncAll<false>();
    } else if (c == "flag_then_sync") {
        if ASCEND_IS_AIC {
            CrossCoreWaitFlag(3);
            SyncAll<false>();
        } else {
            SyncAll<false>();
            CrossCoreSetFlag<2, PIPE_MTE3>(3);
        }
    } else if (c == "aiv_only_on_aic") {
        SyncAll<true>();
    } else {
        twin::Fail("sync_all_case: no case named '", c, "'");
    }
}
