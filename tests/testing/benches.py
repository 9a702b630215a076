"""The benchmark scripts as modules, for the tests of their workloads (CPU)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_bench(name: str):
    """benchmarks/<name>.py imported as module ``name`` (registered in sys.modules, so its
    dataclasses find their module; the benchmarks folder on sys.path, for cuda_timing); the
    module already imported when there is one."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    if name in sys.modules:          # one module object: what the benches import is patched
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def timed_on_cpu(monkeypatch, bench) -> None:
    """Run ``bench``'s CUDA measurement on CPU tensors: its DEVICE set to cpu and the CUDA
    timing helpers (in the bench and in cuda_timing, whose SDPA peers time through them)
    replaced by calls that run the function once and report 0.1 ms (short: the host overhead
    is measured too), so a test walks every line of a shape's measurement (the op, the peers,
    the rows) without a GPU."""
    import cuda_timing

    def once(fn, *args, **kwargs):
        fn()
        return 0.1

    def overhead(call, replay, *args):
        call(), replay()
        return 0.1, 0.09
    monkeypatch.setattr(bench, "DEVICE", "cpu")
    for module in (bench, cuda_timing):
        for name, value in (("cuda_time", once), ("graphed", lambda launch: launch),
                            ("overhead_ms", overhead), ("host_us", lambda fn, *a: 5.0)):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, value)
