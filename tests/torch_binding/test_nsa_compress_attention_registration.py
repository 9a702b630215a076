"""custom::npu_nsa_compress_attention registration: schema (CANN names/order/defaults),
torch.library.opcheck, fake shapes shared with the real path, torch.compile(fullgraph=True),
dispatch through the capability table."""
from __future__ import annotations

import pytest
import torch

import cann_attention
from cann_attention.nsa_compress_attention import SCHEMA
from cann_attention.op_host.common.errors import CannAttentionError
from testing.nsa_compress_attention import Case, make

OP = torch.ops.cann_attention.npu_nsa_compress_attention
CASE = Case((3, 5), (17, 24), n1=4, n2=2, d1=32, d2=16, l=32, d=16, ls=64, k=3)


def test_schema_names_and_order():
    names = [a.name for a in OP.default._schema.arguments]
    assert names == ["query", "key", "value", "scale_value", "head_num", "compress_block_size",
                     "compress_stride", "select_block_size", "select_block_count", "topk_mask",
                     "atten_mask", "actual_seq_qlen", "actual_cmp_seq_kvlen",
                     "actual_sel_seq_kvlen"]
    kwonly = [a.name for a in OP.default._schema.arguments if a.kwarg_only]
    assert kwonly == names[9:]
    assert SCHEMA.startswith("npu_nsa_compress_attention(")


def test_output_shapes_and_dtypes():
    args, kwargs = make(CASE)
    out, idx, smax, ssum = OP(*args, **kwargs)
    t1 = args[0].shape[0]
    assert out.shape == (t1, 4, 16) and out.dtype == torch.float16
    assert idx.shape == (t1, 2, 3) and idx.dtype == torch.int32
    assert smax.shape == ssum.shape == (t1, 4, 8) and smax.dtype == torch.float32


@pytest.mark.parametrize("masks", [True, False], ids=["AMTM", "nomask"])
def test_opcheck(masks):
    case = Case((3, 5), (17, 24), n1=4, n2=2, d1=32, d2=16, k=3, atten_mask=masks,
                topk_mask=masks)
    args, kwargs = make(case)
    torch.library.opcheck(OP, args, kwargs,
                          test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_static"))


def test_fake_matches_real_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode
    args, kwargs = make(CASE)
    real = OP(*args, **kwargs)
    with FakeTensorMode() as mode:
        fargs = tuple(mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args)
        fkw = {k: mode.from_tensor(v) if isinstance(v, torch.Tensor) else v
               for k, v in kwargs.items()}
        fake = OP(*fargs, **fkw)
    for r, f in zip(real, fake):
        assert r.shape == f.shape and r.dtype == f.dtype


def test_torch_compile_fullgraph():
    args, kwargs = make(CASE)

    def fn(q, k, v, tm, am):
        out, idx, smax, ssum = OP(q, k, v, args[3], 4, 32, 16, 64, 3, topk_mask=tm,
                                  atten_mask=am, actual_seq_qlen=kwargs["actual_seq_qlen"],
                                  actual_cmp_seq_kvlen=kwargs["actual_cmp_seq_kvlen"],
                                  actual_sel_seq_kvlen=kwargs["actual_sel_seq_kvlen"])
        return out.float() * 2, idx + 1, smax, ssum

    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    got = compiled(args[0], args[1], args[2], kwargs["topk_mask"], kwargs["atten_mask"])
    want = fn(args[0], args[1], args[2], kwargs["topk_mask"], kwargs["atten_mask"])
    for g, w in zip(got, want):
        assert torch.equal(g, w)


def test_forced_backend_that_cannot_run_is_an_error():
    args, kwargs = make(CASE)
    with cann_attention.use(backend="triton"):
        with pytest.raises(CannAttentionError, match=r"backend: 'triton' was requested but "
                           r"cannot run this call"):
            OP(*args, **kwargs)
