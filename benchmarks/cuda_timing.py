"""CUDA timing helpers shared by the op benchmarks (docs/performance.md, How we count).

Medians of CUDA events after warm-up (``cuda_time``), device time of a call as a replayed CUDA
graph (``graphed``), host overhead as the eager call back to back minus its replay
(``overhead_ms``), the host time of one call (``host_us``), the same run's matmul and copy
ceilings (``ceilings``), PyTorch SDPA's back ends as peers (``sdpa_peers``), a sweep of shapes
under a time budget (``sweep``), and the commit and JSON of a results file.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

import torch

PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0}   # bf16 dense, datasheet


def peak_tflops(gpu: str) -> float | None:
    """The datasheet bf16 dense peak of the GPU named ``gpu`` (None: not listed)."""
    return next((v for k, v in PEAK_TFLOPS.items() if k in gpu), None)


def cuda_time(fn, repeats, flush=None, warmup=2, warmup_ms=50.0):
    """Median milliseconds of ``repeats`` runs timed with CUDA events after warm-up runs: at
    least ``warmup`` of them, and more until ``warmup_ms`` have passed (a kernel timed right
    after other work reads a few percent slow in its first tens of runs)."""
    start = time.perf_counter()
    for i in range(10 ** 6):
        if i >= warmup and (time.perf_counter() - start) * 1e3 >= warmup_ms:
            break
        if flush is not None:
            flush.zero_()
        fn()
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        if flush is not None:
            flush.zero_()
        # the device waits ~0.5 ms before the start event, so the host has queued the whole
        # timed launch by then: a late host (its graph launch, a pause) cannot open a gap
        # inside the timed region (without it, a few shapes of a sweep read several times slow)
        torch.cuda._sleep(1_000_000)
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def graphed(launch):
    """A function replaying ``launch`` (device work only) as a CUDA graph: the device time of
    a call without its host work. The function keeps ``launch`` (and so the buffers the graph
    reads) alive."""
    launch()                                   # compile and warm up outside the capture
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        launch()

    def replay():
        g.replay()
    replay.launch = launch      # holds the tables and buffers the graph reads
    return replay


def host_us(fn, calls=50) -> float:
    """Host microseconds of one call: ``calls`` calls issued while the device sleeps, so no call
    waits for the device (the whole time is Python, checks, planning lookups and launches)."""
    fn()
    torch.cuda.synchronize()
    torch.cuda._sleep(400_000_000)            # ~0.2 s of device time: the queue never drains
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    t1 = time.perf_counter()
    torch.cuda.synchronize()
    return (t1 - t0) / calls * 1e6


def back_to_back_ms(fn, calls=50) -> float:
    """Wall milliseconds per call of ``calls`` eager calls issued back to back (the longer of
    the host's and the device's time per call, as a model's layers see it)."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / calls * 1e3


def overhead_ms(call, replay, rounds=5) -> tuple[float, float]:
    """(call, replay) wall milliseconds per call, back to back, medians of ``rounds``
    alternating rounds: the eager op call and the same call replayed as a CUDA graph. Their
    difference is what the call's host work adds to its device time (docs/performance.md: host
    overhead), measured alike on both sides (same cache state, no flush, no pause)."""
    calls, replays = [], []
    for _ in range(rounds):
        calls.append(back_to_back_ms(call))
        replays.append(back_to_back_ms(replay))
    return statistics.median(calls), statistics.median(replays)


def ceilings(repeats):
    """(matmul TFLOPS, copy GB/s) measured now on random data."""
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    ms = cuda_time(lambda: a @ b, repeats)
    mm = 2 * 8192 ** 3 / ms / 1e9
    x = torch.randn(256 * 2 ** 20, device="cuda")       # 1 GiB
    y = torch.empty_like(x)
    ms = cuda_time(lambda: y.copy_(x), repeats)
    return mm, 2 * x.numel() * 4 / ms / 1e6


def begin(args) -> tuple[str, tuple[float, float]]:
    """A run's GPU name and (matmul TFLOPS, copy GB/s) ceilings measured now, printed with the
    back end measured (``args.repeats``, ``args.backend``)."""
    gpu = torch.cuda.get_device_name()
    mm, copy = ceilings(args.repeats)
    print(f"ceilings: matmul {mm:.0f} TFLOPS, copy {copy:.0f} GB/s ({gpu}); back end "
          f"{args.backend}", flush=True)
    return gpu, (mm, copy)


def named(shapes, names: str | None) -> list:
    """The shapes whose ``name`` is in the comma-separated ``names`` (all when None)."""
    wanted = names.split(",") if names else None
    return [s for s in shapes if wanted is None or s.name in wanted]


def triton_version():
    try:
        import triton
        return triton.__version__
    except ImportError:
        return None


def measured_commit() -> str:
    """The commit measured: ``$BENCH_COMMIT`` when set (a copy of the tree on another machine
    may carry a stale git history, or none, and would name the wrong commit), else
    ``git rev-parse``."""
    return os.environ.get("BENCH_COMMIT") or subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()


def write_json(path, meta, rows):
    with open(path, "w") as f:
        json.dump(dict(meta=meta, results=rows), f, indent=2)


SDPA_BACKENDS = (("sdpa-flash", "FLASH_ATTENTION"), ("sdpa-cudnn", "CUDNN_ATTENTION"),
                 ("sdpa-efficient", "EFFICIENT_ATTENTION"))


def sdpa_peers(q, k, v, repeats, flush=None, **sdpa_kwargs):
    """({impl: ms}, {impl: why not}) of scaled_dot_product_attention(q, k, v, **sdpa_kwargs)
    under each of SDPA's CUDA back ends, graph-replayed (a back end that refuses the call says
    why)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    times, why = {}, {}
    for impl, name in SDPA_BACKENDS:
        def call(backend=getattr(SDPBackend, name)):
            with sdpa_kernel(backend):
                return torch.nn.functional.scaled_dot_product_attention(q, k, v, **sdpa_kwargs)
        try:
            times[impl] = cuda_time(graphed(call), repeats, flush)
        except RuntimeError as e:
            why[impl] = str(e).splitlines()[0][:160]
    return times, why


def sweep(shapes, measure, budget_s=0.0, json_path=None, gpu="", name=lambda s: s.name):
    """(rows, not_measured) of ``measure(shape, rows, missing)`` over ``shapes`` in order,
    starting no shape after ``budget_s`` seconds (those are listed as not run), the rows so far
    written to ``json_path`` after each shape (a run cut short keeps them). ``measure`` returns
    a line for the progress log, or None."""
    rows, missing, t0 = [], {}, time.time()
    for i, shape in enumerate(shapes):
        if budget_s and time.time() - t0 > budget_s:
            missing.setdefault("ours", []).append(f"{name(shape)}: not run (--budget-s)")
            continue
        note = measure(shape, rows, missing)
        if json_path:
            write_json(json_path, dict(device=gpu, partial=True), rows)
        print(f"[{i + 1}/{len(shapes)}] {name(shape)}" + (f": {note}" if note else ""),
              file=sys.stderr, flush=True)
    return rows, missing


def run_meta(gpu: str, ceil: tuple[float, float], backend: str, missing: dict, partial: bool,
             **extra) -> dict:
    """A results file's meta: the GPU, the run's ceilings and the GPU's peak, the versions,
    the back end measured, what was not measured and why, the commit, date and sweep kind."""
    return dict(device=gpu, matmul_tflops=ceil[0], copy_gbps=ceil[1],
                peak_tflops=peak_tflops(gpu), torch=torch.__version__,
                triton=triton_version(), backend=backend, not_measured=missing,
                commit=measured_commit(), date=time.strftime("%Y-%m-%d"),
                time=time.strftime("%H:%M:%S"), sweep="partial" if partial else "full", **extra)


def print_rows(rows: list, ours: str = "triton", width: int = 40) -> None:
    """A run's rows as a table: shape, impl, ms, TFLOPS, GB/s, % of the shape's roofline, and
    the time over ours (impl ``ours``) on the same shape."""
    base = {r["shape"]["name"]: r["ms"] for r in rows if r["impl"] == ours}
    print(f"\n{'shape':<{width}} {'impl':<22} {'ms':>9} {'TFLOPS':>7} {'GB/s':>7} {'%roof':>6} "
          f"{'vs ours':>8}")
    for r in rows:
        name, ms = r["shape"]["name"], r["ms"]
        roof = 100 * r["floor_ms"] / ms if r.get("floor_ms") else float("nan")
        vs = f"{ms / base[name]:.2f}x" if name in base else "-"
        print(f"{name:<{width}} {r['impl']:<22} {ms:>9.4f} {r['tflops']:>7.1f} "
              f"{r['gbps']:>7.0f} {roof:>6.1f} {vs:>8}")


def print_not_measured(missing: dict) -> None:
    for impl, why in missing.items():
        print(f"not measured: {impl}: {why[0]}" + (f" (+{len(why) - 1} more)" if len(why) > 1
                                                   else ""))


def alternating(fns: dict, repeats: int, rounds: int = 5, flush=None) -> dict:
    """{name: median ms} of the functions of ``fns`` timed in turns: ``rounds`` rounds, each
    timing every function for ``repeats // rounds`` runs (at least 3), so clocks and heat
    drift alike for all of them (a same-run comparison with a peer)."""
    per = max(3, repeats // rounds)
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(cuda_time(fn, per, flush, warmup_ms=10.0))
    return {name: statistics.median(v) for name, v in times.items()}
