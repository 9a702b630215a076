// AscendC twin: DataCopy (whole 32-byte blocks) and DataCopyPad (any byte length) between GM and
// local memory, with the alignment, bounds and position rules checked before any byte moves.
#ifndef CANN_ATTENTION_ASCENDC_TWIN_DATA_COPY_H
#define CANN_ATTENTION_ASCENDC_TWIN_DATA_COPY_H

#include <cstring>
#include <type_traits>

#include "pipe.h"

namespace AscendC {

// Strided DataCopy: blockLen, srcStride and dstStride count 32-byte blocks (strides are the gaps
// between consecutive blocks).
struct DataCopyParams {
    uint16_t blockCount = 1;
    uint16_t blockLen = 0;
    uint16_t srcStride = 0;
    uint16_t dstStride = 0;
    DataCopyParams() {}
    DataCopyParams(uint16_t count, uint16_t len, uint16_t srcStrideIn, uint16_t dstStrideIn)
        : blockCount(count), blockLen(len), srcStride(srcStrideIn), dstStride(dstStrideIn) {}
};

// DataCopyPad: blockLen in bytes; on the GM side strides are gaps in bytes, on the local side
// gaps in 32-byte blocks.
struct DataCopyExtParams {
    uint16_t blockCount = 0;
    uint32_t blockLen = 0;
    uint32_t srcStride = 0;
    uint32_t dstStride = 0;
    uint32_t rsv = 0;
    DataCopyExtParams() {}
    DataCopyExtParams(uint16_t count, uint32_t len, uint32_t srcStrideIn, uint32_t dstStrideIn,
                      uint32_t rsvIn = 0)
        : blockCount(count), blockLen(len), srcStride(srcStrideIn), dstStride(dstStrideIn), rsv(rsvIn)
    {}
};

// leftPadding / rightPadding count elements (at most 32 bytes each side).
template <typename T>
struct DataCopyPadExtParams {
    bool isPad = false;
    uint8_t leftPadding = 0;
    uint8_t rightPadding = 0;
    T paddingValue = 0;
    DataCopyPadExtParams() {}
    DataCopyPadExtParams(bool isPadIn, uint8_t left, uint8_t right, T value)
        : isPad(isPadIn), leftPadding(left), rightPadding(right), paddingValue(value) {}
};

namespace twin {

// A local operand of a copy: alive, in an allowed memory, starting 32-byte aligned.
template <typename T>
void CheckCopyLocal(const char* api, const char* role, const LocalTensor<T>& tensor,
                    bool ubOnly)
{
    tensor.twin_live(api);
    const Memory memory = tensor.twin_memory();
    if (memory != Memory::UB && (ubOnly || memory != Memory::L1)) {
        Fail(api, ": the ", role, " ", tensor.twin_name(), " is in ", Info(memory).name,
             "; this copy moves data between GM and ", ubOnly ? "UB" : "UB or L1");
    }
    if (tensor.twin_address() % ONE_BLK_SIZE != 0) {
        Fail(api, ": the ", role, " ", tensor.twin_name(), " does not start 32-byte aligned");
    }
}

template <typename T>
void CheckWholeBlocks(const char* api, uint64_t count)
{
    if (count * sizeof(T) % ONE_BLK_SIZE != 0) {
        Fail(api, ": ", count, " elements of ", TypeName<T>(), " = ", count * sizeof(T),
             " B is not a multiple of 32 B (DataCopy moves whole 32-byte blocks; use DataCopyPad "
             "for an unaligned length)");
    }
}

inline std::string Direction(const char* from, const char* to)
{
    return Str("DataCopy ", from, "->", to);
}

template <typename T>
void CheckPadParams(const char* api, const DataCopyExtParams& p, uint32_t gmStride,
                    const char* gmStrideName)
{
    if (p.blockCount == 0 || p.blockCount > 4095) {
        Fail(api, ": blockCount ", p.blockCount, " is outside [1, 4095]");
    }
    if (p.blockLen == 0 || p.blockLen >= (1u << 21)) {
        Fail(api, ": blockLen ", p.blockLen, " B is outside [1, 2^21 - 1]");
    }
    if (p.blockLen % sizeof(T) != 0) {
        Fail(api, ": blockLen ", p.blockLen, " B is not a whole number of ", TypeName<T>(),
             " elements (", sizeof(T), " B each)");
    }
    if (gmStride % sizeof(T) != 0) {
        Fail(api, ": the GM ", gmStrideName, " ", gmStride, " B is not a whole number of ",
             TypeName<T>(), " elements");
    }
}

// blockCount blocks of blockLen x 32 B; the strides are gaps of 32-byte blocks on both sides.
template <typename T, typename Dst, typename Src>
void StridedCopy(const char* api, const Dst& dst, const Src& src, const DataCopyParams& p)
{
    constexpr uint32_t kPerBlock = ONE_BLK_SIZE / sizeof(T);
    const uint64_t len = static_cast<uint64_t>(p.blockLen) * kPerBlock;
    for (uint64_t b = 0; b < p.blockCount; ++b) {
        const uint64_t from = b * (p.blockLen + p.srcStride) * kPerBlock;
        const uint64_t to = b * (p.blockLen + p.dstStride) * kPerBlock;
        const T* in;
        T* out;
        if constexpr (std::is_same_v<Src, GlobalTensor<T>>) in = src.twin_span(from, len, api);
        else in = src.twin_data(from, len, api);
        if constexpr (std::is_same_v<Dst, GlobalTensor<T>>) out = dst.twin_span(to, len, api);
        else out = dst.twin_data(to, len, api);
        std::memmove(out, in, len * sizeof(T));
    }
}

}  // namespace twin

// ---- DataCopy: a count of elements, a whole number of 32-byte blocks ----------------------------
template <typename T>
__aicore__ inline void DataCopy(const LocalTensor<T>& dst, const GlobalTensor<T>& src,
                                const uint32_t count)
{
    const std::string api = twin::Direction("GM", dst.twin_buffer()
        ? twin::PositionName(dst.twin_buffer()->position) : "local");
    twin::CheckCopyLocal(api.c_str(), "destination", dst, false);
    twin::CheckWholeBlocks<T>(api.c_str(), count);
    const T* from = src.twin_span(0, count, api.c_str());
    std::memcpy(dst.twin_data(0, count, api.c_str()), from, count * sizeof(T));
}

template <typename T>
__aicore__ inline void DataCopy(const GlobalTensor<T>& dst, const LocalTensor<T>& src,
                                const uint32_t count)
{
    const std::string api = twin::Direction(src.twin_buffer()
        ? twin::PositionName(src.twin_buffer()->position) : "local", "GM");
    twin::CheckCopyLocal(api.c_str(), "source", src, true);
    twin::CheckWholeBlocks<T>(api.c_str(), count);
    const T* from = src.twin_data(0, count, api.c_str());
    std::memcpy(dst.twin_span(0, count, api.c_str()), from, count * sizeof(T));
}

template <typename T>
__aicore__ inline void DataCopy(const LocalTensor<T>& dst, const LocalTensor<T>& src,
                                const uint32_t count)
{
    const char* api = "DataCopy local->local";
    twin::CheckCopyLocal(api, "source", src, true);
    twin::CheckCopyLocal(api, "destination", dst, true);
    twin::CheckWholeBlocks<T>(api, count);
    const T* from = src.twin_data(0, count, api);
    std::memmove(dst.twin_data(0, count, api), from, count * sizeof(T));
}

// ---- DataCopy with DataCopyParams: blockCount blocks of blockLen x 32 B, strided ----------------
template <typename T>
__aicore__ inline void DataCopy(const LocalTensor<T>& dst, const GlobalTensor<T>& src,
                                const DataCopyParams& params)
{
    twin::CheckCopyLocal("DataCopy GM->local", "destination", dst, false);
    twin::StridedCopy<T>("DataCopy GM->local", dst, src, params);
}

template <typename T>
__aicore__ inline void DataCopy(const GlobalTensor<T>& dst, const LocalTensor<T>& src,
                                const DataCopyParams& params)
{
    twin::CheckCopyLocal("DataCopy local->GM", "source", src, true);
    twin::StridedCopy<T>("DataCopy local->GM", dst, src, params);
}

template <typename T>
__aicore__ inline void DataCopy(const LocalTensor<T>& dst, const LocalTensor<T>& src,
                                const DataCopyParams& params)
{
    twin::CheckCopyLocal("DataCopy local->local", "source", src, true);
    twin::CheckCopyLocal("DataCopy local->local", "destination", dst, true);
    twin::StridedCopy<T>("DataCopy local->local", dst, src, params);
}

// ---- DataCopyPad: GM -> UB ------------------------------------------------------------------------
// Each block lands at a 32-byte boundary of UB as [leftPadding][blockLen bytes][rightPadding]
// [dummy up to the next 32 bytes]. Padding and dummy hold paddingValue when isPad; with no padding
// at all the dummy repeats the block's first element; otherwise they are undefined (the twin
// writes 0xFF bytes: NaN in float types).
template <typename T>
__aicore__ inline void DataCopyPad(const LocalTensor<T>& dst, const GlobalTensor<T>& src,
                                   const DataCopyExtParams& params,
                                   const DataCopyPadExtParams<T>& padParams)
{
    const char* api = "DataCopyPad GM->UB";
    twin::CheckCopyLocal(api, "destination", dst, true);
    twin::CheckPadParams<T>(api, params, params.srcStride, "srcStride");
    constexpr uint32_t E = sizeof(T);
    if (padParams.leftPadding * E > ONE_BLK_SIZE || padParams.rightPadding * E > ONE_BLK_SIZE) {
        twin::Fail(api, ": padding of ", int(padParams.leftPadding), " + ",
                   int(padParams.rightPadding), " elements exceeds 32 B on a side");
    }
    const uint32_t len = params.blockLen / E;
    const uint32_t left = padParams.leftPadding;
    const uint32_t right = padParams.rightPadding;
    const uint32_t row = twin::RoundUp(static_cast<uint64_t>(left + right) * E + params.blockLen,
                                       ONE_BLK_SIZE) / E;
    const uint64_t srcStep = (params.blockLen + params.srcStride) / E;
    const uint64_t dstStep = row + static_cast<uint64_t>(params.dstStride) * ONE_BLK_SIZE / E;
    for (uint64_t b = 0; b < params.blockCount; ++b) {
        const T* in = src.twin_span(b * srcStep, len, api);
        T* out = dst.twin_data(b * dstStep, row, api);
        std::memset(static_cast<void*>(out), twin::kPoison, static_cast<size_t>(row) * E);
        std::memcpy(static_cast<void*>(out + left), in, params.blockLen);
        for (uint32_t i = 0; i < row; ++i) {
            const bool data = i >= left && i < left + len;
            if (data) continue;
            if (left == 0 && right == 0) out[i] = in[0];
            else if (padParams.isPad) out[i] = padParams.paddingValue;
        }
    }
}

// ---- DataCopyPad: UB -> GM ------------------------------------------------------------------------
// Each block is read from a 32-byte boundary of UB and written as exactly blockLen bytes.
template <typename T>
__aicore__ inline void DataCopyPad(const GlobalTensor<T>& dst, const LocalTensor<T>& src,
                                   const DataCopyExtParams& params)
{
    const char* api = "DataCopyPad UB->GM";
    twin::CheckCopyLocal(api, "source", src, true);
    twin::CheckPadParams<T>(api, params, params.dstStride, "dstStride");
    constexpr uint32_t E = sizeof(T);
    const uint32_t len = params.blockLen / E;
    const uint64_t srcStep = (twin::RoundUp(params.blockLen, ONE_BLK_SIZE) +
                              static_cast<uint64_t>(params.srcStride) * ONE_BLK_SIZE) / E;
    const uint64_t dstStep = (params.blockLen + params.dstStride) / E;
    for (uint64_t b = 0; b < params.blockCount; ++b) {
        const T* in = src.twin_data(b * srcStep, len, api);
        std::memcpy(static_cast<void*>(dst.twin_span(b * dstStep, len, api)), in, params.blockLen);
    }
}

}  // namespace AscendC

#endif  // CANN_ATTENTION_ASCENDC_TWIN_DATA_COPY_H
