"""cann_attention: the CANN attention operators for PyTorch.

``import cann_attention`` registers the ops under ``torch.ops.custom``:

- ``torch.ops.custom.npu_sparse_flash_attention`` (DeepSeek-V3.2 sparse MLA)
- ``torch.ops.custom.npu_flash_attention`` (MAX-style dense flash attention, masks as functors)

Each op runs on CPU tensors through its emulator (the same tiling plan as the device kernels),
and on CUDA / NPU tensors through the back ends listed in its capability table. See README.md.
"""
from .config import config, use
from .sparse_flash_attention import npu_sparse_flash_attention
from .flash_attention import npu_flash_attention

__version__ = "0.1.0"
__all__ = ["config", "use", "npu_sparse_flash_attention", "npu_flash_attention"]
