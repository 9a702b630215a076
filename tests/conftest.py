import pytest
import torch


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA device (skipped on CPU-only machines)")
    config.addinivalue_line("markers", "npu: needs an Ascend NPU with torch_npu")


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device; this machine has none")
    skip_npu = pytest.mark.skip(reason="needs an Ascend NPU with torch_npu; this machine has none")
    has_npu = hasattr(torch, "npu") and torch.npu.is_available()
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
        if "npu" in item.keywords and not has_npu:
            item.add_marker(skip_npu)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
