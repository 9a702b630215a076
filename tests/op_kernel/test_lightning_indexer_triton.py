"""The Triton kernel of npu_lightning_indexer against the reference, over the indexer test matrix.

On a GPU (bf16 and fp16) the kernel runs natively; without one its source runs under Triton's
interpreter (TRITON_INTERPRET=1, set before Triton is imported) in fp16 only (the interpreter's
bf16 tl.dot is wrong in Triton 3.9), on the cases that run there in seconds. Each test draws its
inputs from a seed fixed by its node id (conftest.py; named in failure messages) and poisons the
output buffers (NaN values, indices -12345), so an element the kernel does not write fails.

The kernel's scores are fp32 sums in its own order, not the reference's exactly rounded ones
(op_kernel/lightning_indexer/triton.py), so the oracle allows what that rounding can change: at
every position the reference score of the returned key must lie within 2 * eps of the
reference's score at that rank (eps is the scale of the fp32 error of a key's score, ``_eps``:
both orders are top-k orders of scores that differ by about eps), and the padding must be
exactly the reference's. A wrong key, a lost candidate or a wrong order moves a score by more
(a threshold one rank too high passes, though: it drops only keys that arrive in a row's last
step at the boundary rank, which these cases rarely have).
"""
from __future__ import annotations

import dataclasses
import os
import random

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
triton = pytest.importorskip(
    "triton", reason="Triton is not importable (pip install -e \".[test,gpu]\": triton, numpy)")

import cann_attention  # noqa: E402
from cann_attention.op_host.common.platform import H100, platform_for_device  # noqa: E402
from cann_attention.op_host.lightning_indexer.tiling import (  # noqa: E402
    GPU_MAX_SPARSE_COUNT, gpu_row_splits, plan)
from cann_attention.op_kernel.lightning_indexer import reference as ref  # noqa: E402
from cann_attention.op_kernel.lightning_indexer import triton as li_triton  # noqa: E402
from testing.lightning_indexer_cases import CASES, Case, build  # noqa: E402
from testing.poison import POISON_INT, PoisonedTorch  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
OP = cann_attention.OPS["npu_lightning_indexer"]
U = 2.0 ** -24          # fp32 unit roundoff
# the matrix's cases that run in seconds under the interpreter (all of them on a GPU)
QUICK = [c for c in CASES if c.k <= 256 and max(c.k_lens) <= 1000]
SERVED = [c for c in CASES if c.k <= GPU_MAX_SPARSE_COUNT]
MATRIX = SERVED if DEVICE == "cuda" else QUICK


def _inputs(case: Case, seed: int):
    """(op arguments on the device, the same on CPU) of a fresh draw of ``case``."""
    if DEVICE == "cpu" and case.dtype == "bf16":
        case = dataclasses.replace(case, dtype="fp16")
    args = build(case, torch.Generator().manual_seed(seed))
    args["return_value"] = args["layout_key"] != "PA_BSND"
    on_dev = {k: v.to(DEVICE) if isinstance(v, torch.Tensor) else v for k, v in args.items()}
    return on_dev, args


def _run(monkeypatch, args, splits=None):
    """The kernel's outputs (CPU) on ``args``; ``splits``: pieces per row instead of the plan's."""
    bound = OP.bind((), args)
    p = OP.parse(bound)
    OP.check(p)
    platform = platform_for_device(args["query"].device) if DEVICE == "cuda" else H100
    tiling = plan(p, platform)
    if splits is not None:
        tiling = dataclasses.replace(tiling, row_splits=splits)
    monkeypatch.setattr(li_triton, "torch", PoisonedTorch())
    out = li_triton.run(p, tiling, OP.tensors_of(bound))
    monkeypatch.undo()
    return tuple(x.cpu() for x in out)


def _eps(args, *indices) -> torch.Tensor:
    """Per row, the scale of the fp32 error of a key's score: 4 * sqrt(D + N1) * u * the
    largest sum of |w_h * q_h,d * k_d| over the keys named in ``indices`` (the dot's and the
    head sum's roundings, as random-sign errors). That sum is the reference's score of the
    absolute values."""
    kw = _ref_kw(args)
    absolute = [args[n].abs() for n in ("query", "key", "weights")]
    k = args["sparse_count"]
    scale = torch.stack([ref.scores_at(*absolute, i, **kw).reshape(-1, k) for i in indices])
    scale = torch.where(torch.isinf(scale), 0.0, scale).amax((0, 2))
    return 4 * (128 + args["query"].shape[-2]) ** 0.5 * U * scale


def _ref_kw(args):
    return {k: v for k, v in args.items() if k not in ("query", "key", "weights", "sparse_count",
                                                       "sparse_mode", "return_value")}


def check(idx, val, args, what, ties=False):
    """The oracle of the module doc, on CPU tensors ``args``."""
    k = args["sparse_count"]
    kw = _ref_kw(args)
    r_idx, r_val = ref.lightning_indexer(args["query"], args["key"], args["weights"],
                                         sparse_count=k, sparse_mode=args["sparse_mode"],
                                         values_dtype=torch.float32, **kw)
    assert idx.dtype == torch.int32 and idx.shape == r_idx.shape, what
    assert (idx != POISON_INT).all(), f"{what}: unwritten (poisoned) indices"
    pad = r_idx == -1
    assert torch.equal(idx == -1, pad), f"{what}: padding differs at {(idx == -1) != pad}"
    got = ref.scores_at(args["query"], args["key"], args["weights"], idx, **kw).reshape(-1, k)
    rows, pad, r_val = idx.reshape(-1, k), pad.reshape(-1, k), r_val.reshape(-1, k)
    eps = _eps(args, idx, r_idx)[:, None]
    err = torch.where(pad, 0.0, (got - r_val).abs())
    assert (err <= 2 * eps).all(), (f"{what}: a returned key's score is off its rank by "
                                    f"{err.max().item():.3g} > 2 * eps")
    for row in rows:
        live = row[row >= 0]
        assert live.unique().numel() == live.numel(), f"{what}: duplicate indices"
    if args["return_value"]:
        assert val.dtype == args["query"].dtype and val.shape == idx.shape, what
        val = val.reshape(-1, k).float()
        assert torch.isneginf(val[pad]).all(), f"{what}: values at -1 entries"
        rel = 2.0 ** -8 if args["query"].dtype == torch.bfloat16 else 2.0 ** -11
        ok = (val - got).abs() <= rel * got.abs() + 2 * eps
        assert ok[~pad].all(), f"{what}: values off the scores of their keys"
    else:
        assert val.numel() == 0, what
    if ties:     # exact ties: equal reference scores must come in ascending index order
        same = (got[:, :-1] == got[:, 1:]) & (rows[:, 1:] >= 0)
        assert (rows[:, :-1][same] < rows[:, 1:][same]).all(), f"{what}: tie order"


@pytest.mark.parametrize("case", MATRIX, ids=[c.id for c in MATRIX])
def test_kernel_matches_the_reference(monkeypatch, case):
    seed = random.randrange(2**31)
    args, cpu_args = _inputs(case, seed)
    idx, val = _run(monkeypatch, args)
    check(idx, val, cpu_args, f"{case.id} seed={seed}")


# rows cut into pieces (the plan cuts rows of calls with fewer rows than SMs; forced here, so
# small cases run it too): more pieces than a row has steps leaves pieces empty. sparse_count
# above 2048 (LARGE): the buffer exceeds SELECT_CHUNK, so the selection reads it in chunks
# (during the stream at K=3072 with 9000 keys; at the end only at K=8192 with 9000)
LARGE = [Case((1,), (9000,), n1=1, k=3072, dtype="fp16"),
         Case((1,), (9000,), n1=2, k=8192, layout_k="PA_BSND", block_size=64, dtype="fp16")]
SPLIT_RUNS = [(c, s) for c in QUICK for s in (2, 7)] + [(c, s) for c in LARGE for s in (None, 3)]


@pytest.mark.parametrize("case,splits", SPLIT_RUNS,
                         ids=[f"{c.id}-splits{s}" for c, s in SPLIT_RUNS])
def test_split_rows_and_larger_counts(monkeypatch, case, splits):
    seed = random.randrange(2**31)
    args, cpu_args = _inputs(case, seed)
    idx, val = _run(monkeypatch, args, splits=splits)
    check(idx, val, cpu_args, f"{case.id} splits={splits} seed={seed}")


def test_the_plan_splits_rows_of_small_calls():
    assert gpu_row_splits(1, 65536, 132) == 16          # B=1 decode: 16 pieces of 4096 keys
    assert gpu_row_splits(32, 65536, 132) == 4          # 128 programs: one wave
    assert gpu_row_splits(1, 8192, 132) == 2
    assert gpu_row_splits(1, 4000, 132) == 1            # too few keys to be worth a merge
    assert gpu_row_splits(1, 10 ** 6, 132) == 32        # at most GPU_MAX_ROW_SPLITS
    assert gpu_row_splits(66, 65536, 132) == 2
    assert gpu_row_splits(67, 65536, 132) == 1          # enough rows for the SMs
    assert gpu_row_splits(4096, 32768, 132) == 1


@pytest.mark.parametrize("n,k", [(5000, 64), (300, 100), (70, 128)])
def test_topk_rows_orders_like_the_op(n, k):
    """topk_rows (the selection alone, timed by the benchmark): torch.topk's values, ties to
    the smaller index, -1 / -inf past the row."""
    g = torch.Generator().manual_seed(n)
    x = torch.randn(3, n, generator=g)
    x[1] = torch.randint(0, 8, (n,), generator=g).float()     # many exact ties
    x[2, ::3] = float("-inf")
    val, idx = li_triton.topk_rows(x.to(DEVICE), k, platform=None if DEVICE == "cuda" else H100)
    val, idx = val.cpu(), idx.cpu()
    take = min(k, n)
    for r in range(3):
        order = sorted(range(n), key=lambda j: (-x[r, j].item(), j))[:take]
        assert idx[r, :take].tolist() == order, f"row {r}"
        assert torch.equal(val[r, :take], x[r, order])
        assert (idx[r, take:] == -1).all() and torch.isneginf(val[r, take:]).all()


@pytest.mark.skipif(DEVICE != "cuda", reason="under the interpreter tl.dot is numpy's sgemm, "
                    "which scores identical keys differently by their column in the tile, so "
                    "exact ties are not ties there; on a GPU every column is computed alike")
@pytest.mark.parametrize("case", [c for c in MATRIX if c.distinct_keys],
                         ids=[c.id for c in MATRIX if c.distinct_keys])
def test_ties_go_to_the_smaller_index(monkeypatch, case):
    seed = random.randrange(2**31)
    args, cpu_args = _inputs(case, seed)
    idx, val = _run(monkeypatch, args)
    check(idx, val, cpu_args, f"{case.id} seed={seed}", ties=True)


def _malformed(kind: str, seed: int):
    """(args with malformed values, the same call with the values the kernel makes of them)."""
    gen = torch.Generator().manual_seed(seed)
    if kind == "pages":          # an entry outside the cache ends batch 0's keys there
        case = Case((2, 1), (90, 70), n1=8, k=32, layout_k="PA_BSND", dtype="fp16")
        args = build(case, gen)
        fixed = dict(args, actual_seq_lengths_key=torch.tensor([32, 70], dtype=torch.int32))
        args["block_table"] = args["block_table"].clone()
        args["block_table"][0, 2] = 10 ** 6
    elif kind == "lengths":      # counts past S1 / S2 and negative: clamped into [0, S]
        case = Case((3, 2), (50, 40), n1=8, k=16, dtype="fp16", s1=3, s2=50)
        args = build(case, gen)
        args["actual_seq_lengths_query"] = torch.tensor([9, -2], dtype=torch.int32)
        args["actual_seq_lengths_key"] = torch.tensor([80, 40], dtype=torch.int32)
        fixed = dict(args, actual_seq_lengths_query=torch.tensor([3, 0], dtype=torch.int32),
                     actual_seq_lengths_key=torch.tensor([50, 40], dtype=torch.int32))
    else:                        # decreasing TND prefix sums: a running maximum
        case = Case((3, 2, 2), (30, 20, 20), n1=8, k=16, layout_q="TND", layout_k="TND",
                    dtype="fp16")
        args = build(case, gen)
        args["actual_seq_lengths_query"] = torch.tensor([3, 2, 7], dtype=torch.int32)
        args["actual_seq_lengths_key"] = torch.tensor([30, 10, 70], dtype=torch.int32)
        fixed = dict(args, actual_seq_lengths_query=torch.tensor([3, 3, 7], dtype=torch.int32),
                     actual_seq_lengths_key=torch.tensor([30, 30, 70], dtype=torch.int32))
    for a in (args, fixed):
        a["return_value"] = a["layout_key"] != "PA_BSND"
    return args, fixed


@pytest.mark.parametrize("kind", ["pages", "lengths", "prefix_sums"])
def test_malformed_values_are_made_safe(monkeypatch, kind):
    """Value checks off (the default on device tensors): what the module doc says the kernel
    makes of malformed values, and nothing read outside the tensors (compute-sanitizer on a
    GPU run of this test)."""
    seed = random.randrange(2**31)
    args, fixed = _malformed(kind, seed)
    on_dev = {k: v.to(DEVICE) if isinstance(v, torch.Tensor) else v for k, v in args.items()}
    idx, val = _run(monkeypatch, on_dev)
    check(idx, val, fixed, f"{kind} seed={seed}")


def test_topk_rows_refuses_what_it_cannot_select():
    with pytest.raises(ValueError, match="2-D floating-point"):
        li_triton.topk_rows(torch.zeros(3, 4, 5), 2)
    with pytest.raises(ValueError, match="2-D floating-point"):
        li_triton.topk_rows(torch.zeros(3, 4, dtype=torch.int32), 2)
    for k in (0, 8193):
        with pytest.raises(ValueError, match="1 <= k <= 8192"):
            li_triton.topk_rows(torch.zeros(3, 4), k)


@pytest.mark.skipif(DEVICE != "cuda", reason="the direct launch exists only for compiled "
                    "kernels (under the interpreter every launch goes through Triton's binding)")
@pytest.mark.parametrize("splits", [None, 3])
def test_direct_launches_equal_the_first(splits):
    """A plan's first call launches through Triton's binding, later ones launch the compiled
    kernels directly (common/triton_launch.py): same outputs, also on new values."""
    case = next(c for c in SERVED if c.layout_k == "PA_BSND")
    args, _ = _inputs(case, 0)
    bound = OP.bind((), args)
    p = OP.parse(bound)
    tiling = plan(p, platform_for_device(args["query"].device))
    if splits is not None:
        tiling = dataclasses.replace(tiling, row_splits=splits)
    t = OP.tensors_of(bound)
    first = li_triton.run(p, tiling, t)
    again = li_triton.run(p, tiling, t)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    t.query.copy_(torch.randn_like(t.query))
    direct = li_triton.run(p, tiling, t)
    li_triton.LAUNCHES.clear()
    bound_again = li_triton.run(p, tiling, t)          # a new launcher: through the binding
    assert all(torch.equal(a, b) for a, b in zip(direct, bound_again))


def test_every_sparse_count_of_the_op_is_served():
    triton_backend = next(b for b in OP.backends if b.name == "triton")
    for k in (1, 2048, 3072, 5120, 8192):
        case = Case((1,), (64,), n1=8, k=k, dtype="fp16")
        p = OP.parse(OP.bind((), build(case, torch.Generator().manual_seed(0))))
        assert triton_backend.rule(p) is None, k
