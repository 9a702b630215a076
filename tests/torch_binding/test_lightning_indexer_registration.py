"""custom::npu_lightning_indexer registration: schema, opcheck, fake shapes, torch.compile,
return_value and back-end selection."""
from __future__ import annotations

import pytest
import torch

import cann_attention
from cann_attention.op_host.common.errors import CannAttentionError

I32 = torch.int32


def _bsnd(dtype=torch.bfloat16):
    return (torch.randn(2, 3, 8, 128, dtype=dtype), torch.randn(2, 40, 1, 128, dtype=dtype),
            torch.randn(2, 3, 8, dtype=dtype))


def _tnd_pa():
    q = torch.randn(5, 8, 128, dtype=torch.float16)
    key = torch.randn(4, 16, 1, 128, dtype=torch.float16)
    w = torch.randn(5, 8, dtype=torch.float16)
    kw = dict(actual_seq_lengths_query=torch.tensor([2, 5], dtype=I32),
              actual_seq_lengths_key=torch.tensor([20, 30], dtype=I32),
              block_table=torch.tensor([[3, 0], [1, 2]], dtype=I32),
              layout_query="TND", layout_key="PA_BSND", sparse_count=24)
    return (q, key, w), kw


def test_lightning_indexer_schema_names_and_defaults():
    schema = torch.ops.cann_attention.npu_lightning_indexer.default._schema
    names = [a.name for a in schema.arguments]
    assert names == ["query", "key", "weights", "actual_seq_lengths_query",
                     "actual_seq_lengths_key", "block_table", "layout_query", "layout_key",
                     "sparse_count", "sparse_mode", "pre_tokens", "next_tokens", "return_value"]
    defaults = {a.name: a.default_value for a in schema.arguments if a.has_default_value()}
    assert defaults["sparse_count"] == 2048 and defaults["sparse_mode"] == 3
    assert defaults["pre_tokens"] == defaults["next_tokens"] == 2**63 - 1
    assert defaults["layout_query"] == defaults["layout_key"] == "BSND"
    assert defaults["return_value"] is False
    assert len(schema.returns) == 2


@pytest.mark.parametrize("return_value", [False, True], ids=["values_empty", "values"])
def test_lightning_indexer_outputs(return_value):
    q, k, w = _bsnd()
    idx, val = torch.ops.cann_attention.npu_lightning_indexer(q, k, w, sparse_count=16,
                                                      return_value=return_value)
    assert idx.shape == (2, 3, 1, 16) and idx.dtype == torch.int32
    if return_value:
        assert val.shape == (2, 3, 1, 16) and val.dtype == torch.bfloat16
    else:
        assert val.shape == (0,) and val.dtype == torch.bfloat16


def test_lightning_indexer_seed_era_call():
    """The old custom.npu_lightning_indexer call (no pre/next_tokens, no return_value) works."""
    (q, k, w), kw = _tnd_pa()
    idx, _ = torch.ops.cann_attention.npu_lightning_indexer(q, k, w, **kw, sparse_mode=3)
    assert idx.shape == (5, 1, 24)


@pytest.mark.parametrize("layout", ["BSND", "TND-PA_BSND"])
def test_lightning_indexer_opcheck(layout):
    if layout == "BSND":
        args, kw = _bsnd(), dict(sparse_count=16, return_value=True)
    else:
        args, kw = _tnd_pa()
    torch.library.opcheck(torch.ops.cann_attention.npu_lightning_indexer.default, args, kw)


@pytest.mark.parametrize("return_value", [False, True], ids=["values_empty", "values"])
def test_lightning_indexer_fake_shapes(return_value):
    from torch._subclasses.fake_tensor import FakeTensorMode
    q, k, w = _bsnd(torch.float16)
    with FakeTensorMode() as mode:
        fq, fk, fw = (mode.from_tensor(x) for x in (q, k, w))
        idx, val = torch.ops.cann_attention.npu_lightning_indexer(fq, fk, fw, sparse_count=32,
                                                          return_value=return_value)
    assert idx.shape == (2, 3, 1, 32) and idx.dtype == torch.int32
    assert val.shape == ((2, 3, 1, 32) if return_value else (0,)) and val.dtype == torch.float16


def test_lightning_indexer_torch_compile_fullgraph():
    q, k, w = _bsnd()

    def step(q, k, w):
        idx, val = torch.ops.cann_attention.npu_lightning_indexer(q, k, w, sparse_count=8,
                                                          sparse_mode=0, return_value=True)
        return idx + 0, val.float() * 2

    compiled = torch.compile(step, fullgraph=True)
    got, want = compiled(q, k, w), step(q, k, w)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_lightning_indexer_backend_forced():
    q, k, w = _bsnd()
    with cann_attention.use(backend="triton"):
        with pytest.raises(CannAttentionError, match=r"npu_lightning_indexer: backend: "
                           r"'triton' was requested but cannot run this call: runs on cuda "
                           r"tensors, not cpu"):
            torch.ops.cann_attention.npu_lightning_indexer(q, k, w, sparse_count=8)
    with cann_attention.use(backend="emulate"):
        assert torch.ops.cann_attention.npu_lightning_indexer(q, k, w, sparse_count=8)[0].shape \
            == (2, 3, 1, 8)
