"""emulate == reference for npu_lightning_indexer: every layout, paged keys with shuffled page
tables, causal edge rows, Lq > Lk, sparse_count above the visible keys, ties, N1 in {1,8,32,64},
on the plans of several platforms (chunking and split-row merges exercised).

Indices and values must be bitwise equal to the reference (same arithmetic, same tie rule);
the values are also checked with the dtype-aware oracle against the fp32 scores.
"""
from __future__ import annotations

import zlib

import pytest
import torch

import cann_attention
from cann_attention.op_host.common.platform import (
    ASCEND_A3, CPU, H100, PlatformInfo, PlatformKind)
from cann_attention.op_host.lightning_indexer.tiling import tile_usage
from cann_attention.op_kernel.lightning_indexer import reference as ref
from testing.lightning_indexer_cases import CASES, Case, build
from testing.oracle import assert_close

def _tiny(case: Case) -> PlatformInfo:
    """A CPU-kind platform whose lane budget holds exactly the 16-key chunk: many steps."""
    need = tile_usage(PlatformKind.CPU, case.n1, case.n1, 16, case.k, 2)["CACHE"]
    return PlatformInfo("tiny", PlatformKind.CPU, 7, (("CACHE", need),))


PLATFORMS = {"CPU": lambda c: CPU, "A3": lambda c: ASCEND_A3, "H100": lambda c: H100,
             "tiny": _tiny}


def _call(args, platform):
    with cann_attention.use(backend="emulate", platform=platform):
        return torch.ops.cann_attention.npu_lightning_indexer(**args, return_value=
                                                      args["layout_key"] != "PA_BSND")


def _ref_kwargs(args):
    return {k: v for k, v in args.items() if k not in ("query", "key", "weights",
                                                       "sparse_count", "sparse_mode")}


@pytest.mark.parametrize("platform", list(PLATFORMS))
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_lightning_indexer_emulate_matches_reference(case, platform):
    gen = torch.Generator().manual_seed(zlib.crc32(case.id.encode()))
    args = build(case, gen)
    idx, val = _call(args, PLATFORMS[platform](case))
    r_idx, r_val = ref.lightning_indexer(args["query"], args["key"], args["weights"],
                                         sparse_count=case.k, sparse_mode=case.mode,
                                         **_ref_kwargs(args))
    assert idx.dtype == torch.int32 and idx.shape == r_idx.shape
    assert torch.equal(idx, r_idx), f"indices differ at {(idx != r_idx).nonzero()[:5].tolist()}"
    if args["layout_key"] != "PA_BSND":
        assert val.dtype == args["query"].dtype and torch.equal(val, r_val)
        kw = _ref_kwargs(args)
        expected = ref.scores_at(args["query"], args["key"], args["weights"], idx, **kw)
        baseline = ref.scores_at(args["query"], args["key"], args["weights"], idx,
                                 compute_dtype=args["query"].dtype, **kw)
        assert_close(val, expected, baseline.to(val.dtype), "sparse_values")
    else:
        assert val.numel() == 0


@pytest.mark.parametrize("case", CASES[:9], ids=[c.id for c in CASES[:9]])
def test_lightning_indexer_output_contract(case):
    """The output order checked directly: visible, distinct, descending, -1 padding counts."""
    gen = torch.Generator().manual_seed(1)
    args = build(case, gen)
    idx, _ = _call(args, CPU)
    scores_all = ref.scores_at(args["query"], args["key"], args["weights"], idx,
                               **_ref_kwargs(args))
    idx2, sc2 = idx.reshape(-1, case.k), scores_all.reshape(-1, case.k)
    q_lens, k_lens = case.q_lens, case.k_lens
    starts = [0] + list(torch.cumsum(torch.tensor(q_lens), 0).tolist())[:-1]
    s1 = (case.s1 or max(q_lens)) if case.layout_q == "BSND" else None
    expected_rows = {}
    for b, (lq, lk) in enumerate(zip(q_lens, k_lens)):
        for s in range(lq):
            row = b * s1 + s if s1 else starts[b] + s
            nvis = lk if case.mode == 0 else lk - lq + s + 1
            expected_rows[row] = max(0, min(nvis, lk))
    for row in range(idx2.shape[0]):
        nvis = expected_rows.get(row, 0)
        n = min(case.k, nvis)
        got = idx2[row]
        assert (got[n:] == -1).all(), f"row {row}: padding"
        assert ((got[:n] >= 0) & (got[:n] < nvis)).all(), f"row {row}: invisible index"
        assert got[:n].unique().numel() == n, f"row {row}: duplicates"
        sc = sc2[row, :n]
        assert (sc[:-1] >= sc[1:]).all(), f"row {row}: not descending"
        ties = sc[:-1] == sc[1:]
        assert (got[:n][:-1][ties] < got[:n][1:][ties]).all(), f"row {row}: tie order"


def test_lightning_indexer_reference_matches_dense_topk():
    """The golden itself against a dense masked top-k (distinct scores, K <= visible)."""
    gen = torch.Generator().manual_seed(3)
    case = Case((4,), (64,), n1=8, k=16)
    args = build(case, gen)
    idx, _ = ref.lightning_indexer(args["query"], args["key"], args["weights"],
                                   sparse_count=16, sparse_mode=3, **_ref_kwargs(args))
    q, k, w = (args[n].float() for n in ("query", "key", "weights"))
    score = torch.einsum("bshd,btd->bsht", q, k[:, :, 0]).relu().mul(w[..., None]).sum(2)
    causal = torch.arange(64)[None, :] <= (64 - 4 + torch.arange(4))[:, None]
    score = score.masked_fill(~causal, float("-inf"))
    top = torch.topk(score, 16, dim=-1).indices
    assert torch.equal(idx[:, :, 0].sort(-1).values, top.to(torch.int32).sort(-1).values)


def test_lightning_indexer_ties_go_to_smaller_index():
    """All keys equal: every score ties, so the output is 0, 1, 2, ... then -1."""
    q = torch.randn(1, 2, 8, 128).bfloat16()
    key = torch.randn(1, 1, 1, 128).bfloat16().expand(1, 10, 1, 128).contiguous()
    w = torch.rand(1, 2, 8).bfloat16()
    idx, val = torch.ops.cann_attention.npu_lightning_indexer(q, key, w, sparse_count=12,
                                                      sparse_mode=0, return_value=True)
    want = torch.tensor(list(range(10)) + [-1, -1], dtype=torch.int32)
    assert torch.equal(idx[0, 0, 0], want) and torch.equal(idx[0, 1, 0], want)
    assert torch.isneginf(val[0, :, 0, 10:]).all() and torch.isfinite(val[0, :, 0, :10]).all()
