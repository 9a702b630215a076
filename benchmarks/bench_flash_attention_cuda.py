"""npu_flash_attention on a GPU beside PyTorch's attention engines (bench_flash_attention.py
--device cuda runs this).

PERF.md's prefill set: B * S = 16k tokens with N1 * D = 2048, D in {64, 128, 256}, S in {2k, 8k,
16k}, causal on and off (MHA); serving prefill with 64 query / 8 KV heads, D 128, causal, S 8k
and 16k; a 4096-token sliding window with attention sinks at D 64. FLOPs: 4 * B * N1 * D per
visible (q, k) pair (a causal mask counts half, a window its band; docs/performance.md).

In one run: the matmul ceiling; the op on the named back end (``--backend``; impl "ours"),
graph-replayed (the device work of a call) and, under ``HOST_SHAPES_MS``, the whole call back
to back with its host overhead; SDPA's flash, cuDNN and efficient back ends on the same tensors
(a window as a boolean mask, which only the efficient back end takes); FlexAttention compiled,
its block mask built once per shape; and plain PyTorch (matmul, softmax, matmul in chunks of
query rows). A peer that cannot run a shape is listed with the reason instead of a time.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

import cann_attention
from cuda_timing import (begin, cuda_time, graphed, host_us, overhead_ms,
                         named, print_not_measured, print_rows, run_meta, sdpa_peers, sweep,
                         write_json)

DEVICE = "cuda"            # the tests run the measurement on CPU tensors (emulator)
HOST_SHAPES_MS = 1.0
CHUNK_ROWS = 1024          # query rows per chunk of the plain PyTorch peer


@dataclass(frozen=True)
class Shape:
    name: str
    B: int
    S: int
    N1: int
    N2: int
    D: int
    causal: bool
    window: int = 0        # sliding window (keys i - window < j <= i), 0: none
    sinks: bool = False

    def visible_pairs(self) -> int:
        s = self.S
        if self.window:
            w = min(self.window, s)
            return w * (w + 1) // 2 + (s - w) * w
        return s * (s + 1) // 2 if self.causal else s * s

    def flops(self) -> int:
        return 4 * self.B * self.N1 * self.D * self.visible_pairs()


def perf_shapes() -> list[Shape]:
    out = []
    for d in (64, 128, 256):
        for s in (2048, 8192, 16384):
            for causal in (False, True):
                out.append(Shape(f"dense-D{d}-S{s}-{'causal' if causal else 'full'}",
                                 16384 // s, s, 2048 // d, 2048 // d, d, causal))
    out += [Shape(f"serving-S{s}", 1, s, 64, 8, 128, True) for s in (8192, 16384)]
    out.append(Shape("window4096-sinks", 1, 16384, 32, 32, 64, True, window=4096, sinks=True))
    return out


def inputs(sh: Shape, device=None):
    """(args, kwargs) of the op (BSND) for ``sh``."""
    device = device or DEVICE
    g = torch.Generator(device=device).manual_seed(0)

    def r(*shape):
        return torch.randn(*shape, generator=g, device=device).to(torch.bfloat16)
    q, k, v = r(sh.B, sh.S, sh.N1, sh.D), r(sh.B, sh.S, sh.N2, sh.D), r(sh.B, sh.S, sh.N2, sh.D)
    kw = dict(sparse_mode=3 if sh.causal else 0)
    if sh.window:
        kw = dict(sparse_mode=4, pre_tokens=sh.window - 1, next_tokens=0)
    if sh.sinks:
        kw["learnable_sink"] = torch.randn(sh.N1, generator=g, device=device)
    return (q, k, v, sh.D ** -0.5), kw


def _bhsd(x):
    return x.transpose(1, 2)


def window_mask(sh: Shape, device=None):
    device = device or DEVICE
    i = torch.arange(sh.S, device=device).view(-1, 1)
    j = torch.arange(sh.S, device=device).view(1, -1)
    return (j <= i) & (i - j < sh.window)


def sdpa_times(sh, args, repeats):
    """SDPA's back ends on the same tensors (cuda_timing.sdpa_peers); a window as a boolean
    mask; without the sinks."""
    q, k, v, scale = (_bhsd(a) if isinstance(a, torch.Tensor) else a for a in args)
    mask = window_mask(sh) if sh.window else None
    times, why = sdpa_peers(q, k, v, repeats, attn_mask=mask,
                            is_causal=sh.causal and mask is None, scale=scale,
                            enable_gqa=sh.N1 != sh.N2)
    if sh.sinks:
        why.update({i: "no sinks (timed without them)" for i in times})
    return times, why


def flex_peer(sh, args, repeats):
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    q, k, v, scale = (_bhsd(a) if isinstance(a, torch.Tensor) else a for a in args)

    def mask_mod(b, h, i, j):
        keep = j <= i if sh.causal else j >= 0
        return keep & (i - j < sh.window) if sh.window else keep
    block_mask = create_block_mask(mask_mod, None, None, sh.S, sh.S)
    fn = torch.compile(flex_attention, dynamic=False)

    def call():
        return fn(q, k, v, block_mask=block_mask, scale=scale, enable_gqa=sh.N1 != sh.N2)
    return cuda_time(graphed(call), repeats)


def plain_torch(sh, args):
    """softmax(q k^T * scale + mask) v in bf16 matmuls, fp32 softmax, chunks of query rows."""
    q, k, v, scale = (_bhsd(a) if isinstance(a, torch.Tensor) else a for a in args)
    g = sh.N1 // sh.N2
    k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
    out = torch.empty_like(q)
    j = torch.arange(sh.S, device=q.device)
    for r0 in range(0, sh.S, CHUNK_ROWS):
        i = torch.arange(r0, min(sh.S, r0 + CHUNK_ROWS), device=q.device).view(-1, 1)
        s = (q[:, :, i.flatten()] @ k.transpose(-1, -2)).float() * scale
        keep = (j <= i) if sh.causal else torch.ones_like(j <= i)
        if sh.window:
            keep = keep & (i - j < sh.window)
        p = torch.softmax(s.masked_fill(~keep, float("-inf")), -1).to(q.dtype)
        out[:, :, i.flatten()] = p @ v
    return out.transpose(1, 2)


def measure(sh, a, ceil, rows, missing):
    mm = ceil[0]
    op = torch.ops.cann_attention.npu_flash_attention
    args, kw = inputs(sh)
    flops = sh.flops()
    floor_ms = flops / (mm * 1e9)

    def add(impl, ms, **extra):
        rows.append(dict(shape=asdict(sh), impl=impl, ms=ms, repeats=a.repeats,
                         tflops=flops / ms / 1e9, gbps=0.0, floor_ms=floor_ms, **extra))

    def call():
        return op(*args, **kw)
    with cann_attention.use(backend=a.backend):
        replay = graphed(call)
        ms = cuda_time(replay, a.repeats)
        extra = dict(graph_ms=ms)
        if not sh.sinks:
            want = plain_torch(sh, args).float()
            extra["op_rel_err"] = float((call()[0].float() - want).norm() / want.norm())
            del want
        if ms < HOST_SHAPES_MS:
            call_ms, replay_ms = overhead_ms(call, replay)
            extra.update(call_ms=call_ms, replay_ms=replay_ms,
                         overhead_us=(call_ms - replay_ms) * 1e3, host_us=host_us(call))
        add("ours", ms, backend=a.backend, **extra)
        del replay
    times, why = sdpa_times(sh, args, a.repeats)
    try:
        times["flex"] = flex_peer(sh, args, a.repeats)
    except Exception as e:          # noqa: BLE001  (a compile failure names itself)
        why["flex"] = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
    reps = max(3, a.repeats // 4)
    times["torch"] = cuda_time(lambda: plain_torch(sh, args), reps)
    for impl, t in times.items():
        add(impl, t)
    for impl, reason in why.items():
        missing.setdefault(impl, []).append(f"{sh.name}: {reason}")
    torch.cuda.empty_cache()


def main(a):
    gpu, (mm, copy) = begin(a)
    shapes = named(perf_shapes(), a.shapes)
    rows, missing = sweep(shapes, lambda sh, rows, missing: measure(sh, a, (mm, copy), rows,
                                                                    missing),
                          a.budget_s, a.json, gpu)
    print_rows(rows, ours="ours", width=26)
    print_not_measured(missing)
    meta = run_meta(gpu, (mm, copy), a.backend, missing, bool(a.shapes))
    if a.json:
        write_json(a.json, meta, rows)
