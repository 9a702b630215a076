"""custom::npu_flash_attention registration: schema, opcheck, fake shapes, torch.compile."""
import pytest
import torch

import cann_attention
from cann_attention.op_host.common.errors import CannAttentionError
from cann_attention.op_host.flash_attention.capabilities import BACKENDS
from testing.calls import parse

OP = torch.ops.cann_attention.npu_flash_attention


def test_schema_names_and_defaults():
    schema = OP.default._schema
    names = [a.name for a in schema.arguments]
    assert names == ["query", "key", "value", "scale_value", "atten_mask", "pse_shift",
                     "block_table", "actual_seq_lengths_query", "actual_seq_lengths_kv",
                     "learnable_sink", "layout_query", "layout_kv", "sparse_mode", "pre_tokens",
                     "next_tokens", "chunk_size", "return_softmax_lse"]
    defaults = {a.name: a.default_value for a in schema.arguments if a.has_default_value()}
    assert defaults["sparse_mode"] == 0 and defaults["pre_tokens"] == 2**63 - 1
    assert defaults["next_tokens"] == 2**63 - 1 and defaults["layout_kv"] == "BSND"
    assert defaults["return_softmax_lse"] is False and defaults["chunk_size"] is None
    assert "window_size" not in names          # sliding windows are sparse_mode 4 only


CASES = {
    "B2-S1_5-S2_9-N1_4-N2_2-D16-bf16-BSND": lambda: (
        (torch.randn(2, 5, 4, 16).bfloat16(), torch.randn(2, 9, 2, 16).bfloat16(),
         torch.randn(2, 9, 2, 16).bfloat16(), 0.25),
        dict(sparse_mode=3, return_softmax_lse=True), (2, 2, 5, 2)),
    "T1_6-T2_10-N1_4-N2_1-D32-fp16-TND": lambda: (
        (torch.randn(6, 4, 32).half(), torch.randn(10, 1, 32).half(),
         torch.randn(10, 1, 32).half(), 0.2),
        dict(layout_query="TND", layout_kv="TND", return_softmax_lse=True,
             actual_seq_lengths_query=torch.tensor([2, 6], dtype=torch.int32),
             actual_seq_lengths_kv=torch.tensor([4, 10], dtype=torch.int32),
             learnable_sink=torch.randn(4)), (1, 6, 4)),
    "B2-S1_1-N1_8-N2_1-D16-fp32-BNSD-PA_BSND": lambda: (
        (torch.randn(2, 8, 1, 16), torch.randn(4, 16, 1, 16), torch.randn(4, 16, 1, 16), 0.3),
        dict(layout_query="BNSD", layout_kv="PA_BSND", return_softmax_lse=True,
             block_table=torch.tensor([[3, 1], [0, 2]], dtype=torch.int32),
             actual_seq_lengths_kv=torch.tensor([20, 5], dtype=torch.int32)), (2, 1, 1, 8)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_outputs_and_fake_shapes(case):
    args, kwargs, stat_shape = CASES[case]()
    out, smax, ssum = OP(*args, **kwargs)
    assert out.shape == args[0].shape and out.dtype == args[0].dtype
    assert smax.shape == ssum.shape == stat_shape and smax.dtype == torch.float32
    from torch._subclasses.fake_tensor import FakeTensorMode
    with FakeTensorMode() as mode:
        fargs = [mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args]
        fkw = {k: mode.from_tensor(v) if isinstance(v, torch.Tensor) else v
               for k, v in kwargs.items()}
        fo, fm, fs = OP(*fargs, **fkw)
    assert fo.shape == out.shape and fm.shape == smax.shape and fs.shape == ssum.shape
    no_lse = dict(kwargs, return_softmax_lse=False)
    _, m0, s0 = OP(*args, **no_lse)
    assert m0.shape == (0,) and s0.shape == (0,)


@pytest.mark.parametrize("lse", [True, False], ids=["lse", "no_lse"])
@pytest.mark.parametrize("case", list(CASES))
def test_opcheck(case, lse):
    args, kwargs, _ = CASES[case]()
    kwargs = dict(kwargs, return_softmax_lse=lse)   # no_lse: the two empty outputs must not alias
    torch.library.opcheck(OP, args, kwargs,
                          test_utils=("test_schema", "test_faketensor",
                                      "test_aot_dispatch_static"))


def test_compile_fullgraph():
    args, kwargs, _ = CASES["B2-S1_5-S2_9-N1_4-N2_2-D16-bf16-BSND"]()

    def f(q, k, v):
        return OP(q, k, v, 0.25, **kwargs)[0] * 2

    compiled = torch.compile(f, fullgraph=True)
    torch.testing.assert_close(compiled(*args[:3]), f(*args[:3]))


def test_capability_table_and_forced_backend():
    # the registry is sorted by priority (highest first), no longer listed in preference order
    names = [c.name for c in BACKENDS]
    assert names == ["ascendc", "triton", "library", "emulate"]
    assert [b.priority for b in BACKENDS] == sorted((b.priority for b in BACKENDS), reverse=True)
    args, kwargs, _ = CASES["B2-S1_5-S2_9-N1_4-N2_2-D16-bf16-BSND"]()
    op = cann_attention.OPS["npu_flash_attention"]
    assert op.backends == BACKENDS
    p = parse("npu_flash_attention", *args, **kwargs)
    assert op.select(p, "cpu", args[0].dtype, cann_attention.config).name == "emulate"
    with cann_attention.use(backend="triton"):
        with pytest.raises(CannAttentionError, match="backend: 'triton' was requested"):
            OP(*args, **kwargs)
    with cann_attention.use(backend="emulate"):
        OP(*args, **kwargs)
