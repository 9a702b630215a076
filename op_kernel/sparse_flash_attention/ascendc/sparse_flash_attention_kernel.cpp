// npu_sparse_flash_attention as an AscendC mixed (KERNEL_TYPE_MIX_AIC_1_2) kernel for Atlas
// A2/A3 (dav-c220).
//
// Scope (the registry's rule, op_kernel/sparse_flash_attention/ascendc_twin.py, keeps to it):
//   the whole CPU-path contract of docs/sparse_flash_attention.md -- layout_query BSND or TND,
//   layout_kv BSND, TND or PA_BSND with their length lists, sparse_block_size 1..128,
//   sparse_mode 0 or 3, N1 1..128 in the plan's head groups (head_group <= 64), any K, sinks,
//   softmax_max / softmax_sum written when their GM addresses are not null (return_softmax_lse),
//   query / key of one dtype DTYPE_QUERY (half or bfloat16_t), D = 512, Dr = 64. It runs the
//   plan's tiles (TilingData: head_group, block_s2, entries_per_step), which must be an Ascend
//   plan (tiling.py, platform A2/A3).
//
// Work split: the plan's schedule, exactly the pieces the emulator runs
// (op_host/sparse_flash_attention/schedule.py device_schedule -> op_host/common/schedule.py
// partition, on the Ascend plan: split_cost -1, tasks always cut). Every block computes the cut
// itself, with scalar code, from the lengths it reads (no per-call host data: the TilingData
// stays static): task t = g * num_rows + r (query row r, head group g) has
// steps = ceil(W / entries_per_step) with W = min(K, ceil(tau / sbs)) (the visibility below; a
// negative index entry limits only the scan inside a task, not the cut) and costs steps +
// TASK_OVERHEAD_STEPS (1); the tasks lie end to end on a line of length total, per_core =
// max(1, ceil(total / C)) with C = GetBlockNum(), and a step at line position x runs on block
// min(x / per_core, C - 1): a task has one *piece* (steps [begin, end)) per block from that of
// its first step to that of its last (a task without steps: one piece, on the block its first
// step would be on). The launch has the plan's num_cores blocks (the twin launcher and
// tiling_adapter.cpp), so C and the cut are the plan's. A piece of a whole task finishes it
// (sinks, attention_out, softmax_max / softmax_sum); a piece of a split task writes its fp32
// state (m, l, acc [hg, 512]) to its workspace slot (slots numbered as partition(): the split
// tasks' pieces in task order; sparse_flash_attention_kernel.h). A piece starting past step 0
// first reads the window's earlier entries: after a negative one it scans nothing. Then, only
// when some task is split (every core computes the same cut), all cores meet at
// SyncAll<false>(), and both AIVs of each split task's first block merge their rows of its slots
// (online_softmax.combine's log-sum-exp rule: M = max m_i, w_i = exp(m_i - M), l = sum w_i l_i,
// acc = sum w_i acc_i) and finish it as a whole task (sinks, out, lse). A block is the first
// block of at most one split task (only the task crossing the end of its line range can start
// on it and go on). Twin only, RunRecorded also records every core's pieces.
//
// Visibility, exactly as schedule.py computes it (malformed values are made safe the same way):
// lengths clamped into the tensors (BSND / PA_BSND counts to [0, capacity], TND prefix sums
// clamped to [0, T] and made non-decreasing); with a paged key a batch's keys end at its first
// page-table entry outside [0, block_num); tau = Lkv (mode 0) or Lkv - Lq + s + 1 (mode 3),
// clamped at 0, 0 for BSND padding rows and TND rows past the last prefix sum; the task scans
// the window W = min(K, ceil(tau / sbs)) of its index row in steps of entries_per_step entries,
// stops at the first negative entry, skips blocks starting at or past tau and clips the one
// straddling it. No key row outside [0, tau) of its batch is ever addressed.
//
// Per block, for each of its pieces, step by step (a step whose entries give no visible position
// is skipped by all three cores alike):
//   AIC  q [hg, 576] (nope from query, rope from query_rope: GM ND -> L1 NZ, once per piece);
//        the step's visible positions gathered from key / key_rope into L1 as NZ with bsPad rows
//        per C0 column (one Nd2Nz copy per index entry: its run of sbs positions, per page with
//        a paged key), n positions in all; S = q . K^T over 576 in 9 chunks of 64 (L1 -> L0A ZZ /
//        L0B ZN, Mmad accumulating in L0C), Fixpipe float -> GM workspace [hg, bsPad];
//        CrossCoreSetFlag mode 2 -> both AIVs. Waits for P (both AIVs), P [hg, n] (GM, the input
//        dtype) -> L1 NZ -> L0A; V = the gathered keys' first 512 columns, already in L1, loaded
//        transposed (ifTranspose) into L0B as ZN in column chunks that fit L0B; P.V per chunk
//        (k = n) -> L0C -> Fixpipe float -> GM workspace [hg, 512]; flag -> AIVs; waits until
//        both AIVs have read it.
//   AIV  sub-block v owns the heads [v * ceil(hg/2), ...) of the group. Per step: its score rows
//        -> UB, * scale_value, row max (ReduceMax) -> new running max m', exp(s - m') (columns
//        past n set to -inf first, so the P tile's padding is 0), row sum (ReduceSum, fp32 P),
//        P rounded to the input dtype (Cast) -> GM workspace; flag -> AIC. Then P.V rows -> UB,
//        acc = acc * exp(m - m') + P.V, l = l * exp(m - m') + rowsum. At the end of a piece
//        of a split task: (m, l, acc) of its rows -> its slot. At the end of a whole task (or
//        of a split task's merge):
//        sinks join (m'' = max(m, sink), l'' = l exp(m - m'') + exp(sink - m''), acc scaled),
//        out = acc / l (a zero row and (-2e38, 0) when no key was seen, sinks or not), cast to
//        the input dtype -> attention_out; softmax_max = m, softmax_sum = l when asked.
// Padding for a cube that reads whole 16-wide fractals along k (the twin reads only the first
// k, twin/kernel_operator.h): the P tile's columns [n, ceil16(n)) are 0 (exp(-inf)), and the V
// operand's key rows [n, ceil16(n)) hold a copy of the step's first gathered key (finite), so
// the padding adds exact zeros.
#include "kernel_operator.h"
#include "tiling_data.h"   // SparseFlashAttentionTilingData (generated from tiling.TILING_DATA)

#include "balanced_cut.h"       // op_kernel/common/ascendc: the plan's cut of the task line
#include "kernel_common.h"      // op_kernel/common/ascendc: lengths, keys, cube steps, launch
#include "sparse_flash_attention_kernel.h"

using namespace AscendC;

namespace sfa_ascendc {

constexpr uint16_t kFlagScores = 1;    // AIC -> AIVs: a step's scores are in GM
constexpr uint16_t kFlagProbs = 2;     // AIVs -> AIC: P of the step is in GM
constexpr uint16_t kFlagPv = 3;        // AIC -> AIVs: P.V of the step is in GM
constexpr uint16_t kFlagPvRead = 4;    // AIVs -> AIC: P.V has been read (workspace free)
constexpr uint32_t kDk = kD + kDr;     // 576: contraction of the score matmul
constexpr uint32_t kKChunk = 64;       // contraction chunk of the score matmul (L0A / L0B)
constexpr uint32_t kL0Bytes = 64 * 1024;
constexpr float kSoftmaxMin = -2e38f;  // softmax_max of rows that see nothing
constexpr uint64_t kTaskOverhead = 1;  // schedule.py TASK_OVERHEAD_STEPS

// One task: query row, its first head, batch, visibility bound and scan window.
struct Task {
    uint32_t row = 0;
    uint32_t head0 = 0;
    uint32_t b = 0;
    int64_t tau = 0;
    uint32_t window = 0;
    uint64_t kvStart = 0;
};

// The plan's cut of the task line and a task's piece on this core (balanced_cut.h).
using Cut = cann_attention_ascendc::BalancedCut;
using Piece = cann_attention_ascendc::CutPiece;

using cann_attention_ascendc::CeilDiv;
using cann_attention_ascendc::FixpipeToGm;
using cann_attention_ascendc::MatmulL0;

template <typename T>
class SparseFlashAttention {
public:
    __aicore__ inline void Init(GM_ADDR query, GM_ADDR key, GM_ADDR sparseIndices,
                                GM_ADDR blockTable, GM_ADDR lensQuery, GM_ADDR lensKv,
                                GM_ADDR queryRope, GM_ADDR keyRope, GM_ADDR sinks, GM_ADDR out,
                                GM_ADDR softmaxMax, GM_ADDR softmaxSum, GM_ADDR workspace,
                                GM_ADDR tiling)
    {
        const __gm__ SparseFlashAttentionTilingData* td =
            reinterpret_cast<const __gm__ SparseFlashAttentionTilingData*>(tiling);
        numRows_ = static_cast<uint32_t>(td->num_rows);
        numTasks_ = static_cast<uint32_t>(td->num_tasks);
        kvCap_ = static_cast<uint32_t>(td->kv_capacity);
        hg_ = td->head_group;
        bs_ = td->block_s2;
        bsPad_ = Pad16(bs_);
        eps_ = td->entries_per_step;
        batch_ = td->batch;
        s1_ = td->rows_per_batch;
        n1_ = td->n1;
        k_ = td->sparse_count;
        sbs_ = td->sparse_block_size;
        mode_ = td->sparse_mode;
        qTnd_ = td->layout_query == cann_attention_ascendc::kLayoutTnd;
        keys_.Init(td->layout_kv, batch_, kvCap_, td->page_size, td->max_blocks,
                   static_cast<uint32_t>(td->block_num), blockTable);
        lse_ = td->return_softmax_lse != 0 && softmaxMax != nullptr && softmaxSum != nullptr;
        hasSinks_ = td->has_sinks != 0 && sinks != nullptr;
        scale_ = td->scale_value;
        group_ = cann_attention_ascendc::CoreGroup();
        groups_ = GetBlockNum();
        const uint64_t rows = numRows_;
        qGm_.SetGlobalBuffer(reinterpret_cast<__gm__ T*>(query), rows * n1_ * kD);
        qRopeGm_.SetGlobalBuffer(reinterpret_cast<__gm__ T*>(queryRope), rows * n1_ * kDr);
        const uint64_t keyRows = keys_.Rows();
        kGm_.SetGlobalBuffer(reinterpret_cast<__gm__ T*>(key), keyRows * kD);
        kRopeGm_.SetGlobalBuffer(reinterpret_cast<__gm__ T*>(keyRope), keyRows * kDr);
        idxGm_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(sparseIndices), rows * k_);
        lensQ_.Bind(lensQuery, batch_);
        lensKv_.Bind(lensKv, batch_);
        if (hasSinks_) sinksGm_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(sinks), n1_);
        outGm_.SetGlobalBuffer(reinterpret_cast<__gm__ T*>(out), rows * n1_ * kD);
        if (lse_) {
            maxGm_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(softmaxMax), rows * n1_);
            sumGm_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(softmaxSum), rows * n1_);
        }
        __gm__ uint8_t* ws = reinterpret_cast<__gm__ uint8_t*>(workspace) +
                             group_ * WorkspaceBytes(hg_, bs_);
        scoreGm_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(ws),
                                 static_cast<uint64_t>(hg_) * bsPad_);
        probGm_.SetGlobalBuffer(reinterpret_cast<__gm__ T*>(ws + ScoreBytes(hg_, bs_)),
                                static_cast<uint64_t>(hg_) * bsPad_);
        pvGm_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(
                                  ws + ScoreBytes(hg_, bs_) + ProbBytes(hg_, bs_)),
                              static_cast<uint64_t>(hg_) * kD);
        const uint64_t slots = MaxSlots(numTasks_, groups_);
        if (slots > 0) {
            slotGm_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(
                                        reinterpret_cast<__gm__ uint8_t*>(workspace) +
                                        groups_ * WorkspaceBytes(hg_, bs_)),
                                    slots * SlotFloats(hg_));
        }
    }

#ifdef ASCENDC_TWIN
    // Twin only: record the pieces this core runs (sparse_flash_attention_kernel.h,
    // RunRecorded); dropSlot >= 0 leaves that slot out of the merge (a fault for the tests).
    __aicore__ inline void Record(GM_ADDR record, int32_t dropSlot)
    {
        log_.Bind(record, group_, 1 + 4 * (static_cast<uint64_t>(numTasks_) + groups_ - 1));
        dropSlot_ = dropSlot;
    }
#endif

    // ---- the plan's schedule (every core computes it alike from the lengths) ------------------
    // per_core of the task line (task t costs its steps + the overhead; the line holds every
    // task, those without steps too); c then walks from the first task.
    __aicore__ inline void StartCut(Cut& c) const
    {
        uint64_t rowsTotal = 0;
        for (uint32_t r = 0; r < numRows_; ++r) {
            rowsTotal += CeilDiv(MakeTask(r).window, eps_) + kTaskOverhead;
        }
        const uint64_t groupsOfHeads = numRows_ > 0 ? numTasks_ / numRows_ : 0;
        const uint64_t total = rowsTotal * groupsOfHeads;     // task t = g * rows + r
        c.Start(total, groups_, group_, kTaskOverhead);
    }

    // The cut's next task and this core's piece of it; false past the last task.
    __aicore__ inline bool NextPiece(Cut& c, Task& tk, Piece& pc) const
    {
        if (c.task >= numTasks_) return false;
        tk = MakeTask(c.task);
        c.Take(CeilDiv(tk.window, eps_), pc);
        return true;
    }

    // Whether the task's scan ends before step `begin` (a negative entry among the window's
    // entries [0, begin * eps)): a piece starting later reads no entry past it either.
    __aicore__ inline bool EndedBefore(const Task& tk, uint32_t begin) const
    {
        const uint64_t upto = static_cast<uint64_t>(begin) * eps_;
        const uint32_t lim = upto < tk.window ? static_cast<uint32_t>(upto) : tk.window;
        for (uint32_t e = 0; e < lim; ++e) {
            if (idxGm_.GetValue(static_cast<uint64_t>(tk.row) * k_ + e) < 0) return true;
        }
        return false;
    }

    // ---- the task's rows and keys (both core kinds compute them alike) ------------------------
    __aicore__ inline Task MakeTask(uint32_t t) const
    {
        Task tk;
        tk.row = t % numRows_;
        tk.head0 = t / numRows_ * hg_;
        uint32_t s = 0, qLen = 0;
        if (qTnd_) {                       // the batch whose rows [start, end) hold the row
            uint32_t start = 0, b = 0;
            for (; b < batch_; ++b) {
                const uint32_t end = lensQ_.End(b, start, numRows_);
                if (tk.row < end) {
                    qLen = end - start;
                    break;
                }
                start = end;
            }
            if (b == batch_) return tk;    // past the last batch: sees nothing
            tk.b = b;
            s = tk.row - start;
        } else {
            tk.b = tk.row / s1_;
            s = tk.row % s1_;
            qLen = lensQ_.Count(tk.b, s1_);
            if (s >= qLen) return tk;      // BSND padding row
        }
        uint32_t kvLen = kvCap_;
        if (keys_.tnd) {
            uint32_t start = 0;
            for (uint32_t i = 0; i < tk.b; ++i) start = lensKv_.End(i, start, kvCap_);
            kvLen = lensKv_.End(tk.b, start, kvCap_) - start;
            tk.kvStart = start;
        } else {
            kvLen = lensKv_.Count(tk.b, kvCap_);
            tk.kvStart = keys_.Start(tk.b);
        }
        kvLen = keys_.Visible(tk.b, kvLen);
        tk.tau = cann_attention_ascendc::VisibleKeys(mode_, kvLen, qLen, s);
        const int64_t blocks = (tk.tau + sbs_ - 1) / sbs_;
        tk.window = blocks < static_cast<int64_t>(k_) ? static_cast<uint32_t>(blocks) : k_;
        return tk;
    }

    // Entries [step * eps, ...) of the task's window: the number of visible positions they give
    // (in entry order, each block clipped to tau); with kL1, the keys are gathered there too.
    // `ended` turns true at the first negative entry (no later entry of the row is read).
    __aicore__ inline uint32_t ScanStep(const Task& tk, uint32_t step, bool& ended,
                                        const LocalTensor<T>* kL1)
    {
        uint32_t n = 0;
        const uint32_t first = step * eps_;
        const uint32_t last = first + eps_ < tk.window ? first + eps_ : tk.window;
        for (uint32_t e = first; e < last && !ended; ++e) {
            const int32_t v = idxGm_.GetValue(static_cast<uint64_t>(tk.row) * k_ + e);
            if (v < 0) {
                ended = true;
                break;
            }
            const int64_t start = static_cast<int64_t>(v) * sbs_;
            if (start >= tk.tau) continue;                 // past the boundary: skipped
            const int64_t left = tk.tau - start;
            const uint32_t len = left < static_cast<int64_t>(sbs_) ? static_cast<uint32_t>(left)
                                                                  : sbs_;
            if (kL1 != nullptr) CopyKeys(*kL1, tk, static_cast<uint64_t>(start), len, n);
            n += len;
        }
        return n;
    }

    // ---- AIC ---------------------------------------------------------------------------------
    __aicore__ inline void Cube()
    {
        const uint32_t mPad = Pad16(hg_);
        const uint32_t mBlk = mPad / 16;
        const uint32_t nBlk = bsPad_ / 16;
        // P.V column chunk: the largest power of two <= 512 whose V tile [bsPad, dc] fits L0B
        uint32_t dc = kD;
        while (static_cast<uint64_t>(bsPad_) * dc * sizeof(T) > kL0Bytes) dc /= 2;
        const uint32_t dcBlk = dc / 16;
        pipe_.InitBuffer(qL1_, mPad * kDk * sizeof(T));
        pipe_.InitBuffer(pL1_, mPad * bsPad_ * sizeof(T));
        pipe_.InitBuffer(kL1_, bsPad_ * kDk * sizeof(T));
        const uint32_t aElems = mPad * (kKChunk > bsPad_ ? kKChunk : bsPad_);
        const uint32_t bElems = bsPad_ * (kKChunk > dc ? kKChunk : dc);
        const uint32_t cElems = mPad * (bsPad_ > dc ? bsPad_ : dc);
        pipe_.InitBuffer(a2_, aElems * sizeof(T));
        pipe_.InitBuffer(b2_, bElems * sizeof(T));
        pipe_.InitBuffer(c1_, cElems * sizeof(float));
        LocalTensor<T> qL1 = qL1_.Get<T>();
        LocalTensor<T> pL1 = pL1_.Get<T>();
        LocalTensor<T> kL1 = kL1_.Get<T>();
        LocalTensor<T> a2 = a2_.Get<T>();
        LocalTensor<T> b2 = b2_.Get<T>();
        LocalTensor<float> c1 = c1_.Get<float>();
        constexpr uint32_t c0 = 32 / sizeof(T);
        Cut cut;
        StartCut(cut);
        Task tk;
        Piece pc;
        while (NextPiece(cut, tk, pc)) {
            if (!pc.mine) continue;
            log_.Note(pc);
            if (pc.begin == pc.end) continue;
            // q [hg, 576] -> L1 NZ (mPad rows per C0 column): nope columns, then rope columns
            const uint64_t qRow = static_cast<uint64_t>(tk.row) * n1_ + tk.head0;
            DataCopy(qL1, qGm_[qRow * kD], Nd2NzParams(1, hg_, kD, 0, kD, mPad, 1, 0));
            DataCopy(qL1[(kD / c0) * mPad * c0], qRopeGm_[qRow * kDr],
                     Nd2NzParams(1, hg_, kDr, 0, kDr, mPad, 1, 0));
            bool ended = EndedBefore(tk, pc.begin);
            for (uint32_t step = pc.begin; step < pc.end && !ended; ++step) {
                const uint32_t n = ScanStep(tk, step, ended, &kL1);
                if (n == 0) continue;
                // the V operand's padded key rows [n, ceil16(n)) get a copy of the first
                // gathered key (finite; P is 0 there), for a cube that reads whole fractals
                for (uint32_t r = n; r < Pad16(n); ++r) {
                    DataCopy(kL1[r * c0], kGm_[firstKeyRow_ * kD],
                             Nd2NzParams(1, 1, kD, 0, kD, bsPad_, 1, 0));
                }
                SetFlag<HardEvent::MTE2_MTE1>(0);
                WaitFlag<HardEvent::MTE2_MTE1>(0);
                const uint32_t vBlk = CeilDiv(n, 16);
                // S = q . K^T over 576 in chunks of 64 columns (4 C0 blocks)
                for (uint32_t kc = 0; kc < kDk / kKChunk; ++kc) {
                    const uint32_t cb = kc * (kKChunk / c0);
                    for (uint32_t i = 0; i < mBlk; ++i) {       // ZZ: one fractal row a call
                        LoadData(a2[i * (kKChunk / 16) * 256], qL1,
                                 LoadData2DParams(cb * mBlk + i, kKChunk / 16, mBlk, 0, 0, false,
                                                  0));
                    }
                    for (uint32_t c = 0; c < kKChunk / 16; ++c) {   // keys NZ == ZN of K^T
                        LoadData(b2[c * vBlk * 256], kL1,
                                 LoadData2DParams((cb + c) * nBlk, vBlk, 1, 0, 0, false, 0));
                    }
                    MatmulL0(c1, a2, b2, hg_, n, kKChunk, kc == 0);
                    SetFlag<HardEvent::M_MTE1>(0);           // L0A / L0B free for the next chunk
                    WaitFlag<HardEvent::M_MTE1>(0);
                }
                FixpipeToGm(scoreGm_, c1, hg_, n, mPad, bsPad_);
                CrossCoreSetFlag<2, PIPE_FIX>(kFlagScores);
                CrossCoreWaitFlag(kFlagProbs);                 // both AIVs wrote their P rows
                // P [hg, n] (columns up to ceil16(n), the padding 0) -> L1 NZ -> L0A ZZ
                DataCopy(pL1, probGm_, Nd2NzParams(1, hg_, vBlk * 16, 0, bsPad_, mPad, 1, 0));
                SetFlag<HardEvent::MTE2_MTE1>(0);
                WaitFlag<HardEvent::MTE2_MTE1>(0);
                for (uint32_t i = 0; i < mBlk; ++i) {
                    LoadData(a2[i * vBlk * 256], pL1,
                             LoadData2DParams(i, vBlk, mBlk, 0, 0, false, 0));
                }
                // O = P . V, V = keys [n, 512] (NZ in L1, keys as rows): ZN of V needs each
                // fractal transposed, key block after key block
                for (uint32_t d0 = 0; d0 < kD; d0 += dc) {
                    for (uint32_t kb = 0; kb < vBlk; ++kb) {
                        LoadData(b2[kb * dcBlk * 256], kL1,
                                 LoadData2DParams((d0 / 16) * nBlk + kb, dcBlk, nBlk, 0, 0, true,
                                                  0));
                    }
                    MatmulL0(c1, a2, b2, hg_, dc, n, true);
                    FixpipeToGm(pvGm_[d0], c1, hg_, dc, mPad, kD);
                    SetFlag<HardEvent::M_MTE1>(0);           // L0B free for the next chunk
                    WaitFlag<HardEvent::M_MTE1>(0);
                }
                SetFlag<HardEvent::MTE1_MTE2>(0);            // L1 free for the next gather
                WaitFlag<HardEvent::MTE1_MTE2>(0);
                CrossCoreSetFlag<2, PIPE_FIX>(kFlagPv);
                CrossCoreWaitFlag(kFlagPvRead);                // both AIVs read P.V
            }
        }
        if (cut.anySplit) SyncAll<false>();        // the AIVs merge the split tasks after it
    }

    // ---- AIV ---------------------------------------------------------------------------------
    __aicore__ inline void Vector()
    {
        const uint32_t sub = GetSubBlockIdx();
        const uint32_t half = CeilDiv(hg_, 2);
        const uint32_t r0 = sub * half < hg_ ? sub * half : hg_;
        const uint32_t r1 = r0 + half < hg_ ? r0 + half : hg_;
        const uint32_t rc = r1 - r0;                   // 0 on AIV 1 of a one-head group
        const uint32_t rAlloc = rc > 0 ? rc : 1;
        const uint32_t r8 = CeilDiv(rAlloc, 8) * 8;
        const uint32_t workElems = CeilDiv(CeilDiv(bsPad_, 64) * 2, 8) * 8;
        pipe_.InitBuffer(sc_, rAlloc * bsPad_ * sizeof(float));
        pipe_.InitBuffer(acc_, rAlloc * kD * sizeof(float));
        pipe_.InitBuffer(pv_, kD * sizeof(float));
        pipe_.InitBuffer(prob_, rAlloc * bsPad_ * sizeof(T));
        pipe_.InitBuffer(outT_, kD * sizeof(T));
        pipe_.InitBuffer(stat_, kStats * r8 * sizeof(float));
        pipe_.InitBuffer(red_, 8 * sizeof(float));
        pipe_.InitBuffer(work_, workElems * sizeof(float));
        LocalTensor<float> sc = sc_.Get<float>();
        LocalTensor<float> acc = acc_.Get<float>();
        LocalTensor<float> pv = pv_.Get<float>();
        LocalTensor<T> prob = prob_.Get<T>();
        LocalTensor<T> outT = outT_.Get<T>();
        LocalTensor<float> stat = stat_.Get<float>();
        Stats st;
        st.m = stat;                 // running max per row
        st.l = stat[r8];             // running sum per row
        st.eIn = stat[2 * r8];       // exponents in (m - m', then m - m'' at the end)
        st.eOut = stat[3 * r8];      // their exp: alpha per row
        st.rowSum = stat[4 * r8];    // the step's row sums
        st.e2In = stat[5 * r8];      // sinks: sink - m''
        st.e2Out = stat[6 * r8];
        st.r8 = r8;
        LocalTensor<float> red = red_.Get<float>();
        LocalTensor<float> work = work_.Get<float>();
        Cut cut;
        StartCut(cut);
        Task tk;
        Piece pc;
        bool merges = false;           // this core merges a split task (at most one: the one
        Piece split;                   // crossing the end of its line range)
        Task splitTask;
        while (NextPiece(cut, tk, pc)) {
            if (!pc.mine) continue;
            log_.Note(pc);
            if (pc.MergesOn(group_)) {
                merges = true;
                split = pc;
                splitTask = tk;
            }
            if (rc > 0) Reset(acc, st, rc, r8);
            bool ended = EndedBefore(tk, pc.begin);
            for (uint32_t step = pc.begin; step < pc.end && !ended; ++step) {
                const uint32_t n = ScanStep(tk, step, ended, nullptr);
                if (n == 0) continue;
                CrossCoreWaitFlag(kFlagScores);
                if (rc > 0) Softmax(sc, prob, st, red, work, r0, rc, n);
                CrossCoreSetFlag<2, PIPE_MTE3>(kFlagProbs);
                CrossCoreWaitFlag(kFlagPv);
                for (uint32_t r = 0; r < rc; ++r) {       // acc = acc * alpha + P.V
                    DataCopy(pv, pvGm_[static_cast<uint64_t>(r0 + r) * kD], kD);
                    SetFlag<HardEvent::MTE2_V>(0);
                    WaitFlag<HardEvent::MTE2_V>(0);
                    LocalTensor<float> a = acc[r * kD];
                    Muls(a, a, st.eOut.GetValue(r), kD);
                    Add(a, a, pv, kD);
                    SetFlag<HardEvent::V_MTE2>(0);           // pv is reloaded for the next row
                    WaitFlag<HardEvent::V_MTE2>(0);
                }
                CrossCoreSetFlag<2, PIPE_MTE2>(kFlagPvRead);
            }
            if (pc.slot < 0) {
                Finish(tk, acc, pv, outT, st, r0, rc);
            } else {
                Store(static_cast<uint32_t>(pc.slot), acc, st, r0, rc);
            }
        }
        if (!cut.anySplit) return;
        SyncAll<false>();                   // every piece's state is in its slot
        if (!merges) return;
        MergeSlots(split, acc, pv, st, r0, rc);
        Finish(splitTask, acc, pv, outT, st, r0, rc);
    }


private:
    static constexpr uint32_t kStats = 7;

    // Per-row statistics of this AIV's rows, each a vector of r8 floats in UB.
    struct Stats {
        LocalTensor<float> m, l, eIn, eOut, rowSum, e2In, e2Out;
        uint32_t r8 = 8;
    };

    // The empty state of this AIV's rc rows: acc = 0; m = -inf and l = 0 in the first `rows` of
    // the statistics.
    __aicore__ inline void Reset(LocalTensor<float>& acc, Stats& st, uint32_t rc, uint32_t rows)
    {
        const float negInf = -__builtin_inff();
        Duplicate(acc, 0.0f, rc * kD);
        SetFlag<HardEvent::V_S>(0);
        WaitFlag<HardEvent::V_S>(0);
        for (uint32_t r = 0; r < rows; ++r) {
            st.m.SetValue(r, negInf);
            st.l.SetValue(r, 0.0f);
        }
    }

    // One step of the online softmax for this AIV's rows [r0, r0 + rc) of the head group:
    // scores from GM, P (input dtype) to GM; afterwards st.eOut[r] = alpha = exp(m - m') and
    // st.m / st.l hold the new running max and sum.
    __aicore__ inline void Softmax(LocalTensor<float>& sc, LocalTensor<T>& prob, Stats& st,
                                   LocalTensor<float>& red, LocalTensor<float>& work, uint32_t r0,
                                   uint32_t rc, uint32_t n)
    {
        const uint32_t n16 = Pad16(n);
        const float negInf = -__builtin_inff();
        DataCopy(sc, scoreGm_[static_cast<uint64_t>(r0) * bsPad_], rc * bsPad_);
        SetFlag<HardEvent::MTE2_V>(0);
        WaitFlag<HardEvent::MTE2_V>(0);
        Muls(sc, sc, scale_, rc * bsPad_);
        SetFlag<HardEvent::V_S>(0);
        WaitFlag<HardEvent::V_S>(0);
        for (uint32_t r = 0; r < rc; ++r) {          // columns past n: -inf, so P is 0 there
            for (uint32_t j = n; j < n16; ++j) sc.SetValue(r * bsPad_ + j, negInf);
        }
        for (uint32_t r = rc; r < st.r8; ++r) st.eIn.SetValue(r, 0.0f);
        for (uint32_t r = 0; r < rc; ++r) {
            LocalTensor<float> s = sc[r * bsPad_];
            SetFlag<HardEvent::S_V>(0);
            WaitFlag<HardEvent::S_V>(0);
            ReduceMax(red, s, work, n);
            SetFlag<HardEvent::V_S>(0);
            WaitFlag<HardEvent::V_S>(0);
            const float mOld = st.m.GetValue(r);
            const float rowMax = red.GetValue(0);
            const float mNew = rowMax > mOld ? rowMax : mOld;
            st.m.SetValue(r, mNew);
            st.eIn.SetValue(r, mOld - mNew);          // -inf on the first visible step: alpha 0
            SetFlag<HardEvent::S_V>(0);
            WaitFlag<HardEvent::S_V>(0);
            Adds(s, s, -mNew, n16);
            Exp(s, s, n16);
            ReduceSum(red, s, work, n);                // fp32 P: the row sum
            SetFlag<HardEvent::V_S>(0);
            WaitFlag<HardEvent::V_S>(0);
            st.rowSum.SetValue(r, red.GetValue(0));
        }
        SetFlag<HardEvent::S_V>(0);
        WaitFlag<HardEvent::S_V>(0);
        Exp(st.eOut, st.eIn, st.r8);
        Cast(prob, sc, RoundMode::CAST_RINT, rc * bsPad_);   // P rounded to the input dtype
        SetFlag<HardEvent::V_MTE3>(0);
        WaitFlag<HardEvent::V_MTE3>(0);
        DataCopy(probGm_[static_cast<uint64_t>(r0) * bsPad_], prob, rc * bsPad_);
        SetFlag<HardEvent::MTE3_V>(0);                // prob is rewritten next step
        WaitFlag<HardEvent::MTE3_V>(0);
        SetFlag<HardEvent::V_S>(0);
        WaitFlag<HardEvent::V_S>(0);
        for (uint32_t r = 0; r < rc; ++r) {          // l = l * alpha + row sum
            st.l.SetValue(r, st.l.GetValue(r) * st.eOut.GetValue(r) + st.rowSum.GetValue(r));
        }
    }

    // The task's end for this AIV's rows: sinks, normalisation, attention_out and the
    // statistics; a row that saw no key gets zeros and (-2e38, 0).
    __aicore__ inline void Finish(const Task& tk, LocalTensor<float>& acc, LocalTensor<float>& tmp,
                                  LocalTensor<T>& outT, Stats& st, uint32_t r0, uint32_t rc)
    {
        if (rc == 0) return;
        const uint32_t h0 = tk.head0 + r0;
        SetFlag<HardEvent::V_S>(0);                   // the last Muls / Add of acc
        WaitFlag<HardEvent::V_S>(0);
        for (uint32_t r = 0; r < st.r8; ++r) {
            float x = 0.0f, y = 0.0f;
            if (r < rc && hasSinks_ && st.l.GetValue(r) > 0.0f) {
                const float m = st.m.GetValue(r);
                const float sink = sinksGm_.GetValue(h0 + r);
                const float m2 = sink > m ? sink : m;
                x = m - m2;
                y = sink - m2;
                st.m.SetValue(r, m2);
            }
            st.eIn.SetValue(r, x);
            st.e2In.SetValue(r, y);
        }
        SetFlag<HardEvent::S_V>(0);
        WaitFlag<HardEvent::S_V>(0);
        Exp(st.eOut, st.eIn, st.r8);
        Exp(st.e2Out, st.e2In, st.r8);
        SetFlag<HardEvent::V_S>(0);
        WaitFlag<HardEvent::V_S>(0);
        for (uint32_t r = 0; r < rc; ++r) {
            const float l = st.l.GetValue(r);
            LocalTensor<float> a = acc[r * kD];
            if (l > 0.0f) {
                float lFinal = l;
                if (hasSinks_) {
                    const float scale = st.eOut.GetValue(r);
                    lFinal = l * scale + st.e2Out.GetValue(r);
                    st.l.SetValue(r, lFinal);
                    SetFlag<HardEvent::S_V>(0);
                    WaitFlag<HardEvent::S_V>(0);
                    Muls(a, a, scale, kD);
                } else {
                    SetFlag<HardEvent::S_V>(0);
                    WaitFlag<HardEvent::S_V>(0);
                }
                Duplicate(tmp, lFinal, kD);
                Div(a, a, tmp, kD);
                Cast(outT, a, RoundMode::CAST_RINT, kD);
            } else {                                     // nothing seen: zeros, (-2e38, 0)
                st.m.SetValue(r, kSoftmaxMin);
                st.l.SetValue(r, 0.0f);
                SetFlag<HardEvent::S_V>(0);
                WaitFlag<HardEvent::S_V>(0);
                Duplicate(outT, static_cast<T>(0.0f), kD);
            }
            SetFlag<HardEvent::V_MTE3>(0);
            WaitFlag<HardEvent::V_MTE3>(0);
            DataCopy(outGm_[(static_cast<uint64_t>(tk.row) * n1_ + h0 + r) * kD], outT, kD);
            SetFlag<HardEvent::MTE3_V>(0);              // outT is rewritten for the next row
            WaitFlag<HardEvent::MTE3_V>(0);
            SetFlag<HardEvent::V_S>(0);
            WaitFlag<HardEvent::V_S>(0);
        }
        if (lse_) {
            SetFlag<HardEvent::S_MTE3>(0);
            WaitFlag<HardEvent::S_MTE3>(0);
            const uint64_t at = static_cast<uint64_t>(tk.row) * n1_ + h0;
            DataCopyPad(maxGm_[at], st.m, DataCopyExtParams(1, rc * sizeof(float), 0, 0, 0));
            DataCopyPad(sumGm_[at], st.l, DataCopyExtParams(1, rc * sizeof(float), 0, 0, 0));
            SetFlag<HardEvent::MTE3_S>(0);               // the statistics are reset next task
            WaitFlag<HardEvent::MTE3_S>(0);
        }
    }

    // A piece of a split task: this AIV's rows of its fp32 state (acc, m, l) to its slot.
    __aicore__ inline void Store(uint32_t slot, LocalTensor<float>& acc, Stats& st, uint32_t r0,
                                 uint32_t rc)
    {
        if (rc == 0) return;
        const uint64_t base = static_cast<uint64_t>(slot) * SlotFloats(hg_);
        const uint64_t mAt = base + static_cast<uint64_t>(hg_) * kD;
        SetFlag<HardEvent::V_MTE3>(0);                 // the last Muls / Add of acc
        WaitFlag<HardEvent::V_MTE3>(0);
        DataCopy(slotGm_[base + static_cast<uint64_t>(r0) * kD], acc, rc * kD);
        SetFlag<HardEvent::S_MTE3>(0);                 // m and l are written by the scalar unit
        WaitFlag<HardEvent::S_MTE3>(0);
        DataCopyPad(slotGm_[mAt + r0], st.m, DataCopyExtParams(1, rc * sizeof(float), 0, 0, 0));
        DataCopyPad(slotGm_[mAt + Pad8(hg_) + r0], st.l,
                    DataCopyExtParams(1, rc * sizeof(float), 0, 0, 0));
        SetFlag<HardEvent::MTE3_V>(0);                 // acc is reset for the next piece
        WaitFlag<HardEvent::MTE3_V>(0);
        SetFlag<HardEvent::MTE3_S>(0);                 // and the statistics
        WaitFlag<HardEvent::MTE3_S>(0);
    }

    // After SyncAll: this AIV's rows of the split task whose first piece ran here, merged from
    // its slots by the log-sum-exp rule (online_softmax.combine: M = max_i m_i, w_i =
    // exp(m_i - M) (M = -inf: 0), l = sum_i w_i l_i, acc = sum_i w_i acc_i in slot order) into
    // acc and st.m / st.l, for Finish. The slots' m and l come to UB by DataCopyPad (st.e2In /
    // st.e2Out, free until Finish), their acc rows by DataCopy.
    __aicore__ inline void MergeSlots(const Piece& sp, LocalTensor<float>& acc,
                                      LocalTensor<float>& tmp, Stats& st, uint32_t r0,
                                      uint32_t rc)
    {
        if (rc == 0) return;
        const float negInf = -__builtin_inff();
        const DataCopyExtParams rows(1, rc * sizeof(float), 0, 0, 0);
        const DataCopyPadExtParams<float> noPad(false, 0, 0, 0.0f);
        auto mAt = [&](uint32_t i) {
            return static_cast<uint64_t>(sp.slotBase + i) * SlotFloats(hg_) +
                   static_cast<uint64_t>(hg_) * kD + r0;
        };
        Reset(acc, st, rc, rc);
        for (uint32_t i = 0; i < sp.pieces; ++i) {         // M = max_i m_i
            if (Dropped(sp.slotBase + i)) continue;
            SetFlag<HardEvent::S_MTE2>(0);                   // e2In was read by the scalar unit
            WaitFlag<HardEvent::S_MTE2>(0);
            DataCopyPad(st.e2In, slotGm_[mAt(i)], rows, noPad);
            SetFlag<HardEvent::MTE2_S>(0);
            WaitFlag<HardEvent::MTE2_S>(0);
            for (uint32_t r = 0; r < rc; ++r) {
                const float mi = st.e2In.GetValue(r);
                if (mi > st.m.GetValue(r)) st.m.SetValue(r, mi);
            }
        }
        for (uint32_t i = 0; i < sp.pieces; ++i) {
            if (Dropped(sp.slotBase + i)) continue;
            SetFlag<HardEvent::S_MTE2>(0);
            WaitFlag<HardEvent::S_MTE2>(0);
            DataCopyPad(st.e2In, slotGm_[mAt(i)], rows, noPad);
            DataCopyPad(st.e2Out, slotGm_[mAt(i) + Pad8(hg_)], rows, noPad);
            SetFlag<HardEvent::MTE2_S>(0);
            WaitFlag<HardEvent::MTE2_S>(0);
            for (uint32_t r = 0; r < st.r8; ++r) {
                float x = 0.0f;
                if (r < rc) {
                    const float m = st.m.GetValue(r);
                    x = st.e2In.GetValue(r) - (m == negInf ? 0.0f : m);
                }
                st.eIn.SetValue(r, x);
            }
            SetFlag<HardEvent::S_V>(0);
            WaitFlag<HardEvent::S_V>(0);
            Exp(st.eOut, st.eIn, st.r8);
            SetFlag<HardEvent::V_S>(0);
            WaitFlag<HardEvent::V_S>(0);
            const uint64_t accAt = static_cast<uint64_t>(sp.slotBase + i) * SlotFloats(hg_) +
                                   static_cast<uint64_t>(r0) * kD;
            for (uint32_t r = 0; r < rc; ++r) {
                const float w = st.eOut.GetValue(r);
                st.l.SetValue(r, st.l.GetValue(r) + st.e2Out.GetValue(r) * w);
                DataCopy(tmp, slotGm_[accAt + static_cast<uint64_t>(r) * kD], kD);
                SetFlag<HardEvent::MTE2_V>(0);
                WaitFlag<HardEvent::MTE2_V>(0);
                LocalTensor<float> a = acc[r * kD];
                Muls(tmp, tmp, w, kD);
                Add(a, a, tmp, kD);
                SetFlag<HardEvent::V_MTE2>(0);           // tmp is reloaded for the next row
                WaitFlag<HardEvent::V_MTE2>(0);
            }
            SetFlag<HardEvent::V_S>(0);                  // eOut is rewritten for the next slot
            WaitFlag<HardEvent::V_S>(0);
        }
    }

    __aicore__ inline bool Dropped(uint32_t slot) const
    {
#ifdef ASCENDC_TWIN
        return dropSlot_ >= 0 && static_cast<uint32_t>(dropSlot_) == slot;
#else
        (void)slot;
        return false;
#endif
    }

    // Positions [start, start + len) of the task's batch (a run inside one index block) into
    // the key tile's rows [at, at + len): nope and rope columns, one Nd2Nz copy each, per page
    // with a paged key (a run never leaves its page when the page size is a multiple of sbs).
    __aicore__ inline void CopyKeys(const LocalTensor<T>& kL1, const Task& tk, uint64_t start,
                                    uint32_t len, uint32_t at)
    {
        constexpr uint32_t c0 = 32 / sizeof(T);
        for (uint64_t pos = start; pos < start + len;) {
            uint32_t seg = static_cast<uint32_t>(start + len - pos);
            const uint64_t keyRow = keys_.Row(tk.b, tk.kvStart, pos, seg);
            const uint32_t row = at + static_cast<uint32_t>(pos - start);
            if (row == 0) firstKeyRow_ = keyRow;
            DataCopy(kL1[row * c0], kGm_[keyRow * kD],
                     Nd2NzParams(1, seg, kD, 0, kD, bsPad_, 1, 0));
            DataCopy(kL1[(kD / c0) * bsPad_ * c0 + row * c0], kRopeGm_[keyRow * kDr],
                     Nd2NzParams(1, seg, kDr, 0, kDr, bsPad_, 1, 0));
            pos += seg;
        }
    }

    TPipe pipe_;
    TBuf<TPosition::A1> qL1_, pL1_;
    TBuf<TPosition::B1> kL1_;
    TBuf<TPosition::A2> a2_;
    TBuf<TPosition::B2> b2_;
    TBuf<TPosition::CO1> c1_;
    TBuf<TPosition::VECIN> sc_, pv_;
    TBuf<TPosition::VECCALC> acc_, stat_, red_, work_;
    TBuf<TPosition::VECOUT> prob_, outT_;
    GlobalTensor<T> qGm_, qRopeGm_, kGm_, kRopeGm_, outGm_, probGm_;
    GlobalTensor<int32_t> idxGm_;
    GlobalTensor<float> sinksGm_, maxGm_, sumGm_, scoreGm_, pvGm_, slotGm_;
    cann_attention_ascendc::LengthList lensQ_, lensKv_;
    cann_attention_ascendc::KeyLayout keys_;
    cann_attention_ascendc::PieceLog log_;     // twin only: the pieces run (RunRecorded)
#ifdef ASCENDC_TWIN
    int32_t dropSlot_ = -1;
#endif
    uint32_t numRows_ = 0, numTasks_ = 0, kvCap_ = 0, hg_ = 1, bs_ = 16;
    uint32_t bsPad_ = 16, eps_ = 1, batch_ = 0, s1_ = 0, n1_ = 0, k_ = 0, sbs_ = 1, mode_ = 0;
    uint32_t group_ = 0, groups_ = 1;
    bool qTnd_ = false, lse_ = false, hasSinks_ = false;
    float scale_ = 1.0f;
    uint64_t firstKeyRow_ = 0;     // AIC: key row of the step's first gathered position
};

template <typename T>
__aicore__ void Run(GM_ADDR query, GM_ADDR key, GM_ADDR value, GM_ADDR sparseIndices,
                    GM_ADDR blockTable, GM_ADDR lensQuery, GM_ADDR lensKv, GM_ADDR queryRope,
                    GM_ADDR keyRope, GM_ADDR sinks, GM_ADDR out, GM_ADDR softmaxMax,
                    GM_ADDR softmaxSum, GM_ADDR workspace, GM_ADDR tiling)
{
    (void)value;        // the value is the key's first 512 columns (docs: value is never read)
    SparseFlashAttention<T> op;
    op.Init(query, key, sparseIndices, blockTable, lensQuery, lensKv, queryRope, keyRope, sinks,
            out, softmaxMax, softmaxSum, workspace, tiling);
    cann_attention_ascendc::RunSides(op);
}

#ifdef ASCENDC_TWIN
template <typename T>
__aicore__ void RunRecorded(GM_ADDR query, GM_ADDR key, GM_ADDR value, GM_ADDR sparseIndices,
                            GM_ADDR blockTable, GM_ADDR lensQuery, GM_ADDR lensKv,
                            GM_ADDR queryRope, GM_ADDR keyRope, GM_ADDR sinks, GM_ADDR out,
                            GM_ADDR softmaxMax, GM_ADDR softmaxSum, GM_ADDR workspace,
                            GM_ADDR tiling, GM_ADDR record, int32_t dropSlot)
{
    (void)value;
    SparseFlashAttention<T> op;
    op.Init(query, key, sparseIndices, blockTable, lensQuery, lensKv, queryRope, keyRope, sinks,
            out, softmaxMax, softmaxSum, workspace, tiling);
    op.Record(record, dropSlot);
    cann_attention_ascendc::RunSides(op);
}
#endif

#ifdef ASCENDC_TWIN
// the twin launcher (launcher.cpp) runs both dtypes from one library
template void Run<half>(GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR,
                        GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR);
template void Run<bfloat16_t>(GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR,
                              GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR,
                              GM_ADDR);
#define SFA_INSTANTIATE_RECORDED(T)                                                             \
    template void RunRecorded<T>(GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, \
                                 GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, \
                                 GM_ADDR, GM_ADDR, int32_t);
SFA_INSTANTIATE_RECORDED(half)
SFA_INSTANTIATE_RECORDED(bfloat16_t)
#undef SFA_INSTANTIATE_RECORDED
#endif

}  // namespace sfa_ascendc

#ifndef DTYPE_QUERY
#define DTYPE_QUERY half      // CANN's build defines it per dtype; the twin launcher instantiates
#endif                        // both

extern "C" __global__ __aicore__ void cann_attention_sparse_flash_attention(
    GM_ADDR query, GM_ADDR key, GM_ADDR value, GM_ADDR sparse_indices, GM_ADDR block_table,
    GM_ADDR actual_seq_lengths_query, GM_ADDR actual_seq_lengths_kv, GM_ADDR query_rope,
    GM_ADDR key_rope, GM_ADDR sinks, GM_ADDR attention_out, GM_ADDR softmax_max,
    GM_ADDR softmax_sum, GM_ADDR workspace, GM_ADDR tiling)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    sfa_ascendc::Run<DTYPE_QUERY>(query, key, value, sparse_indices, block_table,
                                  actual_seq_lengths_query, actual_seq_lengths_kv, query_rope,
                                  key_rope, sinks, attention_out, softmax_max, softmax_sum,
                                  workspace, tiling);
}
