"""The torch_npu back end: on NPU tensors, without our op package, a call goes to torch_npu's own
kernel with its arguments mapped by name, and never silently to the emulator. No NPU here: the
mapping is proven by handing the mapped call to our own torch_npu face on CPU tensors."""
from __future__ import annotations

import pytest
import torch

import cann_attention
from cann_attention.op_host.common.errors import CannAttentionError
from cann_attention.op_kernel.common import torch_npu_builtin
from testing.calls import checked
from testing.npu_calls import li_call, sfa_call


@pytest.mark.parametrize("op, call", [("npu_sparse_flash_attention", sfa_call),
                                      ("npu_lightning_indexer", li_call)])
def test_arguments_reach_torch_npu_by_name(op, call):
    args, kwargs = call()
    p, tensors = checked(op, *args, **kwargs)
    got = torch_npu_builtin.run(p, op, tensors)      # our torch_npu face stands in for torch_npu
    want = getattr(torch.ops.cann_attention, op)(*args, **kwargs)
    for a, b in zip(got, want):
        assert torch.equal(a, b)


def test_plan_names_the_op():
    backend = next(b for b in cann_attention.OPS["npu_lightning_indexer"].backends
                   if b.name == "torch_npu")
    assert backend.plan(None, None) == "npu_lightning_indexer"
    assert backend.available() == "not available: torch_npu is not loaded"


@pytest.mark.parametrize("op", sorted(cann_attention.OPS))
def test_npu_tensors_never_reach_the_emulator_silently(op):
    """Without an NPU back end available, selection refuses and names every reason."""
    op_def = cann_attention.OPS[op]
    cfg = cann_attention.config
    with pytest.raises(CannAttentionError, match="emulate: runs npu tensors only when asked "
                       "for by name"):
        op_def.select(None, "npu", torch.bfloat16, cfg)


def test_the_emulator_runs_npu_tensors_when_named():
    op_def = cann_attention.OPS["npu_sparse_flash_attention"]
    with cann_attention.use(backend="emulate"):
        from cann_attention.config import current
        assert op_def.select(None, "npu", torch.bfloat16, current()).name == "emulate"
