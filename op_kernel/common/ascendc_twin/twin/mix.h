// AscendC twin: the mixed cube/vector launch of Atlas A2/A3 (separated architecture, dav-c220)
// and the cross-core synchronisation between its cores (CrossCoreSetFlag / CrossCoreWaitFlag).
//
// RunMixKernel(numBlocks, gm, kernel, args...) runs, for every block (AI Core group) b, one cube
// core (AIC) and two vector cores (AIV, sub-blocks 0 and 1), all 3 * numBlocks of them at once,
// each on its own std::thread with its own CoreState (its TPipe, memories, pipe flags). The cores
// talk through GM and through cross-core flags, which are counters guarded by one mutex and
// condition variable per launch. A CrossCoreWaitFlag that no core still running can ever satisfy
// (every running core is waiting, and none of the waits can be met) is reported as a deadlock
// naming the core and the flag, instead of hanging.
//
// SyncAll<isAIVOnly>() (the hard all-core barrier) is a barrier over the cores it covers: all
// 3 * numBlocks cores for SyncAll<false>() (a mixed kernel), the 2 * numBlocks AIVs for
// SyncAll<true>(). A core's n-th SyncAll returns once every covered core has reached its n-th.
// A covered core that returns from the kernel without reaching a SyncAll the others wait at,
// and a wait that can never end because every running core waits (at a SyncAll or on a flag
// no running core can set), are reported naming the cores, instead of hanging.
#ifndef CANN_ATTENTION_ASCENDC_TWIN_MIX_H
#define CANN_ATTENTION_ASCENDC_TWIN_MIX_H

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include "harness.h"

namespace AscendC {

// Core types as the kernel sees them: g_coreType == AIC / AIV (CrossCoreSetFlag page examples).
enum CoreTypeT : int32_t { MIX = 0, AIC = 1, AIV = 2 };

// Kernel task types (KERNEL_TASK_TYPE_DEFAULT): recorded nowhere, the launch function decides.
enum KernelMetaType : int32_t {
    KERNEL_TYPE_AIV_ONLY, KERNEL_TYPE_AIC_ONLY, KERNEL_TYPE_MIX_AIV_1_0, KERNEL_TYPE_MIX_AIC_1_0,
    KERNEL_TYPE_MIX_AIC_1_1, KERNEL_TYPE_MIX_AIC_1_2, KERNEL_TYPE_MIX_AIV_HARD_SYNC,
};

namespace twin {

constexpr int kCrossFlags = 11;        // flagId 0..10 on A2/A3 (CrossCoreSetFlag page)
constexpr int kCrossPending = 16;      // "同一flagId的计数器最多设置16次"
constexpr uint8_t kModeUnknown = 0xFF;
// SyncAll: the launch's logical numBlocks must not exceed the AI Cores that run it (SyncAll page,
// constraints common to both forms): 24 on the Ascend 910B / A3 of op_host/common/platform.py
constexpr uint32_t kSyncAllMaxBlocks = 24;

// Thrown on a core whose wait is abandoned because another core failed first.
struct MixAborted {};

struct MixLaunch {
    uint32_t blocks = 0;
    int cores = 0;                                   // 3 * blocks: AIC, AIV 0, AIV 1 per block
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<uint8_t> counters;                   // [waiter][setter][flag]: pending sets
    std::vector<uint8_t> modes;                      // [waiter][flag]: mode of the pending sets
    std::vector<int> waitFlag;                       // [core]: flag it waits on, or -1
    std::vector<uint8_t> waitMode;                   // [core]: modeId of that wait
    std::vector<std::string> labels;
    int running = 0;                                 // cores not yet returned
    std::vector<uint8_t> returned;                   // [core]: returned from the kernel
    std::vector<uint8_t> syncWaiting;                // [core]: blocked in SyncAll
    std::vector<uint32_t> syncCalls;                 // [core]: SyncAll calls it has made
    uint32_t syncDone = 0;                           // SyncAll barriers completed
    int syncArrived = 0;                             // cores at barrier number syncDone
    int syncAivOnly = -1;                            // its isAIVOnly (-1: nobody there yet)
    bool failed = false;
    std::string error;                               // the first failure, with its core
    std::exception_ptr foreign;                      // a non-TwinError exception, if first

    static int Kind(int core) { return core % 3 == 0 ? AIC : AIV; }
    uint8_t& Counter(int waiter, int setter, int flag)
    {
        return counters[(static_cast<size_t>(waiter) * cores + setter) * kCrossFlags + flag];
    }
    uint8_t& Mode(int waiter, int flag) { return modes[static_cast<size_t>(waiter) * kCrossFlags + flag]; }

    // The cores whose CrossCoreSetFlag a wait of `waiter` in `mode` needs (CrossCoreSetFlag page).
    std::vector<int> Setters(int waiter, uint8_t mode) const
    {
        std::vector<int> out;
        const int base = waiter / 3 * 3;
        if (mode == 0) {                             // every core of the waiter's kind, chip-wide
            for (int c = 0; c < cores; ++c) {
                if (Kind(c) == Kind(waiter)) out.push_back(c);
            }
        } else if (mode == 1) {                      // both AIVs of the group
            out = {base + 1, base + 2};
        } else if (Kind(waiter) == AIC) {            // mode 2, AIC waits for both of its AIVs
            out = {base + 1, base + 2};
        } else {                                     // mode 2, an AIV waits for its AIC
            out = {base};
        }
        return out;
    }

    bool Satisfied(int waiter, int flag, uint8_t mode)
    {
        const uint8_t m = mode != kModeUnknown ? mode : Mode(waiter, flag);
        if (m == kModeUnknown) return false;
        for (int s : Setters(waiter, m)) {
            if (Counter(waiter, s, flag) == 0) return false;
        }
        return true;
    }

    static bool CoveredBySync(int core, bool aivOnly) { return !aivOnly || Kind(core) == AIV; }

    // Under the mutex: every core still running waits (on a flag or in SyncAll) and none of the
    // flag waits can be met (a SyncAll wait ends only through another core's arrival).
    bool Stuck()
    {
        int waiting = 0;
        bool someoneCanGo = false;
        for (int c = 0; c < cores; ++c) {
            if (waitFlag[c] >= 0) {
                ++waiting;
                someoneCanGo = someoneCanGo || Satisfied(c, waitFlag[c], waitMode[c]);
            } else if (syncWaiting[c]) {
                ++waiting;
            }
        }
        return waiting == running && !someoneCanGo;
    }

    // "AIC of block 0 on flag 1, AIV 0 of block 0 at SyncAll": the cores blocked now.
    std::string Blocked() const
    {
        std::string who;
        for (int c = 0; c < cores; ++c) {
            if (waitFlag[c] >= 0) {
                who += Str(who.empty() ? "" : ", ", labels[c], " on flag ", waitFlag[c]);
            } else if (syncWaiting[c]) {
                who += Str(who.empty() ? "" : ", ", labels[c], " at SyncAll");
            }
        }
        return who;
    }

    // The covered cores that returned without reaching barrier number syncDone ("" if none).
    std::string MissingAtSync(bool aivOnly) const
    {
        std::string who;
        for (int c = 0; c < cores; ++c) {
            if (returned[c] && CoveredBySync(c, aivOnly) && syncCalls[c] <= syncDone) {
                who += Str(who.empty() ? "" : ", ", labels[c]);
            }
        }
        return who;
    }

    void Fail(const std::string& message)       // under the mutex
    {
        if (!failed) {
            failed = true;
            error = message;
        }
        changed.notify_all();
    }
};

inline const char* KindName(CoreKind kind)
{
    return kind == CoreKind::kAIC ? "AIC" : kind == CoreKind::kAIV ? "AIV" : "plain core";
}

inline MixLaunch& RunningMix(const char* api, CoreState*& core)
{
    core = &RunningCore(api);
    if (core->mix == nullptr) {
        Fail(api, ": cross-core synchronisation needs a mixed launch (RunMixKernel: one AIC and "
             "two AIVs per block); RunKernel runs plain one-core blocks");
    }
    return *core->mix;
}

inline void CheckMode(const char* api, uint8_t mode, const CoreState& core, uint16_t flagId)
{
    if (mode > 2) {
        Fail(api, "(", flagId, ") on the ", core.label, ": modeId ", int(mode), " is outside [0, 2]");
    }
    if (mode == 1 && core.kind != CoreKind::kAIV) {
        Fail(api, "<1>(", flagId, ") on the ", core.label, ": mode 1 synchronises the two AIVs of "
             "an AI Core; the AIC takes no part in it");
    }
}

inline void CheckFlagId(const char* api, uint16_t flagId, const CoreState& core)
{
    if (flagId >= kCrossFlags) {
        Fail(api, "(", flagId, ") on the ", core.label, ": flagId outside [0, ", kCrossFlags - 1,
             "] (A2/A3)");
    }
}

inline void CheckPipe(const char* api, pipe_t pipe, uint16_t flagId, const CoreState& core)
{
    if (pipe == PIPE_S || pipe == PIPE_ALL) {
        Fail(api, "(", flagId, ") on the ", core.label, ": PIPE_S and PIPE_ALL are not allowed as "
             "the pipe of a cross-core flag");
    }
}

inline void CrossSet(uint8_t mode, pipe_t pipe, uint16_t flagId)
{
    const char* api = "CrossCoreSetFlag";
    CoreState* core = nullptr;
    MixLaunch& mix = RunningMix(api, core);
    CheckFlagId(api, flagId, *core);
    CheckMode(api, mode, *core, flagId);
    CheckPipe(api, pipe, flagId, *core);
    const int self = core->mixCore;
    const int base = self / 3 * 3;
    std::vector<int> targets;
    if (mode == 0) {
        for (int c = 0; c < mix.cores; ++c) {
            if (MixLaunch::Kind(c) == MixLaunch::Kind(self)) targets.push_back(c);
        }
    } else if (mode == 1 || core->kind == CoreKind::kAIC) {
        targets = {base + 1, base + 2};
    } else {
        targets = {base};
    }
    std::lock_guard<std::mutex> lock(mix.mutex);
    if (mix.failed) throw MixAborted{};
    for (int w : targets) {
        uint8_t& m = mix.Mode(w, flagId);
        if (m != kModeUnknown && m != mode) {
            bool pending = false;
            for (int s = 0; s < mix.cores; ++s) pending = pending || mix.Counter(w, s, flagId) != 0;
            if (pending) {
                Fail(api, "<", int(mode), ">(", flagId, ") on the ", core->label, ": the ",
                     mix.labels[w], " still has mode-", int(m), " sets of flag ", flagId,
                     " pending; the twin does not model mixing modes on one flag");
            }
        }
        m = mode;
        uint8_t& count = mix.Counter(w, self, flagId);
        if (count >= kCrossPending) {
            Fail(api, "<", int(mode), ">(", flagId, ") on the ", core->label, ": the counter of "
                 "flag ", flagId, " of the ", mix.labels[w], " already holds ", kCrossPending,
                 " sets not yet waited for (at most ", kCrossPending, " per flagId)");
        }
        ++count;
    }
    mix.changed.notify_all();
}

inline void CrossWait(uint8_t mode, uint16_t flagId)
{
    const char* api = "CrossCoreWaitFlag";
    CoreState* core = nullptr;
    MixLaunch& mix = RunningMix(api, core);
    CheckFlagId(api, flagId, *core);
    if (mode != kModeUnknown) CheckMode(api, mode, *core, flagId);
    const int self = core->mixCore;
    std::unique_lock<std::mutex> lock(mix.mutex);
    while (true) {
        if (mix.failed) throw MixAborted{};
        const uint8_t pending = mix.Mode(self, flagId);
        if (mode != kModeUnknown && pending != kModeUnknown && pending != mode) {
            bool any = false;
            for (int s = 0; s < mix.cores; ++s) any = any || mix.Counter(self, s, flagId) != 0;
            if (any) {
                Fail(api, "<", int(mode), ">(", flagId, ") on the ", core->label, ": the pending "
                     "sets of flag ", flagId, " were made in mode ", int(pending));
            }
        }
        if (mix.Satisfied(self, flagId, mode)) {
            const uint8_t m = mode != kModeUnknown ? mode : pending;
            for (int s : mix.Setters(self, m)) --mix.Counter(self, s, flagId);
            mix.waitFlag[self] = -1;
            return;
        }
        mix.waitFlag[self] = flagId;
        mix.waitMode[self] = mode;
        // Deadlock: every core still running waits, and no wait can be met.
        if (mix.Stuck()) {
            const std::string who = mix.Blocked();
            mix.waitFlag[self] = -1;
            mix.Fail(Str(core->label, ": ", api, "(", flagId, ") deadlock: it can never return, "
                         "because every core still running waits on a cross-core flag or at "
                         "SyncAll (", who, ") and no CrossCoreSetFlag that would release one "
                         "can come (on the device the kernel would hang)"));
            throw MixAborted{};
        }
        mix.changed.wait_for(lock, std::chrono::milliseconds(200));
    }
}

// SyncAll<aivOnly>() on the running core (see the file comment).
inline void SyncAllBarrier(bool aivOnly)
{
    const char* api = aivOnly ? "SyncAll<true>" : "SyncAll<false>";
    CoreState& core = RunningCore(api);
    if (core.mix == nullptr) {
        Fail(api, ": the hard SyncAll needs a mixed launch (RunMixKernel; on the device a "
             "__mix__ kernel type): RunKernel runs plain blocks one after another, so blocks "
             "could never meet");
    }
    MixLaunch& mix = *core.mix;
    if (mix.blocks > kSyncAllMaxBlocks) {
        Fail(api, " on the ", core.label, ": numBlocks ", mix.blocks, " exceeds the ",
             kSyncAllMaxBlocks, " AI Cores: the device would run the blocks in rounds and the "
             "barrier would hang");
    }
    if (aivOnly && core.kind == CoreKind::kAIC) {
        Fail(api, " on the ", core.label, ": isAIVOnly = true synchronises the AIVs only; a "
             "mixed kernel's cores synchronise with SyncAll<false>()");
    }
    const int self = core.mixCore;
    std::unique_lock<std::mutex> lock(mix.mutex);
    if (mix.failed) throw MixAborted{};
    const uint32_t barrier = mix.syncCalls[self]++;          // == mix.syncDone
    if (mix.syncArrived > 0 && mix.syncAivOnly != static_cast<int>(aivOnly)) {
        Fail(api, " on the ", core.label, ": other cores wait at SyncAll<",
             mix.syncAivOnly ? "true" : "false", "> number ", barrier + 1, " of the launch; "
             "the twin does not model mixing the two forms");
    }
    const std::string missing = mix.MissingAtSync(aivOnly);
    if (!missing.empty()) {
        mix.Fail(Str(missing, ": returned from the kernel without reaching SyncAll number ",
                     barrier + 1, " of the launch, which ", core.label, " reached (on the device "
                     "the kernel would hang)"));
        throw MixAborted{};
    }
    mix.syncAivOnly = aivOnly;
    const int covered = static_cast<int>(mix.blocks) * (aivOnly ? 2 : 3);
    if (++mix.syncArrived == covered) {                     // the last one releases everyone
        ++mix.syncDone;
        mix.syncArrived = 0;
        mix.syncAivOnly = -1;
        std::fill(mix.syncWaiting.begin(), mix.syncWaiting.end(), 0);
        mix.changed.notify_all();
        return;
    }
    mix.syncWaiting[self] = 1;
    while (true) {
        if (mix.failed) throw MixAborted{};
        if (mix.syncDone > barrier) return;
        const std::string gone = mix.MissingAtSync(aivOnly);
        if (!gone.empty()) {
            const std::string who = mix.Blocked();
            mix.syncWaiting[self] = 0;
            mix.Fail(Str(gone, ": returned from the kernel without reaching SyncAll number ",
                         barrier + 1, " of the launch, at which ", who, " wait (on the device "
                         "the kernel would hang)"));
            throw MixAborted{};
        }
        if (mix.Stuck()) {
            const std::string who = mix.Blocked();
            mix.syncWaiting[self] = 0;
            mix.Fail(Str(core.label, ": ", api, " deadlock: it can never return, because every "
                         "core still running waits on a cross-core flag or at SyncAll (", who,
                         ") and none of them can go on (on the device the kernel would hang)"));
            throw MixAborted{};
        }
        mix.changed.wait_for(lock, std::chrono::milliseconds(200));
    }
}

// One core of a mixed launch, on its own thread.
template <typename Kernel, typename... Args>
void RunMixCore(MixLaunch& mix, int id, const std::vector<GmArg>& gm, Kernel& kernel,
                Args&... args)
{
    CoreState& core = Core();
    core = CoreState{};
    core.running = true;
    core.group = id / 3;
    core.kind = id % 3 == 0 ? CoreKind::kAIC : CoreKind::kAIV;
    core.subBlockIdx = id % 3 == 0 ? 0 : id % 3 - 1;
    core.blockIdx = core.kind == CoreKind::kAIC ? core.group : core.group * 2 + core.subBlockIdx;
    core.blockNum = mix.blocks;
    core.mixCore = id;
    core.mix = &mix;
    core.label = mix.labels[id];
    for (const GmArg& arg : gm) {
        core.gm.push_back({arg.name, static_cast<const uint8_t*>(arg.data), arg.bytes});
    }
    std::string error;
    std::exception_ptr foreign;
    bool aborted = false;
    try {
        kernel(args...);
        CheckFlagsAtReturn(core);
    } catch (const MixAborted&) {
        aborted = true;
    } catch (const TwinError& e) {
        error = Str(core.label, ": ", e.what());
    } catch (...) {
        foreign = std::current_exception();
    }
    core = CoreState{};
    std::lock_guard<std::mutex> lock(mix.mutex);
    --mix.running;
    mix.returned[id] = 1;
    mix.waitFlag[id] = -1;
    mix.syncWaiting[id] = 0;
    if (!aborted && (!error.empty() || foreign)) {
        if (!mix.failed && foreign) mix.foreign = foreign;
        mix.Fail(error.empty() ? std::string("C++ exception") : error);
    }
    mix.changed.notify_all();
}

// Runs kernel(args...) as a KERNEL_TYPE_MIX_AIC_1_2 kernel on numBlocks AI Cores: per block one
// AIC (GetBlockIdx() = block, GetSubBlockIdx() = 0, GetTaskRation() = 1) and two AIVs
// (GetBlockIdx() = 2 * block + sub, GetSubBlockIdx() = sub, GetTaskRation() = 2), GetBlockNum() =
// numBlocks on all, every core on its own thread. The first broken rule throws
// TwinError("block b of n, AIV 1 of block b: ..."), after all threads have ended.
template <typename Kernel, typename... Args>
void RunMixKernel(uint32_t numBlocks, const std::vector<GmArg>& gm, Kernel&& kernel,
                  Args&&... args)
{
    if (numBlocks == 0) Fail("RunMixKernel: numBlocks is 0");
    if (Core().running) Fail("RunMixKernel: called from inside a running kernel");
    MixLaunch mix;
    mix.blocks = numBlocks;
    mix.cores = static_cast<int>(numBlocks) * 3;
    mix.counters.assign(static_cast<size_t>(mix.cores) * mix.cores * kCrossFlags, 0);
    mix.modes.assign(static_cast<size_t>(mix.cores) * kCrossFlags, kModeUnknown);
    mix.waitFlag.assign(mix.cores, -1);
    mix.waitMode.assign(mix.cores, kModeUnknown);
    mix.returned.assign(mix.cores, 0);
    mix.syncWaiting.assign(mix.cores, 0);
    mix.syncCalls.assign(mix.cores, 0);
    for (int c = 0; c < mix.cores; ++c) {
        mix.labels.push_back(c % 3 == 0 ? Str("AIC of block ", c / 3)
                                        : Str("AIV ", c % 3 - 1, " of block ", c / 3));
    }
    mix.running = mix.cores;
    std::vector<std::thread> threads;
    threads.reserve(mix.cores);
    for (int c = 0; c < mix.cores; ++c) {
        threads.emplace_back([&, c] { RunMixCore(mix, c, gm, kernel, args...); });
    }
    for (std::thread& t : threads) t.join();
    if (mix.foreign) std::rethrow_exception(mix.foreign);
    if (mix.failed) {
        const size_t cut = mix.error.find(" of block ");
        const std::string block = cut == std::string::npos ? "?" :
            mix.error.substr(cut + 10, mix.error.find(':') - cut - 10);
        throw TwinError(Str("block ", block, " of ", numBlocks, ", ", mix.error));
    }
}

}  // namespace twin

// ---- the kernel's view ----------------------------------------------------------------------------
template <uint8_t modeId, pipe_t pipe>
__aicore__ inline void CrossCoreSetFlag(uint16_t flagId) { twin::CrossSet(modeId, pipe, flagId); }

// The older form takes no mode (the mode of the pending sets applies); the newer one names it.
__aicore__ inline void CrossCoreWaitFlag(uint16_t flagId) { twin::CrossWait(twin::kModeUnknown, flagId); }

template <uint8_t modeId, pipe_t pipe>
__aicore__ inline void CrossCoreWaitFlag(uint16_t flagId)
{
    twin::CheckPipe("CrossCoreWaitFlag", pipe, flagId, twin::RunningCore("CrossCoreWaitFlag"));
    twin::CrossWait(modeId, flagId);
}

// The hard all-core barrier (SyncAll page): SyncAll<false>() in a mixed kernel (all AICs and
// AIVs), SyncAll<true>() over the AIVs. The soft form (GM / UB workspaces) is not modelled.
template <bool isAIVOnly = true>
__aicore__ inline void SyncAll() { twin::SyncAllBarrier(isAIVOnly); }

// Sub-block index inside the AI Core group: 0 / 1 on the AIVs, 0 on the AIC and on plain cores.
__aicore__ inline int64_t GetSubBlockIdx() { return twin::RunningCore("GetSubBlockIdx").subBlockIdx; }

// AIVs per AIC of the launch as seen by this core: 2 on an AIV of a 1:2 mixed launch, else 1.
__aicore__ inline int64_t GetTaskRation()
{
    return twin::RunningCore("GetTaskRation").kind == twin::CoreKind::kAIV ? 2 : 1;
}
__aicore__ inline int64_t GetTaskRatio() { return GetTaskRation(); }

namespace twin {
inline int32_t CoreType()
{
    const CoreKind kind = RunningCore("g_coreType").kind;
    return kind == CoreKind::kAIC ? AIC : AIV;      // a plain (vector) launch runs on AIVs
}
}  // namespace twin

}  // namespace AscendC

#define g_coreType (AscendC::twin::CoreType())
#define ASCEND_IS_AIC (g_coreType == AscendC::AIC)
#define ASCEND_IS_AIV (g_coreType == AscendC::AIV)
#define ASCEND_IS_NOT_AIC (g_coreType != AscendC::AIC)
#define ASCEND_IS_NOT_AIV (g_coreType != AscendC::AIV)
#define KERNEL_TASK_TYPE_DEFAULT(type)

#endif  // CANN_ATTENTION_ASCENDC_TWIN_MIX_H
