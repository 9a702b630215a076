"""common/schedule.partition: every step scheduled once, balanced cores, split bookkeeping,
fixed-size tables computed without reading a value back (it runs on meta tensors)."""
from __future__ import annotations

import pytest
import torch

from cann_attention.op_host.common.schedule import partition


def covered_steps(s):
    seen = {}
    n = s.num_pieces
    for t, b, e in zip(s.piece_task[:n].tolist(), s.piece_step_begin[:n].tolist(),
                       s.piece_step_end[:n].tolist()):
        seen.setdefault(t, []).extend(range(b, e))
    return seen


def valid(x, s):
    return x[:s.num_pieces]


@pytest.mark.parametrize("steps,cores", [([4, 4, 4, 4], 24), ([1] * 300, 24), ([37, 1, 5], 132),
                                         ([8] * 500, 132), ([3], 1), ([100, 1, 1, 1, 50], 7)])
def test_every_step_once_and_balanced(steps, cores):
    s = partition(torch.tensor(steps), cores, task_overhead=1)
    assert covered_steps(s) == {t: list(range(n)) for t, n in enumerate(steps)}
    assert int(valid(s.piece_core, s).max()) < cores
    assert torch.all(s.piece_core[1:] >= s.piece_core[:-1])
    # padding pieces: past every core, no steps, no slot
    pad = slice(s.num_pieces, None)
    assert torch.all(s.piece_core[pad] == cores) and torch.all(s.piece_slot[pad] == -1)
    assert torch.all(s.piece_step_end[pad] == s.piece_step_begin[pad])
    assert s.piece_task.numel() == len(steps) + cores - 1
    # no core gets more than the cut length plus the overhead a split piece adds
    assert int(s.core_costs(1).max()) <= s.cost_per_core + 1
    # ranks count pieces within a core from 0; core_first bounds each core's pieces
    for c in valid(s.piece_core, s).unique().tolist():
        ranks = s.piece_rank[s.piece_core == c].tolist()
        assert ranks == list(range(len(ranks)))
        lo, hi = s.core_first[c].item(), s.core_first[c + 1].item()
        assert torch.all(s.piece_core[lo:hi] == c) and hi - lo == len(ranks)


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
    assert torch.all(s.task_num_pieces[valid(s.piece_task, s)[~valid(split, s)]] == 1)
    assert sorted(s.piece_slot[split].tolist()) == list(range(s.num_slots))
    assert s.num_slots <= s.max_slots
    # the split-task tables: task 0, its slots consecutive from 0; padding has no pieces
    assert s.split_task.tolist()[0] == 0 and s.split_count.tolist()[0] == s.num_slots
    assert s.split_first.tolist()[0] == 0 and s.split_count.tolist()[1:] == [0]


def test_refusals():
    with pytest.raises(ValueError, match="num_cores"):
        partition(torch.tensor([1]), 0)


def test_tasks_without_steps_get_one_empty_piece():
    """A task of no step (a row that sees nothing) still gets a piece, which writes its empty
    result, on the core where its first step would be."""
    steps = [0, 3, 0, 0, 5, 0]
    s = partition(torch.tensor(steps), 3, task_overhead=1)
    assert sorted(set(valid(s.piece_task, s).tolist())) == list(range(len(steps)))
    assert covered_steps(s) == {t: list(range(n)) for t, n in enumerate(steps)}
    for t in (0, 2, 3, 5):
        pieces = valid(s.piece_task, s) == t
        assert int(pieces.sum()) == 1


def test_empty():
    s = partition(torch.zeros(0, dtype=torch.int64), 8)
    assert s.num_pieces == 0 and s.num_rounds == 0 and s.num_slots == 0


@pytest.mark.parametrize("split_cost", [None, 6])
def test_no_value_is_read_back(split_cost):
    """The schedule is built from device-resident step counts without a host read: on meta
    tensors (which have no values) it still produces every table, of the fixed sizes."""
    s = partition(torch.zeros(300, dtype=torch.int64, device="meta"), 132, 1, split_cost)
    assert s.piece_task.shape == (300 + 131,) and s.core_first.shape == (133,)
    assert s.split_count.shape == (131,) and s.max_slots == 262


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
    assert torch.all(s.piece_core[1:] >= s.piece_core[:-1])
    assert int(valid(s.piece_core, s).max()) < cores
    longest = int(s.core_costs(1).max())
    assert longest <= balanced.cost_per_core + 1 + 6          # the documented rule
    assert longest == s.cost_per_core
    # counts per core differ by at most one task, and the rounds still hold one piece a core
    counts = torch.bincount(valid(s.piece_core, s), minlength=cores)
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


@pytest.mark.parametrize("seed", range(20))
def test_matches_a_plain_reference(seed):
    """Against a plain-Python statement of the two cuts (module doc) on random lines."""
    import random
    rng = random.Random(seed)
    steps = [rng.choice([0, 1, 5, 32, 40]) for _ in range(rng.randint(1, 60))]
    cores, o, cost = rng.choice([1, 3, 7, 24]), rng.choice([0, 1]), rng.choice([None, 0, 6])
    s = partition(torch.tensor(steps), cores, o, cost)
    line = [n + o for n in steps]
    total = sum(line)
    per_core = max(1, -(-total // cores))
    starts = [sum(line[:t]) for t in range(len(steps))]
    balanced = {}
    for t, n in enumerate(steps):
        first = starts[t] + o
        last = max(first + n - 1, first)
        balanced[t] = (min(first // per_core, cores - 1), min(last // per_core, cores - 1))
    whole = {t: min(max(((2 * starts[t] + line[t] + 1) // 2 * cores - 1) // max(total, 1), 0),
                    cores - 1) for t in range(len(steps))}
    spans = {}
    for t, c in whole.items():
        lo, hi = spans.get(c, (starts[t], starts[t] + line[t]))
        spans[c] = (min(lo, starts[t]), max(hi, starts[t] + line[t]))
    whole_longest = max(hi - lo for lo, hi in spans.values())
    any_split = any(a != b for a, b in balanced.values())
    use_whole = cost is not None and any_split and whole_longest <= per_core + o + cost
    got = list(zip(valid(s.piece_task, s).tolist(), valid(s.piece_core, s).tolist()))
    if use_whole:
        assert got == [(t, whole[t]) for t in range(len(steps))]
    else:
        assert got == [(t, c) for t, (a, b) in balanced.items() for c in range(a, b + 1)]
