"""Worked examples of docs/sparse_flash_attention.md, Semantics (the boundary tau, the scan
window, rows that see nothing), as named tests.

Expected outputs are computed here from positions listed by hand (a softmax over the listed
positions), independently of both the reference and the emulator."""
from __future__ import annotations

import torch

from cann_attention.op_host.common.platform import CPU
from cann_attention.op_host.sparse_flash_attention import schedule, tiling
from cann_attention.op_kernel.sparse_flash_attention import reference
from testing.calls import checked
from testing.oracle import assert_close

OP = torch.ops.cann_attention.npu_sparse_flash_attention
SOFTMAX_MIN = -2e38


def tensors(B, S1, S2, N1=2, dtype=torch.bfloat16, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g).to(dtype)  # noqa: E731
    return r(B, S1, N1, 512), r(B, S1, N1, 64), r(B, S2, 1, 512), r(B, S2, 1, 64)


def softmax_over(q, qr, k, kr, positions, scale, dtype):
    """fp32 attention of one query row [N1, *] over the listed key positions; (baseline)."""
    out = []
    for cd in (torch.float32, dtype):
        kx = torch.cat([k[positions, 0], kr[positions, 0]], -1).to(cd)
        z = torch.cat([q, qr], -1).to(cd) @ kx.T * scale
        out.append((torch.softmax(z.float(), -1).to(cd) @ kx[:, :512]).float())
    return out


def plan_taus(q_len, kv_len, mode=3):
    q, qr, k, kr = tensors(1, q_len, max(kv_len, 1))
    idx = torch.zeros(1, q_len, 1, 4, dtype=torch.int32)
    p, t = checked("npu_sparse_flash_attention", q, k, k, idx, 1.0, 1, query_rope=qr,
                   key_rope=kr, sparse_mode=mode,
                   actual_seq_lengths_kv=torch.tensor([kv_len], dtype=torch.int32))
    work = schedule.device_schedule(p, tiling.plan(p, CPU), t)
    # rows with tau <= 0 see nothing: their task has no step (tau 0)
    return {r: tau for r, tau in zip(work.task_row.tolist(), work.task_tau.tolist()) if tau > 0}


def test_section5_causal_threshold_lq3_lkv6():
    assert plan_taus(3, 6) == {0: 4, 1: 5, 2: 6}


def test_section5_lq_above_lkv_early_rows_see_nothing():
    # Lq = 5, Lkv = 3: tau = [-1, 0, 1, 2, 3]; rows 0 and 1 see nothing
    assert plan_taus(5, 3) == {2: 1, 3: 2, 4: 3}
    q, qr, k, kr = tensors(1, 5, 3)
    idx = torch.tensor([0, 1, 2, -1], dtype=torch.int32).expand(1, 5, 1, 4).contiguous()
    out, smax, ssum = OP(q, k, k, idx, 0.1, query_rope=qr, key_rope=kr, return_softmax_lse=True)
    assert torch.all(out[0, :2] == 0) and torch.all(out[0, 2:].abs().sum(-1) > 0)
    assert torch.all(smax[0, 0, :2] == SOFTMAX_MIN) and torch.all(ssum[0, 0, :2] == 0)


def test_section5_mode0_sees_all_keys():
    assert plan_taus(3, 6, mode=0) == {0: 6, 1: 6, 2: 6}


def test_section63_scan_window_table():
    """Lq=3, Lkv=6, sbs=2, K=4, mode 3: the gathered positions of each row, listed by hand."""
    q, qr, k, kr = tensors(2, 3, 6)
    rows = [[2, 0, 1, -1], [0, 1, 2, -1], [1, 2, 0, -1]]
    idx = torch.tensor([rows, [[-1, 5, 0, 0]] * 3], dtype=torch.int32).reshape(2, 3, 1, 4)
    expected_positions = [[0, 1], [0, 1, 2, 3, 4], [2, 3, 4, 5, 0, 1]]
    scale = 0.07
    out, _, _ = OP(q, k, k, idx, scale, 2, query_rope=qr, key_rope=kr)
    ref, _, _ = reference.sparse_flash_attention(q, k, k, idx, scale, 2, query_rope=qr,
                                                 key_rope=kr)
    for s, positions in enumerate(expected_positions):
        want, low = softmax_over(q[0, s], qr[0, s], k[0], kr[0], positions, scale, q.dtype)
        assert_close(out[0, s], want, low, f"row {s}")
        assert_close(ref[0, s], want, low, f"reference row {s}")
    # row 0 must NOT use block 1 (positions 2, 3), which the upstream golden would read
    golden, low = softmax_over(q[0, 0], qr[0, 0], k[0], kr[0], [0, 1, 2, 3], scale, q.dtype)
    assert (out[0, 0].float() - golden).abs().max() > 4 * (low - golden).abs().max()
    assert torch.all(out[1] == 0), "a row starting with -1 gathers nothing"


def test_section9_empty_rows_zero_and_invalid_stats():
    """First entry -1; BSND padded rows (s >= Lq); every row invalid in a batch with no keys."""
    q, qr, k, kr = tensors(3, 4, 8)
    idx = torch.randint(0, 8, (3, 4, 1, 4), dtype=torch.int32)
    idx[0, 1, 0, 0] = -1
    lq = torch.tensor([4, 2, 4], dtype=torch.int32)
    lkv = torch.tensor([8, 8, 0], dtype=torch.int32)
    out, smax, ssum = OP(q, k, k, idx, 0.1, query_rope=qr, key_rope=kr, sparse_mode=0,
                         actual_seq_lengths_query=lq, actual_seq_lengths_kv=lkv,
                         return_softmax_lse=True)
    empty = [(0, 1), (1, 2), (1, 3), (2, 0), (2, 1), (2, 2), (2, 3)]
    for b, s in empty:
        assert torch.all(out[b, s] == 0), (b, s)
        assert torch.all(smax[b, 0, s] == SOFTMAX_MIN) and torch.all(ssum[b, 0, s] == 0)
    assert not torch.isnan(out).any()
    assert torch.all(out[0, 0].abs().sum(-1) > 0) and torch.all(ssum[0, 0, 0] > 0)


def test_section9_tnd_tail_rows_beyond_last_prefix_sum():
    T1, n1 = 5, 2
    g = torch.Generator().manual_seed(1)
    q = torch.randn(T1, n1, 512, generator=g).bfloat16()
    qr = torch.randn(T1, n1, 64, generator=g).bfloat16()
    k = torch.randn(6, 1, 512, generator=g).bfloat16()
    kr = torch.randn(6, 1, 64, generator=g).bfloat16()
    idx = torch.zeros(T1, 1, 3, dtype=torch.int32)
    out, smax, ssum = OP(q, k, k, idx, 0.1, query_rope=qr, key_rope=kr, layout_query="TND",
                         layout_kv="TND", actual_seq_lengths_query=torch.tensor([3], dtype=torch.int32),
                         actual_seq_lengths_kv=torch.tensor([6], dtype=torch.int32),
                         return_softmax_lse=True)
    assert smax.shape == (1, T1, n1)
    assert torch.all(out[3:] == 0) and torch.all(smax[0, 3:] == SOFTMAX_MIN)
    assert torch.all(ssum[0, 3:] == 0) and torch.all(ssum[0, :3] > 0)
