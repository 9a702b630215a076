// The plan's schedule of npu_lightning_indexer as every core of the AscendC kernel computes it,
// with scalar code, from the lengths it reads (lightning_indexer_kernel.cpp's header comment).
// It reproduces op_host/lightning_indexer/tiling.py schedule() and op_host/common/schedule.py
// partition() (task overhead 1, no split_cost): the visible keys of every query row (lengths
// clamped into the tensors, TND prefix sums made non-decreasing, a paged batch's keys ending at
// its first page-table entry outside [0, block_count)), the line of tasks, per_core, and for
// each task its cut over the cores: this core's piece (step range, workspace slot) if any.
#ifndef CANN_ATTENTION_LIGHTNING_INDEXER_SCHEDULE_H
#define CANN_ATTENTION_LIGHTNING_INDEXER_SCHEDULE_H

#include "kernel_operator.h"
#include "tiling_data.h"        // LightningIndexerTilingData (generated from tiling.TILING_DATA)
#include "balanced_cut.h"       // op_kernel/common/ascendc: the plan's cut of the task line
#include "kernel_common.h"      // op_kernel/common/ascendc: length lists, key layout

namespace li_ascendc {

constexpr uint64_t kTaskOverhead = 1;    // tiling.TASK_OVERHEAD_STEPS

using cann_attention_ascendc::CeilDiv;
using cann_attention_ascendc::KeyLayout;

// Where a query row's keys are: its batch, how many it sees, the first key row of its batch.
struct RowKeys {
    uint32_t b = 0;
    uint32_t nvis = 0;
    uint64_t kvStart = 0;
};

// A walk over the query rows in order, batch by batch (lengths read and clamped once a batch).
struct RowWalk {
    uint32_t row = 0;
    uint32_t b = 0;             // the row's batch (batch: past the last batch)
    uint32_t rowStart = 0;      // first row of batch b's span
    uint32_t span = 0;          // rows of the span (BSND: S1; TND: its prefix-sum range)
    uint32_t qLen = 0;          // the span's valid rows
    uint32_t kvLen = 0;         // the batch's keys
    uint32_t qPrev = 0;         // TND: prefix-sum ends so far
    uint32_t kvPrev = 0;
    uint64_t kvStart = 0;
};

// The schedule's walk: the task line (balanced_cut.h) up to the current row.
struct Sched : cann_attention_ascendc::BalancedCut {
    RowWalk walk;
    bool started = false;
};

// The current row as the schedule sees it; for a task, its cut and this core's piece.
struct Piece : cann_attention_ascendc::CutPiece {
    uint32_t row = 0;
    RowKeys keys;               // keys.nvis == 0: not a task
};

class TaskLine {
public:
    // core: this core's block; cores: the blocks of the launch (C of the cut).
    __aicore__ inline void Init(const __gm__ LightningIndexerTilingData* td, GM_ADDR lensQuery,
                                GM_ADDR lensKey, GM_ADDR blockTable, uint32_t core,
                                uint32_t cores)
    {
        numRows_ = static_cast<uint32_t>(td->num_rows);
        s2_ = static_cast<uint32_t>(td->key_capacity);
        batch_ = td->batch;
        bs_ = td->block_s2;
        mode_ = td->sparse_mode;
        qTnd_ = td->layout_query == cann_attention_ascendc::kLayoutTnd;
        s1_ = qTnd_ || batch_ == 0 ? 0 : numRows_ / batch_;
        const bool paged = td->layout_key == cann_attention_ascendc::kLayoutPaged;
        keys_.Init(td->layout_key, batch_, s2_, td->page_size, paged ? s2_ / td->page_size : 0,
                   td->block_count, blockTable);
        lensQ_.Bind(lensQuery, batch_);
        lensK_.Bind(lensKey, batch_);
        core_ = core;
        cores_ = cores;
    }

    // Pass 1: per_core of the line of tasks; s then walks from the first row.
    __aicore__ inline void Start(Sched& s) const
    {
        RowWalk w;
        bool started = false;
        uint64_t total = 0;
        while (NextRow(w, started)) {
            const uint32_t nvis = Keys(w).nvis;
            if (nvis > 0) total += CeilDiv(nvis, bs_) + kTaskOverhead;
        }
        s = Sched{};
        s.Start(total, cores_, core_, kTaskOverhead);
    }

    // The next row and, for a task, its cut over the cores and this core's piece of it (as
    // partition(): a step at line position x runs on core min(x / per_core, C - 1)).
    __aicore__ inline bool NextPiece(Sched& s, Piece& p) const
    {
        if (!NextRow(s.walk, s.started)) return false;
        p = Piece{};
        p.row = s.walk.row;
        p.keys = Keys(s.walk);
        if (p.keys.nvis == 0) return true;           // not a task: no place on the line
        s.Take(CeilDiv(p.keys.nvis, bs_), p);
        return true;
    }

    // Where the keys lie (the kernel's cube gathers them by it).
    __aicore__ inline const KeyLayout& Keys() const { return keys_; }

private:
    // Lengths of batch w.b; past the last batch: the rest of the rows, which see nothing.
    __aicore__ inline void LoadBatch(RowWalk& w) const
    {
        if (w.b >= batch_) {
            w.span = numRows_ > w.rowStart ? numRows_ - w.rowStart : 0;
            w.qLen = 0;
            w.kvLen = 0;
            return;
        }
        if (qTnd_) {
            const uint32_t end = lensQ_.End(w.b, w.qPrev, numRows_);
            w.span = end - w.rowStart;
            w.qLen = w.span;
            w.qPrev = end;
        } else {
            w.span = s1_;
            w.qLen = lensQ_.Count(w.b, s1_);
        }
        uint32_t kvLen = s2_;
        if (keys_.tnd) {
            const uint32_t end = lensK_.End(w.b, w.kvPrev, s2_);
            kvLen = end - w.kvPrev;
            w.kvStart = w.kvPrev;
            w.kvPrev = end;
        } else {
            kvLen = lensK_.Count(w.b, s2_);
            w.kvStart = keys_.Start(w.b);
        }
        w.kvLen = keys_.Visible(w.b, kvLen);
    }

    // Steps to the next row (the first one when !started); false past the last.
    __aicore__ inline bool NextRow(RowWalk& w, bool& started) const
    {
        if (!started) {
            w = RowWalk{};
            LoadBatch(w);
            started = true;
        } else {
            ++w.row;
        }
        while (w.b < batch_ && w.row - w.rowStart >= w.span) {     // past batch b's span
            w.rowStart += w.span;
            ++w.b;
            LoadBatch(w);
        }
        return w.row < numRows_;
    }

    __aicore__ inline RowKeys Keys(const RowWalk& w) const
    {
        RowKeys rk;
        if (w.b >= batch_) return rk;
        const uint32_t s = w.row - w.rowStart;
        if (s >= w.qLen) return rk;
        rk.b = w.b;
        rk.kvStart = w.kvStart;
        rk.nvis = cann_attention_ascendc::VisibleKeys(mode_, w.kvLen, w.qLen, s);
        return rk;
    }

    cann_attention_ascendc::LengthList lensQ_, lensK_;
    KeyLayout keys_;
    uint32_t numRows_ = 0, s1_ = 0, s2_ = 0, batch_ = 0, bs_ = 0, mode_ = 0;
    uint32_t core_ = 0, cores_ = 1;
    bool qTnd_ = false;
};

}  // namespace li_ascendc

#endif
