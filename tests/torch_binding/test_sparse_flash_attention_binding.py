"""Registration of custom::npu_sparse_flash_attention: both seed call styles, the 3-tuple,
opcheck, fake shapes, torch.compile, and explicit back-end selection."""
from __future__ import annotations

import pytest
import torch

import cann_attention
from cann_attention.op_host.common.errors import CannAttentionError
from cann_attention.op_host.sparse_flash_attention.capabilities import CAPABILITIES
from testing.sparse_flash_attention_cases import make_case

OP = torch.ops.custom.npu_sparse_flash_attention


def test_seed001_positional_sparse_block_size():
    """custom.npu_sparse_flash_attention(q, k, v, idx, scale, sparse_block_size, *, ...)."""
    case = make_case(B=1, S1=2, S2=64, N1=4, K=8, sbs=2, layout_kv="PA_BSND", page=16)
    q, k, v, idx, scale, sbs = case.args
    kw = case.kwargs
    out = OP(q, k, v, idx, scale, sbs, block_table=kw["block_table"],
             actual_seq_lengths_kv=kw["actual_seq_lengths_kv"], query_rope=kw["query_rope"],
             key_rope=kw["key_rope"], layout_query="BSND", layout_kv="PA_BSND", sparse_mode=3)[0]
    assert out.shape == q.shape and out.dtype == q.dtype


def test_seed000_keyword_style():
    """mindspore.ops.sparse_flash_attention(..., attention_mode=2, return_softmax_lse=True)."""
    case = make_case(B=2, S1=1, S2=128, N1=8, K=32)
    q, k, v, idx, scale, _ = case.args
    out, smax, ssum = OP(q, k, v, idx, scale, query_rope=case.kwargs["query_rope"],
                         key_rope=case.kwargs["key_rope"], sparse_block_size=1,
                         layout_query="BSND", layout_kv="BSND", sparse_mode=3,
                         pre_tokens=2**63 - 1, next_tokens=2**63 - 1, attention_mode=2,
                         return_softmax_lse=True)
    assert out.shape == (2, 1, 8, 512)
    assert smax.shape == ssum.shape == (2, 1, 1, 8) and smax.dtype == torch.float32


def test_lse_not_requested_gives_empty_tensors():
    case = make_case(B=1, S1=1, S2=32, N1=2, K=4)
    out, smax, ssum = case.call(OP)
    assert smax.shape == (0,) and ssum.shape == (0,) and smax.dtype == torch.float32


@pytest.mark.parametrize("layout_query,layout_kv,lse", [("BSND", "BSND", True),
                                                        ("TND", "TND", True),
                                                        ("TND", "PA_BSND", False)])
def test_opcheck(layout_query, layout_kv, lse):
    case = make_case(B=2, S1=2, S2=48, N1=4, K=8, layout_query=layout_query,
                     layout_kv=layout_kv, page=16, return_softmax_lse=lse)
    torch.library.opcheck(OP.default, case.args, case.kwargs)


def test_fake_shapes_match_real():
    from torch._subclasses.fake_tensor import FakeTensorMode
    case = make_case(B=2, S1=3, S2=32, N1=4, K=8, layout_query="TND", layout_kv="TND",
                     return_softmax_lse=True)
    real = case.call(OP)
    with FakeTensorMode() as mode:
        args = tuple(mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in case.args)
        kwargs = {k: mode.from_tensor(v) if isinstance(v, torch.Tensor) else v
                  for k, v in case.kwargs.items()}
        fake = OP(*args, **kwargs)
    assert [tuple(f.shape) for f in fake] == [tuple(r.shape) for r in real]
    assert [f.dtype for f in fake] == [r.dtype for r in real]


def test_torch_compile_fullgraph():
    case = make_case(B=1, S1=2, S2=64, N1=4, K=8, return_softmax_lse=True)
    q, k, v, idx, scale, sbs = case.args
    kw = case.kwargs

    @torch.compile(fullgraph=True, backend="aot_eager")
    def layer(q, k, idx, qr, kr):
        out, smax, _ = OP(q, k, k, idx, scale, sbs, query_rope=qr, key_rope=kr,
                          return_softmax_lse=True)
        return out.float() * 2, smax

    out, smax = layer(q, k, idx, kw["query_rope"], kw["key_rope"])
    eager = OP(q, k, k, idx, scale, sbs, query_rope=kw["query_rope"], key_rope=kw["key_rope"],
               return_softmax_lse=True)
    torch.testing.assert_close(out, eager[0].float() * 2)
    torch.testing.assert_close(smax, eager[1])


def test_explicit_backend_never_falls_back():
    case = make_case(B=1, S1=1, S2=32, N1=2, K=4)
    with cann_attention.use(backend="triton"):
        with pytest.raises(CannAttentionError, match="'triton' was requested but cannot run"):
            case.call(OP)
    with cann_attention.use(backend="nope"):
        with pytest.raises(CannAttentionError, match="backend: expected one of"):
            case.call(OP)
    with cann_attention.use(backend="emulate"):
        assert case.call(OP)[0].shape == case.args[0].shape


def test_auto_dispatch_takes_the_first_backend_that_applies():
    names = [c.name for c in CAPABILITIES]
    assert names[-1] == "emulate"
    case = make_case(B=1, S1=1, S2=32, N1=2, K=4)
    assert case.call(OP)[0].shape == case.args[0].shape


@pytest.mark.gpu
def test_cuda_tensors_run_through_the_emulator():
    from testing.oracle import assert_close
    from cann_attention.op_kernel.sparse_flash_attention import reference
    case = make_case(B=2, S1=2, S2=96, N1=16, K=32, return_softmax_lse=True)
    args = tuple(a.cuda() if isinstance(a, torch.Tensor) else a for a in case.args)
    kwargs = {k: v.cuda() if isinstance(v, torch.Tensor) else v for k, v in case.kwargs.items()}
    out = OP(*args, **kwargs)[0]
    ref = case.call(reference.sparse_flash_attention)[0]
    low = case.call(reference.sparse_flash_attention, compute_dtype=torch.bfloat16)[0]
    assert_close(out.cpu(), ref, low)

