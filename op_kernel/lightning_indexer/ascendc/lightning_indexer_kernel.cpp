// npu_lightning_indexer as an AscendC mixed (KERNEL_TYPE_MIX_AIC_1_2) kernel.
//
// Scope (the registry's rule, op_kernel/lightning_indexer/ascendc_twin.py, keeps to it):
//   layout_query BSND or TND, layout_key BSND, TND or PA_BSND, actual_seq_lengths_query / _key
//   where the layout allows (BSND and PA_BSND: per-batch counts, TND: prefix sums; clamped into
//   the tensors, prefix sums made non-decreasing; with a paged key a batch's keys end at its
//   first page-table entry outside [0, block_count)), query and key of one dtype DTYPE_QUERY
//   (half or bfloat16_t), weights of that dtype or float (DTYPE_WEIGHTS), D = 128, N1 <= 64,
//   sparse_mode 0 or 3, sparse_count <= 2048, sparse_values written when the TilingData's
//   return_value is 1 (and its GM address is not null).
//
// Rows: query row r (a BSND (b, s) row or a TND token) goes to block r % GetBlockNum() (a strided
// row split, not the plan's balanced per-core schedule). A row sees, of its batch b's Lk keys,
// all of them (sparse_mode 0) or the first Lk - Lq + s + 1 (sparse_mode 3, clamped to [0, Lk]);
// rows past their batch's Lq (BSND) or past the last batch (TND) see none and get -1 (values
// -inf). Per block, for each of its rows with n_vis > 0:
//   AIC  for each chunk of block_s2 visible keys: q[r] (N1 x 128, GM ND -> L1 NZ -> L0A) and the
//        key chunk (GM ND -> L1 NZ, one copy per page a chunk spans with a paged key -> L0B,
//        which is already ZN for K^T), Mmad (all N1 heads at
//        once, float in L0C), Fixpipe NoQuant into the block's GM workspace [N1, block_s2]
//        (float), CrossCoreSetFlag mode 2 -> both AIVs; waits until both AIVs have copied it.
//   AIV  sub-block v takes keys [v * bs/2, (v+1) * bs/2) of every chunk: DataCopy to UB, ReLU
//        (Maxs 0), * w[h] (Muls), sum over heads (Add), then a running top-k list (score desc,
//        key index asc) kept in UB with scalar GetValue/SetValue insertion (the twin has no sort).
//        At the row's end AIV 1 writes its list to GM (two slots, by row parity), both AIVs meet
//        at a mode-1 cross-core barrier, and AIV 0 merges the two lists (ties: smaller index) and
//        writes min(K, n_vis) indices, then -1 padding, to sparse_indices[r] (and the scores,
//        rounded to DTYPE_QUERY, then -inf, to sparse_values[r]).
// head_group of the plan is not used (all N1 <= 64 heads fit one Mmad: 64 x 256 floats in L0C).
#include "kernel_operator.h"
#include "tiling_data.h"        // LightningIndexerTilingData (generated from tiling.TILING_DATA)

#include "lightning_indexer_kernel.h"

using namespace AscendC;

namespace li_ascendc {

constexpr uint16_t kFlagCubeDone = 1;    // AIC -> both AIVs: a chunk of scores is in GM
constexpr uint16_t kFlagVecDone = 2;     // both AIVs -> AIC: the chunk has been copied to UB
constexpr uint16_t kFlagSubSync = 3;     // AIV <-> AIV barrier before the top-k merge
constexpr uint32_t kLayoutTnd = 1;       // TilingData layout codes (common/tiling_data.py)
constexpr uint32_t kLayoutPaged = 2;

// Where a query row's keys are: its batch, how many it sees, the first key row of its batch.
struct RowKeys {
    uint32_t b = 0;
    uint32_t nvis = 0;
    uint64_t kvStart = 0;
};

__aicore__ inline uint32_t CeilDiv(uint32_t a, uint32_t b) { return (a + b - 1) / b; }

__aicore__ inline uint32_t Clamp(int64_t v, uint32_t hi)
{
    return v < 0 ? 0 : (v > static_cast<int64_t>(hi) ? hi : static_cast<uint32_t>(v));
}

template <typename T, typename W>
class LightningIndexer {
public:
    __aicore__ inline void Init(GM_ADDR query, GM_ADDR key, GM_ADDR weights, GM_ADDR lensQuery,
                                GM_ADDR lensKey, GM_ADDR blockTable, GM_ADDR indices,
                                GM_ADDR values, GM_ADDR workspace, GM_ADDR tiling)
    {
        const __gm__ LightningIndexerTilingData* td =
            reinterpret_cast<const __gm__ LightningIndexerTilingData*>(tiling);
        numRows_ = static_cast<uint32_t>(td->num_rows);
        s2_ = static_cast<uint32_t>(td->key_capacity);
        batch_ = td->batch;
        n1_ = td->n1;
        bs_ = td->block_s2;
        k_ = td->sparse_count;
        mode_ = td->sparse_mode;
        qTnd_ = td->layout_query == kLayoutTnd;
        kTnd_ = td->layout_key == kLayoutTnd;
        paged_ = td->layout_key == kLayoutPaged;
        pageSize_ = td->page_size;
        blockCount_ = td->block_count;
        maxBlocks_ = paged_ ? s2_ / pageSize_ : 0;
        if (paged_) {
            btGm_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(blockTable),
                                  static_cast<uint64_t>(batch_) * maxBlocks_);
        }
        s1_ = qTnd_ || batch_ == 0 ? 0 : numRows_ / batch_;
        hasLensQ_ = lensQuery != nullptr;
        hasLensK_ = lensKey != nullptr;
        // CANN hands the kernel sparse_values' address whether or not the op returns values
        // (an empty (0,) output then): the TilingData says whether to write it
        hasValues_ = td->return_value != 0 && values != nullptr;
        if (hasLensQ_) {
            lensQGm_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(lensQuery), batch_);
        }
        if (hasLensK_) {
            lensKGm_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(lensKey), batch_);
        }
        if (hasValues_) {
            valGm_.SetGlobalBuffer(reinterpret_cast<__gm__ T*>(values),
                                   static_cast<uint64_t>(numRows_) * k_);
        }
        if ASCEND_IS_AIC {     // constexpr(...) on the device: usable only after `if`
            group_ = GetBlockIdx();
        } else {
            group_ = GetBlockIdx() / GetTaskRation();
        }
        groups_ = GetBlockNum();
        half_ = bs_ / 2;
        qGm_.SetGlobalBuffer(reinterpret_cast<__gm__ T*>(query),
                             static_cast<uint64_t>(numRows_) * n1_ * kD);
        if (paged_) {     // block_count pages of page_size rows
            kGm_.SetGlobalBuffer(reinterpret_cast<__gm__ T*>(key),
                                 static_cast<uint64_t>(blockCount_) * pageSize_ * kD);
        } else {
            kGm_.SetGlobalBuffer(reinterpret_cast<__gm__ T*>(key),
                                 static_cast<uint64_t>(kTnd_ ? 1 : batch_) * s2_ * kD);
        }
        wGm_.SetGlobalBuffer(reinterpret_cast<__gm__ W*>(weights),
                             static_cast<uint64_t>(numRows_) * n1_);
        outGm_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(indices),
                               static_cast<uint64_t>(numRows_) * k_);
        const uint64_t wsFloats = WorkspaceFloats(n1_, bs_, k_);
        __gm__ float* ws = reinterpret_cast<__gm__ float*>(workspace) + group_ * wsFloats;
        scoreGm_.SetGlobalBuffer(ws, static_cast<uint64_t>(n1_) * bs_);
        for (int slot = 0; slot < 2; ++slot) {
            __gm__ float* ex = ws + static_cast<uint64_t>(n1_) * bs_ + slot * (2 * k_ + 8);
            exCountGm_[slot].SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(ex), 8);
            exScoreGm_[slot].SetGlobalBuffer(ex + 8, k_);
            exIdxGm_[slot].SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(ex + 8 + k_), k_);
        }
    }

    // End of batch i's rows in a TND prefix-sum list (clamped to [prev, total]: non-decreasing).
    __aicore__ inline uint32_t TndEnd(const GlobalTensor<int32_t>& lens, uint32_t i, uint32_t prev,
                                      uint32_t total) const
    {
        const uint32_t end = Clamp(lens.GetValue(i), total);
        return end < prev ? prev : end;
    }

    __aicore__ inline RowKeys Keys(uint32_t row) const
    {
        RowKeys rk;
        uint32_t s = 0, qLen = 0;
        if (qTnd_) {                       // the batch whose rows [start, end) hold the row
            uint32_t start = 0, b = 0;
            for (; b < batch_; ++b) {
                const uint32_t end = TndEnd(lensQGm_, b, start, numRows_);
                if (row < end) {
                    qLen = end - start;
                    break;
                }
                start = end;
            }
            if (b == batch_) return rk;    // past the last batch: sees nothing
            rk.b = b;
            s = row - start;
        } else {
            rk.b = row / s1_;
            s = row % s1_;
            qLen = hasLensQ_ ? Clamp(lensQGm_.GetValue(rk.b), s1_) : s1_;
            if (s >= qLen) return rk;
        }
        uint32_t kvLen = s2_;
        if (kTnd_) {
            uint32_t start = 0;
            for (uint32_t i = 0; i < rk.b; ++i) start = TndEnd(lensKGm_, i, start, s2_);
            kvLen = TndEnd(lensKGm_, rk.b, start, s2_) - start;
            rk.kvStart = start;
        } else {
            kvLen = hasLensK_ ? Clamp(lensKGm_.GetValue(rk.b), s2_) : s2_;
            rk.kvStart = paged_ ? 0 : static_cast<uint64_t>(rk.b) * s2_;
        }
        if (paged_) {                      // keys end at the first page outside the cache
            const uint32_t pages = CeilDiv(kvLen, pageSize_);
            for (uint32_t j = 0; j < pages; ++j) {
                const int32_t page = btGm_.GetValue(static_cast<uint64_t>(rk.b) * maxBlocks_ + j);
                if (page < 0 || static_cast<uint32_t>(page) >= blockCount_) {
                    kvLen = j * pageSize_;
                    break;
                }
            }
        }
        if (mode_ == 0) {
            rk.nvis = kvLen;
        } else {
            const int64_t n = static_cast<int64_t>(kvLen) - qLen + s + 1;
            rk.nvis = Clamp(n, kvLen);
        }
        return rk;
    }

    // ---- AIC ---------------------------------------------------------------------------------
    __aicore__ inline void Cube()
    {
        const uint32_t mPad = CeilDiv(n1_, 16) * 16;
        const uint32_t nBlk = bs_ / 16;
        pipe_.InitBuffer(qL1_, mPad * kD * sizeof(T));
        pipe_.InitBuffer(kL1_, bs_ * kD * sizeof(T));
        pipe_.InitBuffer(a2_, mPad * kD * sizeof(T));
        pipe_.InitBuffer(b2_, bs_ * kD * sizeof(T));
        pipe_.InitBuffer(c1_, mPad * bs_ * sizeof(float));
        LocalTensor<T> qL1 = qL1_.Get<T>();
        LocalTensor<T> kL1 = kL1_.Get<T>();
        LocalTensor<T> a2 = a2_.Get<T>();
        LocalTensor<T> b2 = b2_.Get<T>();
        LocalTensor<float> c1 = c1_.Get<float>();
        for (uint32_t row = group_; row < numRows_; row += groups_) {
            const RowKeys rk = Keys(row);
            const uint32_t nvis = rk.nvis;
            if (nvis == 0) continue;
            // q[row]: N1 x 128 ND -> NZ (mPad rows per C0 column) -> L0A ZZ (one fractal row
            // per 16 heads: fractal (i, c) of NZ sits at c * mBlk + i).
            DataCopy(qL1, qGm_[static_cast<uint64_t>(row) * n1_ * kD],
                     Nd2NzParams(1, n1_, kD, 0, kD, mPad, 1, 0));
            SetFlag<HardEvent::MTE2_MTE1>(0);
            WaitFlag<HardEvent::MTE2_MTE1>(0);
            for (uint32_t i = 0; i < mPad / 16; ++i) {
                LoadData(a2[i * (kD / 16) * 256], qL1,
                         LoadData2DParams(i, kD / 16, mPad / 16, 0, 0, false, 0));
            }
            for (uint32_t j0 = 0; j0 < nvis; j0 += bs_) {
                const uint32_t valid = nvis - j0 < bs_ ? nvis - j0 : bs_;
                // keys j0 .. j0 + valid: ND [valid, 128] -> NZ with bs rows per C0 column.
                // That NZ, fractal (key block i, d block c) at c * nBlk + i with keys as rows,
                // is exactly ZN for B = K^T [128, bs]: no transpose, one LoadData per d block.
                CopyKeys(kL1, rk, j0, valid);
                SetFlag<HardEvent::MTE2_MTE1>(0);
                WaitFlag<HardEvent::MTE2_MTE1>(0);
                const uint32_t vBlk = CeilDiv(valid, 16);
                for (uint32_t c = 0; c < kD / 16; ++c) {
                    LoadData(b2[c * vBlk * 256], kL1,
                             LoadData2DParams(c * nBlk, vBlk, 1, 0, 0, false, 0));
                }
                SetFlag<HardEvent::MTE1_M>(0);
                WaitFlag<HardEvent::MTE1_M>(0);
                MmadParams mm;
                mm.m = n1_;
                mm.n = valid;
                mm.k = kD;
                mm.cmatrixInitVal = true;
                Mmad(c1, a2, b2, mm);
                SetFlag<HardEvent::M_FIX>(0);
                WaitFlag<HardEvent::M_FIX>(0);
                FixpipeParamsV220 fp;
                fp.nSize = valid;
                fp.mSize = n1_;
                fp.srcStride = mPad;
                fp.dstStride = bs_;
                fp.quantPre = QuantMode_t::NoQuant;
                Fixpipe<float, float, CFG_ROW_MAJOR>(scoreGm_, c1, fp);
                SetFlag<HardEvent::FIX_M>(0);          // L0C free for the next chunk
                WaitFlag<HardEvent::FIX_M>(0);
                SetFlag<HardEvent::M_MTE1>(0);         // L0A/L0B free
                WaitFlag<HardEvent::M_MTE1>(0);
                SetFlag<HardEvent::MTE1_MTE2>(0);      // L1 free
                WaitFlag<HardEvent::MTE1_MTE2>(0);
                CrossCoreSetFlag<2, PIPE_FIX>(kFlagCubeDone);
                CrossCoreWaitFlag(kFlagVecDone);       // both AIVs have the chunk in UB
            }
        }
    }

    // ---- AIV ---------------------------------------------------------------------------------
    __aicore__ inline void Vector()
    {
        const uint32_t sub = GetSubBlockIdx();
        const uint32_t kPad = CeilDiv(k_, 8) * 8;
        pipe_.InitBuffer(sc_, n1_ * half_ * sizeof(float));
        pipe_.InitBuffer(acc_, half_ * sizeof(float));
        pipe_.InitBuffer(listS_, kPad * sizeof(float));
        pipe_.InitBuffer(listI_, kPad * sizeof(int32_t));
        pipe_.InitBuffer(otherS_, kPad * sizeof(float));
        pipe_.InitBuffer(otherI_, kPad * sizeof(int32_t));
        pipe_.InitBuffer(out_, kPad * sizeof(int32_t));
        pipe_.InitBuffer(cnt_, 8 * sizeof(int32_t));
        const uint32_t vPad = CeilDiv(k_, 32 / sizeof(T)) * (32 / sizeof(T));
        if (hasValues_) pipe_.InitBuffer(outV_, vPad * sizeof(T));
        LocalTensor<float> sc = sc_.Get<float>();
        LocalTensor<float> acc = acc_.Get<float>();
        LocalTensor<float> listS = listS_.Get<float>();
        LocalTensor<int32_t> listI = listI_.Get<int32_t>();
        LocalTensor<float> otherS = otherS_.Get<float>();
        LocalTensor<int32_t> otherI = otherI_.Get<int32_t>();
        LocalTensor<int32_t> out = out_.Get<int32_t>();
        LocalTensor<int32_t> cnt = cnt_.Get<int32_t>();
        LocalTensor<T> outV;
        if (hasValues_) outV = outV_.Get<T>();
        uint32_t exchanged = 0;
        for (uint32_t row = group_; row < numRows_; row += groups_) {
            const uint32_t nvis = Keys(row).nvis;
            uint32_t count = 0;
            for (uint32_t j0 = 0; j0 < nvis; j0 += bs_) {
                CrossCoreWaitFlag(kFlagCubeDone);
                // this sub-block's half of the chunk, all heads: N1 bursts of bs/2 floats.
                DataCopyParams cp(n1_, half_ * sizeof(float) / 32, half_ * sizeof(float) / 32, 0);
                DataCopy(sc, scoreGm_[sub * half_], cp);
                SetFlag<HardEvent::MTE2_V>(0);
                WaitFlag<HardEvent::MTE2_V>(0);
                CrossCoreSetFlag<2, PIPE_MTE2>(kFlagVecDone);
                Duplicate(acc, 0.0f, half_);
                for (uint32_t h = 0; h < n1_; ++h) {
                    const float w = static_cast<float>(
                        wGm_.GetValue(static_cast<uint64_t>(row) * n1_ + h));
                    LocalTensor<float> x = sc[h * half_];
                    Maxs(x, x, 0.0f, half_);                 // ReLU
                    Muls(x, x, w, half_);
                    Add(acc, acc, x, half_);
                }
                SetFlag<HardEvent::V_S>(0);
                WaitFlag<HardEvent::V_S>(0);
                const uint32_t first = j0 + sub * half_;
                for (uint32_t t = 0; t < half_ && first + t < nvis; ++t) {
                    count = Insert(listS, listI, count, acc.GetValue(t) + 0.0f,
                                   static_cast<int32_t>(first + t));
                }
                SetFlag<HardEvent::S_V>(0);
                WaitFlag<HardEvent::S_V>(0);
                SetFlag<HardEvent::V_MTE2>(0);
                WaitFlag<HardEvent::V_MTE2>(0);
            }
            if (nvis == 0) {
                if (sub == 0) WriteRow(out, outV, row, 0, kPad, vPad);
                continue;
            }
            const uint32_t slot = exchanged++ % 2;
            if (sub == 1) {
                cnt.SetValue(0, static_cast<int32_t>(count));
                SetFlag<HardEvent::S_MTE3>(0);
                WaitFlag<HardEvent::S_MTE3>(0);
                DataCopy(exCountGm_[slot], cnt, 8);
                if (count > 0) {
                    DataCopyPad(exScoreGm_[slot], listS, DataCopyExtParams(1, count * 4, 0, 0, 0));
                    DataCopyPad(exIdxGm_[slot], listI, DataCopyExtParams(1, count * 4, 0, 0, 0));
                }
                SetFlag<HardEvent::MTE3_S>(0);         // the lists are rewritten for the next row
                WaitFlag<HardEvent::MTE3_S>(0);
            }
            CrossCoreSetFlag<1, PIPE_MTE3>(kFlagSubSync);
            CrossCoreWaitFlag(kFlagSubSync);
            if (sub == 0) {
                DataCopy(cnt, exCountGm_[slot], 8);
                SetFlag<HardEvent::MTE2_S>(0);
                WaitFlag<HardEvent::MTE2_S>(0);
                const uint32_t other = static_cast<uint32_t>(cnt.GetValue(0));
                if (other > 0) {
                    DataCopyPad(otherS, exScoreGm_[slot], DataCopyExtParams(1, other * 4, 0, 0, 0),
                                DataCopyPadExtParams<float>(false, 0, 0, 0.0f));
                    DataCopyPad(otherI, exIdxGm_[slot], DataCopyExtParams(1, other * 4, 0, 0, 0),
                                DataCopyPadExtParams<int32_t>(false, 0, 0, 0));
                }
                SetFlag<HardEvent::MTE2_S>(0);
                WaitFlag<HardEvent::MTE2_S>(0);
                // merge of two lists sorted by (score desc, index asc)
                uint32_t a = 0, c = 0, n = 0;
                while (n < k_ && (a < count || c < other)) {
                    bool takeA;
                    if (a >= count) {
                        takeA = false;
                    } else if (c >= other) {
                        takeA = true;
                    } else {
                        const float sa = listS.GetValue(a), sb = otherS.GetValue(c);
                        takeA = sa > sb || (sa == sb && listI.GetValue(a) < otherI.GetValue(c));
                    }
                    if (hasValues_) {
                        outV.SetValue(n, static_cast<T>(takeA ? listS.GetValue(a)
                                                              : otherS.GetValue(c)));
                    }
                    out.SetValue(n++, takeA ? listI.GetValue(a++) : otherI.GetValue(c++));
                }
                WriteRow(out, outV, row, n, kPad, vPad);
            }
        }
    }

private:
    // Keys j0 .. j0 + valid of the row's batch into kL1 as NZ with bs_ rows per C0 column: one
    // copy, or with a paged key one per page the chunk spans (a page's rows land at their row
    // of the chunk: NZ places each row by itself).
    __aicore__ inline void CopyKeys(LocalTensor<T>& kL1, const RowKeys& rk, uint32_t j0,
                                    uint32_t valid)
    {
        if (!paged_) {
            DataCopy(kL1, kGm_[(rk.kvStart + j0) * kD],
                     Nd2NzParams(1, valid, kD, 0, kD, bs_, 1, 0));
            return;
        }
        constexpr uint32_t c0 = 32 / sizeof(T);
        for (uint32_t pos = j0; pos < j0 + valid;) {
            const uint32_t off = pos % pageSize_;
            const uint32_t left = j0 + valid - pos;
            const uint32_t seg = pageSize_ - off < left ? pageSize_ - off : left;
            const int32_t page =
                btGm_.GetValue(static_cast<uint64_t>(rk.b) * maxBlocks_ + pos / pageSize_);
            DataCopy(kL1[(pos - j0) * c0],
                     kGm_[(static_cast<uint64_t>(page) * pageSize_ + off) * kD],
                     Nd2NzParams(1, seg, kD, 0, kD, bs_, 1, 0));
            pos += seg;
        }
    }

    // Inserts (s, j) into the list sorted by score desc; keys come in ascending j, so an equal
    // score goes after the ones already there (ties: smaller index first). Returns the new count.
    __aicore__ inline uint32_t Insert(LocalTensor<float>& ls, LocalTensor<int32_t>& li,
                                      uint32_t count, float s, int32_t j)
    {
        if (count == k_ && !(s > ls.GetValue(count - 1))) return count;
        uint32_t pos = count < k_ ? count : k_ - 1;
        while (pos > 0 && ls.GetValue(pos - 1) < s) {
            ls.SetValue(pos, ls.GetValue(pos - 1));
            li.SetValue(pos, li.GetValue(pos - 1));
            --pos;
        }
        ls.SetValue(pos, s);
        li.SetValue(pos, j);
        return count < k_ ? count + 1 : count;
    }

    // out[0, n) holds indices (outV[0, n) their scores when values are written); pads with -1
    // (-inf) and writes sparse_indices[row] (sparse_values[row]).
    __aicore__ inline void WriteRow(LocalTensor<int32_t>& out, LocalTensor<T>& outV, uint32_t row,
                                    uint32_t n, uint32_t kPad, uint32_t vPad)
    {
        for (uint32_t t = n; t < kPad; ++t) out.SetValue(t, -1);
        if (hasValues_) {
            const T negInf = static_cast<T>(-__builtin_inff());
            for (uint32_t t = n; t < vPad; ++t) outV.SetValue(t, negInf);
        }
        SetFlag<HardEvent::S_MTE3>(0);
        WaitFlag<HardEvent::S_MTE3>(0);
        DataCopyPad(outGm_[static_cast<uint64_t>(row) * k_], out,
                    DataCopyExtParams(1, k_ * sizeof(int32_t), 0, 0, 0));
        if (hasValues_) {
            DataCopyPad(valGm_[static_cast<uint64_t>(row) * k_], outV,
                        DataCopyExtParams(1, k_ * sizeof(T), 0, 0, 0));
        }
        SetFlag<HardEvent::MTE3_S>(0);                 // out is reused for the next row
        WaitFlag<HardEvent::MTE3_S>(0);
    }

    static constexpr uint32_t kD = 128;
    TPipe pipe_;
    TBuf<TPosition::A1> qL1_;
    TBuf<TPosition::B1> kL1_;
    TBuf<TPosition::A2> a2_;
    TBuf<TPosition::B2> b2_;
    TBuf<TPosition::CO1> c1_;
    TBuf<TPosition::VECIN> sc_;
    TBuf<TPosition::VECCALC> acc_, listS_, listI_, otherS_, otherI_, cnt_;
    TBuf<TPosition::VECOUT> out_, outV_;
    GlobalTensor<T> qGm_, kGm_, valGm_;
    GlobalTensor<W> wGm_;
    GlobalTensor<int32_t> outGm_, lensQGm_, lensKGm_, btGm_;
    GlobalTensor<float> scoreGm_;
    GlobalTensor<int32_t> exCountGm_[2], exIdxGm_[2];
    GlobalTensor<float> exScoreGm_[2];
    uint32_t numRows_ = 0, s1_ = 0, s2_ = 0, batch_ = 0, n1_ = 0, bs_ = 0, k_ = 0, mode_ = 0;
    uint32_t half_ = 0, group_ = 0, groups_ = 1;
    uint32_t pageSize_ = 0, blockCount_ = 0, maxBlocks_ = 0;
    bool qTnd_ = false, kTnd_ = false, paged_ = false;
    bool hasLensQ_ = false, hasLensK_ = false, hasValues_ = false;
};

template <typename T, typename W>
__aicore__ void Run(GM_ADDR query, GM_ADDR key, GM_ADDR weights, GM_ADDR lensQuery,
                    GM_ADDR lensKey, GM_ADDR blockTable, GM_ADDR indices, GM_ADDR values,
                    GM_ADDR workspace, GM_ADDR tiling)
{
    LightningIndexer<T, W> op;
    op.Init(query, key, weights, lensQuery, lensKey, blockTable, indices, values, workspace,
            tiling);
    if ASCEND_IS_AIC {
        op.Cube();
    }
    if ASCEND_IS_AIV {
        op.Vector();
    }
}

#ifdef ASCENDC_TWIN
// the twin launcher (launcher.cpp) runs every dtype pair from one library
#define LI_INSTANTIATE(T, W)                                                                    \
    template void Run<T, W>(GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR,     \
                            GM_ADDR, GM_ADDR, GM_ADDR);
LI_INSTANTIATE(half, half)
LI_INSTANTIATE(half, float)
LI_INSTANTIATE(bfloat16_t, bfloat16_t)
LI_INSTANTIATE(bfloat16_t, float)
#undef LI_INSTANTIATE
#endif

}  // namespace li_ascendc

#ifndef DTYPE_QUERY
#define DTYPE_QUERY half      // CANN's build defines them per dtype; the twin launcher instantiates
#endif                        // every pair
#ifndef DTYPE_WEIGHTS
#define DTYPE_WEIGHTS DTYPE_QUERY
#endif

extern "C" __global__ __aicore__ void lightning_indexer(
    GM_ADDR query, GM_ADDR key, GM_ADDR weights, GM_ADDR actual_seq_lengths_query,
    GM_ADDR actual_seq_lengths_key, GM_ADDR block_table, GM_ADDR sparse_indices,
    GM_ADDR sparse_values, GM_ADDR workspace, GM_ADDR tiling)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    li_ascendc::Run<DTYPE_QUERY, DTYPE_WEIGHTS>(query, key, weights, actual_seq_lengths_query,
                                 actual_seq_lengths_key, block_table, sparse_indices,
                                 sparse_values, workspace, tiling);
}
