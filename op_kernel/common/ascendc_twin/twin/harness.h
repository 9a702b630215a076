// AscendC twin: launching a kernel on CPU (RunKernel) and handing errors to C callers (Guard).
#ifndef CANN_ATTENTION_ASCENDC_TWIN_HARNESS_H
#define CANN_ATTENTION_ASCENDC_TWIN_HARNESS_H

#include <cstring>
#include <type_traits>
#include <utility>

#include "base.h"

namespace AscendC {
namespace twin {

// A kernel argument in GM: GM accesses of the kernel must stay inside one of these.
struct GmArg {
    const char* name;
    const void* data;
    uint64_t bytes;
};

// A core returning with a SetFlag never waited for breaks the SetFlag/WaitFlag pairing.
inline void CheckFlagsAtReturn(const CoreState& core)
{
    for (int i = 0; i < kEvents * kEventIds; ++i) {
        if (core.flags[i]) {
            Fail("the kernel returned with SetFlag<", EventName(static_cast<HardEvent>(
                 i / kEventIds)), ">(", i % kEventIds, ") never waited for (SetFlag and "
                 "WaitFlag come in pairs)");
        }
    }
}

// Runs kernel(args...) once per block index 0 .. numBlocks - 1, one block after another, each on a
// fresh core: GetBlockIdx / GetBlockNum, the TPipe's memory accounting and the event flags start
// anew. Every GlobalTensor access is checked against `gm`. A rule broken on a block throws
// TwinError("block i of n: ..."); the later blocks do not run.
template <typename Kernel, typename... Args>
void RunKernel(uint32_t numBlocks, const std::vector<GmArg>& gm, Kernel&& kernel, Args&&... args)
{
    if (numBlocks == 0) {
        Fail("RunKernel: numBlocks is 0");
    }
    CoreState& core = Core();
    if (core.running) {
        Fail("RunKernel: called from inside a running kernel");
    }
    for (uint32_t block = 0; block < numBlocks; ++block) {
        core = CoreState{};
        core.running = true;
        core.blockIdx = block;
        core.blockNum = numBlocks;
        for (const GmArg& arg : gm) {
            core.gm.push_back({arg.name, static_cast<const uint8_t*>(arg.data), arg.bytes});
        }
        try {
            kernel(args...);
            CheckFlagsAtReturn(core);
        } catch (const TwinError& error) {
            core = CoreState{};
            throw TwinError(Str("block ", block, " of ", numBlocks, ": ", error.what()));
        } catch (...) {
            core = CoreState{};
            throw;
        }
    }
    core = CoreState{};
}

// The same without GM buffers: GlobalTensors are then checked against their own sizes only.
template <typename Kernel, typename... Args,
          typename = std::enable_if_t<!std::is_same_v<std::decay_t<Kernel>, std::vector<GmArg>>>>
void RunKernel(uint32_t numBlocks, Kernel&& kernel, Args&&... args)
{
    RunKernel(numBlocks, std::vector<GmArg>{}, std::forward<Kernel>(kernel),
              std::forward<Args>(args)...);
}

// For extern "C" entry points: runs fn(); returns 0, or 1 with the TwinError's message in
// message[0 .. capacity) (2 for another C++ exception), never letting an exception cross into C.
template <typename Fn>
int Guard(char* message, size_t capacity, Fn&& fn) noexcept
{
    auto put = [&](const char* text) {
        if (message != nullptr && capacity > 0) {
            std::strncpy(message, text, capacity - 1);
            message[capacity - 1] = '\0';
        }
    };
    try {
        fn();
        put("");
        return 0;
    } catch (const TwinError& error) {
        put(error.what());
        return 1;
    } catch (const std::exception& error) {
        put(Str("C++ exception: ", error.what()).c_str());
        return 2;
    } catch (...) {
        put("unknown C++ exception");
        return 2;
    }
}

}  // namespace twin
}  // namespace AscendC

#endif  // CANN_ATTENTION_ASCENDC_TWIN_HARNESS_H
