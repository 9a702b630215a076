// Cast kernels: n floats (n a multiple of `tile` per block, tile a multiple of 16) are rounded to
// half / bfloat16_t in round mode `mode` (stored in y) and widened back to float (stored in back).
#include "kernel_operator.h"

using namespace AscendC;

template <typename T>
__aicore__ inline void CastRoundTrip(GM_ADDR x, GM_ADDR y, GM_ADDR back, uint32_t n, uint32_t tile,
                                     RoundMode mode)
{
    const uint32_t perBlock = n / GetBlockNum();
    const uint64_t start = static_cast<uint64_t>(perBlock) * GetBlockIdx();
    GlobalTensor<float> xGm;
    GlobalTensor<T> yGm;
    GlobalTensor<float> backGm;
    xGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(x) + start, perBlock);
    yGm.SetGlobalBuffer(reinterpret_cast<__gm__ T*>(y) + start, perBlock);
    backGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(back) + start, perBlock);

    TPipe pipe;
    TQue<QuePosition::VECIN, 1> inQueue;
    TQue<QuePosition::VECOUT, 1> narrowQueue;
    TQue<QuePosition::VECOUT, 1> wideQueue;
    pipe.InitBuffer(inQueue, 1, tile * sizeof(float));
    pipe.InitBuffer(narrowQueue, 1, tile * sizeof(T));
    pipe.InitBuffer(wideQueue, 1, tile * sizeof(float));
    for (uint32_t done = 0; done < perBlock; done += tile) {
        LocalTensor<float> in = inQueue.AllocTensor<float>();
        DataCopy(in, xGm[done], tile);
        inQueue.EnQue(in);
        in = inQueue.DeQue<float>();
        LocalTensor<T> narrow = narrowQueue.AllocTensor<T>();
        LocalTensor<float> wide = wideQueue.AllocTensor<float>();
        Cast(narrow, in, mode, tile);
        Cast(wide, narrow, RoundMode::CAST_NONE, tile);
        inQueue.FreeTensor(in);
        narrowQueue.EnQue(narrow);
        wideQueue.EnQue(wide);
        narrow = narrowQueue.DeQue<T>();
        wide = wideQueue.DeQue<float>();
        DataCopy(yGm[done], narrow, tile);
        DataCopy(backGm[done], wide, tile);
        narrowQueue.FreeTensor(narrow);
        wideQueue.FreeTensor(wide);
    }
}

extern "C" __global__ __aicore__ void cast_to_half(GM_ADDR x, GM_ADDR y, GM_ADDR back, uint32_t n,
                                                   uint32_t tile, int32_t mode)
{
    CastRoundTrip<half>(x, y, back, n, tile, static_cast<RoundMode>(mode));
}

extern "C" __global__ __aicore__ void cast_to_bf16(GM_ADDR x, GM_ADDR y, GM_ADDR back, uint32_t n,
                                                   uint32_t tile, int32_t mode)
{
    CastRoundTrip<bfloat16_t>(x, y, back, n, tile, static_cast<RoundMode>(mode));
}
