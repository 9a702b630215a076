"""Run a test file as a program under compute-sanitizer's memcheck and require no error."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest


def assert_memcheck_clean(path: str, timeout: int = 1200) -> None:
    """``path`` run as ``python path`` under ``compute-sanitizer --tool memcheck`` (PyTorch's
    caching allocator off, so every tensor is its own allocation and a stray access past it is
    caught), from the tests folder; skipped where compute-sanitizer is not on PATH."""
    tool = shutil.which("compute-sanitizer")
    if tool is None:
        pytest.skip("compute-sanitizer is not on PATH")
    env = dict(os.environ, PYTORCH_NO_CUDA_MEMORY_CACHING="1")
    res = subprocess.run([tool, "--tool", "memcheck", "--error-exitcode", "97",
                          sys.executable, path], capture_output=True, text=True, env=env,
                         cwd=os.path.dirname(os.path.dirname(path)), timeout=timeout)
    report = res.stdout[-4000:] + res.stderr[-4000:]
    assert res.returncode == 0, report
    assert "ERROR SUMMARY: 0 errors" in res.stdout, report
