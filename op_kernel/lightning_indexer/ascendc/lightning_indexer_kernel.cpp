// npu_lightning_indexer as an AscendC mixed (KERNEL_TYPE_MIX_AIC_1_2) kernel.
//
// Scope (the registry's rule, op_kernel/lightning_indexer/ascendc_twin.py, keeps to it):
//   layout_query BSND or TND, layout_key BSND, TND or PA_BSND, actual_seq_lengths_query / _key
//   where the layout allows (BSND and PA_BSND: per-batch counts, TND: prefix sums; clamped into
//   the tensors, prefix sums made non-decreasing; with a paged key a batch's keys end at its
//   first page-table entry outside [0, block_count)), query and key of one dtype DTYPE_QUERY
//   (half or bfloat16_t), weights of that dtype or float (DTYPE_WEIGHTS), D = 128, N1 <= 64,
//   sparse_mode 0 or 3, every sparse_count the op accepts (1..2048 and 3072..8192 in steps of
//   1024), sparse_values written when the TilingData's return_value is 1 (and its GM address is
//   not null).
//
// Work split: the plan's schedule (op_host/lightning_indexer/tiling.py schedule(), cut by
// op_host/common/schedule.py partition() with TASK_OVERHEAD_STEPS = 1), computed by every core
// from the lengths it reads, with scalar code; the TilingData stays static. A row sees, of its
// batch b's Lk keys, all of them (sparse_mode 0) or the first Lk - Lq + s + 1 (sparse_mode 3,
// clamped to [0, Lk]); rows past their batch's Lq (BSND) or past the last batch (TND) see none.
// A *task* is a row with n_vis > 0, in row order, of ceil(n_vis / block_s2) *steps* (chunks).
// Laid end to end, each task preceded by one step of overhead, the line of total cost is cut
// into C = GetBlockNum() runs of per_core = max(1, ceil(total / C)): core c owns line positions
// [c * per_core, (c + 1) * per_core) (the last core: the rest); a task has one *piece*, a step
// range [begin, end), per core its steps touch. The launch has the plan's num_cores blocks
// (the twin launcher and tiling_adapter.cpp), so C and the cut are the plan's. A piece of a
// whole task writes the row's top-k; a piece of a split task writes its top-k list to its
// workspace slot (slots numbered as partition(): the split tasks' pieces in task order). Then
// every core meets at SyncAll<false>() (only when some task is split: every core computes the
// same schedule), and the AIV 0 of each split task's first core merges its slots (ties: the
// smaller index first) into the row's output. Rows that see no key get -1 (values -inf) from the
// AIV 0 of block row % C (not a task of the plan). Each core merges at most one split task (only
// the task crossing the end of its line range can start on it and go on). SyncAll's hard form
// takes cross-core flagIds 11-14 (its page); this kernel's own flags are 1-3. Under the twin
// only, RunRecorded also records every core's pieces (lightning_indexer_kernel.h).
// Per block, for each of its pieces:
//   AIC  q[r] (N1 x 128, GM ND -> L1 NZ -> L0A), then for each chunk (step) of block_s2 visible
//        keys of the piece: the key chunk (GM ND -> L1 NZ, one copy per page a chunk spans with a
//        paged key -> L0B, which is already ZN for K^T), Mmad (all N1 heads at
//        once, float in L0C), Fixpipe NoQuant into the block's GM workspace [N1, block_s2]
//        (float), CrossCoreSetFlag mode 2 -> both AIVs; waits until both AIVs have copied it.
//   AIV  sub-block v takes keys [v * bs/2, (v+1) * bs/2) of every chunk: DataCopy to UB, ReLU
//        (Maxs 0), * w[h] (Muls), sum over heads (Add), then a running top-k list (score desc,
//        key index asc) kept in UB with scalar GetValue/SetValue insertion (the twin has no sort).
//        At the piece's end AIV 1 writes its list to GM (two exchange slots, by piece parity),
//        both AIVs meet at a mode-1 cross-core barrier, and AIV 0 merges the two lists (ties:
//        smaller index) and writes min(K, n_vis) indices, then -1 padding, to sparse_indices[r]
//        (and the scores, rounded to DTYPE_QUERY, then -inf, to sparse_values[r]), or, for a
//        piece of a split task, the merged list to its slot.
// UB (AIV): the running list (K scores + K indices) is the only K-sized buffer; every merge
// (MergeOut) streams its second list from GM and its result to GM in windows of kWin = 256
// entries, so K = 8192 needs 64 KiB of lists + 4 windows (4 KiB) + the chunk (N1 x bs/2 floats,
// at most 32 KiB) of the 192 KiB. The split-task merge keeps its running list in UB and passes
// each intermediate merge through the core's exchange slot 0 (free after SyncAll).
// head_group of the plan is not used (all N1 <= 64 heads fit one Mmad: 64 x 256 floats in L0C).
#include "kernel_operator.h"
#include "tiling_data.h"        // LightningIndexerTilingData (generated from tiling.TILING_DATA)

#include "kernel_common.h"      // op_kernel/common/ascendc: the cube's steps, the launch
#include "lightning_indexer_kernel.h"
#include "lightning_indexer_schedule.h"     // TaskLine: the plan's schedule, computed per core

using namespace AscendC;

namespace li_ascendc {

using cann_attention_ascendc::FixpipeToGm;
using cann_attention_ascendc::MatmulL0;
using cann_attention_ascendc::PieceLog;

constexpr uint16_t kFlagCubeDone = 1;    // AIC -> both AIVs: a chunk of scores is in GM
constexpr uint16_t kFlagVecDone = 2;     // both AIVs -> AIC: the chunk has been copied to UB
constexpr uint16_t kFlagSubSync = 3;     // AIV <-> AIV barrier before the top-k merge
// A list in GM: count, scores, indices (lightning_indexer_kernel.h).
struct ListGm {
    GlobalTensor<int32_t> cnt;
    GlobalTensor<float> score;
    GlobalTensor<int32_t> idx;
};

__aicore__ inline void BindList(ListGm& l, __gm__ float* base, uint32_t k)
{
    l.cnt.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(base), 8);
    l.score.SetGlobalBuffer(base + 8, k);
    l.idx.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(base + 8 + k), k);
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
        n1_ = td->n1;
        bs_ = td->block_s2;
        k_ = td->sparse_count;
        // CANN hands the kernel sparse_values' address whether or not the op returns values
        // (an empty (0,) output then): the TilingData says whether to write it
        hasValues_ = td->return_value != 0 && values != nullptr;
        if (hasValues_) {
            valGm_.SetGlobalBuffer(reinterpret_cast<__gm__ T*>(values),
                                   static_cast<uint64_t>(numRows_) * k_);
        }
        group_ = cann_attention_ascendc::CoreGroup();
        cores_ = GetBlockNum();
        line_.Init(td, lensQuery, lensKey, blockTable, group_, cores_);
        half_ = bs_ / 2;
        qGm_.SetGlobalBuffer(reinterpret_cast<__gm__ T*>(query),
                             static_cast<uint64_t>(numRows_) * n1_ * kD);
        kGm_.SetGlobalBuffer(reinterpret_cast<__gm__ T*>(key), line_.Keys().Rows() * kD);
        wGm_.SetGlobalBuffer(reinterpret_cast<__gm__ W*>(weights),
                             static_cast<uint64_t>(numRows_) * n1_);
        outGm_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(indices),
                               static_cast<uint64_t>(numRows_) * k_);
        const uint64_t wsFloats = WorkspaceFloats(n1_, bs_, k_);
        __gm__ float* ws = reinterpret_cast<__gm__ float*>(workspace) + group_ * wsFloats;
        scoreGm_.SetGlobalBuffer(ws, static_cast<uint64_t>(n1_) * bs_);
        for (int slot = 0; slot < 2; ++slot) {
            BindList(exchange_[slot], ws + static_cast<uint64_t>(n1_) * bs_ + slot * ListFloats(k_),
                     k_);
        }
        splitBase_ = reinterpret_cast<__gm__ float*>(workspace) + cores_ * wsFloats;
    }

#ifdef ASCENDC_TWIN
    // Twin only: record the pieces this core runs (lightning_indexer_kernel.h, RunRecorded).
    __aicore__ inline void Record(GM_ADDR record)
    {
        log_.Bind(record, group_, 1 + 4 * static_cast<uint64_t>(numRows_));
    }
#endif

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
        Sched sched;
        line_.Start(sched);
        Piece piece;
        while (line_.NextPiece(sched, piece)) {
            if (!piece.mine) continue;
            log_.Note(piece);
            const uint32_t row = piece.row;
            const RowKeys& rk = piece.keys;
            const uint32_t nvis = rk.nvis;
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
            for (uint32_t step = piece.begin; step < piece.end; ++step) {
                const uint32_t j0 = step * bs_;
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
                MatmulL0(c1, a2, b2, n1_, valid, kD, true);
                FixpipeToGm(scoreGm_, c1, n1_, valid, mPad, bs_);    // L0C free for the next chunk
                SetFlag<HardEvent::M_MTE1>(0);         // L0A/L0B free
                WaitFlag<HardEvent::M_MTE1>(0);
                SetFlag<HardEvent::MTE1_MTE2>(0);      // L1 free
                WaitFlag<HardEvent::MTE1_MTE2>(0);
                CrossCoreSetFlag<2, PIPE_FIX>(kFlagCubeDone);
                CrossCoreWaitFlag(kFlagVecDone);       // both AIVs have the chunk in UB
            }
        }
        if (sched.anySplit) SyncAll<false>();          // the AIVs merge the split tasks after it
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
        pipe_.InitBuffer(winS_, kWin * sizeof(float));
        pipe_.InitBuffer(winI_, kWin * sizeof(int32_t));
        pipe_.InitBuffer(dS_, kWin * sizeof(float));
        pipe_.InitBuffer(dI_, kWin * sizeof(int32_t));
        pipe_.InitBuffer(cnt_, 8 * sizeof(int32_t));
        if (hasValues_) pipe_.InitBuffer(outV_, kWin * sizeof(T));
        LocalTensor<float> sc = sc_.Get<float>();
        LocalTensor<float> acc = acc_.Get<float>();
        LocalTensor<float> listS = listS_.Get<float>();
        LocalTensor<int32_t> listI = listI_.Get<int32_t>();
        winS = winS_.Get<float>();
        winI = winI_.Get<int32_t>();
        dS = dS_.Get<float>();
        dI = dI_.Get<int32_t>();
        cnt = cnt_.Get<int32_t>();
        if (hasValues_) outV = outV_.Get<T>();
        uint32_t exchanged = 0;
        bool merges = false;             // this core merges a split task (at most one: the one
        Piece split;                     // crossing the boundary after its first piece)
        Sched sched;
        line_.Start(sched);
        Piece piece;
        while (line_.NextPiece(sched, piece)) {
            const uint32_t row = piece.row;
            if (piece.keys.nvis == 0) {
                if (sub == 0 && row % cores_ == group_) {
                    MergeOut(listS, listI, 0, nullptr, 0, true, row, nullptr);
                }
                continue;
            }
            if (!piece.mine) continue;
            log_.Note(piece);
            if (piece.MergesOn(group_)) {
                merges = true;
                split = piece;
            }
            const uint32_t nvis = piece.keys.nvis;
            uint32_t count = 0;
            for (uint32_t step = piece.begin; step < piece.end; ++step) {
                const uint32_t j0 = step * bs_;
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
            const uint32_t slot = exchanged++ % 2;
            if (sub == 1) WriteList(exchange_[slot], listS, listI, count);
            CrossCoreSetFlag<1, PIPE_MTE3>(kFlagSubSync);
            CrossCoreWaitFlag(kFlagSubSync);
            if (sub == 0) {
                const uint32_t other = ReadCount(exchange_[slot]);
                if (piece.slot < 0) {
                    MergeOut(listS, listI, count, &exchange_[slot], other, true, row, nullptr);
                } else {
                    ListGm dst;
                    BindList(dst, splitBase_ + static_cast<uint64_t>(piece.slot) * ListFloats(k_),
                             k_);
                    MergeOut(listS, listI, count, &exchange_[slot], other, false, 0, &dst);
                }
            }
        }
        if (!sched.anySplit) return;
        SyncAll<false>();                  // every piece's list is in its slot
        if (sub != 0 || !merges) return;
        // the split task whose first piece ran here: top-k of the union of its slots' lists,
        // merged one slot at a time (the running list in UB, the slot streamed from GM; the
        // merged list goes through this core's exchange slot 0, the last one to the row)
        ListGm src;
        BindList(src, splitBase_ + static_cast<uint64_t>(split.slotBase) * ListFloats(k_), k_);
        uint32_t n = ReadList(src, listS, listI);
        for (uint32_t i = 1; i < split.pieces; ++i) {
            BindList(src, splitBase_ + static_cast<uint64_t>(split.slotBase + i) * ListFloats(k_),
                     k_);
            const uint32_t other = ReadCount(src);
            if (i + 1 == split.pieces) {
                MergeOut(listS, listI, n, &src, other, true, split.row, nullptr);
            } else {
                MergeOut(listS, listI, n, &src, other, false, 0, &exchange_[0]);
                SetFlag<HardEvent::MTE3_MTE2>(0);
                WaitFlag<HardEvent::MTE3_MTE2>(0);
                n = ReadList(exchange_[0], listS, listI);
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
        constexpr uint32_t c0 = 32 / sizeof(T);
        for (uint32_t pos = j0; pos < j0 + valid;) {
            uint32_t seg = j0 + valid - pos;
            const uint64_t keyRow = line_.Keys().Row(rk.b, rk.kvStart, pos, seg);
            DataCopy(kL1[(pos - j0) * c0], kGm_[keyRow * kD],
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

    // Streams the first min(K, na + nb) of two lists sorted by (score desc, index asc) to a
    // sink: list A whole in UB (as, ai), list B (nb entries) read from GM in windows of kWin;
    // equal scores: the smaller index first. The sink is the GM list dst (then its count), or,
    // toRow, sparse_indices[row] (and sparse_values[row], scores rounded to T) padded with -1
    // (-inf) to K. The merged entries are written in windows of kWin (dS, dI, outV).
    __aicore__ inline void MergeOut(LocalTensor<float>& as, LocalTensor<int32_t>& ai, uint32_t na,
                                    ListGm* src, uint32_t nb, bool toRow, uint32_t row,
                                    ListGm* dst)
    {
        const uint32_t total = na + nb < k_ ? na + nb : k_;
        uint32_t a = 0, c = 0, n = 0, bBase = 0, bLen = 0, dBase = 0;
        while (n < total) {
            if (c < nb && c == bBase + bLen) {          // the next window of B
                bBase = c;
                bLen = nb - c < kWin ? nb - c : kWin;
                SetFlag<HardEvent::S_MTE2>(0);
                WaitFlag<HardEvent::S_MTE2>(0);
                DataCopyPad(winS, src->score[bBase], DataCopyExtParams(1, bLen * 4, 0, 0, 0),
                            DataCopyPadExtParams<float>(false, 0, 0, 0.0f));
                DataCopyPad(winI, src->idx[bBase], DataCopyExtParams(1, bLen * 4, 0, 0, 0),
                            DataCopyPadExtParams<int32_t>(false, 0, 0, 0));
                SetFlag<HardEvent::MTE2_S>(0);
                WaitFlag<HardEvent::MTE2_S>(0);
            }
            bool takeA;
            if (a >= na) {
                takeA = false;
            } else if (c >= nb) {
                takeA = true;
            } else {
                const float sa = as.GetValue(a), sb = winS.GetValue(c - bBase);
                takeA = sa > sb || (sa == sb && ai.GetValue(a) < winI.GetValue(c - bBase));
            }
            if (takeA) {
                dS.SetValue(n - dBase, as.GetValue(a));
                dI.SetValue(n - dBase, ai.GetValue(a++));
            } else {
                dS.SetValue(n - dBase, winS.GetValue(c - bBase));
                dI.SetValue(n - dBase, winI.GetValue(c - bBase));
                ++c;
            }
            if (++n - dBase == kWin) {
                Flush(toRow, row, dst, dBase, kWin);
                dBase = n;
            }
        }
        if (n > dBase) Flush(toRow, row, dst, dBase, n - dBase);
        if (!toRow) {
            cnt.SetValue(0, static_cast<int32_t>(n));
            SetFlag<HardEvent::S_MTE3>(0);
            WaitFlag<HardEvent::S_MTE3>(0);
            DataCopy(dst->cnt, cnt, 8);
            SetFlag<HardEvent::MTE3_S>(0);
            WaitFlag<HardEvent::MTE3_S>(0);
            return;
        }
        // the padding: -1 (and -inf) from n to K
        if (n == k_) return;
        const T negInf = static_cast<T>(-__builtin_inff());
        for (uint32_t t = 0; t < kWin; ++t) {
            dI.SetValue(t, -1);
            if (hasValues_) outV.SetValue(t, negInf);
        }
        SetFlag<HardEvent::S_MTE3>(0);
        WaitFlag<HardEvent::S_MTE3>(0);
        for (uint32_t pos = n; pos < k_; pos += kWin) {
            const uint32_t len = k_ - pos < kWin ? k_ - pos : kWin;
            const uint64_t at = static_cast<uint64_t>(row) * k_ + pos;
            DataCopyPad(outGm_[at], dI, DataCopyExtParams(1, len * sizeof(int32_t), 0, 0, 0));
            if (hasValues_) {
                DataCopyPad(valGm_[at], outV, DataCopyExtParams(1, len * sizeof(T), 0, 0, 0));
            }
        }
        SetFlag<HardEvent::MTE3_S>(0);                 // the windows are rewritten next
        WaitFlag<HardEvent::MTE3_S>(0);
    }

    // Entries [at, at + len) of a merged list, in dS / dI, to its sink (MergeOut).
    __aicore__ inline void Flush(bool toRow, uint32_t row, ListGm* dst, uint32_t at, uint32_t len)
    {
        if (toRow && hasValues_) {
            for (uint32_t t = 0; t < len; ++t) outV.SetValue(t, static_cast<T>(dS.GetValue(t)));
        }
        SetFlag<HardEvent::S_MTE3>(0);
        WaitFlag<HardEvent::S_MTE3>(0);
        if (toRow) {
            const uint64_t o = static_cast<uint64_t>(row) * k_ + at;
            DataCopyPad(outGm_[o], dI, DataCopyExtParams(1, len * sizeof(int32_t), 0, 0, 0));
            if (hasValues_) {
                DataCopyPad(valGm_[o], outV, DataCopyExtParams(1, len * sizeof(T), 0, 0, 0));
            }
        } else {
            DataCopyPad(dst->score[at], dS, DataCopyExtParams(1, len * 4, 0, 0, 0));
            DataCopyPad(dst->idx[at], dI, DataCopyExtParams(1, len * 4, 0, 0, 0));
        }
        SetFlag<HardEvent::MTE3_S>(0);                 // the windows are rewritten next
        WaitFlag<HardEvent::MTE3_S>(0);
    }

    // A list of n entries to GM (count, then the n scores and indices).
    __aicore__ inline void WriteList(ListGm& dst, LocalTensor<float>& ls, LocalTensor<int32_t>& li,
                                     uint32_t n)
    {
        cnt.SetValue(0, static_cast<int32_t>(n));
        SetFlag<HardEvent::S_MTE3>(0);
        WaitFlag<HardEvent::S_MTE3>(0);
        DataCopy(dst.cnt, cnt, 8);
        if (n > 0) {
            DataCopyPad(dst.score, ls, DataCopyExtParams(1, n * 4, 0, 0, 0));
            DataCopyPad(dst.idx, li, DataCopyExtParams(1, n * 4, 0, 0, 0));
        }
        SetFlag<HardEvent::MTE3_S>(0);         // the lists are rewritten next
        WaitFlag<HardEvent::MTE3_S>(0);
    }

    // A GM list's count (clamped to [0, K]).
    __aicore__ inline uint32_t ReadCount(ListGm& src)
    {
        SetFlag<HardEvent::S_MTE2>(0);
        WaitFlag<HardEvent::S_MTE2>(0);
        DataCopy(cnt, src.cnt, 8);
        SetFlag<HardEvent::MTE2_S>(0);
        WaitFlag<HardEvent::MTE2_S>(0);
        const int32_t got = cnt.GetValue(0);
        return got < 0 ? 0 : (static_cast<uint32_t>(got) > k_ ? k_ : got);
    }

    // A list from GM into (ls, li); returns its count.
    __aicore__ inline uint32_t ReadList(ListGm& src, LocalTensor<float>& ls,
                                        LocalTensor<int32_t>& li)
    {
        const uint32_t n = ReadCount(src);
        if (n > 0) {
            DataCopyPad(ls, src.score, DataCopyExtParams(1, n * 4, 0, 0, 0),
                        DataCopyPadExtParams<float>(false, 0, 0, 0.0f));
            DataCopyPad(li, src.idx, DataCopyExtParams(1, n * 4, 0, 0, 0),
                        DataCopyPadExtParams<int32_t>(false, 0, 0, 0));
        }
        SetFlag<HardEvent::MTE2_S>(0);
        WaitFlag<HardEvent::MTE2_S>(0);
        return n;
    }

    static constexpr uint32_t kD = 128;
    static constexpr uint32_t kWin = 256;   // entries per window of a streamed merge (MergeOut)
    TPipe pipe_;
    TBuf<TPosition::A1> qL1_;
    TBuf<TPosition::B1> kL1_;
    TBuf<TPosition::A2> a2_;
    TBuf<TPosition::B2> b2_;
    TBuf<TPosition::CO1> c1_;
    TBuf<TPosition::VECIN> sc_;
    TBuf<TPosition::VECCALC> acc_, listS_, listI_, winS_, winI_, cnt_;
    TBuf<TPosition::VECOUT> dS_, dI_, outV_;
    LocalTensor<float> winS, dS;             // MergeOut's windows: B in, merged out
    LocalTensor<int32_t> winI, dI, cnt;
    LocalTensor<T> outV;
    GlobalTensor<T> qGm_, kGm_, valGm_;
    GlobalTensor<W> wGm_;
    GlobalTensor<int32_t> outGm_;
    TaskLine line_;                          // the plan's schedule
    GlobalTensor<float> scoreGm_;
    ListGm exchange_[2];
    __gm__ float* splitBase_ = nullptr;     // the split tasks' list slots
    PieceLog log_;                           // twin only: the pieces run (RunRecorded)
    uint32_t numRows_ = 0, n1_ = 0, bs_ = 0, k_ = 0;
    uint32_t half_ = 0, group_ = 0, cores_ = 1;
    bool hasValues_ = false;
};

template <typename T, typename W>
__aicore__ void Run(GM_ADDR query, GM_ADDR key, GM_ADDR weights, GM_ADDR lensQuery,
                    GM_ADDR lensKey, GM_ADDR blockTable, GM_ADDR indices, GM_ADDR values,
                    GM_ADDR workspace, GM_ADDR tiling)
{
    LightningIndexer<T, W> op;
    op.Init(query, key, weights, lensQuery, lensKey, blockTable, indices, values, workspace,
            tiling);
    cann_attention_ascendc::RunSides(op);
}

#ifdef ASCENDC_TWIN
template <typename T, typename W>
__aicore__ void RunRecorded(GM_ADDR query, GM_ADDR key, GM_ADDR weights, GM_ADDR lensQuery,
                            GM_ADDR lensKey, GM_ADDR blockTable, GM_ADDR indices, GM_ADDR values,
                            GM_ADDR workspace, GM_ADDR tiling, GM_ADDR record)
{
    LightningIndexer<T, W> op;
    op.Init(query, key, weights, lensQuery, lensKey, blockTable, indices, values, workspace,
            tiling);
    op.Record(record);
    cann_attention_ascendc::RunSides(op);
}

// the twin launcher (launcher.cpp) runs every dtype pair from one library
#define LI_INSTANTIATE(T, W)                                                                    \
    template void Run<T, W>(GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR,     \
                            GM_ADDR, GM_ADDR, GM_ADDR);                                         \
    template void RunRecorded<T, W>(GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR,       \
                                    GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR);
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

extern "C" __global__ __aicore__ void cann_attention_lightning_indexer(
    GM_ADDR query, GM_ADDR key, GM_ADDR weights, GM_ADDR actual_seq_lengths_query,
    GM_ADDR actual_seq_lengths_key, GM_ADDR block_table, GM_ADDR sparse_indices,
    GM_ADDR sparse_values, GM_ADDR workspace, GM_ADDR tiling)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    li_ascendc::Run<DTYPE_QUERY, DTYPE_WEIGHTS>(query, key, weights, actual_seq_lengths_query,
                                 actual_seq_lengths_key, block_table, sparse_indices,
                                 sparse_values, workspace, tiling);
}
