// z = x + y: each block takes totalLength / GetBlockNum() elements and walks them in tiles, through
// double-buffered queues (CopyIn -> Compute -> CopyOut), the way AscendC vector kernels do.
#include "kernel_operator.h"

using namespace AscendC;

constexpr int32_t BUFFER_NUM = 2;

template <typename T>
class KernelAdd {
public:
    __aicore__ inline KernelAdd() {}

    __aicore__ inline void Init(GM_ADDR x, GM_ADDR y, GM_ADDR z, uint32_t totalLength,
                                uint32_t tileLength)
    {
        blockLength_ = totalLength / GetBlockNum();
        tileLength_ = tileLength;
        tileNum_ = blockLength_ / tileLength;
        const uint64_t start = static_cast<uint64_t>(blockLength_) * GetBlockIdx();
        xGm_.SetGlobalBuffer(reinterpret_cast<__gm__ T*>(x) + start, blockLength_);
        yGm_.SetGlobalBuffer(reinterpret_cast<__gm__ T*>(y) + start, blockLength_);
        zGm_.SetGlobalBuffer(reinterpret_cast<__gm__ T*>(z) + start, blockLength_);
        pipe_.InitBuffer(inQueueX_, BUFFER_NUM, tileLength_ * sizeof(T));
        pipe_.InitBuffer(inQueueY_, BUFFER_NUM, tileLength_ * sizeof(T));
        pipe_.InitBuffer(outQueueZ_, BUFFER_NUM, tileLength_ * sizeof(T));
    }

    __aicore__ inline void Process()
    {
        for (uint32_t i = 0; i < tileNum_; ++i) {
            CopyIn(i);
            Compute();
            CopyOut(i);
        }
    }

private:
    __aicore__ inline void CopyIn(uint32_t progress)
    {
        LocalTensor<T> xLocal = inQueueX_.template AllocTensor<T>();
        LocalTensor<T> yLocal = inQueueY_.template AllocTensor<T>();
        DataCopy(xLocal, xGm_[progress * tileLength_], tileLength_);
        DataCopy(yLocal, yGm_[progress * tileLength_], tileLength_);
        inQueueX_.EnQue(xLocal);
        inQueueY_.EnQue(yLocal);
    }

    __aicore__ inline void Compute()
    {
        LocalTensor<T> xLocal = inQueueX_.template DeQue<T>();
        LocalTensor<T> yLocal = inQueueY_.template DeQue<T>();
        LocalTensor<T> zLocal = outQueueZ_.template AllocTensor<T>();
        Add(zLocal, xLocal, yLocal, tileLength_);
        outQueueZ_.template EnQue<T>(zLocal);
        inQueueX_.FreeTensor(xLocal);
        inQueueY_.FreeTensor(yLocal);
    }

    __aicore__ inline void CopyOut(uint32_t progress)
    {
        LocalTensor<T> zLocal = outQueueZ_.template DeQue<T>();
        DataCopy(zGm_[progress * tileLength_], zLocal, tileLength_);
        outQueueZ_.FreeTensor(zLocal);
    }

    TPipe pipe_;
    TQue<QuePosition::VECIN, BUFFER_NUM> inQueueX_;
    TQue<QuePosition::VECIN, BUFFER_NUM> inQueueY_;
    TQue<QuePosition::VECOUT, BUFFER_NUM> outQueueZ_;
    GlobalTensor<T> xGm_;
    GlobalTensor<T> yGm_;
    GlobalTensor<T> zGm_;
    uint32_t blockLength_ = 0;
    uint32_t tileLength_ = 0;
    uint32_t tileNum_ = 0;
};

extern "C" __global__ __aicore__ void add_custom_float(GM_ADDR x, GM_ADDR y, GM_ADDR z,
                                                       uint32_t totalLength, uint32_t tileLength)
{
    KernelAdd<float> op;
    op.Init(x, y, z, totalLength, tileLength);
    op.Process();
}

extern "C" __global__ __aicore__ void add_custom_half(GM_ADDR x, GM_ADDR y, GM_ADDR z,
                                                      uint32_t totalLength, uint32_t tileLength)
{
    KernelAdd<half> op;
    op.Init(x, y, z, totalLength, tileLength);
    op.Process();
}
