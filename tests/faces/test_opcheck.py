"""The registered faces pass torch.library.opcheck (schema, fake tensors, autograd registration,
AOT dispatch), and the arguments only one face has behave as upstream documents."""
from __future__ import annotations

import pytest
import torch

import cann_attention
from testing.nsa_compress_attention import Case, make
from testing.sparse_flash_attention_cases import make_case

OPCHECK_TESTS = ("test_schema", "test_autograd_registration", "test_faketensor",
                 "test_aot_dispatch_dynamic")


def _sfa():
    case = make_case(B=1, S1=2, S2=32, N1=2, K=4)
    custom_kw = {k: v for k, v in case.kwargs.items()
                 if k not in ("attention_mode", "return_softmax_lse", "sinks")}
    npu_kw = dict(case.kwargs, sparse_block_size=case.args[5], attention_mode=2,
                  return_softmax_lse=True)
    return [(torch.ops.custom.npu_sparse_flash_attention.default, case.args, custom_kw),
            (torch.ops.npu.npu_sparse_flash_attention.default, case.args[:5], npu_kw)]


def _nsa():
    args, kwargs = make(Case(q_lens=(3, 2), c_lens=(4, 6), n1=2, n2=1, d1=16, d2=16, l=16, d=16,
                             ls=32, k=1), seed=1)
    return [(torch.ops.npu.npu_nsa_compress_attention.default, args, kwargs)]


@pytest.mark.parametrize("op, args, kwargs", _sfa() + _nsa(),
                         ids=["custom-sfa", "npu-sfa", "npu-nsa"])
def test_opcheck(op, args, kwargs):
    torch.library.opcheck(op, args, kwargs, test_utils=OPCHECK_TESTS)


def test_padding_mask_is_ignored_as_in_torch_npu():
    """torch_npu documents padding_mask as reserved: passing one changes nothing."""
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 1, 64, generator=g).half()
    k = torch.randn(2, 16, 64, generator=g).half()
    v = torch.randn(2, 16, 64, generator=g).half()
    kw = dict(num_heads=2, scale_value=0.125, input_layout="BSH", num_key_value_heads=2)
    plain = cann_attention.torch_npu.npu_incre_flash_attention(q, k, v, **kw)
    masked = cann_attention.torch_npu.npu_incre_flash_attention(
        q, k, v, padding_mask=torch.ones(2, 16, dtype=torch.bool), **kw)
    assert torch.equal(plain, masked)


def test_atten_mask_is_the_package_attn_mask():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(2, 1, 64, generator=g).half()
    k = torch.randn(2, 16, 64, generator=g).half()
    v = torch.randn(2, 16, 64, generator=g).half()
    mask = torch.zeros(2, 1, 16, dtype=torch.bool)
    mask[:, :, 5:] = True
    kw = dict(num_heads=2, scale_value=0.125, input_layout="BSH", num_key_value_heads=2)
    got = torch.ops.custom.npu_incre_flash_attention(q, k, v, atten_mask=mask, **kw)
    want = torch.ops.cann_attention.npu_incre_flash_attention(q, k, v, attn_mask=mask, **kw)
    assert torch.equal(got, want)
    assert not torch.equal(got, torch.ops.custom.npu_incre_flash_attention(q, k, v, **kw))
