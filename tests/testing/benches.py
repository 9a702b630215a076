"""The benchmark scripts as modules, for the tests of their workloads (CPU)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_bench(name: str):
    """benchmarks/<name>.py imported as module ``name`` (registered in sys.modules, so its
    dataclasses find their module; the benchmarks folder on sys.path, for cuda_timing)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
