// AscendC twin: synchronisation between the pipes of one core (SetFlag / WaitFlag, PipeBarrier)
// and the block index of the running core (GetBlockIdx / GetBlockNum).
//
// The twin runs every instruction in program order, so pipes never race; what it checks is the
// flag protocol itself. A flag is one bit per (HardEvent, event id): SetFlag sets it, WaitFlag
// waits until it is set and clears it. A WaitFlag that finds the bit clear would block forever on
// the device (nothing later in program order can set it), so the twin reports it at once.
#ifndef CANN_ATTENTION_ASCENDC_TWIN_SYNC_H
#define CANN_ATTENTION_ASCENDC_TWIN_SYNC_H

#include "base.h"

namespace AscendC {
namespace twin {

inline uint8_t& Flag(HardEvent event, int32_t id, const char* api)
{
    CoreState& core = RunningCore(api);
    if (id < 0 || id >= kEventIds) {
        Fail(api, "<", EventName(event), ">(", id, "): event id outside [0, ", kEventIds - 1, "]");
    }
    return core.flags[static_cast<int>(event) * kEventIds + id];
}

}  // namespace twin

template <HardEvent event>
__aicore__ inline void SetFlag(int32_t eventID)
{
    uint8_t& flag = twin::Flag(event, eventID, "SetFlag");
    if (flag) {
        twin::Fail("SetFlag<", twin::EventName(event), ">(", eventID, "): the flag is already set "
                   "and not yet waited for (SetFlag and WaitFlag come in pairs)");
    }
    flag = 1;
}

template <HardEvent event>
__aicore__ inline void WaitFlag(int32_t eventID)
{
    uint8_t& flag = twin::Flag(event, eventID, "WaitFlag");
    if (!flag) {
        twin::Fail("WaitFlag<", twin::EventName(event), ">(", eventID, "): no SetFlag<",
                   twin::EventName(event), ">(", eventID, ") precedes it, so on the device it "
                   "would wait forever");
    }
    flag = 0;
}

template <pipe_t pipe>
__aicore__ inline void PipeBarrier()
{
    twin::RunningCore("PipeBarrier");
    if (pipe == PIPE_S) {
        twin::Fail("PipeBarrier<PIPE_S>: the scalar pipe is ordered by the hardware; a barrier on "
                   "it raises a hardware error");
    }
}

__aicore__ inline int64_t GetBlockIdx() { return twin::RunningCore("GetBlockIdx").blockIdx; }
__aicore__ inline int64_t GetBlockNum() { return twin::RunningCore("GetBlockNum").blockNum; }

}  // namespace AscendC

#endif  // CANN_ATTENTION_ASCENDC_TWIN_SYNC_H
