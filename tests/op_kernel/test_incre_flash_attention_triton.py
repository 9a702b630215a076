"""The Triton split-KV kernel of npu_incre_flash_attention == the emulator and the reference.

On a GPU (bf16 and fp16) the kernel runs natively. Without one the same source runs under
Triton's interpreter (TRITON_INTERPRET=1, set before Triton is imported) in fp16 only: the
interpreter's bf16 tl.dot is wrong in Triton 3.9. The kernel's outputs are poisoned (NaN), so
an element it does not write fails. Each case runs on an H100 plan and on a 3-SM GPU plan, which
cuts the windows across programs (split tasks merged by their last piece).
"""
from __future__ import annotations

import dataclasses
import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
triton = pytest.importorskip(
    "triton", reason="Triton is not importable (pip install -e \".[test,gpu]\": triton, numpy)")

import cann_attention  # noqa: E402
from cann_attention.config import current  # noqa: E402
from cann_attention.op_host.common.platform import H100  # noqa: E402
from cann_attention.op_host.incre_flash_attention import capabilities, tiling  # noqa: E402
from cann_attention.op_kernel.incre_flash_attention import emulate  # noqa: E402
from cann_attention.op_kernel.incre_flash_attention import triton as ifa_triton  # noqa: E402
from testing.calls import checked, fields_of  # noqa: E402
from testing.incre_flash_attention_cases import DT, Case, build, reference  # noqa: E402
from testing.oracle import assert_close  # noqa: E402
from testing.poison import PoisonedTorch  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
DTYPES = ["bf16", "fp16"] if DEVICE == "cuda" else ["fp16"]
GPU3 = dataclasses.replace(H100, name="GPU3", num_cores=3)     # few SMs: split tasks
PLATFORMS = [H100, GPU3]
OP = "npu_incre_flash_attention"


def _on(device, args: dict) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in args.items()}


def check_kernel(monkeypatch, c: Case, platform=H100, args=None):
    """Run the kernel on ``c`` (or ``args``) with poisoned outputs; compare with the reference
    and the emulator running the same plan. Returns (output, plan)."""
    args = args or build(c)
    p, t = checked(OP, **_on(DEVICE, args))
    plan = tiling.plan(p, platform)
    monkeypatch.setattr(ifa_triton, "torch", PoisonedTorch())
    got = ifa_triton.run(p, plan, t)
    monkeypatch.undo()
    want = emulate.run(p, plan, t)
    what = f"{c.id} {platform.name}"
    assert got.shape == args["query"].shape and got.dtype == want.dtype, what
    got, want = got.cpu(), want.cpu()
    expected = reference(args)
    if c.postquant:
        assert int((got.int() - expected.int()).abs().max()) <= 1, what
        assert int((got.int() - want.int()).abs().max()) <= 1, f"{what} vs emulate"
    else:
        assert not torch.isnan(got.float()).any(), f"{what}: unwritten (poisoned) or NaN output"
        low = reference(args, compute_dtype=DT[c.dtype])
        assert_close(got, expected.float(), low.float(), what)
        assert_close(got, want.float(), low.float(), f"{what} vs emulate")
    return got, plan


def cases(dtype: str) -> list[Case]:
    d = dict(dtype=dtype)
    return [
        # heads, layouts, head dims (D not a power of two too)
        Case(b=2, n1=8, n2=2, d=64, s=96, layout="BSH", lens=(96, 41), **d),
        Case(b=2, n1=8, n2=1, d=128, s=130, layout="BNSD", lens=(130, 17), **d),
        Case(b=2, n1=4, n2=4, d=40, s=70, layout="BSND", **d),
        Case(b=1, n1=64, n2=1, d=64, s=50, layout="BSH", lens=(50,), **d),
        # lengths: broadcast, zero lengths, one position
        Case(b=3, s=64, lens=(33,), **d),
        Case(b=3, s=64, lens=(0, 64, 0), **d),
        Case(b=2, s=1, lens=(1, 1), **d),
        # paged caches: every layout, page sizes (48: not a power of two)
        Case(b=3, s=200, paged="PA3", block_size=16, lens=(200, 33, 1), **d),
        Case(b=3, s=150, paged="PA3", block_size=48, layout="BSND", lens=(150, 0, 49), **d),
        Case(b=3, s=100, paged="PA4", block_size=16, layout="BNSD", lens=(17, 100, 64), **d),
        Case(b=2, n1=16, n2=4, s=140, paged="PA4S", block_size=32, lens=(140, 3), **d),
        # int8 antiquant: per channel / per tensor, with and without offset, paged
        Case(n1=16, n2=4, s=130, layout="BSH", int8="channel", lens=(130, 61), **d),
        Case(n1=16, n2=4, s=130, layout="BNSD", int8="channel", aq_offset=False,
             lens=(130, 61), **d),
        Case(s=90, layout="BSND", int8="tensor", lens=(90, 40), **d),
        Case(b=2, n1=16, n2=4, s=150, paged="PA4S", block_size=32, int8="channel",
             aq_offset=False, lens=(150, 1), **d),
        # post-quant int8 output (with an empty window), masks, pse, left padding
        Case(postquant="tensor", lens=(96, 0), **d),
        Case(postquant="channel", emulate_npu=True, layout="BSND", lens=(96, 40), **d),
        Case(mask="2-bool", mask_all_b0=True, lens=(96, 50), **d),
        Case(mask="3-int8", pse="B", layout="BNSD", lens=(96, 70), **d),
        Case(mask="4-uint8", pse="1", layout="BSND", **d),
        Case(b=2, s=100, paged="PA3", block_size=32, mask="2-bool", pse="B", lens=(100, 35),
             **d),
        Case(lens=(40, 60), pad=20, **d),
        Case(lens=(40, 90), pad=10, layout="BNSD", **d),       # batch 1 starts below 0: zeros
    ]


@pytest.mark.parametrize("platform", PLATFORMS, ids=lambda p: p.name)
@pytest.mark.parametrize("c", [c for dt in DTYPES for c in cases(dt)], ids=lambda c: c.id)
def test_kernel_matches_reference_and_emulator(monkeypatch, c, platform):
    check_kernel(monkeypatch, c, platform)


def test_split_tasks_are_merged_and_counters_reset(monkeypatch):
    """One long window on 3 SMs: its pieces merge in the last one to arrive, which sets the
    arrival counter back to 0, so a second call on the same workspace is right too."""
    c = Case(b=1, n1=8, n2=1, d=64, s=600, lens=(600,), dtype=DTYPES[-1])
    kept = {}

    def one_workspace(device, nbytes, zeroed=0, keep=True, user=""):
        ws = kept.get("ws")
        if ws is None or ws.numel() < nbytes:
            ws = kept["ws"] = torch.zeros(nbytes, dtype=torch.uint8, device=device)
        return ws
    monkeypatch.setattr(ifa_triton, "workspace", one_workspace)
    first, plan = check_kernel(monkeypatch, c, GPU3)
    assert int(plan.task_num_splits.max()) == 3
    monkeypatch.setattr(ifa_triton, "workspace", one_workspace)
    second, _ = check_kernel(monkeypatch, c, GPU3)
    assert torch.equal(first, second)
    assert not kept["ws"][:4 * ifa_triton.ARRIVALS].view(torch.int32).any()


def test_plans_share_one_workspace(monkeypatch):
    """An eager GPU call reuses the workspace the last call left (common/workspace.py), whatever
    its plan: the arrival counters must be where no plan writes anything else."""
    kept = {}

    def one_workspace(device, nbytes, zeroed=0, keep=True, user=""):
        ws = kept.get("ws")
        if ws is None or ws.numel() < nbytes:
            ws = kept["ws"] = torch.zeros(max(nbytes, 1 << 16), dtype=torch.uint8,
                                          device=device)
        return ws
    dt = DTYPES[-1]
    gpu12 = dataclasses.replace(H100, name="GPU12", num_cores=12)
    cases = [Case(b=1, n1=8, n2=1, d=64, s=600, lens=(600,), dtype=dt),      # one split task
             Case(b=4, n1=8, n2=2, d=64, s=2000, lens=(2000, 1900, 1800, 1700), dtype=dt)]
    plans = []
    for c in cases + cases:
        monkeypatch.setattr(ifa_triton, "workspace", one_workspace)
        plans.append(check_kernel(monkeypatch, c, gpu12)[1])
    assert [int((p.task_num_splits > 1).sum()) for p in plans[:2]] == [1, 8]


def test_large_batches_keep_tasks_whole():
    """On a GPU a task is cut only where that balances the SMs by more than a split costs."""
    args = build(Case(b=8, n1=32, n2=8, d=128, s=512, dtype="fp16"))
    p, _ = checked(OP, **args)
    assert int(tiling.plan(p, H100).task_num_splits.max()) == 1
    p1, _ = checked(OP, **build(Case(b=1, n1=32, n2=8, d=128, s=4096, dtype="fp16")))
    assert int(tiling.plan(p1, H100).task_num_splits.max()) > 1


def test_malformed_page_table_is_never_dereferenced(monkeypatch):
    """Entries outside [0, block_num) are skipped (value checks are off on device tensors):
    the other batches' outputs are unchanged and nothing is read out of bounds."""
    c = Case(b=3, s=200, paged="PA3", block_size=16, lens=(200, 33, 60), dtype=DTYPES[-1])
    args = build(c)
    good, _ = check_kernel(monkeypatch, c)
    table = args["block_table"].clone()
    table[0, 2] = 1 << 30
    table[2, 0] = -7
    p, t = checked(OP, **_on(DEVICE, dict(args)))
    t = type(t)(**dict(fields_of(t), block_table=table.to(DEVICE)))
    got = ifa_triton.run(p, tiling.plan(p, H100), t).cpu()
    assert torch.equal(got[1], good[1])
    assert torch.isfinite(got.float()).all()


def test_registry_runs_the_kernel_on_cuda():
    """auto takes the kernel on CUDA tensors (verified on an H100); CPU tensors are refused."""
    entry = next(b for b in capabilities.BACKENDS if b.name == "triton")
    assert entry.named_only_on == () and entry.device_types == ("cuda",)
    assert "not" in entry.verify(None, "cpu", torch.float16)     # runs on cuda tensors only
    args = build(Case(dtype="fp16"))
    p, _ = checked(OP, **args)
    op = cann_attention.OPS[OP]
    assert op.select(p, "cuda", torch.float16, current()).name == "triton"
    with pytest.raises(Exception, match="triton"):
        with cann_attention.use(backend="triton"):
            cann_attention.incre_flash_attention(**args)


@pytest.mark.skipif(DEVICE != "cuda", reason="CUDA graphs need a GPU")
def test_captured_call_replays_with_new_values():
    """The call on CUDA tensors is capturable: replayed with new query / cache values it equals
    eager calls."""
    args = _on("cuda", build(Case(b=4, n1=32, n2=8, d=128, s=2048, paged="PA3",
                                   block_size=64, lens=(2048, 100, 1, 700), dtype="bf16")))
    with cann_attention.use(backend="triton"):
        eager = cann_attention.incre_flash_attention(**args)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            captured = cann_attention.incre_flash_attention(**args)
        for seed in range(3):
            g = torch.Generator(device="cuda").manual_seed(seed)
            for name in ("query", "key", "value"):
                args[name].copy_(torch.randn(args[name].shape, generator=g, device="cuda"))
            graph.replay()
            eager = cann_attention.incre_flash_attention(**args)
            assert torch.equal(captured, eager)
