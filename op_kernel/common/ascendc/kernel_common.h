// What the AscendC kernels of sparse_flash_attention and lightning_indexer share beyond the cut
// of their task line (balanced_cut.h): the length lists and the key layout they read the
// visibility of a query row from, the cube's matmul and Fixpipe steps with their event flags,
// this core's AI Core group, the running of a mixed kernel's two sides, and (twin only) the
// record of the pieces a core runs.
#ifndef CANN_ATTENTION_ASCENDC_KERNEL_COMMON_H
#define CANN_ATTENTION_ASCENDC_KERNEL_COMMON_H

#include "kernel_operator.h"
#include "balanced_cut.h"

namespace cann_attention_ascendc {

constexpr uint32_t kLayoutTnd = 1;       // TilingData layout codes (common/tiling_data.py)
constexpr uint32_t kLayoutPaged = 2;

__aicore__ inline uint32_t CeilDiv(uint32_t a, uint32_t b) { return (a + b - 1) / b; }

__aicore__ inline uint32_t Clamp(int64_t v, uint32_t hi)
{
    return v < 0 ? 0 : (v > static_cast<int64_t>(hi) ? hi : static_cast<uint32_t>(v));
}

// A per-batch length list (actual_seq_lengths_*): counts (BSND, PA_BSND) or prefix sums (TND).
// Absent (null): every batch has the tensor's capacity.
struct LengthList {
    AscendC::GlobalTensor<int32_t> gm;
    bool present = false;

    __aicore__ inline void Bind(GM_ADDR lens, uint32_t batch)
    {
        present = lens != nullptr;
        if (present) gm.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(lens), batch);
    }

    // Batch b's count, clamped to [0, cap].
    __aicore__ inline uint32_t Count(uint32_t b, uint32_t cap) const
    {
        return present ? Clamp(gm.GetValue(b), cap) : cap;
    }

    // End of batch b's rows in a prefix-sum list (clamped to [prev, total]: non-decreasing).
    __aicore__ inline uint32_t End(uint32_t b, uint32_t prev, uint32_t total) const
    {
        const uint32_t end = Clamp(gm.GetValue(b), total);
        return end < prev ? prev : end;
    }
};

// Where a batch's keys lie in the key tensor: BSND (batch b's rows from b * cap), TND (one run
// of rows, a batch's from its prefix-sum start) or PA_BSND (pageCount pages of pageSize rows;
// batch b's page j is block-table entry b * maxBlocks + j).
struct KeyLayout {
    uint32_t batch = 0, cap = 0, pageSize = 0, maxBlocks = 0, pageCount = 0;
    bool tnd = false, paged = false;
    AscendC::GlobalTensor<int32_t> table;

    // layout: the TilingData's code; the block table is read only for PA_BSND.
    __aicore__ inline void Init(uint32_t layout, uint32_t batches, uint32_t capacity,
                                uint32_t pageRows, uint32_t pagesPerBatch, uint32_t pages,
                                GM_ADDR blockTable)
    {
        batch = batches;
        cap = capacity;
        tnd = layout == kLayoutTnd;
        paged = layout == kLayoutPaged;
        pageSize = pageRows;
        maxBlocks = pagesPerBatch;
        pageCount = pages;
        if (paged) {
            table.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(blockTable),
                                  static_cast<uint64_t>(batch) * maxBlocks);
        }
    }

    // Rows of the key tensor.
    __aicore__ inline uint64_t Rows() const
    {
        return paged ? static_cast<uint64_t>(pageCount) * pageSize
                     : static_cast<uint64_t>(tnd ? 1 : batch) * cap;
    }

    // BSND / PA_BSND: batch b's first key row (paged: 0, Row finds each position's page).
    __aicore__ inline uint64_t Start(uint32_t b) const
    {
        return paged ? 0 : static_cast<uint64_t>(b) * cap;
    }

    // Batch b's kvLen keys, paged: ended at its first page outside [0, pageCount).
    __aicore__ inline uint32_t Visible(uint32_t b, uint32_t kvLen) const
    {
        if (!paged) return kvLen;
        const uint32_t pages = CeilDiv(kvLen, pageSize);
        for (uint32_t j = 0; j < pages; ++j) {
            const int32_t page = table.GetValue(static_cast<uint64_t>(b) * maxBlocks + j);
            if (page < 0 || static_cast<uint32_t>(page) >= pageCount) return j * pageSize;
        }
        return kvLen;
    }

    // The key row of batch b's position pos (kvStart: the batch's first row, unless paged);
    // seg, the positions wanted from pos on, is cut at the end of pos's page.
    __aicore__ inline uint64_t Row(uint32_t b, uint64_t kvStart, uint64_t pos, uint32_t& seg) const
    {
        if (!paged) return kvStart + pos;
        const uint32_t off = static_cast<uint32_t>(pos % pageSize);
        if (pageSize - off < seg) seg = pageSize - off;
        const int32_t page = table.GetValue(static_cast<uint64_t>(b) * maxBlocks + pos / pageSize);
        return static_cast<uint64_t>(page) * pageSize + off;
    }
};

// Keys a query row at s of its batch's qLen rows sees of the batch's kvLen: all (sparse_mode 0)
// or the first kvLen - qLen + s + 1 (sparse_mode 3, clamped to [0, kvLen]).
__aicore__ inline uint32_t VisibleKeys(uint32_t mode, uint32_t kvLen, uint32_t qLen, uint32_t s)
{
    if (mode == 0) return kvLen;
    return Clamp(static_cast<int64_t>(kvLen) - qLen + s + 1, kvLen);
}

// ---- AIC ------------------------------------------------------------------------------------
// L0C [m, n] = L0A [m, k] . L0B [k, n] (init: overwrite, else accumulate), once the L0A / L0B
// loads are done.
template <typename T>
__aicore__ inline void MatmulL0(const AscendC::LocalTensor<float>& c,
                                const AscendC::LocalTensor<T>& a, const AscendC::LocalTensor<T>& b,
                                uint32_t m, uint32_t n, uint32_t k, bool init)
{
    using namespace AscendC;
    SetFlag<HardEvent::MTE1_M>(0);
    WaitFlag<HardEvent::MTE1_M>(0);
    MmadParams mm;
    mm.m = m;
    mm.n = n;
    mm.k = k;
    mm.cmatrixInitVal = init;
    Mmad(c, a, b, mm);
}

// L0C [m, n] (m padded to srcStride) -> GM float rows dstStride apart, once the Mmad is done;
// L0C is free again when it returns.
__aicore__ inline void FixpipeToGm(const AscendC::GlobalTensor<float>& dst,
                                   const AscendC::LocalTensor<float>& c, uint32_t m, uint32_t n,
                                   uint32_t srcStride, uint32_t dstStride)
{
    using namespace AscendC;     // QuantMode_t: AscendC's in the twin, global in CANN's headers
    SetFlag<HardEvent::M_FIX>(0);
    WaitFlag<HardEvent::M_FIX>(0);
    FixpipeParamsV220 fp;
    fp.nSize = n;
    fp.mSize = m;
    fp.srcStride = srcStride;
    fp.dstStride = dstStride;
    fp.quantPre = QuantMode_t::NoQuant;
    Fixpipe<float, float, CFG_ROW_MAJOR>(dst, c, fp);
    SetFlag<HardEvent::FIX_M>(0);
    WaitFlag<HardEvent::FIX_M>(0);
}

// ---- the launch -----------------------------------------------------------------------------
// This core's AI Core group: the AIC's block index, or that of the AIVs' AIC.
__aicore__ inline uint32_t CoreGroup()
{
    if ASCEND_IS_AIC {     // constexpr(...) on the device: usable only after `if`
        return AscendC::GetBlockIdx();
    } else {
        return AscendC::GetBlockIdx() / AscendC::GetTaskRation();
    }
}

// A mixed kernel's two sides: op.Cube() on the AIC, op.Vector() on the AIVs.
template <typename Op>
__aicore__ inline void RunSides(Op& op)
{
    if ASCEND_IS_AIC {
        op.Cube();
    }
    if ASCEND_IS_AIV {
        op.Vector();
    }
}

// The pieces a core runs, as the twin records them for the tests: row 3 * group + {0: AIC,
// 1 + sub: AIV} of an int32 record of `stride` columns holds the count, then (task, step begin,
// step end, slot or -1) per piece, in the order run. Outside the twin Note does nothing.
class PieceLog {
public:
#ifdef ASCENDC_TWIN
    __aicore__ inline void Bind(GM_ADDR record, uint32_t group, uint64_t stride)
    {
        int64_t core = 0;
        if ASCEND_IS_AIC {
            core = group * 3;
        } else {
            core = group * 3 + 1 + AscendC::GetSubBlockIdx();
        }
        gm_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(record) + core * stride, stride);
        gm_.SetValue(0, 0);
        on_ = true;
    }
#endif

    __aicore__ inline void Note(const CutPiece& p)
    {
#ifdef ASCENDC_TWIN
        if (!on_) return;
        const uint64_t at = 1 + 4 * static_cast<uint64_t>(count_);
        gm_.SetValue(at, static_cast<int32_t>(p.task));
        gm_.SetValue(at + 1, static_cast<int32_t>(p.begin));
        gm_.SetValue(at + 2, static_cast<int32_t>(p.end));
        gm_.SetValue(at + 3, p.slot);
        gm_.SetValue(0, static_cast<int32_t>(++count_));
#else
        (void)p;
#endif
    }

#ifdef ASCENDC_TWIN
private:
    AscendC::GlobalTensor<int32_t> gm_;
    bool on_ = false;
    uint32_t count_ = 0;
#endif
};

}  // namespace cann_attention_ascendc

#endif  // CANN_ATTENTION_ASCENDC_KERNEL_COMMON_H
