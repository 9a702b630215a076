"""backward(...) of npu_nsa_compress_attention against torch.autograd through a plain
differentiable formulation (testing.nsa_compress_attention.attention_out): fp64 to 1e-10 (G 1,
2, 4, varlen batches, an empty batch, with and without atten_mask and its fully masked rows,
D1 != D2, D not a multiple of 16), fp16 / bf16 against fp32 autograd, and
torch.autograd.gradcheck of the emulator forward joined to the backward by a small
autograd.Function."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from cann_attention.op_kernel.nsa_compress_attention.backward import backward
from testing.nsa_compress_attention import Case, attention_out, make

OP = torch.ops.cann_attention.npu_nsa_compress_attention
F64 = torch.float64

CASES = [
    Case((5,), (21,), n1=2, n2=2, d1=16, d2=16),                                    # G = 1
    Case((4, 7), (13, 30), n1=4, n2=2, d1=32, d2=16),                               # G = 2
    Case((6, 0, 3), (17, 9, 25), n1=8, n2=2, d1=24, d2=8, atten_mask=False),        # G = 4
    Case((3, 5), (9, 20), n1=4, n2=1, d1=8, d2=7, extra_rows=3),                    # G = 4
]


def _forward_and_grads(case: Case, seed=0):
    """The op's outputs, an output gradient, and backward's (dq, dk, dv)."""
    args, kwargs = make(case, seed)
    out, _, smax, ssum = OP(*args, **kwargs)
    grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed + 1))
    grad_out = grad_out.to(out.dtype)
    grads = backward(grad_out, *args[:3], out, smax, ssum, scale_value=args[3],
                     head_num=args[4], atten_mask=kwargs["atten_mask"],
                     actual_seq_qlen=kwargs["actual_seq_qlen"],
                     actual_cmp_seq_kvlen=kwargs["actual_cmp_seq_kvlen"])
    return args, kwargs, out, grad_out, grads


def _autograd(args, kwargs, grad_out, dtype):
    """(out, dq, dk, dv) of attention_out by autograd, inputs cast to ``dtype``."""
    q, k, v = (a.detach().to(dtype).requires_grad_() for a in args[:3])
    out = attention_out(q, k, v, args[3], **kwargs)
    out.backward(grad_out.to(dtype))
    return out.detach(), q.grad, k.grad, v.grad


@pytest.mark.parametrize("case", [replace(c, dtype=F64) for c in CASES],
                         ids=lambda c: c.id)
def test_fp64_backward_matches_autograd(case):
    args, kwargs, out, grad_out, grads = _forward_and_grads(case)
    want_out, *want = _autograd(args, kwargs, grad_out, F64)
    torch.testing.assert_close(out, want_out, rtol=1e-12, atol=1e-12)
    for name, got, exp in zip(("dq", "dk", "dv"), grads, want):
        assert got.dtype == F64
        torch.testing.assert_close(got, exp, rtol=1e-10, atol=1e-10, msg=name)


@pytest.mark.parametrize("dtype,tol", [(torch.float16, 1e-2), (torch.bfloat16, 4e-2)],
                         ids=["fp16", "bf16"])
@pytest.mark.parametrize("case", CASES[1:3], ids=lambda c: c.id.rsplit("-fp16")[0])
def test_low_precision_backward_near_fp32_autograd(case, dtype, tol):
    """fp16 / bf16 inputs: fp32 arithmetic from the rounded output; max error relative to
    the largest gradient."""
    args, kwargs, _, grad_out, grads = _forward_and_grads(replace(case, dtype=dtype))
    _, *want = _autograd(args, kwargs, grad_out, torch.float32)
    for name, got, exp in zip(("dq", "dk", "dv"), grads, want):
        assert got.dtype == dtype
        err = float((got.float() - exp).abs().max())
        assert err <= tol * float(exp.abs().max()), (name, err, float(exp.abs().max()))


def test_rows_outside_the_batches_get_zero_gradient():
    case = replace(CASES[3], dtype=F64, q_lens=(3, 0, 5), c_lens=(9, 8, 20))
    args, kwargs, _, _, (dq, dk, dv) = _forward_and_grads(case)
    assert torch.all(dq[8:] == 0) and torch.all(dk[37:] == 0) and torch.all(dv[37:] == 0)
    assert dq[:8].abs().sum() > 0 and dk[:37].abs().sum() > 0


def test_masked_scores_pass_no_gradient_to_query_and_key():
    """Key c masked for every query row: dk[c] = 0, but dv[c] is not (fully masked rows
    attend uniformly, including c)."""
    case = Case((4,), (12,), n1=2, n2=1, d1=16, d2=16, dtype=F64, topk_mask=False)
    args, kwargs = make(case)
    kwargs["atten_mask"][:, 5] = True
    out, _, smax, ssum = OP(*args, **kwargs)
    _, dk, dv = backward(torch.ones_like(out), *args[:3], out, smax, ssum,
                         scale_value=args[3], head_num=2, atten_mask=kwargs["atten_mask"],
                         actual_seq_qlen=[4], actual_cmp_seq_kvlen=[12])
    assert torch.all(dk[5] == 0) and torch.all(dv[5] != 0)


class _Attention(torch.autograd.Function):
    """attention_out of the op (emulator forward) with backward(...) as its gradient."""

    @staticmethod
    def forward(ctx, query, key, value, rest, kwargs):
        out, _, smax, ssum = OP(query, key, value, *rest, **kwargs)
        ctx.save_for_backward(query, key, value, out, smax, ssum)
        ctx.attrs = dict(scale_value=rest[0], head_num=rest[1], atten_mask=kwargs["atten_mask"],
                         actual_seq_qlen=kwargs["actual_seq_qlen"],
                         actual_cmp_seq_kvlen=kwargs["actual_cmp_seq_kvlen"])
        return out

    @staticmethod
    def backward(ctx, grad_out):
        return backward(grad_out, *ctx.saved_tensors, **ctx.attrs) + (None, None)


@pytest.mark.parametrize("case,fast", [
    (Case((2, 1), (5, 4), n1=2, n2=1, d1=4, d2=3, k=1, extra_rows=0, dtype=F64), False),
    (Case((3,), (6,), n1=2, n2=1, d1=8, d2=7, k=1, atten_mask=False, dtype=F64), False),
    (Case((2, 3), (6, 9), n1=8, n2=2, d1=24, d2=16, dtype=F64), True),
], ids=lambda x: x.id if isinstance(x, Case) else ("fast" if x else "full"))
def test_gradcheck_through_the_op(case, fast):
    """Finite differences of the op's fp64 forward against backward (the full Jacobian on
    tiny shapes, fast_mode's random projections on a larger one)."""
    args, kwargs = make(case)
    inputs = tuple(a.detach().requires_grad_() for a in args[:3])
    assert torch.autograd.gradcheck(
        lambda q, k, v: _Attention.apply(q, k, v, args[3:], kwargs), inputs, fast_mode=fast)
