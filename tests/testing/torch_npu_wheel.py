"""The torch-npu 2.13.0 wheel (manylinux x86_64, cp311), downloaded once into a cache and read as
a zip, never installed (without CANN, importing torch_npu breaks ``import torch``)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TORCH_NPU = "torch-npu==2.13.0"
CACHE = Path(os.environ.get("CANN_ATTENTION_WHEEL_CACHE",
                            Path.home() / ".cache" / "cann_attention" / "wheels"))


def wheel() -> Path | None:
    """The wheel's path, downloading it on first use; None where it cannot be downloaded."""
    found = sorted(CACHE.glob("torch_npu-2.13.0-*.whl"))
    if not found:
        CACHE.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                            "--only-binary=:all:", "--python-version", "3.11",
                            "--platform", "manylinux_2_28_x86_64", TORCH_NPU, "-d", str(CACHE)],
                           check=True, timeout=600, capture_output=True)
        except (subprocess.SubprocessError, OSError):
            return None
        found = sorted(CACHE.glob("torch_npu-2.13.0-*.whl"))
    return found[0] if found else None
