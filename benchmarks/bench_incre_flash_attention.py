"""Benchmark of npu_incre_flash_attention: the CPU plan (emulator), or our kernel on a GPU.

Decode shapes (Q_S = 1). Bytes = the K and V read (B * N2 * ctx * D per cache at its element
size, plus the int8 scales) + query and output; FLOPs = 4 * B * N1 * ctx * D (docs/performance.md,
How we count). An int8 cache is also reported at its bf16-equivalent bandwidth.

    python benchmarks/bench_incre_flash_attention.py [--repeat 5]            # CPU shapes
    python benchmarks/bench_incre_flash_attention.py --device cuda --backend triton \\
        [--shapes ...] [--budget-s N] [--flashinfer] \
        --json benchmarks/results/ifa_<gpu>_<date>_<tag>.json

On CUDA, in the same run: the copy ceiling, our kernel graph-replayed (and, for calls under
``HOST_SHAPES_MS``, the whole call back to back and its host overhead), PyTorch SDPA's flash,
cuDNN and efficient back ends on a contiguous copy of the same cache (SDPA has no paged decode),
a plain PyTorch decode on the paged cache (page gather + matmuls), and with ``--flashinfer``
FlashInfer's paged decode (tensor cores) where it imports: its kernels are compiled just in time,
minutes on first use, so it is off by default.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

import cann_attention  # noqa: F401  (registers torch.ops.cann_attention.*)

sys.path.insert(0, str(Path(__file__).resolve().parent))   # the benchmarks' own modules
from cuda_timing import (begin, cuda_time, graphed, host_us, overhead_ms,  # noqa: E402
                         named, print_not_measured, print_rows, run_meta, sdpa_peers, sweep,
                         write_json)

DEVICE = "cuda"               # the tests run the CUDA measurement on CPU tensors (emulator)
HOST_SHAPES_MS = 0.5          # host overhead is timed on shapes whose kernel is shorter
MAX_CACHE_BYTES = 18 << 30    # shapes whose bf16 K + V exceed this are left out (peers copy them)
CHECK_BATCHES = 4             # batches of a shape whose output is checked against plain PyTorch
HEADS = [(32, 8, 128), (64, 8, 128), (8, 1, 128), (64, 4, 128), (32, 2, 256)]   # PERF.md


@dataclass(frozen=True)
class Shape:
    b: int
    n1: int
    n2: int
    d: int
    s: int             # context (every batch's length)
    kv: str            # "bf16" or "int8"
    block_size: int    # 0: contiguous BSH cache

    @property
    def name(self) -> str:
        pa = f"-PA{self.block_size}" if self.block_size else ""
        return f"B{self.b}-S2_{self.s}-N1_{self.n1}-N2_{self.n2}-D{self.d}-{self.kv}{pa}"

    def cache_bytes(self, itemsize: int | None = None) -> int:
        e = itemsize or (1 if self.kv == "int8" else 2)
        return 2 * self.b * self.n2 * self.s * self.d * e

    def bytes(self) -> int:
        scales = 2 * 2 * self.n2 * self.d * 2 if self.kv == "int8" else 0
        return self.cache_bytes() + scales + 2 * self.b * self.n1 * self.d * 2

    def flops(self) -> int:
        return 4 * self.b * self.n1 * self.s * self.d


CPU_SHAPES = [Shape(1, 32, 8, 128, 4096, "bf16", 0), Shape(8, 32, 8, 128, 2048, "bf16", 0),
              Shape(8, 32, 8, 128, 2048, "bf16", 128), Shape(8, 32, 8, 128, 2048, "int8", 128),
              Shape(4, 64, 8, 128, 8192, "int8", 128)]


def cuda_shapes() -> list[Shape]:
    """PERF.md's decode set: every head configuration over B x context at page 64 in bf16;
    the 64/8 heads also at pages 16 and 128, and int8 caches at B 32 (caches over
    MAX_CACHE_BYTES left out)."""
    out = [Shape(b, n1, n2, d, s, "bf16", 64) for n1, n2, d in HEADS
           for b in (1, 8, 32, 128) for s in (2048, 8192, 32768, 131072)]
    out += [Shape(b, 64, 8, 128, s, "bf16", page) for page in (16, 128)
            for b in (8, 32) for s in (8192, 32768)]
    out += [Shape(32, n1, n2, d, s, "int8", 64) for n1, n2, d in HEADS for s in (8192, 32768)]
    return [s for s in out if s.cache_bytes(2) <= MAX_CACHE_BYTES]


def inputs(sh: Shape, device="cpu", seed=0):
    """(args, kwargs) of the op (BSH query, a shuffled page table when paged)."""
    g = torch.Generator(device=device).manual_seed(seed)
    q = torch.randn(sh.b, 1, sh.n1 * sh.d, generator=g, device=device).to(torch.bfloat16)
    kw = dict(num_heads=sh.n1, num_key_value_heads=sh.n2, scale_value=sh.d ** -0.5,
              actual_seq_lengths=[sh.s] * sh.b)
    if sh.block_size:
        pages = -(-sh.s // sh.block_size)
        shape = (sh.b * pages, sh.block_size, sh.n2 * sh.d)
        order = torch.randperm(sh.b * pages, generator=g, device=device)
        kw.update(block_table=order.to(torch.int32).reshape(sh.b, pages),
                  block_size=sh.block_size)
    else:
        shape = (sh.b, sh.s, sh.n2 * sh.d)
    if sh.kv == "int8":
        k, v = (torch.randint(-127, 128, shape, generator=g, device=device, dtype=torch.int8)
                for _ in range(2))
        kw["antiquant_scale"] = torch.full((2, sh.n2 * sh.d), 0.01, dtype=torch.bfloat16,
                                           device=device)
    else:
        k, v = (torch.randn(shape, generator=g, device=device).to(torch.bfloat16)
                for _ in range(2))
    return (q, k, v), kw


def dense_cache(sh: Shape, cache, kw, batches: int | None = None) -> torch.Tensor:
    """[B, N2, ctx, D] in bf16 of a (paged) BSH cache (int8 dequantised): what SDPA reads
    (``batches``: the first ones only)."""
    n = batches or sh.b
    if sh.block_size:
        x = cache[kw["block_table"][:n].long()].flatten(1, 2)[:, :sh.s]      # [B, ctx, kvH]
    else:
        x = cache[:n, :sh.s]
    x = x.unflatten(2, (sh.n2, sh.d)).transpose(1, 2)
    if sh.kv == "int8":
        x = x.float() * 0.01
    return x.to(torch.bfloat16).contiguous()


def plain_torch(sh: Shape, args, kw, batches: int | None = None) -> torch.Tensor:
    """Plain PyTorch decode from the (paged) cache in bf16: gather, dequantise, two matmuls,
    an fp32 softmax; BSH output (``batches``: of the first ones only)."""
    n = batches or sh.b
    q, k, v = args
    kd, vd = dense_cache(sh, k, kw, n), dense_cache(sh, v, kw, n)
    qh = q[:n].reshape(n, sh.n2, sh.n1 // sh.n2, sh.d)
    scores = (qh @ kd.transpose(-1, -2)).float() * kw["scale_value"]
    a = torch.softmax(scores, dim=-1).to(q.dtype)
    return (a @ vd).reshape(n, 1, sh.n1 * sh.d)


def sdpa_times(sh: Shape, args, kw, repeats, flush):
    """SDPA's back ends on the contiguous bf16 cache (cuda_timing.sdpa_peers)."""
    q = args[0].reshape(sh.b, sh.n1, 1, sh.d)
    kd, vd = dense_cache(sh, args[1], kw), dense_cache(sh, args[2], kw)
    return sdpa_peers(q, kd, vd, repeats, flush, scale=kw["scale_value"],
                      enable_gqa=sh.n1 != sh.n2)


def flashinfer_peer(sh: Shape, args, kw, repeats, flush):
    """(ms, None) of FlashInfer's paged decode (tensor cores), or (None, why not)."""
    if sh.kv != "bf16" or not sh.block_size:
        return None, "bf16 paged caches only"
    try:
        import flashinfer
    except ImportError as e:
        return None, f"not importable: {e}"
    q, k, v = args
    page, pages = sh.block_size, -(-sh.s // sh.block_size)
    ws = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
    wrapper = flashinfer.BatchDecodeWithPagedKVCacheWrapper(ws, "NHD", use_tensor_cores=True)
    indptr = torch.arange(0, sh.b + 1, device="cuda", dtype=torch.int32) * pages
    last = torch.full((sh.b,), sh.s - (pages - 1) * page, dtype=torch.int32, device="cuda")
    wrapper.plan(indptr, kw["block_table"].flatten(), last, sh.n1, sh.n2, sh.d, page,
                 q_data_type=torch.bfloat16)
    kv = (k.unflatten(2, (sh.n2, sh.d)), v.unflatten(2, (sh.n2, sh.d)))
    qf = q.reshape(sh.b, sh.n1, sh.d)
    return cuda_time(graphed(lambda: wrapper.run(qf, kv)), repeats, flush), None


def measure_shape(sh: Shape, args_, ceil, flush, rows, missing):
    copy = ceil[1]
    op = torch.ops.cann_attention.npu_incre_flash_attention
    args, kw = inputs(sh, DEVICE)
    floor_ms = sh.bytes() / (copy * 1e6)

    def add(impl, ms, **extra):
        rows.append(dict(shape=dict(asdict(sh), name=sh.name), impl=impl, ms=ms,
                         repeats=args_.repeats, tflops=sh.flops() / ms / 1e9,
                         gbps=sh.bytes() / ms / 1e6, floor_ms=floor_ms, **extra))

    def call():
        return op(*args, **kw)
    with cann_attention.use(backend=args_.backend):
        replay = graphed(call)
        ms = cuda_time(replay, args_.repeats, flush)
        n = min(sh.b, CHECK_BATCHES)
        got = call()[:n].float()
        want = plain_torch(sh, args, kw, n).float()
        err = float((got - want).norm() / want.norm())
        extra = dict(graph_ms=ms, op_rel_err=err)
        if sh.kv == "int8":
            bf16_bytes = sh.cache_bytes(2) + sh.bytes() - sh.cache_bytes()
            extra["bf16_equiv_gbps"] = bf16_bytes / ms / 1e6
        if ms < HOST_SHAPES_MS:
            call_ms, replay_ms = overhead_ms(call, replay)
            extra.update(call_ms=call_ms, replay_ms=replay_ms,
                         overhead_us=(call_ms - replay_ms) * 1e3, host_us=host_us(call))
        add("triton", ms, **extra)
        del replay
    reps = max(3, args_.repeats // 4)
    try:
        add("torch", cuda_time(lambda: plain_torch(sh, args, kw), reps, flush))
    except torch.OutOfMemoryError:
        missing.setdefault("torch", []).append(f"{sh.name}: out of memory")
    times, why = sdpa_times(sh, args, kw, args_.repeats, flush)
    if args_.flashinfer:
        t, reason = flashinfer_peer(sh, args, kw, args_.repeats, flush)
        times.update({"flashinfer": t} if t is not None else {})
        why.update({"flashinfer": reason} if reason else {})
    for impl, t in times.items():
        add(impl, t)
    for impl, reason in why.items():
        missing.setdefault(impl, []).append(f"{sh.name}: {reason}")
    torch.cuda.empty_cache()
    return err


def run_cuda(args):
    gpu, (mm, copy) = begin(args)
    flush = torch.empty(256 * 2 ** 20, dtype=torch.int8, device="cuda")
    shapes = named(cuda_shapes(), args.shapes)
    shapes.sort(key=Shape.bytes)          # short first (see --budget-s)
    rows, missing = sweep(
        shapes, lambda sh, rows, missing: "relative error vs plain PyTorch %.1e" % measure_shape(
            sh, args, (mm, copy), flush, rows, missing), args.budget_s, args.json, gpu)
    return run_meta(gpu, (mm, copy), args.backend, missing, bool(args.shapes)), rows


def print_cuda(meta, rows):
    print_rows(rows)
    print_not_measured(meta["not_measured"])


def run_cpu(args):
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'shape':48s} {'ms':>9s} {'GFLOP/s':>9s} {'GB/s':>8s}")
    op = torch.ops.cann_attention.npu_incre_flash_attention
    for sh in CPU_SHAPES:
        a, kw = inputs(sh)
        op(*a, **kw)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            op(*a, **kw)
            times.append(time.perf_counter() - t0)
        t = statistics.median(times)
        print(f"{sh.name:48s} {t * 1e3:9.2f} {sh.flops() / t / 1e9:9.2f} "
              f"{sh.bytes() / t / 1e9:8.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--repeat", type=int, default=5, help="cpu: timed runs per shape")
    ap.add_argument("--repeats", type=int, default=20, help="cuda: timed runs per measurement")
    ap.add_argument("--backend", default="triton",
                    help="cuda: the op's back end ('triton': our kernel; auto runs the emulator "
                         "there until the kernel has been verified on a GPU)")
    ap.add_argument("--shapes", help="cuda: comma-separated shape names (default: all)")
    ap.add_argument("--budget-s", type=float, default=0,
                    help="cuda: start no shape after this many seconds; shapes run smallest "
                         "first")
    ap.add_argument("--flashinfer", action="store_true",
                    help="cuda: also FlashInfer's paged decode (JIT-compiled on first use)")
    ap.add_argument("--json", help="cuda: write the results to this file")
    args = ap.parse_args()
    if args.device == "cpu":
        return run_cpu(args)
    meta, rows = run_cuda(args)
    print_cuda(meta, rows)
    if args.json:
        write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()
