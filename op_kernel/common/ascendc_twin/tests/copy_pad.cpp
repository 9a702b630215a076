// DataCopyPad kernels.
//   scale_unaligned: y = x * scale over `total` floats split into ceil(total / GetBlockNum()) per
//     block, walked in tiles of `tile`; the last tile of a block has an unaligned length, moved
//     with DataCopyPad both ways.
//   pad_rows: copies `rows` rows of `cols` floats, `gap` floats apart in GM, into UB with
//     DataCopyPad (rightPadding / isPad / paddingValue as given), then stores the padded UB rows
//     as they are (DataCopy), so the caller sees the UB layout.
//   strided_rows: `rows` rows of `cols` floats, `srcGap` floats apart in x, are stored `dstGap`
//     floats apart in y, through UB, with the DataCopyParams form of DataCopy (cols and gaps
//     multiples of 8 floats: whole 32-byte blocks).
#include "kernel_operator.h"

using namespace AscendC;

extern "C" __global__ __aicore__ void scale_unaligned(GM_ADDR x, GM_ADDR y, uint32_t total,
                                                      uint32_t tile, float scale)
{
    const uint32_t perBlock = (total + GetBlockNum() - 1) / GetBlockNum();
    const uint32_t begin = perBlock * GetBlockIdx();
    const uint32_t count = begin >= total ? 0 : (total - begin < perBlock ? total - begin : perBlock);
    GlobalTensor<float> xGm;
    GlobalTensor<float> yGm;
    xGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(x) + begin, count);
    yGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(y) + begin, count);

    TPipe pipe;
    TQue<QuePosition::VECIN, 1> inQueue;
    TQue<QuePosition::VECOUT, 1> outQueue;
    pipe.InitBuffer(inQueue, 1, tile * sizeof(float));
    pipe.InitBuffer(outQueue, 1, tile * sizeof(float));

    for (uint32_t done = 0; done < count; done += tile) {
        const uint32_t len = count - done < tile ? count - done : tile;
        const DataCopyExtParams params{1, static_cast<uint32_t>(len * sizeof(float)), 0, 0, 0};
        const DataCopyPadExtParams<float> pad{false, 0, 0, 0};
        LocalTensor<float> in = inQueue.AllocTensor<float>();
        DataCopyPad(in, xGm[done], params, pad);
        inQueue.EnQue(in);

        in = inQueue.DeQue<float>();
        LocalTensor<float> out = outQueue.AllocTensor<float>();
        const uint32_t aligned = (len + 7) / 8 * 8;      // whole 32-byte blocks: the padded tail
        Muls(out, in, scale, aligned);
        outQueue.EnQue(out);
        inQueue.FreeTensor(in);

        out = outQueue.DeQue<float>();
        DataCopyPad(yGm[done], out, params);
        outQueue.FreeTensor(out);
    }
}

extern "C" __global__ __aicore__ void pad_rows(GM_ADDR x, GM_ADDR y, uint32_t rows, uint32_t cols,
                                               uint32_t gap, uint32_t isPad, uint32_t rightPadding,
                                               float paddingValue)
{
    const uint32_t rowElems = ((cols + rightPadding) * sizeof(float) + 31) / 32 * 32 / sizeof(float);
    GlobalTensor<float> xGm;
    GlobalTensor<float> yGm;
    xGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(x), rows * (cols + gap) - gap);
    yGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(y), rows * rowElems);

    TPipe pipe;
    TQue<QuePosition::VECIN, 1> queue;
    pipe.InitBuffer(queue, 1, rows * rowElems * sizeof(float));
    LocalTensor<float> tile = queue.AllocTensor<float>();
    const DataCopyExtParams params{static_cast<uint16_t>(rows),
                                   static_cast<uint32_t>(cols * sizeof(float)),
                                   static_cast<uint32_t>(gap * sizeof(float)), 0, 0};
    const DataCopyPadExtParams<float> pad{isPad != 0, 0, static_cast<uint8_t>(rightPadding),
                                          paddingValue};
    DataCopyPad(tile, xGm, params, pad);
    queue.EnQue(tile);
    tile = queue.DeQue<float>();
    DataCopy(yGm, tile, rows * rowElems);
    queue.FreeTensor(tile);
}

extern "C" __global__ __aicore__ void strided_rows(GM_ADDR x, GM_ADDR y, uint32_t rows, uint32_t cols,
                                                   uint32_t srcGap, uint32_t dstGap)
{
    constexpr uint32_t kPerBlock = ONE_BLK_SIZE / sizeof(float);
    GlobalTensor<float> xGm;
    GlobalTensor<float> yGm;
    xGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(x), rows * (cols + srcGap));
    yGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(y), rows * (cols + dstGap));

    TPipe pipe;
    TQue<QuePosition::VECIN, 1> queue;
    pipe.InitBuffer(queue, 1, rows * cols * sizeof(float));
    LocalTensor<float> tile = queue.AllocTensor<float>();
    const auto blocks = static_cast<uint16_t>(cols / kPerBlock);
    DataCopy(tile, xGm, DataCopyParams{static_cast<uint16_t>(rows), blocks,
                                       static_cast<uint16_t>(srcGap / kPerBlock), 0});
    queue.EnQue(tile);
    tile = queue.DeQue<float>();
    DataCopy(yGm, tile, DataCopyParams{static_cast<uint16_t>(rows), blocks, 0,
                                       static_cast<uint16_t>(dstGap / kPerBlock)});
    queue.FreeTensor(tile);
}
