"""cann_attention: the CANN attention operators for PyTorch.

``import cann_attention`` registers the ops and their faces (torch_binding/faces.py):
``torch.ops.cann_attention.*`` (every argument), ``torch.ops.custom.*`` (cann-recipes-infer's
schemas), ``torch.ops.npu.*`` = ``cann_attention.torch_npu`` (torch_npu's schemas) and
``cann_attention.mindspore`` (MindSpore's functions). The ops:

- ``torch.ops.custom.npu_sparse_flash_attention`` (DeepSeek-V3.2 sparse MLA)
- ``torch.ops.custom.npu_lightning_indexer`` (DeepSeek-V3.2 top-k key selection)
- ``torch.ops.custom.npu_incre_flash_attention`` (decode attention)
- ``torch.ops.custom.npu_nsa_compress_attention`` (NSA compressed attention + block top-k)
- ``torch.ops.custom.npu_flash_attention`` (MAX-style dense flash attention, masks as functors)

Each op runs on CPU tensors through its emulator (the same tiling plan as the device kernels),
and on CUDA / NPU tensors through the back ends listed in its capability table. See README.md.
"""
from .config import config, use
from .library import OPS, clear_caches, make_way
from .flash_attention import npu_flash_attention
from .incre_flash_attention import npu_incre_flash_attention
from .lightning_indexer import npu_lightning_indexer
from .nsa_compress_attention import npu_nsa_compress_attention
from .sparse_flash_attention import npu_sparse_flash_attention
from . import mindspore, torch_npu  # noqa: E402  (the faces' modules)
from .mindspore import incre_flash_attention  # kept: MindSpore's IFA, as before the faces

__version__ = "0.1.0"
__all__ = ["config", "use", "clear_caches", "make_way", "OPS", "mindspore", "torch_npu", "npu_sparse_flash_attention", "npu_lightning_indexer",
           "npu_incre_flash_attention", "incre_flash_attention", "npu_nsa_compress_attention",
           "npu_flash_attention"]
