// AscendC twin: the cube data path of Atlas A2/A3 -- GM -> L1 (DataCopy with Nd2NzParams),
// L1 -> L0A / L0B (LoadData with LoadData2DParams), Mmad into L0C, L0C -> GM (Fixpipe).
//
// Formats (Mmad page): a fractal is 16 x (32 B / sizeof(T)) elements = 512 B for A and B
// (16 x 16 for half / bfloat16_t), 16 x 16 elements for C.
//   L1 after Nd2Nz: NZ -- fractals column after column ("big N"), rows inside a fractal ("small z")
//   A in L0A:       ZZ -- fractals row after row, rows inside a fractal
//   B in L0B:       ZN -- fractals row after row, columns inside a fractal
//   C in L0C:       NZ -- fractals column after column, rows inside a fractal
// LoadData moves whole 512-byte fractals (optionally transposing each 16 x 16 fractal), which
// turns NZ A into ZZ (one call per fractal row) and NZ B into ZN (transpose, one call per k1).
#ifndef CANN_ATTENTION_ASCENDC_TWIN_CUBE_H
#define CANN_ATTENTION_ASCENDC_TWIN_CUBE_H

#include <type_traits>

#include "data_copy.h"

namespace AscendC {

// GM (ND) -> L1 (NZ). Units: srcNdMatrixStride, srcDValue, dstNzMatrixStride in elements;
// dstNzC0Stride, dstNzNStride in 32-byte blocks (C0 = 32 B / sizeof(T) elements).
struct Nd2NzParams {
    uint16_t ndNum = 1;
    uint16_t nValue = 0;
    uint16_t dValue = 0;
    uint16_t srcNdMatrixStride = 0;
    uint16_t srcDValue = 0;
    uint16_t dstNzC0Stride = 0;
    uint16_t dstNzNStride = 0;
    uint16_t dstNzMatrixStride = 0;
    Nd2NzParams() {}
    Nd2NzParams(uint16_t nd, uint16_t n, uint16_t d, uint16_t srcMatrixStride, uint16_t srcD,
                uint16_t c0Stride, uint16_t nStride, uint16_t dstMatrixStride)
        : ndNum(nd), nValue(n), dValue(d), srcNdMatrixStride(srcMatrixStride), srcDValue(srcD),
          dstNzC0Stride(c0Stride), dstNzNStride(nStride), dstNzMatrixStride(dstMatrixStride) {}
};

// L1 -> L0A / L0B, whole 512-byte fractals: repeat i reads fractal startIndex + i * srcStride of
// the source and writes fractal i * (1 + dstGap) of the destination.
struct LoadData2DParams {
    uint16_t startIndex = 0;
    uint8_t repeatTimes = 0;
    uint16_t srcStride = 0;
    uint8_t sid = 0;
    uint16_t dstGap = 0;
    bool ifTranspose = false;
    uint8_t addrMode = 0;
    LoadData2DParams() {}
    LoadData2DParams(uint16_t start, uint8_t repeat, uint16_t srcStrideIn, uint8_t sidIn,
                     uint16_t dstGapIn, bool transpose, uint8_t addrModeIn)
        : startIndex(start), repeatTimes(repeat), srcStride(srcStrideIn), sid(sidIn),
          dstGap(dstGapIn), ifTranspose(transpose), addrMode(addrModeIn) {}
};

struct MmadParams {
    uint16_t m = 0;
    uint16_t n = 0;
    uint16_t k = 0;
    bool isBias = false;             // deprecated: true accumulates (C += A * B)
    int32_t fmOffset = 0;
    bool enSsparse = false;
    bool enWinogradA = false;
    bool enWinogradB = false;
    uint8_t unitFlag = 0;
    bool kDirectionAlign = false;
    bool cmatrixSource = false;      // true: the initial C comes from the bias table (C2)
    bool cmatrixInitVal = true;      // true: C starts at 0; false: C += A * B
    MmadParams() {}
    MmadParams(uint16_t mIn, uint16_t nIn, uint16_t kIn, bool isBiasIn, int32_t fmOffsetIn,
               bool sparse, bool winoA, bool winoB)
        : m(mIn), n(nIn), k(kIn), isBias(isBiasIn), fmOffset(fmOffsetIn), enSsparse(sparse),
          enWinogradA(winoA), enWinogradB(winoB) {}
};

enum class QuantMode_t : uint8_t { NoQuant, F322F16, F322BF16, DEQF16, VDEQF16, QF322B8_PRE,
                                   VQF322B8_PRE, REQ8, VREQ8 };
enum class CO2Layout : uint8_t { NZ = 0, ROW_MAJOR, COLUMN_MAJOR };
struct FixpipeConfig {
    CO2Layout format;
};
constexpr FixpipeConfig CFG_NZ = {CO2Layout::NZ};
constexpr FixpipeConfig CFG_ROW_MAJOR = {CO2Layout::ROW_MAJOR};

// L0C (NZ) -> GM. srcStride: rows between the starts of consecutive 16-column fractal groups of
// the source (its M extent, padded to 16); dstStride (ND): elements between consecutive GM rows.
struct FixpipeParamsV220 {
    uint16_t nSize = 0;
    uint16_t mSize = 0;
    uint16_t srcStride = 0;
    uint32_t dstStride = 0;
    QuantMode_t quantPre = QuantMode_t::NoQuant;
    uint64_t deqScalar = 0;
    uint16_t ndNum = 1;
    uint16_t srcNdStride = 0;
    uint16_t dstNdStride = 0;
    bool reluEn = false;
    uint8_t unitFlag = 0;
    bool isChannelSplit = false;
    FixpipeParamsV220() {}
    FixpipeParamsV220(uint16_t n, uint16_t m, uint16_t srcStrideIn, uint32_t dstStrideIn, bool relu)
        : nSize(n), mSize(m), srcStride(srcStrideIn), dstStride(dstStrideIn), reluEn(relu) {}
};

namespace twin {

constexpr uint32_t kFractalBytes = 512;
constexpr uint32_t kMaxMmad = 4095;                 // m, n, k in [0, 4095] (MmadParams page)

inline uint64_t Ceil16(uint64_t v) { return (v + 15) / 16; }

// A local operand of the cube path: alive, at the documented position and memory, aligned.
template <typename T>
void CheckCubeOperand(const char* api, const char* role, const LocalTensor<T>& t,
                      std::initializer_list<TPosition> positions, Memory memory, uint32_t align)
{
    t.twin_live(api);
    const TPosition pos = t.twin_buffer()->position;
    bool ok = false;
    std::string names;
    for (TPosition p : positions) {
        ok = ok || p == pos;
        names += Str(names.empty() ? "" : " or ", PositionName(p));
    }
    if (!ok || t.twin_memory() != memory) {
        Fail(api, ": the ", role, " ", t.twin_name(), " is at ", PositionName(pos), "; it must be "
             "at ", names, " (", Info(memory).name, ")");
    }
    if (t.twin_address() % align != 0) {
        Fail(api, ": the ", role, " ", t.twin_name(), " does not start ", align, "-byte aligned");
    }
}

template <typename T>
constexpr bool kCube16 = std::is_same_v<T, half> || std::is_same_v<T, bfloat16_t>;

}  // namespace twin

// ---- GM (ND) -> L1 (NZ) ---------------------------------------------------------------------------
template <typename T>
__aicore__ inline void DataCopy(const LocalTensor<T>& dst, const GlobalTensor<T>& src,
                                const Nd2NzParams& p)
{
    const char* api = "DataCopy GM->L1 (Nd2Nz)";
    twin::CheckCubeOperand(api, "destination", dst, {TPosition::A1, TPosition::B1, TPosition::C1,
                           TPosition::TSCM}, twin::Memory::L1, ONE_BLK_SIZE);
    constexpr uint32_t C0 = ONE_BLK_SIZE / sizeof(T);
    if (p.ndNum == 0 || p.nValue > 16384 || p.dValue > 65535 || p.dstNzC0Stride == 0 ||
        p.dstNzC0Stride > 16384 || p.dstNzNStride == 0 || p.dstNzNStride > 16384) {
        twin::Fail(api, ": Nd2NzParams outside their ranges (ndNum >= 1, nValue <= 16384, "
                   "dstNzC0Stride and dstNzNStride in [1, 16384]): ndNum ", p.ndNum, ", nValue ",
                   p.nValue, ", dstNzC0Stride ", p.dstNzC0Stride, ", dstNzNStride ", p.dstNzNStride);
    }
    if (p.srcDValue < p.dValue) {
        twin::Fail(api, ": srcDValue ", p.srcDValue, " (GM row stride, elements) is less than "
                   "dValue ", p.dValue);
    }
    if (p.dstNzC0Stride < static_cast<uint32_t>(p.nValue) * p.dstNzNStride) {
        twin::Fail(api, ": dstNzC0Stride ", p.dstNzC0Stride, " blocks is less than the ",
                   p.nValue, " rows x dstNzNStride ", p.dstNzNStride,
                   " of one C0 column: the columns would overlap in L1");
    }
    for (uint32_t nd = 0; nd < p.ndNum; ++nd) {
        for (uint32_t r = 0; r < p.nValue; ++r) {
            const T* in = src.twin_span(static_cast<uint64_t>(nd) * p.srcNdMatrixStride +
                                        static_cast<uint64_t>(r) * p.srcDValue, p.dValue, api);
            for (uint32_t c = 0; c < p.dValue; ++c) {
                const uint64_t at = static_cast<uint64_t>(nd) * p.dstNzMatrixStride +
                    (c / C0) * static_cast<uint64_t>(p.dstNzC0Stride) * C0 +
                    static_cast<uint64_t>(r) * p.dstNzNStride * C0 + c % C0;
                *dst.twin_data(at, 1, api) = in[c];
            }
        }
    }
}

// ---- L1 -> L0A / L0B --------------------------------------------------------------------------------
template <typename T>
__aicore__ inline void LoadData(const LocalTensor<T>& dst, const LocalTensor<T>& src,
                                const LoadData2DParams& p)
{
    const char* api = "LoadData (2D)";
    dst.twin_live(api);
    const TPosition to = dst.twin_buffer()->position;
    twin::CheckCubeOperand(api, "destination", dst, {TPosition::A2, TPosition::B2},
                           to == TPosition::B2 ? twin::Memory::L0B : twin::Memory::L0A, 512);
    const TPosition from = to == TPosition::A2 ? TPosition::A1 : TPosition::B1;
    twin::CheckCubeOperand(api, "source", src, {from}, twin::Memory::L1, ONE_BLK_SIZE);
    if (p.repeatTimes == 0) {
        twin::Fail(api, ": repeatTimes 0 is outside [1, 255]");
    }
    if (p.ifTranspose && !twin::kCube16<T>) {
        twin::Fail(api, ": ifTranspose for ", twin::TypeName<T>(), " is not modelled by the twin "
                   "(half / bfloat16_t 16 x 16 fractals only)");
    }
    constexpr uint32_t F = twin::kFractalBytes / sizeof(T);   // elements per fractal
    for (uint32_t i = 0; i < p.repeatTimes; ++i) {
        const uint64_t s = (static_cast<uint64_t>(p.startIndex) + i * p.srcStride) * F;
        const uint64_t d = static_cast<uint64_t>(i) * (1 + p.dstGap) * F;
        const T* in = src.twin_data(s, F, api);
        T* out = dst.twin_data(d, F, api);
        if (p.ifTranspose) {
            for (uint32_t r = 0; r < 16; ++r) {
                for (uint32_t c = 0; c < 16; ++c) out[c * 16 + r] = in[r * 16 + c];
            }
        } else {
            std::memmove(static_cast<void*>(out), in, twin::kFractalBytes);
        }
    }
}

// ---- Mmad: C (L0C, NZ) = [C +] A (L0A, ZZ) x B (L0B, ZN) --------------------------------------------
template <typename DstT, typename Src0T, typename Src1T>
__aicore__ inline void Mmad(const LocalTensor<DstT>& dst, const LocalTensor<Src0T>& fm,
                            const LocalTensor<Src1T>& filter, const MmadParams& p)
{
    const char* api = "Mmad";
    twin::RunningCore(api);
    twin::CheckCubeOperand(api, "result (dstLocal)", dst, {TPosition::CO1}, twin::Memory::L0C, 64);
    twin::CheckCubeOperand(api, "left matrix (fmLocal)", fm, {TPosition::A2}, twin::Memory::L0A,
                           512);
    twin::CheckCubeOperand(api, "right matrix (filterLocal)", filter, {TPosition::B2},
                           twin::Memory::L0B, 512);
    if constexpr (!(std::is_same_v<Src0T, Src1T> && twin::kCube16<Src0T> &&
                    std::is_same_v<DstT, float>)) {
        twin::Fail(api, ": ", twin::TypeName<Src0T>(), " x ", twin::TypeName<Src1T>(), " -> ",
                   twin::TypeName<DstT>(), " is not modelled by the twin (half x half -> float and "
                   "bfloat16_t x bfloat16_t -> float only)");
    } else {
        if (p.m > twin::kMaxMmad || p.n > twin::kMaxMmad || p.k > twin::kMaxMmad) {
            twin::Fail(api, ": m ", p.m, ", n ", p.n, ", k ", p.k, ": each must lie in [0, ",
                       twin::kMaxMmad, "]");
        }
        if (p.cmatrixSource) {
            twin::Fail(api, ": cmatrixSource (initial C from the bias table C2) is not modelled");
        }
        const uint64_t m1 = twin::Ceil16(p.m), n1 = twin::Ceil16(p.n), k1 = twin::Ceil16(p.k);
        auto need = [&](const char* role, const std::string& name, uint64_t have, uint64_t want,
                        const char* shape) {
            if (have < want) {
                twin::Fail(api, ": the ", role, " ", name, " holds ", have, " elements, but m ",
                           p.m, ", n ", p.n, ", k ", p.k, " need ", want, " (", shape,
                           " whole 16 x 16 fractals)");
            }
        };
        need("left matrix", fm.twin_name(), fm.GetSize(), m1 * k1 * 256, "ceil(m/16) x ceil(k/16)");
        need("right matrix", filter.twin_name(), filter.GetSize(), k1 * n1 * 256,
             "ceil(k/16) x ceil(n/16)");
        need("result", dst.twin_name(), dst.GetSize(), m1 * n1 * 256, "ceil(m/16) x ceil(n/16)");
        const Src0T* a = fm.twin_data(0, m1 * k1 * 256, api);
        const Src1T* b = filter.twin_data(0, k1 * n1 * 256, api);
        float* c = dst.twin_data(0, m1 * n1 * 256, api);
        const bool accumulate = !p.cmatrixInitVal || p.isBias;
        for (uint64_t i = 0; i < p.m; ++i) {
            for (uint64_t j = 0; j < p.n; ++j) {
                float sum = 0.0f;
                for (uint64_t kk = 0; kk < p.k; ++kk) {
                    const float av = static_cast<float>(a[((i / 16) * k1 + kk / 16) * 256 +
                                                          (i % 16) * 16 + kk % 16]);
                    const float bv = static_cast<float>(b[((kk / 16) * n1 + j / 16) * 256 +
                                                          (j % 16) * 16 + kk % 16]);
                    sum += av * bv;
                }
                float& out = c[((j / 16) * m1 + i / 16) * 256 + (i % 16) * 16 + j % 16];
                out = accumulate ? out + sum : sum;
            }
        }
    }
}

// ---- Fixpipe: L0C (NZ, float) -> GM (ND), with the float -> half / bfloat16_t conversion ----------
template <typename T, typename U, const FixpipeConfig& config = CFG_ROW_MAJOR>
__aicore__ inline void Fixpipe(const GlobalTensor<T>& dst, const LocalTensor<U>& src,
                               const FixpipeParamsV220& p)
{
    const char* api = "Fixpipe CO1->GM";
    twin::CheckCubeOperand(api, "source", src, {TPosition::CO1}, twin::Memory::L0C, 64);
    if (config.format != CO2Layout::ROW_MAJOR) {
        twin::Fail(api, ": only the CFG_ROW_MAJOR (NZ2ND) form is modelled by the twin");
    }
    if (p.nSize == 0 || p.nSize > 4095 || p.mSize == 0) {
        twin::Fail(api, ": nSize ", p.nSize, " must lie in [1, 4095] and mSize ", p.mSize,
                   " in [1, 65535]");
    }
    if (p.ndNum != 1) twin::Fail(api, ": ndNum ", p.ndNum, " > 1 is not modelled by the twin");
    if (p.srcStride < p.mSize || p.srcStride % 16 != 0) {
        twin::Fail(api, ": srcStride ", p.srcStride, " must be a multiple of 16 rows and at least "
                   "mSize ", p.mSize, " (the M extent of the NZ source)");
    }
    if (p.dstStride < p.nSize) {
        twin::Fail(api, ": dstStride ", p.dstStride, " (elements between GM rows) is less than "
                   "nSize ", p.nSize);
    }
    if constexpr (!std::is_same_v<U, float>) {
        twin::Fail(api, ": a ", twin::TypeName<U>(), " source is not modelled (float only)");
    } else {
        const bool toHalf = std::is_same_v<T, half> && p.quantPre == QuantMode_t::F322F16;
        const bool toBf16 = std::is_same_v<T, bfloat16_t> && p.quantPre == QuantMode_t::F322BF16;
        const bool same = std::is_same_v<T, float> && p.quantPre == QuantMode_t::NoQuant;
        if (!toHalf && !toBf16 && !same) {
            twin::Fail(api, ": quantPre ", int(p.quantPre), " with a ", twin::TypeName<T>(),
                       " destination is not modelled (NoQuant -> float, F322F16 -> half, "
                       "F322BF16 -> bfloat16_t)");
        }
        const uint64_t n1 = twin::Ceil16(p.nSize);
        const float* in = src.twin_data(0, (n1 - 1) * p.srcStride * 16 +
                                        static_cast<uint64_t>(p.mSize) * 16, api);
        for (uint64_t i = 0; i < p.mSize; ++i) {
            T* row = dst.twin_span(i * p.dstStride, p.nSize, api);
            for (uint64_t j = 0; j < p.nSize; ++j) {
                float v = in[(j / 16) * p.srcStride * 16 + i * 16 + j % 16];
                if (p.reluEn && v < 0) v = 0;
                if constexpr (std::is_same_v<T, float>) row[j] = v;
                else row[j] = twin::RoundTo<T>(v, RoundMode::CAST_RINT);
            }
        }
    }
}

}  // namespace AscendC

#endif  // CANN_ATTENTION_ASCENDC_TWIN_CUBE_H
