"""Autograd on every face: ops without a backward raise one error naming the op when a gradient
is requested, in eager mode and under torch.compile alike; npu_nsa_compress_attention has a real
backward (gradcheck in fp64, and the same gradients eager and compiled)."""
from __future__ import annotations

import pytest
import torch

import cann_attention
from cann_attention.faces import NoBackwardError
from testing.nsa_compress_attention import Case, make
from testing.sparse_flash_attention_cases import make_case

NSA_FACES = {
    "cann_attention": lambda *a, **k: torch.ops.cann_attention.npu_nsa_compress_attention(*a, **k),
    "custom": lambda *a, **k: torch.ops.custom.npu_nsa_compress_attention(*a, **k),
    "torch_npu": lambda *a, **k: cann_attention.torch_npu.npu_nsa_compress_attention(*a, **k),
    "mindspore": lambda *a, **k: cann_attention.mindspore.nsa_compress_attention(*a, **k),
}
SMALL = Case(q_lens=(3, 2), c_lens=(4, 6), n1=2, n2=1, d1=8, d2=7, l=16, d=16, ls=32, k=1,
             dtype=torch.float64, topk_mask=False)


def _sfa_custom(case):
    args, kw = case.args, dict(case.kwargs)
    for name in ("attention_mode", "return_softmax_lse", "sinks", "pre_tokens", "next_tokens"):
        kw.pop(name, None)
    return lambda q: torch.ops.custom.npu_sparse_flash_attention(q, *args[1:], **kw)


def _sfa_torch_npu(case):
    args, kw = case.args, dict(case.kwargs)
    kw.setdefault("sparse_block_size", args[5])
    kw.setdefault("attention_mode", 2)             # torch_npu defaults to 0, which it refuses
    return lambda q: cann_attention.torch_npu.npu_sparse_flash_attention(q, *args[1:5], **kw)[0]


@pytest.mark.parametrize("face", [_sfa_custom, _sfa_torch_npu], ids=["custom", "torch_npu"])
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_no_backward_names_the_op(face, compiled):
    case = make_case(B=1, S1=2, S2=32, N1=2, K=4)
    fn = face(case)
    if compiled:
        torch._dynamo.reset()
        fn = torch.compile(fn, backend="aot_eager", fullgraph=True)
    q = case.args[0].clone().requires_grad_()
    out = fn(q)                                    # the forward runs: inference never breaks
    with pytest.raises(NoBackwardError, match="npu_sparse_flash_attention: backward: this op "
                       "has no backward"):
        out.float().sum().backward()


def test_no_grad_needed_no_autograd_node():
    case = make_case(B=1, S1=2, S2=32, N1=2, K=4)
    out = _sfa_custom(case)(case.args[0])
    assert out.grad_fn is None and not out.requires_grad


@pytest.mark.parametrize("face", list(NSA_FACES))
def test_nsa_gradcheck(face):
    args, kwargs = make(SMALL, seed=3)
    fn = NSA_FACES[face]

    def attention_out(q, k, v):
        return fn(q, k, v, *args[3:], **kwargs)[0]

    inputs = tuple(x.detach().clone().requires_grad_() for x in args[:3])
    assert torch.autograd.gradcheck(attention_out, inputs, eps=1e-6, atol=1e-7)


def test_nsa_statistics_and_indices_carry_no_gradient():
    args, kwargs = make(SMALL, seed=4)
    q = args[0].clone().requires_grad_()
    out, idx, smax, ssum = torch.ops.custom.npu_nsa_compress_attention(q, *args[1:], **kwargs)
    assert out.requires_grad and not idx.requires_grad
    assert not smax.requires_grad and not ssum.requires_grad


def test_nsa_compiled_gradients_equal_eager():
    args, kwargs = make(Case(q_lens=(5, 3), c_lens=(6, 8), dtype=torch.float64), seed=5)

    def loss(q, k, v):
        out = cann_attention.torch_npu.npu_nsa_compress_attention(q, k, v, *args[3:], **kwargs)[0]
        return (out * out).sum()

    def grads(fn):
        inputs = [x.detach().clone().requires_grad_() for x in args[:3]]
        fn(*inputs).backward()
        return [x.grad for x in inputs]

    torch._dynamo.reset()
    compiled = torch.compile(loss, backend="aot_eager", fullgraph=True)
    for want, got in zip(grads(loss), grads(compiled)):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
