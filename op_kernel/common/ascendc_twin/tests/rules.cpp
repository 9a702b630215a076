// Kernels that break one rule each (the twin must refuse them), a few that use what the rules
// allow (named allowed_*), and two that probe the twin's per-block state. `x` is a GM buffer of
// n floats; every case but gm_read_oob runs on one block.
#include <cstring>

#include "kernel_operator.h"

using namespace AscendC;

namespace {

constexpr uint32_t kTile = 64;        // floats: 256 B

// One case: a name and the kernel code that breaks its rule.
struct RuleCase {
    const char* name;
    void (*run)(GM_ADDR x, uint32_t n);
};

__aicore__ inline void UbOverflow(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TQue<QuePosition::VECIN, 2> queue;
    TBuf<QuePosition::VECCALC> scratch;
    pipe.InitBuffer(queue, 2, 64 * 1024);         // 128 KiB of UB
    pipe.InitBuffer(scratch, 96 * 1024);          // 96 KiB more: past 192 KiB
}

__aicore__ inline void MisalignedCount(GM_ADDR x, uint32_t n)
{
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> queue;
    pipe.InitBuffer(queue, 1, kTile * sizeof(float));
    GlobalTensor<float> xGm;
    xGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(x), n);
    LocalTensor<float> tile = queue.AllocTensor<float>();
    DataCopy(tile, xGm, 7);                       // 28 bytes
}

__aicore__ inline void MisalignedAddress(GM_ADDR x, uint32_t n)
{
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> queue;
    pipe.InitBuffer(queue, 1, kTile * sizeof(float));
    GlobalTensor<float> xGm;
    xGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(x), n);
    LocalTensor<float> tile = queue.AllocTensor<float>();
    DataCopy(tile[3], xGm, 8);                    // UB byte 12
}

// Block b reads floats [b * kTile, (b + 1) * kTile + 8): the last block runs past the end of x.
__aicore__ inline void GmReadOutOfBounds(GM_ADDR x, uint32_t n)
{
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> queue;
    pipe.InitBuffer(queue, 1, (kTile + 8) * sizeof(float));
    GlobalTensor<float> xGm;
    xGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(x), n);
    LocalTensor<float> tile = queue.AllocTensor<float>();
    DataCopy(tile, xGm[GetBlockIdx() * kTile], kTile + 8);
    queue.FreeTensor(tile);
}

__aicore__ inline void GmGetValueOutOfBounds(GM_ADDR x, uint32_t n)
{
    GlobalTensor<float> xGm;
    xGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(x), n);
    xGm.GetValue(n);
}

__aicore__ inline void GmSetValueOutsideBuffer(GM_ADDR x, uint32_t n)
{
    GlobalTensor<float> xGm;
    xGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(x));   // no size: bounded by the buffer
    xGm.SetValue(n + 4, 1.0f);
}

__aicore__ inline void WaitWithoutSet(GM_ADDR, uint32_t)
{
    WaitFlag<HardEvent::MTE2_V>(0);
}

__aicore__ inline void SetTwice(GM_ADDR, uint32_t)
{
    SetFlag<HardEvent::V_MTE3>(1);
    SetFlag<HardEvent::V_MTE3>(1);
}

__aicore__ inline void FlagLeftSet(GM_ADDR, uint32_t)
{
    SetFlag<HardEvent::MTE3_MTE2>(2);
}

__aicore__ inline void EventIdOutOfRange(GM_ADDR, uint32_t)
{
    SetFlag<HardEvent::V_S>(8);
}

__aicore__ inline void BarrierOnScalarPipe(GM_ADDR, uint32_t)
{
    PipeBarrier<PIPE_S>();
}

__aicore__ inline void DeQueEmpty(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TQue<QuePosition::VECIN, 2> queue;
    pipe.InitBuffer(queue, 2, kTile * sizeof(float));
    LocalTensor<float> tile = queue.DeQue<float>();
}

__aicore__ inline void DoubleFree(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TQue<QuePosition::VECOUT, 1> queue;
    pipe.InitBuffer(queue, 1, kTile * sizeof(float));
    LocalTensor<float> tile = queue.AllocTensor<float>();
    queue.FreeTensor(tile);
    queue.FreeTensor(tile);
}

__aicore__ inline void UseAfterFree(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TQue<QuePosition::VECOUT, 1> queue;
    pipe.InitBuffer(queue, 1, kTile * sizeof(float));
    LocalTensor<float> tile = queue.AllocTensor<float>();
    queue.FreeTensor(tile);
    tile.SetValue(0, 1.0f);
}

__aicore__ inline void UseWhileEnqueued(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TQue<QuePosition::VECOUT, 1> queue;
    pipe.InitBuffer(queue, 1, kTile * sizeof(float));
    LocalTensor<float> tile = queue.AllocTensor<float>();
    queue.EnQue(tile);
    tile.SetValue(0, 1.0f);
}

__aicore__ inline void AllocExhausted(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> queue;
    pipe.InitBuffer(queue, 1, kTile * sizeof(float));
    LocalTensor<float> first = queue.AllocTensor<float>();
    LocalTensor<float> second = queue.AllocTensor<float>();
}

__aicore__ inline void TwoPipes(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TPipe another;
}

__aicore__ inline void VectorMisaligned(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TBuf<QuePosition::VECCALC> buf;
    pipe.InitBuffer(buf, 3 * kTile * sizeof(float));
    LocalTensor<float> all = buf.Get<float>();
    Add(all, all[kTile + 1], all[2 * kTile], 8);      // src0 at UB byte 260
}

__aicore__ inline void VectorCountOutOfBounds(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TBuf<QuePosition::VECCALC> a;
    TBuf<QuePosition::VECCALC> b;
    pipe.InitBuffer(a, kTile * sizeof(float));
    pipe.InitBuffer(b, kTile * sizeof(float));
    Exp(a.Get<float>(), b.Get<float>(), kTile + 8);
}

// ReduceMax / ReduceSum of x[0, 256) into x[0] and x[1]: the allowed form
__aicore__ inline void ReduceValues(GM_ADDR x, uint32_t n)
{
    TPipe pipe;
    TBuf<QuePosition::VECCALC> src;
    TBuf<QuePosition::VECCALC> dst;
    TBuf<QuePosition::VECCALC> work;
    pipe.InitBuffer(src, 256 * sizeof(float));
    pipe.InitBuffer(dst, 8 * sizeof(float));
    pipe.InitBuffer(work, 8 * sizeof(float));      // 4 repeats x (value, index): one block
    GlobalTensor<float> xGm;
    xGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(x), n);
    LocalTensor<float> s = src.Get<float>();
    LocalTensor<float> d = dst.Get<float>();
    for (int32_t i = 0; i < 256; ++i) s.SetValue(i, xGm.GetValue(i));
    ReduceMax(d, s, work.Get<float>(), 256);
    const float max = d.GetValue(0);
    ReduceSum(d, s, work.Get<float>(), 256);
    xGm.SetValue(0, max);
    xGm.SetValue(1, d.GetValue(0));
}

// 320 floats: 5 repeats x (value, index) = 10 floats of work, rounded to 16; 8 given
__aicore__ inline void ReduceWorkTooSmall(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TBuf<QuePosition::VECCALC> src;
    TBuf<QuePosition::VECCALC> work;
    pipe.InitBuffer(src, 320 * sizeof(float));
    pipe.InitBuffer(work, 8 * sizeof(float));
    ReduceMax(src.Get<float>(), src.Get<float>(), work.Get<float>(), 320);
}

__aicore__ inline void CastWideningMode(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TBuf<QuePosition::VECCALC> a;
    TBuf<QuePosition::VECCALC> b;
    pipe.InitBuffer(a, kTile * sizeof(float));
    pipe.InitBuffer(b, kTile * sizeof(half));
    Cast(a.Get<float>(), b.Get<half>(), RoundMode::CAST_RINT, kTile);
}

__aicore__ inline void PadBlockLen(GM_ADDR x, uint32_t n)
{
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> queue;
    pipe.InitBuffer(queue, 1, kTile * sizeof(float));
    GlobalTensor<float> xGm;
    xGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(x), n);
    LocalTensor<float> tile = queue.AllocTensor<float>();
    DataCopyPad(tile, xGm, DataCopyExtParams{1, 6, 0, 0, 0}, DataCopyPadExtParams<float>{});
}

__aicore__ inline void L0aOverflow(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TQue<QuePosition::A2, 2> queue;
    pipe.InitBuffer(queue, 2, 33 * 1024);          // 66 KiB of the 64 KiB L0A
}

__aicore__ inline void TooManyBuffers(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TBuf<QuePosition::VECCALC> bufs[65];
    for (auto& buf : bufs) pipe.InitBuffer(buf, 32);
}

__aicore__ inline void InitTwice(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> queue;
    pipe.InitBuffer(queue, 1, kTile * sizeof(float));
    pipe.InitBuffer(queue, 1, kTile * sizeof(float));
}

__aicore__ inline void InitZeroNum(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> queue;
    pipe.InitBuffer(queue, 0, kTile * sizeof(float));
}

__aicore__ inline void InitZeroLen(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TBuf<QuePosition::VECCALC> buf;
    pipe.InitBuffer(buf, 0);
}

__aicore__ inline void InitAtGm(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TBuf<TPosition::CO2> buf;
    pipe.InitBuffer(buf, 256);
}

__aicore__ inline void InitUnmodelled(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TBuf<TPosition::C2> buf;
    pipe.InitBuffer(buf, 256);
}

__aicore__ inline void QueueUninitialised(GM_ADDR, uint32_t)
{
    TQue<QuePosition::VECIN, 1> queue;
    LocalTensor<float> tile = queue.AllocTensor<float>();
}

__aicore__ inline void TBufUninitialised(GM_ADDR, uint32_t)
{
    TBuf<QuePosition::VECCALC> buf;
    LocalTensor<float> tile = buf.Get<float>();
}

__aicore__ inline void TBufGetBeyond(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TBuf<QuePosition::VECCALC> buf;
    pipe.InitBuffer(buf, kTile * sizeof(float));
    LocalTensor<float> tile = buf.Get<float>(kTile + 1);
}

__aicore__ inline void EnQueBeyondDepth(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> queue;
    pipe.InitBuffer(queue, 2, kTile * sizeof(float));
    LocalTensor<float> first = queue.AllocTensor<float>();
    LocalTensor<float> second = queue.AllocTensor<float>();
    queue.EnQue(first);
    queue.EnQue(second);
}

__aicore__ inline void EnQueForeign(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> in;
    TQue<QuePosition::VECOUT, 1> out;
    pipe.InitBuffer(in, 1, kTile * sizeof(float));
    pipe.InitBuffer(out, 1, kTile * sizeof(float));
    LocalTensor<float> tile = in.AllocTensor<float>();
    out.EnQue(tile);
}

__aicore__ inline void FreeWhileEnqueued(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> queue;
    pipe.InitBuffer(queue, 1, kTile * sizeof(float));
    LocalTensor<float> tile = queue.AllocTensor<float>();
    queue.EnQue(tile);
    queue.FreeTensor(tile);
}

__aicore__ inline void UseAfterReset(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> queue;
    pipe.InitBuffer(queue, 1, kTile * sizeof(float));
    LocalTensor<float> tile = queue.AllocTensor<float>();
    pipe.Reset();
    tile.GetValue(0);
}

__aicore__ inline void LocalWithoutBuffer(GM_ADDR, uint32_t)
{
    LocalTensor<float> tile;
    tile.GetValue(0);
}

__aicore__ inline void LocalViewBeyond(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TBuf<QuePosition::VECCALC> buf;
    pipe.InitBuffer(buf, kTile * sizeof(float));
    LocalTensor<float> view = buf.Get<float>()[kTile + 1];
}

__aicore__ inline void GmBeforeSet(GM_ADDR, uint32_t)
{
    GlobalTensor<float> xGm;
    xGm.GetValue(0);
}

__aicore__ inline void GmViewBeyond(GM_ADDR x, uint32_t n)
{
    GlobalTensor<float> xGm;
    xGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(x), n);
    xGm[n + 1].GetValue(0);
}

__aicore__ inline void GmOutsideLaunchBuffers(GM_ADDR x, uint32_t n)
{
    GlobalTensor<float> xGm;
    xGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(x) + 2 * n, 8);   // a wrong base
    xGm.GetValue(0);
}

__aicore__ inline void CopyOutOfL1(GM_ADDR x, uint32_t n)
{
    TPipe pipe;
    TBuf<TPosition::A1> buf;
    pipe.InitBuffer(buf, kTile * sizeof(float));
    GlobalTensor<float> xGm;
    xGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(x), n);
    DataCopy(xGm, buf.Get<float>(), kTile);
}

__aicore__ inline void VectorOnL1(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TBuf<TPosition::A1> buf;
    pipe.InitBuffer(buf, kTile * sizeof(float));
    LocalTensor<float> tile = buf.Get<float>();
    Add(tile, tile, tile, kTile);
}

__aicore__ inline void NegativeCount(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TBuf<QuePosition::VECCALC> buf;
    pipe.InitBuffer(buf, kTile * sizeof(float));
    Duplicate(buf.Get<float>(), 0.0f, -8);
}

// DataCopyPad GM -> UB of `params` / `pad` into a fresh tile, for the parameter rules below.
__aicore__ inline void PadCopy(GM_ADDR x, uint32_t n, const DataCopyExtParams& params,
                               const DataCopyPadExtParams<float>& pad)
{
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> queue;
    pipe.InitBuffer(queue, 1, kTile * sizeof(float));
    GlobalTensor<float> xGm;
    xGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(x), n);
    LocalTensor<float> tile = queue.AllocTensor<float>();
    DataCopyPad(tile, xGm, params, pad);
}

__aicore__ inline void PadBlockCount(GM_ADDR x, uint32_t n)
{
    PadCopy(x, n, DataCopyExtParams{0, 32, 0, 0, 0}, DataCopyPadExtParams<float>{});
}

__aicore__ inline void PadTooWide(GM_ADDR x, uint32_t n)
{
    PadCopy(x, n, DataCopyExtParams{1, 32, 0, 0, 0}, DataCopyPadExtParams<float>{true, 9, 0, 0});
}

__aicore__ inline void PadGmStride(GM_ADDR x, uint32_t n)
{
    PadCopy(x, n, DataCopyExtParams{2, 32, 6, 0, 0}, DataCopyPadExtParams<float>{});
}

__aicore__ inline void ReleaseUnallocatedEvent(GM_ADDR, uint32_t)
{
    TPipe pipe;
    pipe.ReleaseEventID<HardEvent::V_S>(3);
}

__aicore__ inline void EventIdsExhausted(GM_ADDR, uint32_t)
{
    TPipe pipe;
    for (int i = 0; i < 9; ++i) pipe.AllocEventID<HardEvent::MTE2_V>();
}

// ---- uses the rules allow (these must run) ----------------------------------------------------------

__aicore__ inline void ResetThenInit(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TQue<QuePosition::VECIN, 2> queue;
    pipe.InitBuffer(queue, 2, 96 * 1024);
    LocalTensor<float> tile = queue.AllocTensor<float>();
    queue.FreeTensor(tile);
    pipe.Reset();
    pipe.InitBuffer(queue, 2, 96 * 1024);          // all of UB again
    tile = queue.AllocTensor<float>();
    tile.SetValue(0, 1.0f);
    queue.FreeTensor(tile);
}

__aicore__ inline void EventIds(GM_ADDR, uint32_t)
{
    TPipe pipe;
    const TEventID id = pipe.AllocEventID<HardEvent::V_MTE3>();
    SetFlag<HardEvent::V_MTE3>(id);
    WaitFlag<HardEvent::V_MTE3>(id);
    pipe.ReleaseEventID<HardEvent::V_MTE3>(id);
    SetFlag<HardEvent::V_MTE3>(pipe.FetchEventID<HardEvent::V_MTE3>());
    WaitFlag<HardEvent::V_MTE3>(id);
    PipeBarrier<PIPE_ALL>();
}

__aicore__ inline void ReuseAfterFree(GM_ADDR, uint32_t)
{
    TPipe pipe;
    TQue<QuePosition::VECOUT, 1> queue;
    pipe.InitBuffer(queue, 1, kTile * sizeof(float));
    for (int i = 0; i < 3; ++i) {
        LocalTensor<float> tile = queue.AllocTensor<float>();
        tile.SetValue(0, 1.0f);
        queue.EnQue(tile);
        tile = queue.DeQue<float>();
        queue.FreeTensor(tile);
    }
}

const RuleCase kCases[] = {
    {"allowed_reset_then_init", ResetThenInit},
    {"allowed_event_ids", EventIds},
    {"allowed_reduce", ReduceValues},
    {"reduce_work_too_small", ReduceWorkTooSmall},
    {"allowed_reuse_after_free", ReuseAfterFree},
    {"too_many_buffers", TooManyBuffers},
    {"init_twice", InitTwice},
    {"init_zero_num", InitZeroNum},
    {"init_zero_len", InitZeroLen},
    {"init_at_gm", InitAtGm},
    {"init_unmodelled", InitUnmodelled},
    {"queue_uninitialised", QueueUninitialised},
    {"tbuf_uninitialised", TBufUninitialised},
    {"tbuf_get_beyond", TBufGetBeyond},
    {"enque_beyond_depth", EnQueBeyondDepth},
    {"enque_foreign", EnQueForeign},
    {"free_while_enqueued", FreeWhileEnqueued},
    {"use_after_reset", UseAfterReset},
    {"local_without_buffer", LocalWithoutBuffer},
    {"local_view_beyond", LocalViewBeyond},
    {"gm_before_set", GmBeforeSet},
    {"gm_view_beyond", GmViewBeyond},
    {"gm_outside_launch_buffers", GmOutsideLaunchBuffers},
    {"copy_out_of_l1", CopyOutOfL1},
    {"vector_on_l1", VectorOnL1},
    {"negative_count", NegativeCount},
    {"pad_block_count", PadBlockCount},
    {"pad_too_wide", PadTooWide},
    {"pad_gm_stride", PadGmStride},
    {"release_unallocated_event", ReleaseUnallocatedEvent},
    {"event_ids_exhausted", EventIdsExhausted},
    {"ub_overflow", UbOverflow},
    {"l0a_overflow", L0aOverflow},
    {"misaligned_count", MisalignedCount},
    {"misaligned_address", MisalignedAddress},
    {"gm_read_oob", GmReadOutOfBounds},
    {"gm_get_value_oob", GmGetValueOutOfBounds},
    {"gm_set_value_outside_buffer", GmSetValueOutsideBuffer},
    {"wait_without_set", WaitWithoutSet},
    {"set_twice", SetTwice},
    {"flag_left_set", FlagLeftSet},
    {"event_id_range", EventIdOutOfRange},
    {"pipe_barrier_s", BarrierOnScalarPipe},
    {"deque_empty", DeQueEmpty},
    {"double_free", DoubleFree},
    {"use_after_free", UseAfterFree},
    {"use_while_enqueued", UseWhileEnqueued},
    {"alloc_exhausted", AllocExhausted},
    {"two_pipes", TwoPipes},
    {"vector_misaligned", VectorMisaligned},
    {"vector_count_oob", VectorCountOutOfBounds},
    {"cast_widening_mode", CastWideningMode},
    {"pad_block_len", PadBlockLen},
};

// Takes `bytes` of the memory behind position P with a TBuf.
template <TPosition P>
__aicore__ inline void Take(uint32_t bytes)
{
    TPipe pipe;
    TBuf<P> buf;
    pipe.InitBuffer(buf, bytes);
}

}  // namespace

// The kernel of rule case `name` (see kCases), on GM buffer x of n floats.
extern "C" __global__ __aicore__ void rule_case(const char* name, GM_ADDR x, uint32_t n)
{
    for (const RuleCase& rule : kCases) {
        if (std::strcmp(rule.name, name) == 0) {
            rule.run(x, n);
            return;
        }
    }
    twin::Fail("rule_case: no case named '", name, "'");
}

// Takes `bytes` of one memory (UB, L1, L0A, L0B, L0C) with a TBuf at a position in it.
extern "C" __global__ __aicore__ void take_memory(const char* memory, uint32_t bytes)
{
    if (std::strcmp(memory, "UB") == 0) Take<TPosition::VECCALC>(bytes);
    else if (std::strcmp(memory, "L1") == 0) Take<TPosition::A1>(bytes);
    else if (std::strcmp(memory, "L0A") == 0) Take<TPosition::A2>(bytes);
    else if (std::strcmp(memory, "L0B") == 0) Take<TPosition::B2>(bytes);
    else if (std::strcmp(memory, "L0C") == 0) Take<TPosition::CO1>(bytes);
    else twin::Fail("take_memory: no memory named '", memory, "'");
}

// out[8 b .. 8 b + 8) = {b, GetBlockNum(), 0...} for each block b. Every block takes 150 KiB of UB,
// which only fits if the twin gives each block a fresh core.
extern "C" __global__ __aicore__ void block_info(GM_ADDR out)
{
    TPipe pipe;
    TBuf<QuePosition::VECCALC> big;
    TQue<QuePosition::VECOUT, 1> queue;
    pipe.InitBuffer(big, 150 * 1024);
    pipe.InitBuffer(queue, 1, 8 * sizeof(int32_t));
    GlobalTensor<int32_t> outGm;
    outGm.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(out) + 8 * GetBlockIdx(), 8);
    LocalTensor<int32_t> row = queue.AllocTensor<int32_t>();
    Duplicate(row, 0, 8);
    SetFlag<HardEvent::V_S>(0);
    WaitFlag<HardEvent::V_S>(0);
    row.SetValue(0, static_cast<int32_t>(GetBlockIdx()));
    row.SetValue(1, static_cast<int32_t>(GetBlockNum()));
    queue.EnQue(row);
    row = queue.DeQue<int32_t>();
    SetFlag<HardEvent::S_MTE3>(0);
    WaitFlag<HardEvent::S_MTE3>(0);
    DataCopy(outGm, row, 8);
    queue.FreeTensor(row);
}
