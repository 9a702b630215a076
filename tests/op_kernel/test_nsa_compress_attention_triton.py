"""The Triton kernel of npu_nsa_compress_attention against the emulator and the reference.

On a GPU (fp16 and bf16) the kernel runs natively; without one its source runs under Triton's
interpreter (TRITON_INTERPRET=1, set before Triton is imported) in fp16 only (the interpreter's
bf16 tl.dot is wrong in Triton 3.9), on small cases. Each test draws fresh inputs from a random
seed named in its failure messages, and the output buffers are poisoned (NaN, -12345), so an
element the kernel does not write fails.

Oracle. attention_out: the dtype-aware oracle against the fp32 reference and close to the
emulator's; statistics: close to both in the kernel's flat order. Top-k: the kernel's scores
are fp32 sums in its own order, so two blocks whose importances differ by rounding may come in
the other order. Every returned block's reference importance must lie within ``TOL`` of the
reference's importance at that rank, the indices must be distinct blocks of the batch, and on
every row whose reference importances (top select_block_count + 1) are separated by more than
``TOL`` the indices must equal the emulator's exactly. Exact ties are built so that they are
exact whatever the summation order (zero query rows: every score 0, P uniform over the row's
unmasked tokens, exactly 0 on its masked ones; forced blocks: +FLT_MAX), and there the indices
must equal the emulator's and the reference's: the tie order (smaller block first) is checked.
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
from cann_attention.config import current  # noqa: E402
from cann_attention.op_host.common.errors import CannAttentionError  # noqa: E402
from cann_attention.op_host.common.platform import (  # noqa: E402
    H100, KiB, PlatformInfo, PlatformKind, platform_for_device)
from cann_attention.op_host.nsa_compress_attention import capabilities, tiling  # noqa: E402
from cann_attention.op_kernel.nsa_compress_attention import emulate  # noqa: E402
from cann_attention.op_kernel.nsa_compress_attention import reference as ref  # noqa: E402
from cann_attention.op_kernel.nsa_compress_attention import triton as nsa_triton  # noqa: E402
from testing.calls import checked  # noqa: E402
from testing.nsa_compress_attention import Case, make  # noqa: E402
from testing.oracle import assert_close, assert_stats_close  # noqa: E402
from testing.poison import POISON_INT, PoisonedTorch  # noqa: E402

OP = "npu_nsa_compress_attention"
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
DTYPES = (torch.float16, torch.bfloat16) if DEVICE == "cuda" else (torch.float16,)
FLT_MAX = 3.4028234663852886e38
TOL_REL, TOL_ABS = 1e-4, 1e-6      # importance scores: kernel order vs the reference's
# a GPU with 2 SMs and small buffers: small chunks (several per task, halos across chunk
# boundaries, the top-k merged across chunks) and several tasks per program
SMALL_GPU = PlatformInfo("GPU-small", PlatformKind.GPU, 2,
                         (("SMEM", 8 * KiB), ("REGISTERS", 6 * KiB)))

# varlen TND batches (a zero-length and a one-row batch), every kind of (l, d, l'): Nw = 1
# (halo -1), Nw = 2 (halo 0), Nw = 8, M = 1, block_c not a power of two (M = 6); G = 1 .. 64;
# head dims not multiples of 16 and above 256 (D1 read in slices, D2 in two passes)
CASES = [
    Case((5, 0, 9, 1), (37, 12, 20, 44)),
    Case((3, 6), (61, 90), n1=8, n2=1, d1=8, d2=7, l=128, d=16, ls=128, k=3),
    Case((4, 2), (100, 40), n1=2, n2=2, d1=16, d2=16, l=16, d=16, ls=16, k=32),
    Case((2, 3), (40, 25), n1=8, n2=2, l=96, d=48, ls=96, k=2, atten_mask=False,
         topk_mask=False),
    Case((3,), (30,), n1=16, n2=1, l=64, d=64, ls=128, k=4),
    Case((2, 1), (70, 13), n1=4, n2=2, d1=40, d2=24, l=48, d=16, ls=96, k=2),
    Case((2, 1), (20, 9), n1=64, n2=1, d1=16, d2=16, k=2),
    Case((2,), (40,), n1=2, n2=1, d1=288, d2=272, k=2, topk_mask=False),
]


def _platform():
    return platform_for_device(DEVICE) if DEVICE == "cuda" else H100


def _inputs(case: Case, seed: int):
    """(args, kwargs) of a fresh draw of ``case`` on CPU."""
    return make(case, seed)


def _on(device, args, kwargs):
    move = (lambda x: x.to(device) if isinstance(x, torch.Tensor) else x)
    return tuple(move(a) for a in args), {k: move(v) for k, v in kwargs.items()}


def run_kernel(monkeypatch, args, kwargs, platform=None):
    """(kernel outputs, emulator outputs) on CPU, the kernel's buffers poisoned; both run the
    same plan."""
    d_args, d_kwargs = _on(DEVICE, args, kwargs)
    p, t = checked(OP, *d_args, **d_kwargs)
    plan = tiling.plan(p, platform or _platform())
    monkeypatch.setattr(nsa_triton, "torch", PoisonedTorch())
    got = nsa_triton.run(p, plan, t)
    monkeypatch.undo()
    p_cpu, t_cpu = checked(OP, *args, **kwargs)
    want = emulate.run(p_cpu, plan, t_cpu)
    return tuple(x.cpu() for x in got), want


def importance(args, kwargs) -> torch.Tensor:
    """[T1, N2, max Sel] fp32 reference importances (group sum, forced blocks +FLT_MAX, -inf
    past Sel[b] and on rows outside the batches), from the reference's own helpers."""
    q, k, v, scale, n1, l, d, ls, _ = args
    n2, m_blocks, nw = k.shape[1], ls // d, l // d
    g = n1 // n2
    aq, ac = kwargs["actual_seq_qlen"], kwargs["actual_cmp_seq_kvlen"]
    am, tm = kwargs["atten_mask"], kwargs["topk_mask"]
    max_sel = -(-max(b - a for a, b in zip([0] + ac[:-1], ac)) // m_blocks)
    out = torch.full((q.shape[0], n2, max_sel), float("-inf"))
    for q0, q1, c0, c1 in zip([0] + aq[:-1], aq, [0] + ac[:-1], ac):
        sq, cb = q1 - q0, c1 - c0
        sel = -(-cb // m_blocks)
        if sq == 0:
            continue
        for kv in range(n2):
            per_head = []
            for h in range(kv * g, (kv + 1) * g):
                s = scale * (q[q0:q1, h].float() @ k[c0:c1, kv].float().T)
                if am is not None:
                    s = s.masked_fill(am[:sq, :cb].bool(), -FLT_MAX)
                prob = torch.softmax(s, -1)
                per_head.append(ref.block_importance(prob, m_blocks, nw, sel))
            imp = ref.group_tree_sum(torch.stack(per_head))
            if tm is not None:
                imp = imp.masked_fill(tm[:sq, :sel].bool(), FLT_MAX)
            out[q0:q1, kv, :sel] = imp
    return out


def check_topk(idx, want_idx, args, kwargs, what, exact=False):
    """The top-k oracle of the module doc; ``exact``: equal to the emulator's everywhere."""
    assert idx.dtype == torch.int32 and idx.shape == want_idx.shape, what
    assert (idx != POISON_INT).all(), f"{what}: unwritten (poisoned) indices"
    if exact:
        assert torch.equal(idx, want_idx), f"{what}: indices differ from the emulator's"
        return
    imp = importance(args, kwargs)                                        # [T1, N2, S]
    total_q = kwargs["actual_seq_qlen"][-1]
    assert (idx[total_q:] == 0).all(), f"{what}: rows past the batches are not zero"
    imp, idx, want_idx = imp[:total_q], idx[:total_q].long(), want_idx[:total_q].long()
    kk = idx.shape[-1]
    n_blocks = torch.isfinite(imp).sum(-1, keepdim=True)                 # Sel[b] per row
    assert ((idx >= 0) & (idx < n_blocks)).all(), f"{what}: an index outside [0, Sel[b])"
    assert (idx.sort(-1).values.diff(dim=-1) > 0).all(), f"{what}: duplicate indices"
    best = imp.sort(dim=-1, descending=True, stable=True).values               # reference ranks
    got = imp.gather(-1, idx)
    plain = torch.where(torch.isfinite(imp) & (imp < FLT_MAX), imp, 0.0)   # not forced
    tol = TOL_REL * plain.abs().amax(-1, keepdim=True) + TOL_ABS
    err = (got - best[..., :kk]).abs()
    assert (err <= tol).all(), (f"{what}: a returned block's importance is off its rank by "
                                f"{err.max().item():.3g}")
    top = best[..., :kk + 1]
    gaps = torch.where(torch.isfinite(top.diff(dim=-1)), -top.diff(dim=-1), float("inf"))
    separated = (gaps > tol).all(-1)
    assert torch.equal(idx[separated], want_idx[separated]), (
        f"{what}: indices differ from the emulator's on rows without near-ties")


def check(got, want, args, kwargs, what, exact_topk=False):
    out, idx, smax, ssum = got
    w_out, w_idx, w_max, w_sum = want
    ref_fp32 = ref.nsa_compress_attention(*args, **kwargs, output_fp32=True)
    base = ref.nsa_compress_attention(*args, **kwargs, compute_dtype=args[0].dtype)
    assert out.dtype == args[0].dtype and smax.dtype == ssum.dtype == torch.float32, what
    assert_close(out, ref_fp32[0], base[0].float(), f"{what}: attention_out")
    tol = 2e-3 if out.dtype == torch.float16 else 1.6e-2
    torch.testing.assert_close(out.float(), w_out.float(), rtol=tol, atol=tol,
                               msg=lambda m: f"{what}: attention_out vs emulator: {m}")
    for name, x, r, e in (("softmax_max", smax, ref_fp32[2], w_max),
                          ("softmax_sum", ssum, ref_fp32[3], w_sum)):
        assert_stats_close(x, r, what=f"{what}: {name} vs reference")
        assert_stats_close(x, e, rtol=1e-5, what=f"{what}: {name} vs emulator")
    check_topk(idx, w_idx, args, kwargs, what, exact=exact_topk)
    if exact_topk:
        assert torch.equal(idx, ref_fp32[1]), f"{what}: indices differ from the reference's"


MATRIX = [dataclasses.replace(c, dtype=dt) for c in CASES for dt in DTYPES]


@pytest.mark.parametrize("case", MATRIX, ids=[c.id for c in MATRIX])
def test_kernel_matches_emulator_and_reference(monkeypatch, case):
    seed = random.randrange(2**31)
    args, kwargs = _inputs(case, seed)
    got, want = run_kernel(monkeypatch, args, kwargs)
    check(got, want, args, kwargs, f"{case.id} seed={seed}")


@pytest.mark.parametrize("case", [
    Case((6, 9), (61, 90), n1=4, n2=2, d1=32, d2=16, l=32, d=16, ls=64, k=5),
    Case((3, 5), (70, 33), n1=2, n2=1, d1=16, d2=16, l=128, d=16, ls=128, k=3),
    Case((4,), (57,), n1=2, n2=2, d1=16, d2=16, l=96, d=48, ls=96, k=4),
    Case((3,), (200,), n1=2, n2=1, d1=16, d2=16, l=16, d=16, ls=128, k=16),
], ids=lambda c: c.id)
def test_many_chunks_and_tasks_per_program(monkeypatch, case):
    """Small tiles: halos cross chunk boundaries, the top-k is merged across chunks (with
    more candidates than a chunk's blocks in the last case), and a program runs several tasks
    (the persistent loop)."""
    seed = random.randrange(2**31)
    args, kwargs = _inputs(case, seed)
    d_args, d_kwargs = _on(DEVICE, args, kwargs)
    plan = tiling.plan(checked(OP, *d_args, **d_kwargs)[0], SMALL_GPU)
    assert int(plan.task_chunks.max()) >= 2
    assert plan.num_tasks <= 2 or int(plan.task_rank.max()) >= 1
    got, want = run_kernel(monkeypatch, args, kwargs, SMALL_GPU)
    check(got, want, args, kwargs, f"{case.id} seed={seed}")


def _tied(case: Case, seed: int, visible: int | None = None):
    """Inputs whose importance ties are exact in any summation order: query rows zeroed at
    random (score 0 everywhere: P uniform over the unmasked tokens, 0 on the masked ones);
    ``visible``: only the first ``visible`` tokens of every row unmasked."""
    args, kwargs = make(case, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    q = args[0].clone()
    zero = torch.rand(q.shape[0], generator=gen) < 0.7
    q[zero] = 0
    args = (q,) + args[1:]
    if visible is not None:
        am = torch.ones_like(kwargs["atten_mask"])
        am[:, :visible] = False
        kwargs = dict(kwargs, atten_mask=am)
    return args, kwargs


@pytest.mark.parametrize("case", [
    Case((5, 3), (40, 29), n1=4, n2=2, k=4),
    Case((4, 2), (33, 50), n1=2, n2=1, l=16, d=16, ls=16, k=20),
    Case((3,), (45,), n1=8, n2=1, l=128, d=16, ls=128, k=3, topk_mask=False),
], ids=lambda c: c.id)
def test_ties_go_to_the_smaller_block(monkeypatch, case):
    seed = random.randrange(2**31)
    args, kwargs = _tied(case, seed)
    got, want = run_kernel(monkeypatch, args, kwargs)
    check(got, want, args, kwargs, f"{case.id} seed={seed}", exact_topk=True)


def test_topk_count_above_the_visible_blocks(monkeypatch):
    """Only the first tokens are unmasked, so most blocks score 0 (fewer positive blocks than
    select_block_count): zero-score blocks fill the rest in index order, forced blocks first."""
    case = Case((4, 6), (40, 36), n1=4, n2=1, k=8)          # M = 4: Sel = 10, 9
    seed = random.randrange(2**31)
    args, kwargs = _tied(case, seed, visible=6)
    args = (make(case, seed)[0][0],) + args[1:]              # random queries: distinct scores
    got, want = run_kernel(monkeypatch, args, kwargs)
    check(got, want, args, kwargs, f"{case.id} seed={seed}", exact_topk=True)
    forced = kwargs["topk_mask"]
    row = got[1][0, 0].tolist()
    n_forced = int(forced[0, :10].sum())
    assert row[:n_forced] == forced[0, :10].nonzero().flatten().tolist()[:8]


def test_uint8_masks_and_no_masks(monkeypatch):
    case = Case((3, 4), (21, 30), n1=4, n2=2, k=2)
    seed = random.randrange(2**31)
    args, kwargs = _inputs(case, seed)
    got, _ = run_kernel(monkeypatch, args, kwargs)
    kw8 = dict(kwargs, atten_mask=kwargs["atten_mask"].to(torch.uint8),
               topk_mask=kwargs["topk_mask"].to(torch.uint8))
    got8, _ = run_kernel(monkeypatch, args, kw8)
    for x, y in zip(got, got8):
        assert torch.equal(x, y), f"seed={seed}"
    kw0 = dict(kwargs, atten_mask=None, topk_mask=None)
    got0, want0 = run_kernel(monkeypatch, args, kw0)
    check(got0, want0, args, kw0, f"no masks seed={seed}")


def test_no_query_rows(monkeypatch):
    """Every batch without query rows: nothing is launched, every output is zero."""
    args, kwargs = make(Case((0, 0), (20, 9), extra_rows=3, atten_mask=False,
                             topk_mask=False))
    got, want = run_kernel(monkeypatch, args, kwargs)
    for x, y in zip(got, want):
        assert torch.equal(x, y) and not x.any()


def test_registry_entry_runs_cuda():
    entry = next(b for b in capabilities.BACKENDS if b.name == "triton")
    assert entry.runner == "nsa_compress_attention.triton:run"
    assert entry.named_only_on == () and entry.device_types == ("cuda",)
    assert "H100" in entry.status
    args, kwargs = make(Case((3,), (20,)))
    p, _ = checked(OP, *args, **kwargs)
    assert entry.verify(p, "cuda", torch.float16) is None
    assert entry.verify(p, "cuda", torch.float32) is not None
    assert "not cpu" in entry.verify(p, "cpu", torch.float16)
    assert cann_attention.OPS[OP].select(p, "cpu", torch.float16, current()).name == "emulate"
    # on CUDA tensors auto takes it (verified on an H100)
    assert cann_attention.OPS[OP].select(p, "cuda", torch.float16, current()).name == "triton"
    with cann_attention.use(backend="triton"):
        with pytest.raises(CannAttentionError, match="'triton' was requested but cannot run"):
            cann_attention.npu_nsa_compress_attention(*args, **kwargs)


@pytest.mark.skipif(DEVICE != "cuda", reason="needs a CUDA device: bf16 runs natively only "
                    "(the interpreter's bf16 tl.dot is wrong in Triton 3.9)")
@pytest.mark.parametrize("case", [dataclasses.replace(c, dtype=torch.bfloat16) for c in CASES],
                         ids=lambda c: c.id)
def test_bf16_through_the_op_on_gpu(case):
    """bf16 through the public op, the back end named (it is not chosen by auto on CUDA)."""
    seed = random.randrange(2**31)
    args, kwargs = _inputs(case, seed)
    d_args, d_kwargs = _on("cuda", args, kwargs)
    with cann_attention.use(backend="triton"):
        got = tuple(x.cpu() for x in cann_attention.npu_nsa_compress_attention(*d_args,
                                                                                 **d_kwargs))
    p, t = checked(OP, *args, **kwargs)
    want = emulate.run(p, tiling.plan(p, _platform()), t)
    check(got, want, args, kwargs, f"{case.id} seed={seed}")


@pytest.mark.skipif(DEVICE != "cuda", reason="CUDA graphs need a GPU")
def test_captured_call_replays_with_new_values():
    """After a warm-up call (compilation, the task table's upload) the call is capturable:
    replayed with new query / key / value values it equals eager calls."""
    args, kwargs = make(Case((40, 3, 100), (300, 20, 700), n1=16, n2=2, d1=128, d2=128,
                             k=4, dtype=torch.bfloat16))
    args, kwargs = _on("cuda", args, kwargs)
    op = cann_attention.npu_nsa_compress_attention
    with cann_attention.use(backend="triton"):
        op(*args, **kwargs)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            captured = op(*args, **kwargs)
        for seed in range(3):
            g = torch.Generator(device="cuda").manual_seed(seed)
            for x in args[:3]:
                x.copy_(torch.randn(x.shape, generator=g, device="cuda"))
            graph.replay()
            eager = op(*args, **kwargs)
            for c, e in zip(captured, eager):
                assert torch.equal(c, e), f"replay {seed}"
