"""The reference (and the op) against hand-worked facts of docs/nsa_compress_attention.md: the
Semantics example, the other (l, d, l') parameterisations, mask and top-k semantics, the
statistics' flat memory order."""
from __future__ import annotations

import pytest
import torch

from cann_attention import npu_nsa_compress_attention
from cann_attention.nsa_compress_attention import stats_by_row
from cann_attention.op_kernel.nsa_compress_attention import reference as ref
from cann_attention.op_kernel.nsa_compress_attention import topk as tk
from testing.nsa_compress_attention import Case, make

FLT_MAX = 3.4028234663852886e38


def test_worked_example_section5():
    """l=32, d=16, l'=64: M=4, Nw=2, w=[1,2,2,2,1]; C=10 -> Sel=3 (the doc's example)."""
    assert ref.importance_weights(4, 2) == [1, 2, 2, 2, 1]
    p = torch.tensor([[2.0 ** i for i in range(10)]])          # p_i = 2^i: every term visible
    got = ref.block_importance(p, m_blocks=4, nw=2, sel=3)[0]
    pi = p[0]
    want = [pi[4] + 2 * pi[3] + 2 * pi[2] + 2 * pi[1] + pi[0],
            pi[8] + 2 * pi[7] + 2 * pi[6] + 2 * pi[5] + pi[4],
            2 * pi[9] + pi[8]]
    assert got.tolist() == [float(x) for x in want]
    # the emulator's chunked taps give the same numbers (one chunk holding the 3 blocks)
    window = torch.cat([p, torch.zeros(1, 3)], -1)[:, :12 + 1]   # tokens 0..12 (halo Nw-2 = 0)
    positions = tk.tap_positions(4, 2, 3, "cpu")
    emu = tk.chunk_importance(window, positions, (1, 2, 2, 2, 1))
    assert emu[0].tolist() == got.tolist()


@pytest.mark.parametrize("l,d,ls,weights,tokens", [
    (16, 16, 64, [1, 1, 1, 1], lambda j: range(4 * j + 1, 4 * j + 5)),        # p0 never counts
    (64, 16, 64, [1, 2, 3, 4, 3, 2, 1], lambda j: range(4 * j - 2, 4 * j + 5)),
], ids=["l16-d16-ls64", "l64-d16-ls64"])
def test_other_parameterisations_section5(l, d, ls, weights, tokens):
    m, nw = ls // d, l // d
    assert ref.importance_weights(m, nw) == weights
    c = 14
    sel = -(-c // m)
    for src in range(c):                                     # one-hot P: which blocks see token
        p = torch.zeros(1, c)
        p[0, src] = 1.0
        got = ref.block_importance(p, m, nw, sel)[0]
        for j in range(sel):
            assert (got[j] > 0) == (src in tokens(j)), (src, j)
    assert float(ref.block_importance(torch.ones(1, 16), m, nw, 4)[0, 1]) == sum(weights)


VALUE = torch.randn(10, 1, 16, generator=torch.Generator().manual_seed(1)).half()


def _one_row_call(visible, c=10, k=2, force=None, n1=1):
    """One query row, key = 0 -> equal scores: P is uniform over the visible (unmasked) tokens."""
    q = torch.randn(1, n1, 16).half()
    key = torch.zeros(c, 1, 16).half()
    value = VALUE[:c]
    am = torch.ones(1, c, dtype=torch.bool)
    am[0, list(visible)] = False
    tm = None
    if force is not None:
        tm = torch.zeros(1, 3, dtype=torch.bool)
        tm[0, force] = True
    kw = dict(atten_mask=am, topk_mask=tm, actual_seq_qlen=[1], actual_cmp_seq_kvlen=[c],
              actual_sel_seq_kvlen=[3])
    args = (q, key, value, 0.25, n1, 32, 16, 64, k)
    return npu_nsa_compress_attention(*args, **kw), ref.nsa_compress_attention(*args, **kw)


def test_selection_example_section5():
    """Visible {2, 6, 7, 9}: I = [0.5, 1.0, 0.5]. Top-2 = [1, 0] (tie -> smaller j); forcing
    block 2 (topk_mask True) gives [2, 1]."""
    (_, idx, _, _), (_, ridx, _, _) = _one_row_call({2, 6, 7, 9})
    assert idx[0, 0].tolist() == [1, 0] and torch.equal(idx, ridx)
    (_, idx, _, _), (_, ridx, _, _) = _one_row_call({2, 6, 7, 9}, force=[2])
    assert idx[0, 0].tolist() == [2, 1] and torch.equal(idx, ridx)


def test_forced_blocks_come_first_in_index_order():
    (_, idx, _, _), _ = _one_row_call({6, 7}, k=3, force=[2, 0])
    assert idx[0, 0].tolist() == [0, 2, 1]


def test_zero_score_blocks_are_chosen_by_smallest_index():
    """Only block 1 has positive importance; the rest tie at 0 -> lowest indices win."""
    (_, idx, _, _), _ = _one_row_call({6}, k=3)
    assert idx[0, 0].tolist() == [1, 0, 2]


def test_mask_true_means_masked_and_replaces_the_score():
    """A masked token gets P = 0 (not attended); the output is the softmax over the others."""
    (out, _, smax, ssum), _ = _one_row_call({1, 4}, n1=1)
    want = (VALUE[1].float() + VALUE[4].float()) / 2
    torch.testing.assert_close(out[0].float(), want, atol=2e-3, rtol=2e-3)
    assert float(ssum[0, 0, 0]) == 2.0 and float(smax[0, 0, 0]) == 0.0


def test_gqa_importance_is_summed_over_the_group_only():
    """Two KV heads, G = 2: the top-k of KV head n2 depends only on query heads 2*n2, 2*n2+1."""
    case = Case((3,), (24,), n1=4, n2=2, d1=16, d2=16, k=3, atten_mask=False, topk_mask=False)
    args, kw = make(case)
    _, idx, _, _ = ref.nsa_compress_attention(*args, **kw)
    q2 = args[0].clone()
    q2[:, 2:] = torch.randn_like(q2[:, 2:])                  # change the heads of KV head 1
    _, idx2, _, _ = ref.nsa_compress_attention(q2, *args[1:], **kw)
    assert torch.equal(idx[:, 0], idx2[:, 0])


def test_group_tree_sum_order():
    x = torch.tensor([1e8, 1.0, -1e8, 1.0])                   # fp32: pairwise != sequential
    assert float(ref.group_tree_sum(x)) == float((x[0] + x[1]) + (x[2] + x[3]))
    assert float(tk.group_tree_sum(x[None, :, None], 1)[0, 0]) == float(ref.group_tree_sum(x))


def test_softmax_stats_memory_order_section6():
    """flat index 8 * (N1 * t0 + h * Sq[b] + i) + r holds (max, sum) of (b, h, i), 8 copies."""
    case = Case((2, 3), (9, 12), n1=2, n2=1, d1=16, d2=16, k=2, atten_mask=False,
                topk_mask=False, extra_rows=0)
    args, kw = make(case)
    q, key = args[0].float(), args[1].float()
    _, _, smax, ssum = npu_nsa_compress_attention(*args, **kw)
    flat_max, flat_sum = smax.reshape(-1), ssum.reshape(-1)
    for b, (t0, sq, c0, c) in enumerate([(0, 2, 0, 9), (2, 3, 9, 12)]):
        for h in range(2):
            for i in range(sq):
                s = args[3] * key[c0:c0 + c, 0] @ q[t0 + i, h]
                m, l = s.max(), torch.exp(s - s.max()).sum()
                base = 8 * (2 * t0 + h * sq + i)
                torch.testing.assert_close(flat_max[base:base + 8], m.expand(8))
                torch.testing.assert_close(flat_sum[base:base + 8], l.expand(8))
    by_row = stats_by_row(smax, kw["actual_seq_qlen"])
    assert by_row.shape == (5, 2)
    torch.testing.assert_close(by_row[3, 1], flat_max[8 * (2 * 2 + 1 * 3 + 1)])
