"""Mask functors (op_kernel/common/masks.py) and their geometry (op_host/common/mask_spec.py).

Worked 7 x 7 visibility tables of MAX's masks (``TABLES``) are reproduced three times: by the
functors directly, by the reference's own predicates (``reference.visible``, which shares no
code with the functors), and end to end through ``custom.npu_flash_attention`` (q = 0 and
one-hot values make each output row the uniform distribution over the visible keys, so
``out > 0`` *is* the table). The op's visibility and the reference's are also compared on many
random calls (modes 0-4, pre/next, chunk_size, atten_mask, L_q != L_k).
"""
import ast
import inspect
import random

import pytest
import torch

import cann_attention  # noqa: F401  (registers the op)
from cann_attention.op_host.common.mask_spec import INT64_MAX, TileStatus
from cann_attention.op_kernel.common import masks as mk
from cann_attention.op_kernel.common.score_mods import alibi_pse_shift, alibi_slopes
from cann_attention.op_kernel.flash_attention import reference

SWC3 = """1000000 1100000 1110000 0111000 0011100 0001110 0000111"""
SWNC3 = """1111111 1111111 1111111 0111111 0011111 0001111 0000111"""
CC3 = """1000000 1100000 1110000 0001000 0001100 0001110 0000001"""
TABLES = {
    "SlidingWindowCausal_W3": (SWC3, mk.sliding_window_causal_mask(3),
                               dict(sparse_mode=4, pre_tokens=2, next_tokens=0)),
    "SlidingWindowNonCausal_W3": (SWNC3, mk.sliding_window_noncausal_mask(3),
                                  dict(sparse_mode=4, pre_tokens=2, next_tokens=INT64_MAX)),
    "ChunkedCausal_C3": (CC3, mk.chunked_causal_mask(3), dict(sparse_mode=3, chunk_size=3)),
}


def _table(text):
    return torch.tensor([[c == "1" for c in row] for row in text.split()])


def _grid(n=7):
    z = torch.zeros((), dtype=torch.int64)
    return z, z, torch.arange(n).view(-1, 1), torch.arange(n).view(1, -1)


def _op_visibility(s1, s2, **kw):
    """Visible keys of every row, read off the op's output (q = 0, v = one-hot)."""
    d = 16
    q = torch.zeros(1, s1, 1, d)
    k = torch.randn(1, s2, 1, d)
    v = torch.zeros(1, s2, 1, d)
    v[0, torch.arange(s2), 0, torch.arange(s2)] = 1.0
    out, _, _ = torch.ops.cann_attention.npu_flash_attention(q, k, v, 1.0, **kw)
    return out[0, :, 0, :s2] > 0


@pytest.mark.parametrize("name", list(TABLES))
def test_worked_table_functor(name):
    text, functor, _ = TABLES[name]
    assert torch.equal(functor.visible(*_grid()), _table(text))


@pytest.mark.parametrize("name", list(TABLES))
def test_worked_table_op(name):
    text, _, kwargs = TABLES[name]
    assert torch.equal(_op_visibility(7, 7, **kwargs), _table(text))


@pytest.mark.parametrize("name", list(TABLES))
def test_worked_table_reference(name):
    text, _, kwargs = TABLES[name]
    assert torch.equal(reference.visible(0, 7, 7, **kwargs), _table(text))


def test_reference_predicates_are_its_own():
    """The golden must not share the mask code it checks (mask_spec / masks)."""
    tree = ast.parse(inspect.getsource(reference))
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported += [f"{'.' * node.level}{node.module or ''}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            imported += [a.name for a in node.names]
    assert not [m for m in imported if "mask" in m], imported


def _random_call(rng):
    """(S1, S2, kwargs) of a random legal mask configuration of the dense op."""
    s1, s2 = rng.randint(1, 9), rng.randint(1, 12)
    mode = rng.randint(0, 4)
    tokens = lambda: rng.choice([INT64_MAX, 0, rng.randint(-6, 12)])  # noqa: E731
    kw = dict(sparse_mode=mode, pre_tokens=tokens(), next_tokens=tokens())
    if mode == 4 and kw["pre_tokens"] + kw["next_tokens"] < 0:
        kw["pre_tokens"] = -kw["next_tokens"]                 # an empty band is refused
    if rng.random() < 0.4:
        kw["chunk_size"] = rng.randint(1, 6)
    if mode == 1 or (mode == 0 and rng.random() < 0.6) or rng.random() < 0.2:
        shape = rng.choice([(s1, s2), (1, s1, s2), (1, 1, s1, s2)])
        kw["atten_mask"] = torch.rand(shape) < 0.3            # ignored by modes 2/3/4
    return s1, s2, kw


def test_reference_visibility_equals_the_op_on_random_calls():
    rng = random.Random(2024)
    for _ in range(200):
        s1, s2, kw = _random_call(rng)
        want = reference.visible(0, s1, s2, **kw)
        assert torch.equal(_op_visibility(s1, s2, **kw), want), (s1, s2, kw)


def test_chunked_bidirectional_op():
    want = torch.tensor([[i // 3 == j // 3 for j in range(7)] for i in range(7)])
    assert torch.equal(_op_visibility(7, 7, chunk_size=3), want)


@pytest.mark.parametrize("mode,want", [
    (2, lambda i, j, dl: j <= i), (3, lambda i, j, dl: j <= i + dl),
    (4, lambda i, j, dl: (i + dl - 2 <= j) & (j <= i + dl + 1))])
def test_sparse_modes_right_down_alignment(mode, want):
    """S1=4 queries against S2=9 keys: mode 2 top-left, modes 3/4 bottom-right."""
    i, j = torch.arange(4).view(-1, 1), torch.arange(9).view(1, -1)
    got = _op_visibility(4, 9, sparse_mode=mode, pre_tokens=2, next_tokens=1)
    assert torch.equal(got, want(i, j, 5))


def test_mode0_band_is_top_left_with_mask():
    i, j = torch.arange(4).view(-1, 1), torch.arange(9).view(1, -1)
    am = torch.zeros(4, 9, dtype=torch.bool)
    am[:, 0] = True
    got = _op_visibility(4, 9, sparse_mode=0, atten_mask=am, pre_tokens=1, next_tokens=2)
    assert torch.equal(got, (i - 1 <= j) & (j <= i + 2) & (j != 0))


def test_cache_offset_causal_example():
    """KV cache: cache_length 5, 3 new tokens: rows see keys 0..5, 0..6, 0..7."""
    got = _op_visibility(3, 8, sparse_mode=3)
    want = torch.arange(8).view(1, -1) <= torch.tensor([5, 6, 7]).view(-1, 1)
    assert torch.equal(got, want)


def test_padding_mask_functor_and_op():
    lengths = torch.tensor([4])
    f = mk.causal_padding_mask(lengths)
    vis = f.visible(*_grid())
    want = (torch.arange(7).view(1, -1) <= torch.arange(7).view(-1, 1)) & (
        torch.arange(7).view(1, -1) < 4)
    assert torch.equal(vis, want)
    # the op: sparse_mode=1 with the padding mask materialized (True = masked)
    assert torch.equal(_op_visibility(7, 7, sparse_mode=1, atten_mask=~want), want)


def test_and_or_polarity():
    """OrMask masks where either masks (intersection); AndMask only where both (union)."""
    a, b = mk.causal_mask(), mk.ChunkedMask(3)
    va, vb = a.visible(*_grid()), b.visible(*_grid())
    assert torch.equal(mk.OrMask(a, b).visible(*_grid()), va & vb)
    assert torch.equal(mk.AndMask(a, b).visible(*_grid()), va | vb)
    # the same through the op: CANN masks are in masked polarity, so AndMask is AND of masks
    am = (~va) & (~vb)
    assert torch.equal(_op_visibility(7, 7, sparse_mode=1, atten_mask=am), va | vb)
    assert torch.equal(_op_visibility(7, 7, sparse_mode=3, chunk_size=3), va & vb)


def test_materialized_mask_start_pos_and_out_of_range():
    m = torch.zeros(1, 2, 5, dtype=torch.bool)          # rows aligned to the last 2 positions
    m[0, 1, 4] = True
    f = mk.MaterializedMask(m)
    vis = f.visible(*_grid(5))
    assert not vis[:3].any()                             # rows outside [0, R): masked
    assert vis[3].all() and torch.equal(vis[4], torch.tensor([1, 1, 1, 1, 0], dtype=torch.bool))


FUNCTORS = {
    "causal": mk.causal_mask(), "swc5": mk.sliding_window_causal_mask(5),
    "swnc4": mk.sliding_window_noncausal_mask(4), "chunk6": mk.ChunkedMask(6),
    "chunked_causal4": mk.chunked_causal_mask(4),
    "pad": mk.KeyLengthMask(torch.tensor([13, 29])),
    "and": mk.AndMask(mk.sliding_window_causal_mask(3), mk.ChunkedMask(8)),
    "band_per_batch": mk.BandMask(torch.tensor([-3, -40]), torch.tensor([2, -1])),
    "null": mk.NullMask(),
}


@pytest.mark.parametrize("name", list(FUNCTORS))
def test_tile_status_is_exact_where_it_claims(name):
    """FULL tiles are all visible, EMPTY tiles have nothing visible, on many random tiles."""
    f = FUNCTORS[name]
    g = torch.Generator().manual_seed(1)
    for _ in range(300):
        b = int(torch.randint(0, 2, (), generator=g))
        q0, k0 = (int(x) for x in torch.randint(-5, 40, (2,), generator=g))
        qn, kn = (int(x) for x in torch.randint(1, 9, (2,), generator=g))
        st = f.tile_status(torch.tensor(b), torch.tensor(q0), torch.tensor(q0 + qn),
                           torch.tensor(k0), torch.tensor(k0 + kn))
        vis = f.visible(torch.tensor(b), torch.tensor(0), torch.arange(q0, q0 + qn).view(-1, 1),
                        torch.arange(k0, k0 + kn).view(1, -1))
        if int(st) == TileStatus.FULL:
            assert vis.all()
        elif int(st) == TileStatus.EMPTY:
            assert not vis.any()


def test_alibi_slopes_match_max():
    s12 = alibi_slopes(12)
    want = [2.0 ** -e for e in (1, 2, 3, 4, 5, 6, 7, 8, 0.5, 1.5, 2.5, 3.5)]
    torch.testing.assert_close(s12, torch.tensor(want))
    torch.testing.assert_close(alibi_slopes(8), torch.tensor([2.0 ** -(h + 1) for h in range(8)]))


def test_alibi_max_literal_equals_textbook_under_causal():
    """MAX's -(max_prompt_len-1-k)*slope gives the textbook output inside a causal mask."""
    q, k, v = torch.randn(1, 6, 4, 16), torch.randn(1, 9, 4, 16), torch.randn(1, 9, 4, 16)
    outs = [torch.ops.cann_attention.npu_flash_attention(
        q, k, v, 0.25, sparse_mode=3, pse_shift=alibi_pse_shift(4, 6, 9, max_prompt_len=mp))[0]
        for mp in (None, 6, 40)]
    torch.testing.assert_close(outs[0], outs[1])
    torch.testing.assert_close(outs[0], outs[2])
    pse = alibi_pse_shift(4, 6, 9)
    assert pse[0, 1, 2, 4] == -(5 - 4) * 2.0 ** -4 and pse[0, 0, 0, 8] == 0
