import os
import random
import zlib

import pytest
import torch

# Without a GPU the Triton kernels run under Triton's interpreter. Set before any test module is
# collected: Triton fixes the mode of a function when it decorates it, and a module collected
# earlier may import Triton (torch._dynamo and FlexAttention do), so a kernel test setting it at
# its own import could leave Triton's standard-library functions (tl.sort, ...) compiled ones.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

try:
    import numpy
except ImportError:          # numpy is optional (Triton's interpreter needs it, CPU CI may not)
    numpy = None


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


def node_seed(nodeid: str) -> int:
    """A fixed 31-bit seed per test: CRC-32 of its node id ("tests/...py::test_x[param]"),
    the same in every run and process (unlike ``hash``, which PYTHONHASHSEED salts)."""
    return zlib.crc32(nodeid.encode()) & 0x7FFFFFFF


@pytest.fixture(autouse=True)
def _seed(request):
    """Fixed seeds for every test: torch's generators (CPU and CUDA) at 0,
    as the tests' data were drawn with; Python's ``random`` and numpy's global generator at the
    test's own seed from its node id, so that tests drawing seeds with ``random.randrange``
    reproduce run after run."""
    torch.manual_seed(0)
    seed = node_seed(request.node.nodeid)
    random.seed(seed)
    if numpy is not None:
        numpy.random.seed(seed)
