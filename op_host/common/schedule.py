"""Balanced work schedules: cut a line of tasks into equal-cost pieces, one run per core.

Every task is a number of steps (key tiles; 0 for a task that only writes its empty result). The
tasks are laid end to end, each preceded by a fixed overhead (loading the query tile, writing
the output), and the line is cut into ``num_cores`` runs of equal length ``per_core``. A task cut
by a boundary becomes several pieces on consecutive cores; their partial results (output, row
max, row sum) go to workspace slots and are merged by a log-sum-exp combine. This is the split-KV
("flash decoding") schedule: it fills the cores when there are few tasks (decode) and balances
uneven tasks (causal prefill) without a second mechanism. FlashMLA plans its scheduler metadata
the same way.

A split is not free where the merge is a separate pass over partial outputs in memory (the GPU
kernels): given ``split_cost`` (in steps), ``partition`` also cuts the line only at task
boundaries (each cut at the boundary nearest to c * total / num_cores), and keeps tasks whole
when that schedule's longest core is no longer than ``per_core + task_overhead + split_cost``
(the balanced schedule's longest core is at most ``per_core + task_overhead``). Many equal tasks
on fewer cores (decode) then run whole, with no workspace and no merge.

**Fixed sizes, no host reads.** The step counts come from lengths that live on the device, so
the schedule is computed with tensor operations whose output sizes depend only on the number of
tasks T and cores C: at most ``T + C - 1`` pieces (each of the C - 1 cuts adds one), at most
``2 (C - 1)`` split pieces (workspace slots) and ``C - 1`` split tasks. Tables are padded to
those sizes: a padding piece has core ``C`` (past every core's range), no steps and slot -1; a
padding split task has no pieces. This function is the reference of the GPU back ends'
metadata kernels, and what the emulators run on the host.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


def max_pieces(num_tasks: int, num_cores: int) -> int:
    return num_tasks + num_cores - 1 if num_tasks else 0


def max_slots(num_tasks: int, num_cores: int) -> int:
    return min(max_pieces(num_tasks, num_cores), 2 * (num_cores - 1))


def max_split_tasks(num_tasks: int, num_cores: int) -> int:
    return min(num_tasks, num_cores - 1)


@dataclass(frozen=True)
class Schedule:
    num_cores: int
    per_core: torch.Tensor          # int64 []   the longest core's cost bound (module doc)
    core_first: torch.Tensor        # int64 [C+1] pieces of core c: core_first[c] .. [c+1]-1
    piece_task: torch.Tensor        # int64 [P]  task of each piece
    piece_step_begin: torch.Tensor  # int64 [P]  first step of the piece within its task
    piece_step_end: torch.Tensor    # int64 [P]  one past the last step
    piece_core: torch.Tensor        # int64 [P]  core that runs the piece (non-decreasing; C: padding)
    piece_slot: torch.Tensor        # int64 [P]  workspace slot, -1 when the piece is its whole task
    task_num_pieces: torch.Tensor   # int64 [T]
    split_task: torch.Tensor        # int64 [G]  task of each split task (G = max_split_tasks)
    split_first: torch.Tensor       # int64 [G]  its first slot (its slots are consecutive)
    split_count: torch.Tensor       # int64 [G]  its number of pieces (0: padding)
    max_slots: int                  # workspace slots to allocate

    # ---- host views (read values: for the emulators and tests) --------------------------
    @property
    def num_pieces(self) -> int:
        return int(self.core_first[-1])

    @property
    def num_slots(self) -> int:
        """Slots in use."""
        return int((self.piece_slot >= 0).sum())

    @property
    def cost_per_core(self) -> int:
        return int(self.per_core)

    @property
    def piece_rank(self) -> torch.Tensor:
        """Position of each piece in its core's list (padding pieces: -1)."""
        rank = torch.arange(self.piece_core.numel(), device=self.piece_core.device)
        padded = torch.cat([self.core_first, self.core_first[-1:]])
        rank = rank - padded[self.piece_core.clamp(max=self.num_cores)]
        return torch.where(self.piece_core < self.num_cores, rank, torch.full_like(rank, -1))

    @property
    def num_rounds(self) -> int:
        return int(self.piece_rank.max()) + 1 if self.num_pieces else 0

    def rounds(self, device):
        """The pieces round by round (round r: every core's r-th piece, so a round's pieces
        run on different cores at once, as a device would): per round the pieces' task, first
        step, one past the last step and workspace slot, on ``device``."""
        rank = self.piece_rank
        for r in range(self.num_rounds):
            piece = torch.nonzero(rank == r).flatten()
            yield (self.piece_task[piece].to(device), self.piece_step_begin[piece].to(device),
                   self.piece_step_end[piece].to(device), self.piece_slot[piece].to(device))

    def core_costs(self, task_overhead: int) -> torch.Tensor:
        """Cost assigned to each core: its steps plus one overhead per piece."""
        valid = self.piece_core < self.num_cores
        steps = (self.piece_step_end - self.piece_step_begin + task_overhead) * valid
        return torch.zeros(self.num_cores + 1, dtype=torch.int64,
                           device=steps.device).index_add_(0, self.piece_core, steps)[:-1]


def _ceil_div(a: torch.Tensor, b) -> torch.Tensor:
    return torch.div(a + b - 1, b, rounding_mode="floor")


def _scatter_first(size: int, index: torch.Tensor, where: torch.Tensor,
                   values: torch.Tensor) -> torch.Tensor:
    """out[index[i]] = values[i] where ``where[i]`` (indices unique there); others 0. No host
    read: entries not selected go to a spare last element, dropped."""
    out = torch.zeros(size + 1, dtype=values.dtype, device=values.device)
    out.scatter_(0, torch.where(where, index, torch.full_like(index, size)), values)
    return out[:size]


def partition(task_steps: torch.Tensor, num_cores: int, task_overhead: int = 1,
              split_cost: int | None = None) -> Schedule:
    """Cut tasks of ``task_steps`` steps each (>= 0) into a balanced schedule; with
    ``split_cost`` (steps), keep tasks whole where that costs at most ``split_cost`` (module
    doc). Runs on the device of ``task_steps`` without reading any value back."""
    if num_cores < 1:
        raise ValueError(f"num_cores must be >= 1, got {num_cores}")
    steps = task_steps.to(torch.int64)
    dev, T, C, o = steps.device, steps.numel(), num_cores, task_overhead
    P, S, G = max_pieces(T, C), max_slots(T, C), max_split_tasks(T, C)

    def longs(n):
        return torch.zeros(n, dtype=torch.int64, device=dev)

    if T == 0:
        return Schedule(C, longs(1)[0] + 1, longs(C + 1), longs(0), longs(0), longs(0), longs(0),
                        longs(0), longs(0), longs(0), longs(0), longs(0), 0)
    cost = steps + o
    ends = torch.cumsum(cost, 0)
    starts = ends - cost
    total = ends[-1]
    per_core = torch.clamp(_ceil_div(total, C), min=1)
    # balanced: a step at line position x runs on core min(x // per_core, C - 1); a task has one
    # piece per core from the core of its first step to that of its last (a task without steps:
    # one piece, on the core its first step would be on)
    first = starts + o
    last = first + steps - 1
    core_first_t = torch.clamp(first // per_core, max=C - 1)
    core_last_t = torch.clamp(torch.maximum(last, first) // per_core, max=C - 1)
    n = core_last_t - core_first_t + 1                                           # [T]
    cum_n = torch.cumsum(n, 0)
    p = torch.arange(P, device=dev)
    valid = p < cum_n[-1]
    task = torch.clamp(torch.searchsorted(cum_n, p, right=True), max=T - 1)
    j = p - (cum_n - n)[task]
    core = core_first_t[task] + j
    begin = torch.where(j == 0, first[task], core * per_core) - first[task]
    end = torch.where(core == core_last_t[task], last[task] + 1, (core + 1) * per_core) - first[task]
    is_split_task = n > 1
    split_pieces = torch.where(is_split_task, n, 0)
    slot_base = torch.cumsum(split_pieces, 0) - split_pieces                     # [T]
    slot = torch.where(valid & is_split_task[task], slot_base[task] + j, -1)
    zero = torch.zeros_like(p)
    tables = (torch.where(valid, task, zero), torch.where(valid, begin, zero),
              torch.where(valid, end, zero), torch.where(valid, core, zero + C), slot)
    longest = per_core
    use_whole = None
    if split_cost is not None:
        # whole tasks: task t is past cut c iff 2 * (c * total // C) < start + end, i.e. it
        # runs on core floor((ceil((start + end) / 2) * C - 1) / total) (clamped to [0, C-1])
        half = (starts + ends + 1) // 2
        core_w = torch.clamp((half * C - 1) // total, 0, C - 1)                   # [T]
        is_first = torch.cat([torch.ones(1, dtype=torch.bool, device=dev),
                              core_w[1:] != core_w[:-1]])
        is_last = torch.cat([core_w[1:] != core_w[:-1],
                             torch.ones(1, dtype=torch.bool, device=dev)])
        whole_longest = (_scatter_first(C, core_w, is_last, ends)
                         - _scatter_first(C, core_w, is_first, starts)).max()
        use_whole = is_split_task.any() & (whole_longest <= per_core + o + split_cost)
        pad = P - T
        whole = (torch.cat([torch.arange(T, device=dev), longs(pad)]), longs(P),
                 torch.cat([steps, longs(pad)]), torch.cat([core_w, longs(pad) + C]),
                 longs(P) - 1)
        tables = tuple(torch.where(use_whole, w, b) for w, b in zip(whole, tables))
        longest = torch.where(use_whole, whole_longest, per_core)
        n = torch.where(use_whole, torch.ones_like(n), n)
        is_split_task = n > 1
    piece_task, piece_begin, piece_end, piece_core, piece_slot = tables
    core_first = torch.searchsorted(piece_core, torch.arange(C + 1, device=dev))
    # split tasks in task order, their slots consecutive
    g = torch.cumsum(is_split_task.to(torch.int64), 0) - 1
    split_task = _scatter_first(G, g, is_split_task, torch.arange(T, device=dev))
    split_valid = torch.arange(G, device=dev) < is_split_task.sum()
    split_count = torch.where(split_valid, n[split_task], 0)
    split_first = torch.where(split_valid, slot_base[split_task], 0)
    return Schedule(C, longest, core_first, piece_task, piece_begin, piece_end, piece_core,
                    piece_slot, n, split_task, split_first, split_count, S)
