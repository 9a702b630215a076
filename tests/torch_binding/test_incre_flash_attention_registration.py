"""Registration of custom::npu_incre_flash_attention: schema, opcheck, fake shapes, compile."""
from __future__ import annotations

import pytest
import torch

import cann_attention
from cann_attention.op_host.common.errors import CannAttentionError

OP = torch.ops.cann_attention.npu_incre_flash_attention.default
MINDSPORE_ARGS = ["query", "key", "value", "attn_mask", "actual_seq_lengths", "pse_shift",
                  "dequant_scale1", "quant_scale1", "dequant_scale2", "quant_scale2",
                  "quant_offset2", "antiquant_scale", "antiquant_offset", "block_table",
                  "num_heads", "input_layout", "scale_value", "num_key_value_heads",
                  "block_size", "inner_precise", "kv_padding_size"]


def _inputs(quant=False, paged=False):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 1, 4 * 64, generator=g).half()
    kw = dict(num_heads=4, num_key_value_heads=2, scale_value=0.125)
    if paged:
        k = torch.randn(4, 16, 2 * 64, generator=g).half()
        kw.update(block_table=torch.tensor([[0, 1], [3, 2]], dtype=torch.int32), block_size=16,
                  actual_seq_lengths=[20, 32])
    else:
        k = torch.randn(2, 40, 2 * 64, generator=g).half()
        kw.update(actual_seq_lengths=[40, 7], attn_mask=torch.rand(2, 40, generator=g) < 0.2)
    if quant:
        kw.update(quant_scale2=torch.tensor([40.0]), quant_offset2=torch.tensor([1.0]))
    return (q, k, k.clone()), kw


def test_incre_flash_attention_schema_matches_mindspore():
    schema = OP._schema
    names = [a.name for a in schema.arguments]
    assert names[:len(MINDSPORE_ARGS)] == MINDSPORE_ARGS
    defaults = {a.name: a.default_value for a in schema.arguments}
    assert defaults["num_heads"] == 1 and defaults["input_layout"] == "BSH"
    assert defaults["scale_value"] == 1.0 and defaults["num_key_value_heads"] == 0
    assert defaults["block_size"] == 0 and defaults["inner_precise"] == 1
    assert defaults["kv_padding_size"] is None
    assert [a.name for a in schema.arguments if a.kwarg_only] == ["emulate_npu"]


@pytest.mark.parametrize("quant,paged", [(False, False), (True, False), (False, True)],
                         ids=["fp16", "int8_out", "PA"])
def test_incre_flash_attention_opcheck(quant, paged):
    args, kw = _inputs(quant, paged)
    torch.library.opcheck(OP, args, kw)


def test_incre_flash_attention_fake_shapes_and_dtype():
    from torch._subclasses.fake_tensor import FakeTensorMode
    args, kw = _inputs(quant=True)
    with FakeTensorMode() as mode:
        fargs = tuple(mode.from_tensor(a) for a in args)
        fkw = {k: mode.from_tensor(v) if isinstance(v, torch.Tensor) else v
               for k, v in kw.items()}
        out = OP(*fargs, **fkw)
    assert out.shape == args[0].shape and out.dtype == torch.int8


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
@pytest.mark.parametrize("quant", [False, True], ids=["fp16", "int8_out"])
def test_incre_flash_attention_compile_fullgraph(quant, backend):
    args, kw = _inputs(quant)

    def f(q, k, v):
        return torch.ops.cann_attention.npu_incre_flash_attention(q, k, v, **kw)

    compiled = torch.compile(f, fullgraph=True, backend=backend)   # traces the fake
    assert torch.equal(compiled(*args), f(*args))


def test_incre_flash_attention_python_forms():
    """Tensors/tuples for the int lists, a list of one tensor for key/value."""
    (q, k, v), kw = _inputs()
    base = cann_attention.incre_flash_attention(q, k, v, **kw)
    kw2 = dict(kw, actual_seq_lengths=torch.tensor([40, 7]))
    assert torch.equal(cann_attention.incre_flash_attention(q, [k], (v,), **kw2), base)
    kw3 = dict(kw, actual_seq_lengths=(40, 7), kv_padding_size=torch.tensor(0))
    pad0 = cann_attention.incre_flash_attention(q, k, v, **kw3)      # window [33, 40) for b=1
    shifted = cann_attention.incre_flash_attention(
        q[1:], k[1:, 33:40], v[1:, 33:40],
        **dict(kw, actual_seq_lengths=[7], attn_mask=kw["attn_mask"][1:, 33:40]))
    assert torch.equal(pad0[1:], shifted)


def test_incre_flash_attention_explicit_backend_never_falls_back():
    (q, k, v), kw = _inputs()
    with cann_attention.use(backend="triton"):
        with pytest.raises(CannAttentionError, match="'triton' was requested but cannot run"):
            cann_attention.incre_flash_attention(q, k, v, **kw)
    with cann_attention.use(backend="emulate"):
        cann_attention.incre_flash_attention(q, k, v, **kw)
