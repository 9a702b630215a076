"""common/schedule.partition: every step scheduled once, balanced cores, split bookkeeping."""
from __future__ import annotations

import pytest
import torch

from cann_attention.op_host.common.schedule import partition


def covered_steps(s):
    seen = {}
    for t, b, e in zip(s.piece_task.tolist(), s.piece_step_begin.tolist(),
                       s.piece_step_end.tolist()):
        seen.setdefault(t, []).extend(range(b, e))
    return seen


@pytest.mark.parametrize("steps,cores", [([4, 4, 4, 4], 24), ([1] * 300, 24), ([37, 1, 5], 132),
                                         ([8] * 500, 132), ([3], 1), ([100, 1, 1, 1, 50], 7)])
def test_every_step_once_and_balanced(steps, cores):
    s = partition(torch.tensor(steps), cores, task_overhead=1)
    assert covered_steps(s) == {t: list(range(n)) for t, n in enumerate(steps)}
    assert int(s.piece_core.max()) < cores
    assert torch.all(s.piece_core[1:] >= s.piece_core[:-1])
    # no core gets more than the cut length plus the overhead a split piece adds
    assert int(s.core_costs(1).max()) <= s.cost_per_core + 1
    # ranks count pieces within a core from 0
    for c in s.piece_core.unique().tolist():
        ranks = s.piece_rank[s.piece_core == c].tolist()
        assert ranks == list(range(len(ranks)))


@pytest.mark.parametrize("steps,cores", [([8] * 500, 132), ([100, 1, 1, 1, 50], 7), ([6, 1], 4)])
def test_rounds_hold_every_piece_once_one_per_core(steps, cores):
    s = partition(torch.tensor(steps), cores, task_overhead=0)
    seen = []
    for r, (task, begin, end, slot) in enumerate(s.rounds("cpu")):
        pieces = torch.nonzero(s.piece_rank == r).flatten()      # this round's pieces, by core
        assert len(set(s.piece_core[pieces].tolist())) == len(pieces)
        got = sorted(zip(task.tolist(), begin.tolist(), end.tolist(), slot.tolist()))
        tables = (s.piece_task, s.piece_step_begin, s.piece_step_end, s.piece_slot)
        assert got == sorted(zip(*(x[pieces].tolist() for x in tables)))
        seen += got
    assert len(seen) == s.num_pieces == len(set(seen))


def test_split_tasks_get_workspace_slots():
    s = partition(torch.tensor([6, 1]), 4, task_overhead=0)
    assert s.task_num_pieces.tolist()[0] > 1
    split = s.piece_slot >= 0
    assert torch.all(s.task_num_pieces[s.piece_task[split]] > 1)
    assert torch.all(s.task_num_pieces[s.piece_task[~split]] == 1)
    assert sorted(s.piece_slot[split].tolist()) == list(range(s.num_slots))


def test_refusals():
    with pytest.raises(ValueError, match="num_cores"):
        partition(torch.tensor([1]), 0)
    with pytest.raises(ValueError, match="at least one step"):
        partition(torch.tensor([2, 0]), 4)


def test_empty():
    s = partition(torch.zeros(0, dtype=torch.int64), 8)
    assert s.num_pieces == 0 and s.num_rounds == 0 and s.num_slots == 0


@pytest.mark.parametrize("tasks,cores", [(512, 132), (256, 132), (128, 132), (264, 132), (260, 132)])
def test_equal_tasks_stay_whole_when_a_split_costs_more(tasks, cores):
    """Many equal tasks (decode): cutting only between tasks lengthens the longest core by less
    than a split costs, so every task is one piece and no workspace slot is used."""
    steps = [32] * tasks
    s = partition(torch.tensor(steps), cores, task_overhead=1, split_cost=6)
    balanced = partition(torch.tensor(steps), cores, task_overhead=1)
    assert balanced.num_slots > 0 or tasks % cores == 0
    assert s.num_slots == 0 and s.num_pieces == tasks
    assert covered_steps(s) == {t: list(range(32)) for t in range(tasks)}
    assert torch.all(s.piece_core[1:] >= s.piece_core[:-1]) and int(s.piece_core.max()) < cores
    longest = int(s.core_costs(1).max())
    assert longest <= int(balanced.core_costs(1).max()) + 6
    assert longest == s.cost_per_core
    # counts per core differ by at most one task, and the rounds still hold one piece a core
    counts = torch.bincount(s.piece_core, minlength=cores)
    assert int(counts.max()) - int(counts[counts > 0].min()) <= 1
    assert sum(len(task) for task, *_ in s.rounds("cpu")) == tasks


@pytest.mark.parametrize("steps,cores,split_cost", [([32] * 32, 132, 6),      # fewer tasks than cores
                                                    ([100, 1, 1, 1, 50], 7, 6),   # uneven
                                                    ([32] * 256, 132, 0)])        # a free split
def test_tasks_are_split_when_keeping_them_whole_costs_more(steps, cores, split_cost):
    s = partition(torch.tensor(steps), cores, task_overhead=1, split_cost=split_cost)
    balanced = partition(torch.tensor(steps), cores, task_overhead=1)
    assert s.num_slots == balanced.num_slots > 0
    assert torch.equal(s.piece_core, balanced.piece_core)
