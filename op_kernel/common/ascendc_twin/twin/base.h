// AscendC twin: keywords, enums, the error type, the chip's memories and the per-core state.
// See kernel_operator.h for what the twin is and which documentation page each rule comes from.
#ifndef CANN_ATTENTION_ASCENDC_TWIN_BASE_H
#define CANN_ATTENTION_ASCENDC_TWIN_BASE_H

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

// ---- the device compiler's keywords, in their CPU form ----------------------------------------
#define __aicore__
#define __global__
#define __gm__
#define GM_ADDR __gm__ uint8_t*

// The hardware pipes, as the device compiler names them (global scope, like the builtin enum).
enum pipe_t : uint8_t {
    PIPE_S = 0, PIPE_V = 1, PIPE_M = 2, PIPE_MTE1 = 3, PIPE_MTE2 = 4, PIPE_MTE3 = 5,
    PIPE_ALL = 6, PIPE_FIX = 10,
};

namespace AscendC {

constexpr uint32_t ONE_BLK_SIZE = 32;     // bytes in one data block (the unit of DataCopy)

enum class TPosition : uint8_t {
    GM, A1, A2, B1, B2, C1, C2, CO1, CO2, VECIN, VECOUT, VECCALC, LCM, SPM, SHM, TSCM, C2PIPE2GM,
    MAX,
};
using QuePosition = TPosition;

// Source-pipe_destination-pipe pairs of SetFlag / WaitFlag (MTE2_V: PIPE_V waits for PIPE_MTE2).
enum class HardEvent : uint8_t {
    MTE2_MTE1, MTE1_MTE2, MTE1_M, M_MTE1, MTE2_V, V_MTE2, MTE3_V, V_MTE3, M_V, V_M, V_V,
    MTE3_MTE1, MTE1_MTE3, MTE1_V, MTE2_M, M_MTE2, V_MTE1, M_FIX, FIX_M, MTE3_MTE2, MTE2_MTE3,
    S_V, V_S, S_MTE2, MTE2_S, S_MTE3, MTE3_S, MTE2_FIX, FIX_MTE2, FIX_S, M_S, FIX_MTE3, MAX,
};
using TEventID = int8_t;

namespace twin {

// ---- errors --------------------------------------------------------------------------------------
// Every rule the twin enforces throws TwinError; RunKernel prefixes the block it happened on.
class TwinError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

template <typename... Parts>
std::string Str(const Parts&... parts)
{
    std::ostringstream out;
    (out << ... << parts);
    return out.str();
}

template <typename... Parts>
[[noreturn]] void Fail(const Parts&... parts)
{
    throw TwinError(Str(parts...));
}

inline const char* PositionName(TPosition pos)
{
    static const char* const names[] = {"GM", "A1", "A2", "B1", "B2", "C1", "C2", "CO1", "CO2",
        "VECIN", "VECOUT", "VECCALC", "LCM", "SPM", "SHM", "TSCM", "C2PIPE2GM", "MAX"};
    return names[static_cast<int>(pos)];
}

inline const char* EventName(HardEvent event)
{
    static const char* const names[] = {"MTE2_MTE1", "MTE1_MTE2", "MTE1_M", "M_MTE1", "MTE2_V",
        "V_MTE2", "MTE3_V", "V_MTE3", "M_V", "V_M", "V_V", "MTE3_MTE1", "MTE1_MTE3", "MTE1_V",
        "MTE2_M", "M_MTE2", "V_MTE1", "M_FIX", "FIX_M", "MTE3_MTE2", "MTE2_MTE3", "S_V", "V_S",
        "S_MTE2", "MTE2_S", "S_MTE3", "MTE3_S", "MTE2_FIX", "FIX_MTE2", "FIX_S", "M_S",
        "FIX_MTE3", "MAX"};
    return names[static_cast<int>(event)];
}

// ---- the memories of one Ascend A2/A3 core ---------------------------------------------------------
// Capacities are those of op_host/common/platform.py (ASCEND_910B / ASCEND_A3): UB per vector core,
// L1 / L0A / L0B / L0C per cube core. Start-address alignment per memory: "General Restrictions".
enum class Memory : uint8_t { GM, UB, L1, L0A, L0B, L0C, COUNT };

struct MemoryInfo {
    const char* name;
    uint32_t capacity;     // bytes
    uint32_t alignment;    // bytes
};

inline const MemoryInfo& Info(Memory memory)
{
    static const MemoryInfo table[] = {
        {"GM", 0, 1},
        {"UB", 192 * 1024, 32},
        {"L1", 512 * 1024, 32},
        {"L0A", 64 * 1024, 512},
        {"L0B", 64 * 1024, 512},
        {"L0C", 128 * 1024, 64},
    };
    return table[static_cast<int>(memory)];
}

// The physical memory behind a logical position on A2/A3 ("General Restrictions", table 1).
inline Memory PhysicalMemory(TPosition pos, const char* api)
{
    switch (pos) {
        case TPosition::GM: return Memory::GM;
        case TPosition::VECIN: case TPosition::VECOUT: case TPosition::VECCALC: return Memory::UB;
        case TPosition::A1: case TPosition::B1: case TPosition::C1: case TPosition::TSCM:
            return Memory::L1;
        case TPosition::A2: return Memory::L0A;
        case TPosition::B2: return Memory::L0B;
        case TPosition::CO1: return Memory::L0C;
        case TPosition::CO2: return Memory::GM;      // on A2/A3 CO2 is Global Memory
        default:
            Fail(api, ": position ", PositionName(pos), " is not modelled by the AscendC twin");
    }
}

inline uint32_t RoundUp(uint64_t value, uint32_t unit)
{
    return static_cast<uint32_t>((value + unit - 1) / unit * unit);
}

// ---- per-core state ---------------------------------------------------------------------------------
// A GM buffer the harness knows (a kernel argument): GM accesses must stay inside one of them.
struct GmRegion {
    std::string name;
    const uint8_t* begin;
    uint64_t bytes;
};

constexpr int kEventIds = 8;                  // event ids 0..7 on A2/A3 (SetFlag/WaitFlag page)
constexpr int kEvents = static_cast<int>(HardEvent::MAX);

struct MixLaunch;                             // mix.h: the cores of a mixed launch

// Which core runs the code: kPlain for RunKernel (one core per block, every memory allowed, as
// before), kAIC / kAIV for the cube and vector cores of RunMixKernel.
enum class CoreKind : uint8_t { kPlain, kAIC, kAIV };

struct CoreState {
    bool running = false;                     // inside RunKernel / RunMixKernel
    CoreKind kind = CoreKind::kPlain;
    int64_t group = 0;                        // mixed launch: the block (AI Core group) index
    int32_t subBlockIdx = 0;                  // mixed launch: 0 / 1 on the two AIVs, 0 on the AIC
    int32_t mixCore = -1;                     // mixed launch: this core's index in MixLaunch
    MixLaunch* mix = nullptr;
    std::string label;                        // "AIC of block 0", "AIV 1 of block 0"
    int64_t blockIdx = 0;
    int64_t blockNum = 0;
    std::vector<GmRegion> gm;                 // empty: GM accesses are checked against windows only
    const void* pipe = nullptr;               // the live TPipe of this core (at most one)
    std::array<uint8_t, kEvents * kEventIds> flags{};      // SetFlag bits
    std::array<uint8_t, kEvents * kEventIds> allocatedIds{};   // TPipe::AllocEventID
};

// thread_local: a later twin can run cores on threads, each with its own state.
inline CoreState& Core()
{
    thread_local CoreState state;
    return state;
}

inline CoreState& RunningCore(const char* api)
{
    CoreState& core = Core();
    if (!core.running) {
        Fail(api, " called outside RunKernel: the twin runs kernel code only inside a launch");
    }
    return core;
}

}  // namespace twin
}  // namespace AscendC

#endif  // CANN_ATTENTION_ASCENDC_TWIN_BASE_H
