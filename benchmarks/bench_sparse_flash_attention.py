"""Benchmark of npu_sparse_flash_attention (a script, not a test).

CPU (default): the emulator (the CPU back end) and the fp32 reference on the DeepSeek-V3.2
decode shape B=4, N1=128, S1=1, S2=8192, K=2048 and a small prefill shape.

``--device cuda``: the benchmark shapes (``--sweep headline`` by default, ``full`` for the whole
decode/prefill grid; docs/performance.md lists them), and in the same run the two ceilings
(8192^3 bf16 matmul, 1 GiB device-to-device copy) and, for reference, the rate of a plain
gather of the decode headline's selected rows (``gather_ceiling``); our op (``triton``: the op
call through torch.ops captured in a CUDA graph and replayed, i.e. the device time of a call:
metadata kernel, the plan's kernel, split-task merge; beside it ``call_ms``, eager calls back to
back, ``replay_ms``, the captured call replayed back to back, ``overhead_us``, their difference
(what the host work adds to the device time), and ``host_us``, the host time of one eager call); ``triton-step``: one call's share of a
captured step of ``STEP_CALLS`` calls with the same lengths and page table, as a decode step's
layers make them (they share one schedule: op_kernel/sparse_flash_attention/shared.py);
``triton-kernel``: the plan's kernel alone; ``triton-kernels``: the plan's kernel and the
split-task merge (what a call of a captured step launches); ``triton-gluon`` /
``triton-scratch`` / ``triton-registers``: the other variants' device work, skipped on shapes
they do not serve), a plain PyTorch implementation (gather + matmul + softmax + matmul, in row
chunks) and our emulator on the GPU. ``--sweep captured`` times the 128-head headlines with
the captured-step peers (``CAPTURED_PEERS``).
Decode uses PA_BSND with 64-token pages, prefill BSND, both sparse_mode 3 with K=2048 distinct
random visible positions per query row (fewer where fewer are visible; -1 after them).
``--sweep anchor`` runs the published anchor's own workload beside our prefill headline:
FlashMLA's sparse-prefill benchmark (s_q=4096, h=128, top-k 2048, s_kv 8k..128k) with its index
rule (``flashmla_indices``: no mask, so sparse_mode 0; 31 of 32 entries on average drawn, with
repetition, from the last 20000 positions) and with its 2026 rule (``unique_indices``: K
distinct uniform positions), so our TFLOPS compare with its 640 on equal terms. With
``--flashmla DIR`` (a FlashMLA checkout; ``--cutlass DIR`` where its submodule is not there)
FlashMLA's sm90 sparse prefill itself is built just in time (flashmla_peer.py: its launcher and
kernels, our entry point) and timed on those shapes on the same tensors, alternating with our
op (``cuda_timing.alternating``): impl ``flashmla``, with our time from the same rounds and the
two outputs' relative difference.

Counting (docs/performance.md): FLOPs = 2 * N1 * (576 + 512) * (valid selected keys summed over
query rows); bytes = unique KV tokens read * 1152 + Q + O (bf16). Times are medians of CUDA
events after >= 50 ms of warm-up (>= 20 runs; slow peers fewer, marked); decode runs flush L2
first. The device idles ~0.5 ms before each start event (``cuda_time``), so a peer's host work
is timed only where it exceeds that: small plain-PyTorch calls are then partly host-bound
figures, the rest device time.
The roofline of a shape is max(FLOPs / matmul ceiling, bytes / copy ceiling).

    python benchmarks/bench_sparse_flash_attention.py --device cuda [--sweep full] [--json f]
    python benchmarks/bench_sparse_flash_attention.py --device cuda --sweep anchor \
        --flashmla /path/to/FlashMLA [--cutlass /path/to/cutlass] --json f
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

import cann_attention
from cann_attention.op_host.common.errors import CannAttentionError
from cann_attention.op_host.common.platform import platform_for_device
from cann_attention.op_host.common.tensor_meta import with_values
from cann_attention.op_host.sparse_flash_attention import tiling
from cann_attention.op_kernel.sparse_flash_attention import reference

sys.path.insert(0, str(Path(__file__).resolve().parent))   # the benchmarks' own modules
import flashmla_peer  # noqa: E402
from cuda_timing import (alternating, ceilings, cuda_time, graphed, host_us,  # noqa: E402
                         measured_commit, overhead_ms, peak_tflops, triton_version, write_json)

D, DR = 512, 64
STEP_CALLS = 8          # calls of the captured step timed by ``triton-step``
PEERS = "triton,triton-kernel,triton-gluon,triton-scratch,triton-registers,torch,emulate"
CAPTURED_PEERS = "triton,triton-step,triton-kernels,triton-kernel"   # --sweep captured


@dataclass(frozen=True)
class Shape:
    name: str
    B: int
    S1: int
    S2: int
    N1: int
    K: int = 2048
    paged: bool = False
    page: int = 64
    indices: str = "causal"   # "causal": sparse_mode 3, top-K of the visible; "flashmla" /
    #                           "unique": FlashMLA's two index rules (flashmla_indices /
    #                           unique_indices), sparse_mode 0

    @property
    def label(self) -> str:
        kv = f"PA{self.page}" if self.paged else "BSND"
        rule = "" if self.indices == "causal" else f" idx={self.indices}"
        return f"{self.name} B{self.B} S1={self.S1} S2={self.S2} N1={self.N1} {kv}{rule}"


CPU_SHAPES = (
    Shape("decode", B=4, S1=1, S2=8192, N1=128),
    Shape("prefill", B=1, S1=128, S2=4096, N1=16),
)


def cuda_shapes(sweep: str) -> list[Shape]:
    dec = lambda B, S1, S2, N1: Shape("decode", B, S1, S2, N1, paged=True)  # noqa: E731
    pre = lambda S2, N1: Shape("prefill", 1, 4096, S2, N1)                  # noqa: E731
    if sweep == "anchor":
        return ([Shape("prefill", 1, 4096, s2, 128, indices=rule)
                 for rule in ("flashmla", "unique") for s2 in (8192, 32768, 65536, 131072)]
                + [pre(32768, 128)])
    if sweep == "captured":     # the 128-head decode headlines, as a captured step runs them
        return [pre(32768, 128), dec(128, 2, 32768, 128), dec(128, 1, 131072, 128),
                dec(16, 1, 32768, 128), dec(1, 1, 32768, 128)]
    if sweep == "headline":
        return [pre(32768, 128), pre(32768, 64), pre(32768, 16), pre(32768, 8),
                pre(8192, 128), pre(131072, 128),
                dec(128, 2, 32768, 128), dec(128, 2, 32768, 64), dec(128, 2, 32768, 16),
                dec(128, 1, 131072, 128), dec(16, 1, 32768, 128), dec(1, 1, 32768, 128)]
    return ([pre(s2, n1) for n1 in (128, 64, 16, 8) for s2 in (8192, 32768, 65536, 131072)]
            + [dec(B, S1, S2, N1) for N1 in (128, 64, 16) for S1 in (1, 2)
               for B in (1, 16, 64, 128) for S2 in (4096, 32768, 131072)])


def build(shape: Shape, device, seed=0):
    """(args, kwargs, flops, bytes) of one call; indices via top-K of random scores."""
    g = torch.Generator(device=device).manual_seed(seed)
    dt = torch.bfloat16
    r = lambda *s: torch.randn(*s, generator=g, device=device).to(dt)  # noqa: E731
    B, S1, S2, N1, K = shape.B, shape.S1, shape.S2, shape.N1, shape.K
    q, qr = r(B, S1, N1, D), r(B, S1, N1, DR)
    if shape.indices in ("flashmla", "unique"):
        rule = flashmla_indices if shape.indices == "flashmla" else unique_indices
        idx = rule(B * S1, S2, K, g, device).reshape(B, S1, 1, K)
        kwargs = dict(query_rope=qr, sparse_mode=0)
    else:
        idx = torch.full((B, S1, 1, K), -1, dtype=torch.int32, device=device)
        for s in range(S1):                 # causal, bottom-right aligned (sparse_mode 3)
            visible = S2 - S1 + s + 1
            take = min(K, visible)
            for b0 in range(0, B, 16):
                sc = torch.rand(min(16, B - b0), visible, generator=g, device=device)
                idx[b0:b0 + 16, s, 0, :take] = sc.topk(take, dim=-1).indices.to(torch.int32)
        kwargs = dict(query_rope=qr, sparse_mode=3)
    if shape.paged:
        pages = -(-S2 // shape.page)
        perm = torch.randperm(B * pages, generator=g, device=device).to(torch.int32)
        kwargs["block_table"] = perm.reshape(B, pages)
        key = r(B * pages, shape.page, 1, D)
        kwargs["key_rope"] = r(B * pages, shape.page, 1, DR)
        kwargs["layout_kv"] = "PA_BSND"
        kwargs["actual_seq_lengths_kv"] = torch.full((B,), S2, dtype=torch.int32,
                                                     device=device)
    else:
        key, kwargs["key_rope"] = r(B, S2, 1, D), r(B, S2, 1, DR)
    valid = int((idx >= 0).sum())
    unique_kv = sum(int(torch.unique(idx[b][idx[b] >= 0]).numel()) for b in range(B))
    flops = 2 * N1 * (D + DR + D) * valid
    nbytes = unique_kv * (D + DR) * 2 + (q.numel() + qr.numel() + q.numel()) * 2
    return (q, key, key, idx, 1.0 / (D + DR) ** 0.5, 1), kwargs, flops, nbytes


def flashmla_indices(rows, S2, K, g, device, near=20000, chunk=256):
    """[rows, K] int32 by the rule of FlashMLA's sparse-prefill benchmark (its
    tests/test_flash_mla_prefill.py, read for the rule only): a random K-subset of [0, S2), then
    each entry with probability 31/32 redrawn uniformly (with repetition) from
    [S2 - near, S2 - 1), then the row shuffled. Needs K <= S2; every entry is valid."""
    if K > S2:
        raise ValueError(f"the FlashMLA index rule needs K <= S2, got K={K}, S2={S2}")
    out = torch.empty(rows, K, dtype=torch.int32, device=device)
    for r0 in range(0, rows, chunk):
        n = min(chunk, rows - r0)
        subset = torch.rand(n, S2, generator=g, device=device).topk(K, dim=-1).indices
        redraw = torch.randint(max(0, S2 - near), S2 - 1, (n, K), generator=g, device=device)
        is_near = torch.randint(0, 32, (n, K), generator=g, device=device) < 31
        row = torch.where(is_near, redraw, subset)
        order = torch.rand(n, K, generator=g, device=device).argsort(dim=-1)
        out[r0:r0 + n] = row.gather(1, order).to(torch.int32)
    return out


def unique_indices(rows, S2, K, g, device, chunk=256):
    """[rows, K] int32 by FlashMLA's 2026 benchmark rule: K distinct indices drawn uniformly
    from [0, S2) for every row, in random order. Needs K <= S2; every entry is valid."""
    if K > S2:
        raise ValueError(f"the unique index rule needs K <= S2, got K={K}, S2={S2}")
    out = torch.empty(rows, K, dtype=torch.int32, device=device)
    for r0 in range(0, rows, chunk):
        n = min(chunk, rows - r0)
        out[r0:r0 + n] = torch.rand(n, S2, generator=g, device=device).topk(K, dim=-1).indices
    return out


def cache_rows(pos, batch, key, kwargs):
    """Rows of the flattened key cache holding positions ``pos`` (>= 0) of batches ``batch``,
    through the page table like the op (a contiguous cache is one page a batch)."""
    page = key.shape[1]
    if "block_table" in kwargs:
        bt = kwargs["block_table"].long()
    else:
        bt = torch.arange(key.shape[0], device=key.device)[:, None]
    return bt[batch, pos // page] * page + pos % page


def plain_torch(args, kwargs, chunk_rows=512):
    """gather + matmul + softmax + matmul over all query rows (in chunks to bound memory);
    the naive peer, reading keys through the page table like the op."""
    q, key, _, idx, scale, _ = args
    qr, kr = kwargs["query_rope"], kwargs["key_rope"]
    B, S1, N1, _ = q.shape
    q, qr, idx = q.reshape(B * S1, N1, D), qr.reshape(B * S1, N1, DR), idx.reshape(B * S1, -1)
    batch = torch.arange(B, device=q.device).repeat_interleave(S1)
    kflat, krflat = key.reshape(-1, D), kr.reshape(-1, DR)
    out = torch.empty_like(q)
    for r0 in range(0, B * S1, chunk_rows):
        r1 = min(B * S1, r0 + chunk_rows)
        ii = idx[r0:r1].long()                                        # [r, K]
        rows = cache_rows(ii.clamp(min=0), batch[r0:r1, None], key, kwargs)
        kn, krr = kflat[rows], krflat[rows]                           # [r, K, D], [r, K, DR]
        s = (torch.bmm(q[r0:r1], kn.transpose(1, 2))
             + torch.bmm(qr[r0:r1], krr.transpose(1, 2))).float() * scale
        s = s.masked_fill((ii < 0)[:, None, :], float("-inf"))
        p = torch.softmax(s, -1).nan_to_num(0.0).to(q.dtype)
        out[r0:r1] = torch.bmm(p, kn)
    return out.reshape(B, S1, N1, D)








def gather_ceiling(repeats, flush) -> float:
    """GB/s of a plain Triton kernel reading the decode headline's selected key rows (1152 B
    each, at random places of a 4.8 GB paged cache, through its page table, L2 flushed): the
    memory side of decode with rows picked by an indexer rather than read in order."""
    args, kwargs, _, _ = build(Shape("decode", 128, 2, 32768, 128, paged=True), "cuda")
    key, key_rope, idx = args[1], kwargs["key_rope"], args[3]
    B, S1, _, K = idx.shape
    pos = idx.reshape(B * S1, K).long()
    batch = torch.arange(B, device="cuda").repeat_interleave(S1)[:, None]
    rows = cache_rows(pos.clamp(min=0), batch, key, kwargs)[pos >= 0]
    rows = rows[:rows.numel() // 64 * 64].to(torch.int32)
    out = torch.empty(rows.numel() // 64, device="cuda")
    from sfa_gather_kernel import sum_rows      # Triton, on the CUDA path only
    ms = cuda_time(lambda: sum_rows[(out.numel(),)](key, key_rope, rows, out, D=D, DR=DR,
                                                    num_warps=8), repeats, flush)
    return rows.numel() * (D + DR) * key.element_size() / ms / 1e6


def measure_shape(shape, a, ceil, flush, rows) -> float:
    """Time every peer of ``a.peers`` on ``shape`` (appending rows); the op's relative error
    against plain PyTorch."""
    from cann_attention.op_kernel.sparse_flash_attention import emulate
    from cann_attention.op_kernel.sparse_flash_attention import triton as sfa_triton
    mm, copy = ceil
    args, kwargs, flops, nbytes = build(shape, "cuda")
    op_def = cann_attention.OPS["npu_sparse_flash_attention"]
    bound = op_def.bind(args, kwargs)
    p, t = op_def.parse(bound), op_def.tensors_of(bound)
    platform = platform_for_device(args[0].device)
    plan = tiling.plan(p, platform)                 # the variant the op runs
    op = torch.ops.cann_attention.npu_sparse_flash_attention

    def call():
        return op(*args, **kwargs)

    def variant(name):
        return lambda: graphed(lambda: sfa_triton.run(p, tiling.plan(p, platform, name), t))

    def step():
        for _ in range(STEP_CALLS):
            call()

    impls = {
        "triton": (lambda: graphed(call), a.repeats),
        "triton-step": (lambda: graphed(step), a.repeats),
        "triton-kernels": (lambda: graphed(sfa_triton.kernel_only(p, plan, t, merge=True)),
                           a.repeats),
        "triton-kernel": (lambda: graphed(sfa_triton.kernel_only(p, plan, t)), a.repeats),
        "triton-scratch": (variant("scratch"), a.repeats),
        "triton-registers": (variant("registers"), a.repeats),
        "triton-gluon": (variant("gluon"), a.repeats),
        "torch": (lambda: lambda: plain_torch(args, kwargs), max(3, a.repeats // 4)),
        "emulate": (lambda: lambda: emulate.run(with_values(p, t), plan, t), 1),  # slow
    }
    floor_ms = max(flops / (mm * 1e9), nbytes / (copy * 1e6))
    want = plain_torch(args, kwargs).float()                  # the op (auto dispatch) is
    err = float((call()[0].float() - want).norm() / want.norm())   # checked against it
    del want
    if getattr(a, "flashmla", None) is not None and shape.indices in ("flashmla", "unique"):
        rows.append(flashmla_row(shape, a, args, kwargs, call, flops, nbytes, floor_ms))
    for name in a.peers.split(","):
        make, reps = impls[name]
        try:
            fn = make()
            ms = cuda_time(fn, reps, flush if shape.name == "decode" else None,
                           warmup=1 if name == "emulate" else 2)
        except torch.OutOfMemoryError:
            print(f"  {shape.label}: {name} out of memory, skipped", flush=True)
            torch.cuda.empty_cache()
            continue
        except CannAttentionError as e:       # a kernel variant that does not serve it
            print(f"  {shape.label}: {name} skipped: {e}", flush=True)
            continue
        if name == "triton-step":
            ms /= STEP_CALLS
        row = dict(shape=asdict(shape), impl=name, ms=ms, repeats=reps,
                   tflops=flops / ms / 1e9, gbps=nbytes / ms / 1e6, floor_ms=floor_ms,
                   op_rel_err=err, head_group=plan.head_group, block_s2=plan.block_s2,
                   stages=plan.stages, variant=plan.variant)
        if name == "triton":           # the whole op call beside its device time
            call_ms, replay_ms = overhead_ms(call, fn)
            row.update(call_ms=call_ms, replay_ms=replay_ms,
                       overhead_us=(call_ms - replay_ms) * 1e3, host_us=host_us(call),
                       graph_ms=ms)
        rows.append(row)
    return err


def flashmla_row(shape, a, args, kwargs, call, flops, nbytes, floor_ms) -> dict:
    """FlashMLA's sparse prefill on the same tensors (flashmla_peer.py), timed alternating
    with our op's call (both graph-replayed): its row, with our time from the same rounds and
    its output against ours."""
    q, kv, idx = flashmla_peer.inputs_of(args, kwargs)

    def peer():
        return a.flashmla.sparse_prefill(q, kv, idx, args[4], D)
    ours = call()[0][0].float()
    theirs = peer()[0].float()
    diff = float((theirs - ours).norm() / ours.norm())
    times = alternating({"triton": graphed(call), "flashmla": graphed(peer)}, a.repeats)
    ms = times["flashmla"]
    return dict(shape=asdict(shape), impl="flashmla", ms=ms, repeats=a.repeats,
                tflops=flops / ms / 1e9, gbps=nbytes / ms / 1e6, floor_ms=floor_ms,
                ours_alternating_ms=times["triton"], ratio_vs_ours=ms / times["triton"],
                rel_diff_vs_ours=diff, flashmla_src=str(a.flashmla_src))


def run_cuda(a):
    gpu = torch.cuda.get_device_name()
    peak = peak_tflops(gpu)
    mm, copy = ceilings(a.repeats)
    flush = torch.empty(256 * 2 ** 20, dtype=torch.int8, device="cuda")
    gather = gather_ceiling(a.repeats, flush)
    torch.cuda.empty_cache()
    print(f"ceilings: matmul {mm:.0f} TFLOPS, copy {copy:.0f} GB/s, gather of the decode "
          f"headline's rows {gather:.0f} GB/s ({gpu})", flush=True)
    shapes = cuda_shapes(a.sweep)
    rows = []
    t_start = time.time()
    for i, shape in enumerate(shapes):
        err = measure_shape(shape, a, (mm, copy), flush, rows)
        torch.cuda.empty_cache()
        if a.json:                # a sweep cut short still leaves its finished shapes
            write_json(a.json, dict(device=gpu, partial=True), rows)
        el = time.time() - t_start
        print(f"[{i + 1}/{len(shapes)}] {shape.label}: op vs plain torch rel. err {err:.1e} "
              f"({el:.0f} s, "
              f"~{el / (i + 1) * (len(shapes) - i - 1):.0f} s left)", file=sys.stderr, flush=True)
    meta = dict(device=gpu, matmul_tflops=mm, copy_gbps=copy, gather_gbps=gather,
                peak_tflops=peak, torch=torch.__version__, triton=triton_version())
    return meta, rows



def print_cuda(meta, rows):
    best = {}
    for r in rows:
        key = r["shape"]["name"], tuple(sorted(r["shape"].items()))
        best.setdefault(key, {})[r["impl"]] = r["ms"]
    print(f"\n{'shape':<46} {'impl':<11} {'ms':>9} {'TFLOPS':>7} {'%peak':>6} {'GB/s':>6} "
          f"{'%roof':>6} {'vs triton':>9}")
    for r in rows:
        s = Shape(**r["shape"])
        ours = best[(s.name, tuple(sorted(r["shape"].items())))].get("triton")
        ratio = f"{r['ms'] / ours:.2f}x" if ours else "-"
        pk = 100 * r["tflops"] / meta["peak_tflops"] if meta["peak_tflops"] else float("nan")
        print(f"{s.label:<46} {r['impl']:<11} {r['ms']:>9.3f} {r['tflops']:>7.1f} {pk:>6.1f} "
              f"{r['gbps']:>6.0f} {100 * r['floor_ms'] / r['ms']:>6.1f} {ratio:>9}")


def run_cpu(a):
    op = torch.ops.cann_attention.npu_sparse_flash_attention
    rows = []
    for shape in CPU_SHAPES:
        args, kwargs, flops, nbytes = build(shape, "cpu")
        impls = [("emulate", lambda: op(*args, **kwargs), a.repeats)]
        if not a.no_reference:
            impls.append(("reference", lambda: reference.sparse_flash_attention(
                *args, **kwargs), 1))
        for impl, fn, reps in impls:
            fn()
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            ms = statistics.median(times) * 1e3
            rows.append(dict(shape=asdict(shape), impl=impl, ms=ms, repeats=reps,
                             tflops=flops / ms / 1e9, gbps=nbytes / ms / 1e6))
    print(f"{'shape':<46} {'impl':<10} {'ms':>10} {'GFLOP/s':>10} {'GB/s':>8}")
    for r in rows:
        print(f"{Shape(**r['shape']).label:<46} {r['impl']:<10} {r['ms']:>10.1f} "
              f"{r['tflops'] * 1e3:>10.1f} {r['gbps']:>8.2f}")
    return dict(device="cpu", threads=torch.get_num_threads(),
                machine=platform.processor() or platform.machine()), rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed runs per measurement (default: 20 on cuda, 5 on cpu)")
    ap.add_argument("--sweep", default="headline",
                    choices=("headline", "full", "anchor", "captured"),
                    help="cuda: the headline shapes, the whole decode/prefill grid (listed "
                         "in docs/performance.md), the published prefill anchor's own "
                         "workload (FlashMLA's index rule) beside our prefill headline, or the "
                         "128-head headlines as a captured decode step runs them (captured)")
    ap.add_argument("--peers", default=None,
                    help=f"cuda: comma-separated names of {PEERS},triton-step,triton-kernels "
                         f"(default: {PEERS}; with --sweep captured: {CAPTURED_PEERS}). "
                         "triton: the op call captured in a CUDA graph and replayed, with its "
                         "whole-call time back to back and its host time beside it; "
                         "triton-step: a call's share of a captured step of STEP_CALLS calls; "
                         "triton-kernel: the plan's kernel alone; triton-kernels: it and the "
                         "merge; triton-gluon/-scratch/-registers: the other variants' device "
                         "work")
    ap.add_argument("--flashmla", metavar="DIR",
                    help="cuda: a FlashMLA checkout (with its csrc/cutlass submodule, or "
                         "--cutlass): its sm90 sparse prefill is built (flashmla_peer.py) and "
                         "timed alternating with our op on the FlashMLA-rule shapes")
    ap.add_argument("--cutlass", metavar="DIR", help="cuda: a CUTLASS checkout for --flashmla")
    ap.add_argument("--flashmla-build", metavar="DIR", default=None,
                    help="cuda: where the FlashMLA peer is built and cached")
    ap.add_argument("--no-reference", action="store_true", help="cpu: skip the fp32 reference")
    ap.add_argument("--json", help="write the results to this file")
    a = ap.parse_args()
    a.peers = a.peers or (CAPTURED_PEERS if a.sweep == "captured" else PEERS)
    a.repeats = a.repeats or (20 if a.device == "cuda" else 5)
    a.flashmla_src, a.flashmla = a.flashmla, None
    if a.flashmla_src and a.device == "cuda":
        t0 = time.time()
        a.flashmla = flashmla_peer.build(a.flashmla_src, a.cutlass, a.flashmla_build)
        print(f"FlashMLA's sm90 sparse prefill built from {a.flashmla_src} in "
              f"{time.time() - t0:.0f} s", flush=True)
    meta, rows = run_cuda(a) if a.device == "cuda" else run_cpu(a)
    if a.device == "cuda":
        print_cuda(meta, rows)
    meta.update(commit=measured_commit(), date=time.strftime("%Y-%m-%d"), torch=torch.__version__,
                sweep=a.sweep if a.device == "cuda" else "cpu")
    if a.json:
        write_json(a.json, meta, rows)


if __name__ == "__main__":
    main()
