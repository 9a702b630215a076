// y = softmax(x) over the rows of a [rows, cols] half matrix (cols a power of two, at least 16).
// Each block takes rows / GetBlockNum() rows. A row is loaded, widened to float, its maximum found
// by halving with Max, then exp(x - max) (Duplicate, Sub, Exp), its sum found by halving with Add,
// scaled by 1 / sum (Muls), rounded back to half and stored. The last 8 partial results are read
// by the scalar unit, which waits for the vector unit (V_S) and is waited for (S_V).
#include "kernel_operator.h"

using namespace AscendC;

class KernelSoftmaxRows {
public:
    __aicore__ inline KernelSoftmaxRows() {}

    __aicore__ inline void Init(GM_ADDR x, GM_ADDR y, uint32_t rows, uint32_t cols)
    {
        rowsPerBlock_ = rows / GetBlockNum();
        cols_ = cols;
        const uint64_t start = static_cast<uint64_t>(rowsPerBlock_) * cols * GetBlockIdx();
        xGm_.SetGlobalBuffer(reinterpret_cast<__gm__ half*>(x) + start, rowsPerBlock_ * cols);
        yGm_.SetGlobalBuffer(reinterpret_cast<__gm__ half*>(y) + start, rowsPerBlock_ * cols);
        pipe_.InitBuffer(inQueue_, 2, cols * sizeof(half));
        pipe_.InitBuffer(outQueue_, 2, cols * sizeof(half));
        pipe_.InitBuffer(rowBuf_, cols * sizeof(float));
        pipe_.InitBuffer(workBuf_, cols * sizeof(float));
    }

    __aicore__ inline void Process()
    {
        for (uint32_t r = 0; r < rowsPerBlock_; ++r) {
            LocalTensor<half> in = inQueue_.AllocTensor<half>();
            DataCopy(in, xGm_[r * cols_], cols_);
            inQueue_.EnQue(in);
            Compute();
            LocalTensor<half> out = outQueue_.DeQue<half>();
            DataCopy(yGm_[r * cols_], out, cols_);
            outQueue_.FreeTensor(out);
        }
    }

private:
    __aicore__ inline void Compute()
    {
        LocalTensor<half> in = inQueue_.DeQue<half>();
        LocalTensor<float> row = rowBuf_.Get<float>();
        LocalTensor<float> work = workBuf_.Get<float>();
        Cast(row, in, RoundMode::CAST_NONE, cols_);
        inQueue_.FreeTensor(in);

        const float rowMax = Halve(row, work, true);
        Duplicate(work, rowMax, cols_);
        Sub(row, row, work, cols_);
        Exp(row, row, cols_);
        const float rowSum = Halve(row, work, false);
        Muls(row, row, 1.0f / rowSum, cols_);

        LocalTensor<half> out = outQueue_.AllocTensor<half>();
        Cast(out, row, RoundMode::CAST_RINT, cols_);
        outQueue_.EnQue(out);
    }

    // max (or sum) of row[0, cols): halves into work down to 8 floats (one 32-byte block), then
    // the scalar unit finishes.
    __aicore__ inline float Halve(const LocalTensor<float>& row, const LocalTensor<float>& work,
                                  bool max)
    {
        uint32_t width = cols_ / 2;
        if (max) Max(work, row, row[width], width);
        else Add(work, row, row[width], width);
        while (width > 8) {
            width /= 2;
            if (max) Max(work, work, work[width], width);
            else Add(work, work, work[width], width);
        }
        SetFlag<HardEvent::V_S>(0);
        WaitFlag<HardEvent::V_S>(0);
        float result = work.GetValue(0);
        for (uint32_t i = 1; i < 8; ++i) {
            const float value = work.GetValue(i);
            result = max ? (value > result ? value : result) : result + value;
        }
        SetFlag<HardEvent::S_V>(0);
        WaitFlag<HardEvent::S_V>(0);
        return result;
    }

    TPipe pipe_;
    TQue<QuePosition::VECIN, 2> inQueue_;
    TQue<QuePosition::VECOUT, 2> outQueue_;
    TBuf<QuePosition::VECCALC> rowBuf_;
    TBuf<QuePosition::VECCALC> workBuf_;
    GlobalTensor<half> xGm_;
    GlobalTensor<half> yGm_;
    uint32_t rowsPerBlock_ = 0;
    uint32_t cols_ = 0;
};

extern "C" __global__ __aicore__ void softmax_rows(GM_ADDR x, GM_ADDR y, uint32_t rows, uint32_t cols)
{
    KernelSoftmaxRows op;
    op.Init(x, y, rows, cols);
    op.Process();
}
