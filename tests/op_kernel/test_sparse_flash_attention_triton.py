"""The Triton kernel == the emulator, on the plans of the GPU platforms.

Without a GPU the same kernel source runs under Triton's interpreter (TRITON_INTERPRET=1, set
here before Triton is imported) on small fp16 shapes: the interpreter's bf16 tl.dot is wrong
in Triton 3.9 (measured: errors of 1e10 on a 16x16 product), so bf16 runs only on a GPU.
"""
from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
triton = pytest.importorskip("triton", reason="Triton is not importable (pip install -e \".[test,gpu]\": triton, numpy)")

import cann_attention  # noqa: E402
from cann_attention.op_host.common.platform import H100, H200  # noqa: E402
from cann_attention.op_host.sparse_flash_attention import check, params, tiling  # noqa: E402
from cann_attention.op_kernel.sparse_flash_attention import emulate, reference  # noqa: E402
from cann_attention.op_kernel.sparse_flash_attention import triton as sfa_triton  # noqa: E402
from testing.oracle import assert_close, assert_stats_close  # noqa: E402
from testing.sparse_flash_attention_cases import make_case  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
CASES = [
    dict(B=2, S1=2, S2=300, N1=4, K=200, return_softmax_lse=True),    # tasks split across SMs
    dict(B=2, S1=3, S2=300, N1=16, K=40, sbs=2, layout_query="TND", layout_kv="PA_BSND",
         q_lens=[3, 1], kv_lens=[300, 50], page=32),
    dict(B=3, S1=2, S2=200, N1=8, K=12, sbs=16, layout_query="TND", layout_kv="TND",
         q_lens=[2, 0, 2], kv_lens=[200, 7, 33], sparse_mode=0, return_softmax_lse=True),
    dict(B=1, S1=2, S2=64, N1=2, K=8, sinks=True, return_softmax_lse=True),
    dict(B=2, S1=4, S2=40, N1=1, K=24, sbs=2, malformed=True, q_lens=[4, 4], kv_lens=[40, 3],
         return_softmax_lse=True),
    dict(B=1, S1=1, S2=512, N1=16, K=4, sbs=128, layout_kv="PA_BSND", page=128),
]


def _on(device, x):
    return x.to(device) if isinstance(x, torch.Tensor) else x


@pytest.mark.parametrize("platform", [H100, H200], ids=lambda p: p.name)
@pytest.mark.parametrize("kw", CASES, ids=lambda kw: make_case(**kw).id)
def test_kernel_equals_emulator(kw, platform):
    dtype = torch.bfloat16 if DEVICE == "cuda" else torch.float16
    case = make_case(dtype=dtype, **kw)
    args = tuple(_on(DEVICE, a) for a in case.args)
    kwargs = {k: _on(DEVICE, v) for k, v in case.kwargs.items()}
    p = params.parse(*args, **kwargs)
    check.check(p)
    plan = tiling.plan(p, platform)
    tensors = params.SparseFlashAttentionTensors(
        args[0], args[1], args[2], args[3], kwargs["query_rope"], kwargs["key_rope"],
        kwargs.get("block_table"), kwargs.get("sinks"))
    got = sfa_triton.run(p, plan, tensors)
    want = emulate.run(p, plan, tensors)
    ref, ref_max, ref_sum = case.call(reference.sparse_flash_attention)
    low = case.call(reference.sparse_flash_attention, compute_dtype=dtype)[0]
    assert not torch.isnan(got[0]).any()
    assert_close(got[0].cpu(), ref, low, case.id)
    assert_close(got[0].cpu(), want[0].cpu().float(), low, f"{case.id} vs emulate")
    if case.kwargs["return_softmax_lse"]:
        assert_stats_close(got[1].cpu(), ref_max, what="softmax_max")
        assert_stats_close(got[2].cpu(), ref_sum, what="softmax_sum")
    else:
        assert got[1].shape == (0,)
    if kw["K"] == 200:
        assert plan.schedule.num_slots > 0, "this case must exercise split tasks + combine"


@pytest.mark.gpu
def test_op_dispatches_to_triton_when_asked():
    case = make_case(B=2, S1=2, S2=300, N1=64, K=64, return_softmax_lse=True)
    args = tuple(_on("cuda", a) for a in case.args)
    kwargs = {k: _on("cuda", v) for k, v in case.kwargs.items()}
    with cann_attention.use(backend="triton"):
        got = torch.ops.custom.npu_sparse_flash_attention(*args, **kwargs)
    ref = case.call(reference.sparse_flash_attention)[0]
    low = case.call(reference.sparse_flash_attention, compute_dtype=torch.bfloat16)[0]
    assert_close(got[0].cpu(), ref, low)
