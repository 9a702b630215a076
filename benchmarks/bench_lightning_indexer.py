"""Benchmark of npu_lightning_indexer (FLOPs = 2 * N1 * D * visible pairs, docs/performance.md).

CPU (default, ``--set cpu``): the op end to end (score + top-k, host planning included) and the
naive PyTorch indexer of the DeepSeek-V3.2 reference (dense fp32 scores of every visible pair,
masked, torch.topk) on three small shapes; medians of ``--repeats`` runs after one warm-up.

``--device cuda``: PERF.md's indexer shapes (prefill S1 2048-8192 x S2 8192-131072, paged decode
B 1-128 x context 8192 / 65536; ``--shapes`` picks some by name), and in the same run the two
ceilings (8192^3 bf16 matmul, 1 GiB copy) and these implementations on the same tensors:

- ``triton`` (ours): the op call captured in a CUDA graph and replayed (the device time of a
  call), with the whole call back to back (``call_ms``), its replay back to back, the difference
  (``overhead_us``) and the host time of one call (``host_us``) beside it where the call is
  shorter than HOST_SHAPES_MS (beside longer ones the host work is hidden);
- ``torch``: plain PyTorch, the DeepSeek-V3.2 reference's way (fp32 scores of every visible
  pair, masked, ``torch.topk``; query rows in chunks so the [rows, N1, S2] fp32 products fit);
- ``torch-topk``, ``flashinfer-topk``: the top-k alone on the fp32 score matrix [rows, S2]
  (masked scores of the shape): torch.topk (sorted) and FlashInfer's ``top_k`` (its radix
  select, unsorted output) where its package imports (the row says why not otherwise);
  ``ours-topk``: our top-k kernel alone on the same matrix, where the plan runs one
  (op_kernel/lightning_indexer/triton.py).

``--step``: the DSA decode step (B=128, S1=2, context 32768, the indexer's 64 heads, sparse
attention's 128 heads, top-2048, PA_BSND pages of 64): indexer -> sparse flash attention
captured in one CUDA graph and replayed, beside each call's own graph-replayed time; the
issue-20 target is step <= 1.15 x (indexer + attention).

Times are medians of CUDA events (cuda_timing.py); decode shapes flush L2 before each run.
The roofline of a shape is max(FLOPs / matmul ceiling, bytes / copy ceiling), bytes = query,
weights, the keys of one batch once, and the indices (scripts/ascend_bounds.py li_work).

    python benchmarks/bench_lightning_indexer.py [--device cpu] [--set cpu|perf] [--repeats 3]
        [--backend auto|emulate|triton|...]   (the op's back end: cann_attention.use(backend=))
    python benchmarks/bench_lightning_indexer.py --device cuda --backend triton [--step]
        [--shapes "prefill S1=4096 S2=32768,..."] [--budget-s 140] [--json benchmarks/results/li_<gpu>_<date>_<tag>.json]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

import cann_attention  # registers torch.ops.cann_attention.*

sys.path.insert(0, str(Path(__file__).resolve().parent))   # the benchmarks' own modules
from cuda_timing import (begin, cuda_time, graphed, host_us, overhead_ms,  # noqa: E402
                         named, print_not_measured, print_rows, run_meta, sweep, write_json)

D = 128
PAGE = 64
STEP = dict(batch=128, s1=2, ctx=32768, n1_idx=64, n1=128, k=2048)   # the DSA decode step
CHUNK_BYTES = 8 << 30       # the plain PyTorch peer's fp32 products per chunk of query rows
HOST_SHAPES_MS = 2.0        # host overhead is timed on shapes whose call is shorter


@dataclass(frozen=True)
class Shape:
    name: str
    batch: int
    s1: int          # query tokens per sequence
    s2: int          # context (keys) per sequence
    n1: int = 64
    k: int = 2048
    paged: bool = False

    def visible_pairs(self) -> int:
        """Right-down causal pairs: query s sees s2 - s1 + s + 1 keys."""
        per_seq = sum(min(self.s2, max(0, self.s2 - self.s1 + s + 1)) for s in range(self.s1))
        return self.batch * per_seq

    def bytes(self) -> int:
        """Query, weights, the keys of each batch once, the int32 indices (bf16 inputs)."""
        rows = self.batch * self.s1
        return 2 * rows * self.n1 * (D + 1) + 2 * self.batch * self.s2 * D + 4 * rows * self.k


CPU_SET = [
    Shape("decode B1 ctx8192 paged", 1, 1, 8192, paged=True),
    Shape("decode B4 ctx8192 paged", 4, 1, 8192, paged=True),
    Shape("prefill S1=64 S2=8192", 1, 64, 8192),
]
PERF_SET = ([Shape(f"prefill S1={s1} S2={s2}", 1, s1, s2) for s1 in (2048, 4096, 8192)
             for s2 in (8192, 32768, 131072) if s2 >= s1]
            + [Shape(f"decode B{b} ctx{c} paged", b, 1, c, paged=True) for b in (1, 32, 128)
               for c in (8192, 65536)])


def inputs(shape: Shape, device):
    gen = torch.Generator().manual_seed(0)
    rnd = lambda *s: torch.randn(*s, generator=gen).bfloat16().to(device)  # noqa: E731
    q, w = rnd(shape.batch, shape.s1, shape.n1, D), rnd(shape.batch, shape.s1, shape.n1)
    kw = dict(sparse_count=shape.k, sparse_mode=3)
    if shape.paged:
        pages = -(-shape.s2 // PAGE)
        key = rnd(shape.batch * pages, PAGE, 1, D)
        perm = torch.randperm(shape.batch * pages, generator=gen).reshape(shape.batch, pages)
        kw.update(layout_key="PA_BSND", block_table=perm.to(torch.int32).to(device),
                  actual_seq_lengths_key=torch.full((shape.batch,), shape.s2, dtype=torch.int32,
                                                    device=device))
        dense_key = key[perm.to(device).flatten()].reshape(shape.batch, pages * PAGE, D)
    else:
        key = rnd(shape.batch, shape.s2, 1, D)
        dense_key = key[:, :, 0]
    return q, key, w, kw, dense_key[:, : shape.s2]


def naive_scores(q, w, dense_key, s0=0, s1=None):
    """fp32 scores [B, s1 - s0, S2] of query rows [s0, s1), invisible keys -inf (sparse_mode 3,
    DeepSeek-V3.2 reference style: every pair computed, then masked)."""
    S1, S2 = q.shape[1], dense_key.shape[1]
    s1 = S1 if s1 is None else s1
    score = torch.einsum("bshd,btd->bsht", q[:, s0:s1].float(), dense_key.float()).relu_()
    score = (score * w[:, s0:s1].float().unsqueeze(-1)).sum(2)
    causal = torch.arange(S2, device=q.device)[None] <= (
        S2 - S1 + torch.arange(s0, s1, device=q.device))[:, None]
    return score.masked_fill(~causal, float("-inf"))


def naive_indexer(q, w, dense_key, k):
    """The plain PyTorch indexer: scores (query rows in chunks of CHUNK_BYTES of products) and
    torch.topk(min(k, S2))."""
    B, S1, N1, _ = q.shape
    S2 = dense_key.shape[1]
    step = max(1, CHUNK_BYTES // (B * N1 * S2 * 4))
    return torch.cat([torch.topk(naive_scores(q, w, dense_key, s0, min(S1, s0 + step)),
                                 min(k, S2), dim=-1).indices for s0 in range(0, S1, step)], 1)


def _median_time(fn, repeats, device):
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_cpu(args):
    device = torch.device(args.device)
    print(f"npu_lightning_indexer on {device} (torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads), back end {args.backend}, bf16, K=2048, N1=64, "
          f"D=128, sparse_mode 3")
    print(f"{'shape':32s} {'op ms':>9s} {'GFLOP/s':>9s} {'naive ms':>9s}")
    for shape in CPU_SET if args.set == "cpu" else PERF_SET:
        q, key, w, kw, dense_key = inputs(shape, device)
        op = lambda: torch.ops.cann_attention.npu_lightning_indexer(q, key, w, **kw)  # noqa: E731
        with cann_attention.use(backend=args.backend):
            t_op = _median_time(op, args.repeats, device)
        flops = 2 * shape.n1 * D * shape.visible_pairs()
        peer = "-"
        if not args.no_peer:
            t_peer = _median_time(lambda: naive_indexer(q, w, dense_key, shape.k),
                                  args.repeats, device)
            peer = f"{t_peer * 1e3:9.1f}"
        print(f"{shape.name:32s} {t_op * 1e3:9.1f} {flops / t_op / 1e9:9.2f} {peer:>9s}")


# ---- CUDA ----------------------------------------------------------------------------------
def flashinfer_topk():
    """FlashInfer's top_k, or the reason it cannot run here (a string)."""
    try:
        from flashinfer import top_k
        return top_k
    except Exception as e:         # not installed, or its import needs what is missing
        return f"flashinfer not importable: {type(e).__name__}: {str(e)[:160]}"


def topk_peers(scores, k, repeats, flush):
    """{impl: ms} of the top-k alone on ``scores`` [rows, S2] fp32, and {impl: why not}."""
    from cann_attention.op_kernel.lightning_indexer import triton as li_triton
    times, missing = {}, {}
    peers = {"torch-topk": lambda: torch.topk(scores, k, dim=-1)}
    fi = flashinfer_topk()
    if isinstance(fi, str):
        missing["flashinfer-topk"] = fi
    else:
        peers["flashinfer-topk"] = lambda: fi(scores, k)
    if hasattr(li_triton, "topk_rows"):
        peers["ours-topk"] = lambda: li_triton.topk_rows(scores, k)
    for name, fn in peers.items():
        try:
            times[name] = cuda_time(fn, repeats, flush)
        except Exception as e:      # a peer that fails on this shape: say so, go on
            missing[name] = f"{type(e).__name__}: {str(e)[:160]}"
    return times, missing


def agreement(ours, want) -> float:
    """Share of the plain PyTorch top-k's keys that our indices hold too (1.0 up to rounding
    ties: the scores are fp32 sums in different orders)."""
    ours = ours.reshape(want.shape[0], -1, ours.shape[-1])[..., : want.shape[-1]].long()
    want = want.long()
    hit = torch.zeros(want.shape[:2] + (int(want.max()) + 2,), dtype=torch.bool,
                      device=want.device)
    hit.scatter_(-1, ours.clamp(min=-1) + 1, True)
    return float(hit.gather(-1, want + 1).float().mean())


def plan_of(q, key, w, kw):
    """The plan the op makes for this call on this GPU."""
    from cann_attention.op_host.common.platform import platform_for_device
    from cann_attention.op_host.lightning_indexer import tiling
    op_def = cann_attention.OPS["npu_lightning_indexer"]
    p = op_def.parse(op_def.bind((q, key, w), kw))
    return tiling.plan(p, platform_for_device(q.device))


def measure_shape(shape, args, ceil, flush, rows, missing):
    mm, copy = ceil
    op = torch.ops.cann_attention.npu_lightning_indexer
    q, key, w, kw, dense_key = inputs(shape, "cuda")
    flops, nbytes = 2 * shape.n1 * D * shape.visible_pairs(), shape.bytes()
    floor_ms = max(flops / (mm * 1e9), nbytes / (copy * 1e6))
    fl = flush if shape.paged else None

    def call():
        return op(q, key, w, **kw)

    def add(impl, ms, reps, **extra):
        rows.append(dict(shape=asdict(shape), impl=impl, ms=ms, repeats=reps,
                         tflops=flops / ms / 1e9, gbps=nbytes / ms / 1e6, floor_ms=floor_ms,
                         **extra))
    with cann_attention.use(backend=args.backend):
        replay = graphed(call)
        ms = cuda_time(replay, args.repeats, fl)
        want = naive_indexer(q, w, dense_key, shape.k)
        agree = agreement(call()[0], want)
        del want
        extra = {}
        if ms < HOST_SHAPES_MS:     # host overhead matters (and is timed) beside short calls
            call_ms, replay_ms = overhead_ms(call, replay)
            extra = dict(call_ms=call_ms, replay_ms=replay_ms,
                         overhead_us=(call_ms - replay_ms) * 1e3, host_us=host_us(call))
        add("triton", ms, args.repeats, graph_ms=ms, agreement=agree,
            row_splits=plan_of(q, key, w, kw).row_splits, **extra)
        del replay
    reps = max(3, args.repeats // 4)
    try:
        add("torch", cuda_time(lambda: naive_indexer(q, w, dense_key, shape.k), reps), reps)
    except torch.OutOfMemoryError:
        missing.setdefault("torch", []).append(shape.name + ": out of memory")
    torch.cuda.empty_cache()
    B, S1 = shape.batch, shape.s1
    scores = torch.cat([naive_scores(q, w, dense_key, s0, min(S1, s0 + 256))
                        for s0 in range(0, S1, 256)], 1).reshape(B * S1, -1)
    times, why = topk_peers(scores, shape.k, args.repeats, fl)
    for impl, t in times.items():
        add(impl, t, args.repeats)
    for impl, reason in why.items():
        missing.setdefault(impl, []).append(f"{shape.name}: {reason}")
    del scores
    torch.cuda.empty_cache()
    return agree


def dsa_example():
    """examples/deepseek_v32_sparse_attention.py, whose decode step (inputs, indexer call,
    attention call) the step measurement runs at STEP's sizes."""
    import importlib.util
    path = Path(__file__).resolve().parents[1] / "examples" / "deepseek_v32_sparse_attention.py"
    spec = importlib.util.spec_from_file_location("deepseek_v32_sparse_attention", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure_step(args, flush) -> dict:
    """The captured DSA decode step beside the sum of its two calls' own replayed times."""
    ex, s = dsa_example(), STEP
    t = ex.decode_inputs(s["batch"], s["ctx"] // ex.BLOCK_SIZE, torch.Generator().manual_seed(0),
                         "cuda", s1=s["s1"], n1_idx=s["n1_idx"], n1=s["n1"],
                         lens=[s["ctx"]] * s["batch"])
    with cann_attention.use(backend=args.backend):
        indices = ex.decode_indexer(t, s["k"])
        step = cuda_time(graphed(lambda: ex.decode_step(t, s["k"])), args.repeats, flush)
        idx_ms = cuda_time(graphed(lambda: ex.decode_indexer(t, s["k"])), args.repeats, flush)
        att_ms = cuda_time(graphed(lambda: ex.decode_attention(t, indices)), args.repeats,
                           flush)
    return dict(step=dict(STEP), step_ms=step, indexer_ms=idx_ms, attention_ms=att_ms,
                ratio=step / (idx_ms + att_ms))


def run_cuda(args):
    gpu, (mm, copy) = begin(args)
    flush = torch.empty(256 * 2 ** 20, dtype=torch.int8, device="cuda")
    shapes = named(PERF_SET, args.shapes)
    shapes.sort(key=lambda s: s.visible_pairs())       # short first (see --budget-s)
    step = measure_step(args, flush) if args.step else None
    rows, missing = sweep(
        shapes, lambda shape, rows, missing: "top-k agreement with plain PyTorch %.5f"
        % measure_shape(shape, args, (mm, copy), flush, rows, missing),
        args.budget_s, args.json, gpu)
    meta = run_meta(gpu, (mm, copy), args.backend, missing, bool(args.shapes))
    if step:
        meta["dsa_step"] = step
    return meta, rows


def print_cuda(meta, rows):
    print_rows(rows, width=28)
    print_not_measured(meta["not_measured"])
    if "dsa_step" in meta:
        s = meta["dsa_step"]
        print(f"DSA decode step {s['step']}: captured step {s['step_ms']:.4f} ms, indexer "
              f"{s['indexer_ms']:.4f} + attention {s['attention_ms']:.4f} ms: "
              f"{s['ratio']:.3f}x the sum")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--set", choices=("cpu", "perf"), default="cpu", help="cpu: the shapes")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed runs per measurement (default: 20 on cuda, 3 on cpu)")
    ap.add_argument("--no-peer", action="store_true", help="cpu: skip the naive PyTorch peer")
    ap.add_argument("--backend", default="auto",
                    help="the op's back end (on CUDA: 'triton' for our kernel; auto runs the "
                         "emulator there until the kernel has been verified on a GPU)")
    ap.add_argument("--shapes", help="cuda: comma-separated shape names (default: all)")
    ap.add_argument("--step", action="store_true", help="cuda: also the DSA decode step")
    ap.add_argument("--budget-s", type=float, default=0,
                    help="cuda: start no shape after this many seconds (the rest are listed "
                         "as not run); shapes run shortest first")
    ap.add_argument("--json", help="cuda: write the results to this file")
    args = ap.parse_args()
    args.repeats = args.repeats or (20 if args.device == "cuda" else 3)
    if args.device == "cpu":
        return run_cpu(args)
    meta, rows = run_cuda(args)
    print_cuda(meta, rows)
    if args.json:
        write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()
