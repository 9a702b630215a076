"""fp32 online softmax in vectorised PyTorch: the arithmetic every emulator shares.

State per row: running max ``m``, running sum ``l`` of exp(z - m), unnormalised output ``acc``.
A row that has seen no visible key keeps m = -inf, l = 0. ``finalize`` applies the namespace's
invalid-row convention (docs/sparse_flash_attention.md, Semantics): rows that saw no key get a
zero output and statistics (softmax_max, softmax_sum) = (-2e38, 0).
"""
from __future__ import annotations

import torch

SOFTMAX_MIN = -2e38   # softmax_max reported for rows with nothing visible


def init_state(rows: tuple[int, ...], dv: int, device) -> tuple[torch.Tensor, ...]:
    m = torch.full(rows, float("-inf"), dtype=torch.float32, device=device)
    l = torch.zeros(rows, dtype=torch.float32, device=device)
    acc = torch.zeros(rows + (dv,), dtype=torch.float32, device=device)
    return m, l, acc


def _safe(m: torch.Tensor) -> torch.Tensor:
    """m where finite, else 0: subtracting it from -inf logits keeps exp() at 0, never NaN."""
    return torch.where(torch.isfinite(m), m, torch.zeros_like(m))


def update(m, l, acc, scores, values, p_dtype: torch.dtype | None):
    """One step: scores [..., P] (fp32, -inf where masked), values [..., P, Dv] (fp32).

    ``p_dtype``: the probabilities are rounded to it before the P.V product (the NPU and GPU
    kernels feed P to the matrix unit in the input dtype); the row sum uses the fp32 values.
    """
    m_new = torch.maximum(m, scores.amax(dim=-1))
    base = _safe(m_new)
    alpha = torch.exp(m - base)
    p = torch.exp(scores - base.unsqueeze(-1))
    l = l * alpha + p.sum(dim=-1)
    if p_dtype is not None:
        p = p.to(p_dtype).to(torch.float32)
    acc = acc * alpha.unsqueeze(-1) + torch.matmul(p, values)
    return m_new, l, acc


def combine(m, l, acc, group: torch.Tensor, num_groups: int):
    """Log-sum-exp merge of partial states [n, ...] into ``num_groups`` states by ``group``."""
    rows = m.shape[1:]
    idx = group.view((-1,) + (1,) * len(rows)).expand_as(m)
    m_all = torch.full((num_groups,) + rows, float("-inf"), dtype=m.dtype, device=m.device)
    m_all.scatter_reduce_(0, idx, m, "amax")
    w = torch.exp(m - _safe(m_all)[group])
    l_all = torch.zeros_like(m_all).index_add_(0, group, l * w)
    acc_all = torch.zeros((num_groups,) + acc.shape[1:], dtype=acc.dtype, device=acc.device)
    acc_all.index_add_(0, group, acc * w.unsqueeze(-1))
    return m_all, l_all, acc_all


def finalize(m, l, acc, sinks: torch.Tensor | None = None):
    """(out fp32, softmax_max, softmax_sum); ``sinks`` (broadcast to m) join the sum only."""
    empty = l <= 0
    if sinks is not None:
        m_sink = torch.maximum(m, sinks)
        scale = torch.exp(m - m_sink)
        l = l * scale + torch.exp(sinks - m_sink)
        acc = acc * scale.unsqueeze(-1)
        m = m_sink
    out = torch.where(empty.unsqueeze(-1), torch.zeros_like(acc),
                      acc / torch.where(empty, torch.ones_like(l), l).unsqueeze(-1))
    m = torch.where(empty, torch.full_like(m, SOFTMAX_MIN), m)
    l = torch.where(empty, torch.zeros_like(l), l)
    return out, m, l


def route_pieces(slot: torch.Tensor, m, l, acc, workspace) -> torch.Tensor:
    """Store the states of pieces of split tasks (``slot >= 0``) in their workspace slots.

    Returns the mask of the pieces that are whole tasks, which the caller finalises directly.
    """
    whole = slot < 0
    split = ~whole
    for w, x in zip(workspace, (m, l, acc)):
        w[slot[split]] = x[split]
    return whole


def merge_slots(schedule, workspace, device):
    """(task ids, m, l, acc) of the tasks the schedule split, merged by ``combine``."""
    split = schedule.piece_slot >= 0
    slot_task = schedule.piece_task[split].to(device)
    slots = schedule.piece_slot[split].to(device)
    split_tasks, group = torch.unique(slot_task, return_inverse=True)
    return (split_tasks,) + combine(*(w[slots] for w in workspace), group, len(split_tasks))
