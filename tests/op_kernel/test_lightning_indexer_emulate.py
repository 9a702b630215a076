"""emulate == reference for npu_lightning_indexer: every layout, paged keys with shuffled page
tables, causal edge rows, Lq > Lk, sparse_count above the visible keys, ties, N1 in {1,8,32,64},
on the plans of several platforms (chunking and split-row merges exercised).

Indices and values must be bitwise equal to the reference (same arithmetic, same tie rule);
the values are also checked with the dtype-aware oracle against the fp32 scores.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import pytest
import torch

import cann_attention
from cann_attention.op_host.common.platform import (
    ASCEND_A3, CPU, H100, PlatformInfo, PlatformKind)
from cann_attention.op_host.lightning_indexer.tiling import tile_usage
from cann_attention.op_kernel.lightning_indexer import reference as ref
from testing.oracle import assert_close

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Case:
    q_lens: tuple[int, ...]
    k_lens: tuple[int, ...]
    n1: int
    k: int
    dtype: str = "bf16"
    layout_q: str = "BSND"
    layout_k: str = "BSND"
    mode: int = 3
    s1: int = 0            # BSND query slots (>= max q_lens); 0: max(q_lens)
    s2: int = 0            # BSND key slots; 0: max(k_lens)
    block_size: int = 16   # PA_BSND page size
    weights_fp32: bool = False
    distinct_keys: int = 0  # > 0: keys drawn from this many rows (exact ties)
    pass_lengths: bool = True

    @property
    def id(self) -> str:
        b = len(self.q_lens)
        s1 = f"S1_{max(self.q_lens)}" if self.layout_q == "BSND" else f"T1_{sum(self.q_lens)}"
        parts = [f"B{b}", s1, f"S2_{max(self.k_lens)}", f"N1_{self.n1}", f"K{self.k}",
                 self.dtype, f"{self.layout_q}-{self.layout_k}", f"M{self.mode}"]
        if self.layout_k == "PA_BSND":
            parts.append(f"BS{self.block_size}")
        if self.weights_fp32:
            parts.append("Wfp32")
        if self.distinct_keys:
            parts.append(f"TIES{self.distinct_keys}")
        return "-".join(parts)


def build(case: Case, gen: torch.Generator) -> dict:
    """Keyword arguments of one call (tensors built on CPU from ``gen``)."""
    dt = DTYPES[case.dtype]
    b = len(case.q_lens)

    def randn(*shape, dtype=dt):
        return torch.randn(*shape, generator=gen).to(dtype)

    i32 = lambda xs: torch.tensor(xs, dtype=torch.int32)  # noqa: E731
    prefix = lambda xs: i32(torch.cumsum(torch.tensor(xs), 0).tolist())  # noqa: E731
    args = dict(layout_query=case.layout_q, layout_key=case.layout_k, sparse_count=case.k,
                sparse_mode=case.mode)
    wdt = torch.float32 if case.weights_fp32 else dt
    if case.layout_q == "BSND":
        s1 = case.s1 or max(case.q_lens)
        args["query"], args["weights"] = randn(b, s1, case.n1, 128), randn(b, s1, case.n1,
                                                                          dtype=wdt)
        if case.pass_lengths:
            args["actual_seq_lengths_query"] = i32(case.q_lens)
    else:
        t1 = sum(case.q_lens) + 1                       # one row past aq[-1]
        args["query"], args["weights"] = randn(t1, case.n1, 128), randn(t1, case.n1, dtype=wdt)
        args["actual_seq_lengths_query"] = prefix(case.q_lens)
    if case.layout_k == "BSND":
        s2 = case.s2 or max(case.k_lens)
        key = randn(b, s2, 1, 128)
        if case.pass_lengths:
            args["actual_seq_lengths_key"] = i32(case.k_lens)
    elif case.layout_k == "TND":
        key = randn(sum(case.k_lens), 1, 128)
        args["actual_seq_lengths_key"] = prefix(case.k_lens)
    else:
        bs = case.block_size
        pages = max(1, -(-max(case.k_lens) // bs))
        num_blocks = b * pages + 3
        perm = torch.randperm(num_blocks, generator=gen)[: b * pages].reshape(b, pages)
        for bi, n in enumerate(case.k_lens):
            perm[bi, -(-n // bs):] = -1                  # unused entries: never read
        key = randn(num_blocks, bs, 1, 128)
        args["block_table"] = perm.to(torch.int32)
        args["actual_seq_lengths_key"] = i32(case.k_lens)
    if case.distinct_keys:
        flat = key.reshape(-1, 128)
        pick = torch.randint(case.distinct_keys, (flat.shape[0],), generator=gen)
        key = flat[pick].reshape(key.shape)
    args["key"] = key
    return args


CASES = [
    Case((5, 3), (300, 40), n1=8, k=64),
    Case((1,), (700,), n1=64, k=128, layout_k="PA_BSND", block_size=64),
    Case((1, 1, 1), (37, 0, 129), n1=32, k=48, layout_k="PA_BSND", dtype="fp16"),
    Case((4, 6), (90, 200), n1=32, k=200, layout_q="TND", layout_k="TND", dtype="fp16"),
    Case((6, 2), (4, 9), n1=1, k=8, s1=7),                                  # Lq > Lk
    Case((5, 0, 3), (2, 50, 3), n1=8, k=16, layout_q="TND", layout_k="PA_BSND", mode=0),
    Case((7,), (5,), n1=8, k=4, layout_q="TND", layout_k="PA_BSND", mode=3),  # Lq > Lk
    Case((3, 2), (150, 60), n1=8, k=32, mode=0, weights_fp32=True),
    Case((4, 4), (120, 77), n1=8, k=40, distinct_keys=6),                    # ties
    Case((4,), (96,), n1=64, k=100, layout_k="PA_BSND", distinct_keys=3, block_size=32),
    Case((2,), (2100,), n1=8, k=2048, pass_lengths=False),
    Case((2,), (4500,), n1=1, k=4096, layout_q="TND", layout_k="TND"),
    Case((3, 2), (40, 33), n1=8, k=2048, s2=50, mode=0),                     # K >> visible
]


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
