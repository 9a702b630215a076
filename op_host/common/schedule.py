"""Balanced work schedules: cut a line of tasks into equal-cost pieces, one run per core.

Every task is a number of steps (key tiles). The tasks are laid end to end, each preceded by a
fixed overhead (loading the query tile, writing the output), and the line is cut into
``num_cores`` runs of equal cost. A task cut by a boundary becomes several pieces on consecutive
cores; their partial results (output, row max, row sum) go to a workspace slot and are merged
by a log-sum-exp combine. This is the split-KV ("flash decoding") schedule: it fills the cores
when there are few tasks (decode) and balances uneven tasks (causal prefill) without a second
mechanism. FlashMLA plans its scheduler metadata the same way.

A split is not free where the merge is a separate pass over partial outputs in memory (the GPU
kernels): given ``split_cost`` (in steps), ``partition`` also cuts the line at the task boundaries
nearest to the balanced cuts, and keeps tasks whole when that schedule's longest core is no
longer than the balanced one's plus ``split_cost``. Many equal tasks on fewer cores (decode)
then run whole, with no workspace and no merge; few or uneven tasks are still split.

The schedule is built with vectorised integer ops, so planning a long prefill costs little.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Schedule:
    num_cores: int
    cost_per_core: int              # the cut length; no core gets more (up to one overhead);
                                    # whole tasks: the longest core
    piece_task: torch.Tensor        # int64 [P]  task of each piece
    piece_step_begin: torch.Tensor  # int64 [P]  first step of the piece within its task
    piece_step_end: torch.Tensor    # int64 [P]  one past the last step
    piece_core: torch.Tensor        # int64 [P]  core that runs the piece (non-decreasing)
    piece_rank: torch.Tensor        # int64 [P]  position of the piece in its core's list
    piece_slot: torch.Tensor        # int64 [P]  workspace slot, -1 when the piece is its whole task
    task_num_pieces: torch.Tensor   # int64 [T]
    num_slots: int

    @property
    def num_pieces(self) -> int:
        return int(self.piece_task.numel())

    @property
    def num_rounds(self) -> int:
        return int(self.piece_rank.max().item()) + 1 if self.num_pieces else 0

    def rounds(self, device):
        """The pieces round by round (round r: every core's r-th piece, so a round's pieces
        run on different cores at once, as a device would): per round the pieces' task, first
        step, one past the last step and workspace slot, on ``device``."""
        order = torch.argsort(self.piece_rank, stable=True)
        counts = torch.bincount(self.piece_rank, minlength=self.num_rounds).tolist()
        for piece in torch.split(order, counts):
            yield (self.piece_task[piece].to(device), self.piece_step_begin[piece].to(device),
                   self.piece_step_end[piece].to(device), self.piece_slot[piece].to(device))

    def core_costs(self, task_overhead: int) -> torch.Tensor:
        """Cost assigned to each core: its steps plus one overhead per piece."""
        steps = self.piece_step_end - self.piece_step_begin + task_overhead
        return torch.zeros(self.num_cores, dtype=torch.int64).index_add_(0, self.piece_core, steps)


def partition(task_steps: torch.Tensor, num_cores: int, task_overhead: int = 1,
              split_cost: int | None = None) -> Schedule:
    """Cut tasks of ``task_steps`` steps each (all >= 1) into a balanced schedule; with
    ``split_cost`` (steps), keep tasks whole where that costs at most ``split_cost`` (module doc)."""
    task_steps = task_steps.to(torch.int64)
    if num_cores < 1:
        raise ValueError(f"num_cores must be >= 1, got {num_cores}")
    if task_steps.numel() and int(task_steps.min()) < 1:
        raise ValueError("every task must have at least one step")
    num_tasks = task_steps.numel()
    cost = task_steps + task_overhead
    total = int(cost.sum())
    per_core = max(1, -(-total // num_cores))
    # On the line, task t's steps occupy [first, last] (after its overhead); a step at position
    # x belongs to core min(x // per_core, num_cores - 1). A piece is a task's run of steps on
    # one core, so task t has one piece per core from core(first) to core(last): O(T + cores)
    # work, never O(steps).
    first = torch.cumsum(cost, 0) - task_steps                                # [T]
    last = first + task_steps - 1
    core_first = torch.clamp(first // per_core, max=num_cores - 1)
    core_last = torch.clamp(last // per_core, max=num_cores - 1)
    task_num_pieces = core_last - core_first + 1
    num_pieces = int(task_num_pieces.sum())
    piece_task = torch.repeat_interleave(torch.arange(num_tasks), task_num_pieces)   # [P]
    first_piece = torch.cumsum(task_num_pieces, 0) - task_num_pieces
    piece_core = core_first[piece_task] + torch.arange(num_pieces) - first_piece[piece_task]
    core_begin = torch.where(piece_core == core_first[piece_task], first[piece_task],
                             piece_core * per_core)
    core_end = torch.where(piece_core == core_last[piece_task], last[piece_task] + 1,
                           (piece_core + 1) * per_core)
    piece_step_begin = core_begin - first[piece_task]
    piece_step_end = core_end - first[piece_task]

    first_piece_of_core = torch.full((num_cores,), num_pieces, dtype=torch.int64)
    first_piece_of_core.scatter_reduce_(0, piece_core, torch.arange(num_pieces), "amin")
    piece_rank = torch.arange(num_pieces) - first_piece_of_core[piece_core]

    is_split = task_num_pieces[piece_task] > 1
    piece_slot = torch.where(is_split, torch.cumsum(is_split.to(torch.int64), 0) - 1,
                             torch.full_like(piece_task, -1))
    balanced = Schedule(num_cores, per_core, piece_task, piece_step_begin, piece_step_end,
                        piece_core, piece_rank, piece_slot, task_num_pieces, int(is_split.sum()))
    if split_cost is not None and balanced.num_slots:
        whole = _whole_tasks(task_steps, cost, num_cores)
        longest = int(balanced.core_costs(task_overhead).max())
        if int(whole.core_costs(task_overhead).max()) <= longest + split_cost:
            return whole
    return balanced


def _whole_tasks(task_steps: torch.Tensor, cost: torch.Tensor, num_cores: int) -> Schedule:
    """One piece per task: core c runs the tasks between the task boundaries nearest to the
    balanced cuts c * total / num_cores and (c + 1) * total / num_cores (on the cost line)."""
    num_tasks = task_steps.numel()
    ends = torch.cumsum(cost, 0)                                   # boundary after task t
    total = int(ends[-1])
    cuts = torch.arange(1, num_cores, dtype=torch.int64) * total // num_cores
    after = torch.searchsorted(ends, cuts)              # first boundary at or past each cut
    before = after - 1                                  # the boundary before it (-1: none)
    end_after = ends[after.clamp(max=num_tasks - 1)]
    end_before = torch.where(before >= 0, ends[before.clamp(min=0)], torch.zeros_like(cuts))
    nearer_before = (cuts - end_before) < (end_after - cuts)
    first_task = torch.where(nearer_before, before + 1, after + 1)     # first task of core c+1
    piece_core = torch.searchsorted(first_task, torch.arange(num_tasks), right=True)
    first_of_core = torch.full((num_cores,), num_tasks, dtype=torch.int64)
    first_of_core.scatter_reduce_(0, piece_core, torch.arange(num_tasks), "amin")
    tasks = torch.arange(num_tasks)
    longest = int(torch.zeros(num_cores, dtype=torch.int64).index_add_(0, piece_core, cost).max())
    return Schedule(num_cores, longest, tasks, torch.zeros_like(tasks),
                    task_steps.clone(), piece_core, tasks - first_of_core[piece_core],
                    torch.full_like(tasks, -1), torch.ones_like(tasks), 0)
