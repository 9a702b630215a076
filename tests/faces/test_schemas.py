"""Every face has its upstream's exact schema: torch_npu's are compared with the torch-npu 2.13.0
wheel's own schema file (the wheel is downloaded and read as a zip, never installed: without
CANN it breaks ``import torch``); the ``custom`` ones are cann-recipes-infer's registrations."""
from __future__ import annotations

import re
import zipfile

import pytest
import torch

import cann_attention
from cann_attention.library import FACES
from testing import torch_npu_wheel
from testing.torch_npu_wheel import TORCH_NPU

YAML = "torch_npu/csrc/aten/npu_native_functions_by_codegen.yaml"


@pytest.fixture(scope="module")
def torch_npu_schemas() -> dict[str, set[str]]:
    wheel = torch_npu_wheel.wheel()
    if wheel is None:
        pytest.skip(f"the {TORCH_NPU} wheel could not be downloaded (no network or no index)")
    text = zipfile.ZipFile(wheel).read(YAML).decode()
    schemas: dict[str, set[str]] = {}
    for func in re.findall(r"func:\s*(.+)", text):
        schemas.setdefault(func.split("(")[0].strip(), set()).add(func.strip())
    return schemas


NPU_FACES = [f for f in FACES if f.namespace == "npu"]


@pytest.mark.parametrize("face", NPU_FACES, ids=[f.name for f in NPU_FACES])
def test_torch_npu_face_is_the_wheels_schema(face, torch_npu_schemas):
    upstream = torch_npu_schemas.get(face.name)
    assert upstream, f"{face.name} is not in {TORCH_NPU}"
    want = {str(torch._C.parse_schema(f"npu::{s}")) for s in upstream}
    assert len(want) == 1, f"{TORCH_NPU} declares {face.name} twice, differently: {want}"
    registered = getattr(torch.ops.npu, face.name).default._schema
    assert str(registered) == want.pop()
    assert getattr(cann_attention.torch_npu, face.name).default._schema == registered


CANN_RECIPES = {   # hicann/cann-recipes-infer ops/ascendc/torch_ops_extension/custom_ops/csrc/
    # ops_def_registration.cpp, the last version before the ops were removed (af01a94^)
    "npu_sparse_flash_attention": (
        "custom::npu_sparse_flash_attention(Tensor query, Tensor key, Tensor value, "
        "Tensor sparse_indices, float scale_value, int sparse_block_size, *, "
        "Tensor? block_table=None, Tensor? actual_seq_lengths_query=None, "
        "Tensor? actual_seq_lengths_kv=None, Tensor? query_rope=None, Tensor? key_rope=None, "
        "str layout_query='BSND', str layout_kv='BSND', int sparse_mode=3) -> Tensor"),
    "npu_lightning_indexer": (
        "custom::npu_lightning_indexer(Tensor query, Tensor key, Tensor weights, *, "
        "Tensor? actual_seq_lengths_query=None, Tensor? actual_seq_lengths_key=None, "
        "Tensor? block_table=None, str layout_query='BSND', str layout_key='BSND', "
        "int sparse_count=2048, int sparse_mode=3) -> Tensor"),
}


@pytest.mark.parametrize("name", list(CANN_RECIPES))
def test_custom_face_is_cann_recipes_registration(name):
    got = getattr(torch.ops.custom, name).default._schema
    assert str(got) == str(torch._C.parse_schema(CANN_RECIPES[name]))


@pytest.mark.parametrize("name", ["npu_incre_flash_attention", "npu_nsa_compress_attention"])
def test_custom_face_of_torch_npu_ops_is_torch_npu_schema(name):
    custom = str(getattr(torch.ops.custom, name).default._schema)
    npu = str(getattr(torch.ops.npu, name).default._schema)
    assert custom.replace("custom::", "", 1) == npu.replace("npu::", "", 1)


def test_custom_results_are_one_tensor():
    from testing.sparse_flash_attention_cases import make_case
    case = make_case(B=1, S1=2, S2=32, N1=2, K=4)
    kw = {k: v for k, v in case.kwargs.items()
          if k not in ("attention_mode", "return_softmax_lse", "sinks")}
    out = torch.ops.custom.npu_sparse_flash_attention(*case.args, **kw)
    assert isinstance(out, torch.Tensor) and out.shape == case.args[0].shape
    full = torch.ops.cann_attention.npu_sparse_flash_attention(*case.args, **case.kwargs)
    torch.testing.assert_close(out, full[0], rtol=0, atol=0)
