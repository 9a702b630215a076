// The Ascend plan's balanced cut of a line of tasks, as each core of an AscendC kernel computes
// it for itself (op_host/common/schedule.py partition, as the Ascend plan runs it: split_cost
// -1, tasks always cut). Task t costs its steps + overhead; per_core = max(1, ceil(total / C));
// a step at line position x runs on core min(x / per_core, C - 1); a task has one piece per core
// it touches (a task without steps: one piece, on the core its first step would be on); the
// pieces of split tasks take consecutive workspace slots, in task order. Shared by the kernels
// of sparse_flash_attention and lightning_indexer (each walks its own tasks and steps).
#ifndef CANN_ATTENTION_ASCENDC_BALANCED_CUT_H
#define CANN_ATTENTION_ASCENDC_BALANCED_CUT_H

#include <cstdint>

namespace cann_attention_ascendc {

// A task's cut over the cores and this core's piece of it.
struct CutPiece {
    uint32_t task = 0;
    uint32_t pieces = 1;        // > 1: a split task
    uint32_t firstCore = 0;
    uint32_t slotBase = 0;      // split: its first slot (its slots are consecutive)
    bool mine = false;          // this core runs a piece of it:
    uint32_t begin = 0, end = 0;    // steps [begin, end) of the task
    int32_t slot = -1;          // its slot (-1: the piece is the whole task)

    // Whether core c runs the first piece of this split task (the one that merges its slots).
    __aicore__ inline bool MergesOn(uint32_t c) const { return pieces > 1 && firstCore == c; }
};

// The walk over the line, task by task.
struct BalancedCut {
    uint64_t perCore = 1;       // per_core = max(1, ceil(total / C))
    uint64_t pos = 0;           // line position where the next task starts
    uint32_t task = 0;          // the next task
    uint32_t slotNext = 0;      // slots taken by the split tasks so far
    bool anySplit = false;
    uint32_t cores = 1, core = 0;
    uint64_t overhead = 1;

    // A line of `total` cost (steps + overhead of every task) cut over `cores`, seen by `core`.
    __aicore__ inline void Start(uint64_t total, uint32_t numCores, uint32_t thisCore,
                                 uint64_t taskOverhead)
    {
        *this = BalancedCut{};
        cores = numCores > 0 ? numCores : 1;
        core = thisCore;
        overhead = taskOverhead;
        const uint64_t per = (total + cores - 1) / cores;
        perCore = per > 0 ? per : 1;
    }

    // The cut of the next task (of `steps` steps) and this core's piece of it, into p.
    __aicore__ inline void Take(uint64_t steps, CutPiece& p)
    {
        p = CutPiece{};
        p.task = task++;
        const uint64_t first = pos + overhead;           // line position of its first step
        const uint64_t last = steps > 0 ? first + steps - 1 : first;
        const uint64_t cf = first / perCore, cl = last / perCore;
        const uint64_t top = cores - 1;
        p.firstCore = static_cast<uint32_t>(cf < top ? cf : top);
        const uint32_t lastCore = static_cast<uint32_t>(cl < top ? cl : top);
        p.pieces = lastCore - p.firstCore + 1;
        if (p.pieces > 1) {
            p.slotBase = slotNext;
            slotNext += p.pieces;
            anySplit = true;
        }
        if (p.firstCore <= core && core <= lastCore) {
            const uint32_t j = core - p.firstCore;
            const uint64_t b = j == 0 ? first : core * perCore;
            const uint64_t e = core == lastCore ? first + steps : (core + 1) * perCore;
            p.mine = true;
            p.begin = static_cast<uint32_t>(b - first);
            p.end = static_cast<uint32_t>(e - first);
            p.slot = p.pieces > 1 ? static_cast<int32_t>(p.slotBase + j) : -1;
        }
        pos += steps + overhead;
    }
};

// Slots the split tasks' pieces of a cut of `tasks` tasks over `cores` cores take at most
// (op_host/common/schedule.py max_slots: min(T + C - 1, 2 (C - 1)); none without tasks).
__aicore__ inline uint64_t MaxSlots(uint64_t tasks, uint64_t cores)
{
    if (tasks == 0 || cores == 0) return 0;
    const uint64_t pieces = tasks + cores - 1;
    const uint64_t cuts = 2 * (cores - 1);
    return pieces < cuts ? pieces : cuts;
}

}  // namespace cann_attention_ascendc

#endif  // CANN_ATTENTION_ASCENDC_BALANCED_CUT_H
