// AscendC twin: the reductions over the first `count` elements of a UB tensor (the "tensor前n个
// 数据计算" form) -- ReduceMax (calIndex = false only) and ReduceSum, for half and float.
//
// Rules, from the ReduceMax page (atlasascendc_api_07_0075/0076, CANN 8.2) and the ReduceSum page
// of the same reference:
//   * dst, src and workLocal are VECIN / VECCALC / VECOUT tensors (UB) of one element type;
//     src and workLocal start 32-byte aligned, dst at least element aligned;
//   * count >= 1 elements of src are read; dst[0] receives the result;
//   * workLocal must hold the first round's intermediate results: ceil(count / elementsPerRepeat)
//     repeats (elementsPerRepeat = 256 B / sizeof(T)), two values each for ReduceMax (value and
//     index, which the instruction returns either way: "无论开发者是否需要返回索引，底层指令都会
//     返回索引") and one for ReduceSum, rounded up
//     to a 32-byte block. The twin fails when workLocal is smaller, and leaves its contents
//     undefined (0xFF bytes) afterwards.
// Not modelled: calIndex = true (the index of the maximum), the mask / repeat forms. ReduceSum
// adds in float in element order (the hardware's tree order differs in the last bits; 16-bit
// results are rounded once).
#ifndef CANN_ATTENTION_ASCENDC_TWIN_REDUCE_H
#define CANN_ATTENTION_ASCENDC_TWIN_REDUCE_H

#include <cstring>

#include "vector.h"

namespace AscendC {
namespace twin {

template <typename T>
void CheckReduce(const char* api, const LocalTensor<T>& dst, const LocalTensor<T>& src,
                 const LocalTensor<T>& work, int32_t count, uint32_t valuesPerRepeat)
{
    static_assert(kOneOf<T, half, float>, "ReduceMax / ReduceSum: half or float only");
    if (count < 1) {
        Fail(api, ": count ", count, " must be at least 1");
    }
    VecOperand(api, "srcLocal", src, count);
    constexpr uint32_t perRepeat = 256 / sizeof(T);
    constexpr uint32_t perBlock = ONE_BLK_SIZE / sizeof(T);
    const uint64_t repeats = (static_cast<uint64_t>(count) + perRepeat - 1) / perRepeat;
    const uint64_t need = (repeats * valuesPerRepeat + perBlock - 1) / perBlock * perBlock;
    VecOperand(api, "workLocal", work, static_cast<int64_t>(need));
    dst.twin_live(api);
    if (dst.twin_memory() != Memory::UB) {
        Fail(api, ": the dstLocal ", dst.twin_name(), " is in ", Info(dst.twin_memory()).name,
             "; reductions write VECIN / VECOUT / VECCALC tensors (UB)");
    }
    if (dst.twin_address() % sizeof(T) != 0) {
        Fail(api, ": the dstLocal ", dst.twin_name(), " is not element aligned");
    }
    dst.twin_data(0, 1, api);
}

template <typename T>
void PoisonWork(const LocalTensor<T>& work, uint64_t elements, const char* api)
{
    std::memset(static_cast<void*>(work.twin_data(0, elements, api)), kPoison,
                elements * sizeof(T));
}

}  // namespace twin

template <typename T>
__aicore__ inline void ReduceMax(const LocalTensor<T>& dstLocal, const LocalTensor<T>& srcLocal,
                                 const LocalTensor<T>& workLocal, const int32_t count,
                                 bool calIndex = 0)
{
    const char* api = "ReduceMax";
    if (calIndex) {
        twin::Fail(api, ": calIndex = true (the index of the maximum) is not modelled by the twin");
    }
    twin::CheckReduce(api, dstLocal, srcLocal, workLocal, count, 2);
    const T* in = srcLocal.twin_data(0, count, api);
    float best = static_cast<float>(in[0]);
    for (int32_t i = 1; i < count; ++i) {
        const float v = static_cast<float>(in[i]);
        if (v > best || std::isnan(v)) best = std::isnan(best) ? best : v;
    }
    twin::PoisonWork(workLocal, 1, api);
    *dstLocal.twin_data(0, 1, api) = twin::Narrow<T>(best);
}

template <typename T>
__aicore__ inline void ReduceSum(const LocalTensor<T>& dstLocal, const LocalTensor<T>& srcLocal,
                                 const LocalTensor<T>& workLocal, const int32_t count)
{
    const char* api = "ReduceSum";
    twin::CheckReduce(api, dstLocal, srcLocal, workLocal, count, 1);
    const T* in = srcLocal.twin_data(0, count, api);
    float sum = 0.0f;
    for (int32_t i = 0; i < count; ++i) sum += static_cast<float>(in[i]);
    twin::PoisonWork(workLocal, 1, api);
    *dstLocal.twin_data(0, 1, api) = twin::Narrow<T>(sum);
}

}  // namespace AscendC

#endif  // CANN_ATTENTION_ASCENDC_TWIN_REDUCE_H
