"""npu_nsa_compress_attention on a GPU beside plain PyTorch and fla-core's NSA compression
(bench_nsa_compress_attention.py --device cuda runs this).

PERF.md's NSA set: 64 query / 4 KV heads, D1 192 and 128, D2 128, l=32, d=16, l'=64, 16
selected blocks, T 8192 and 32768 tokens, and a varlen batch of 32768 tokens; every query sees
the compressed tokens whose window ended at or before it (the causal atten_mask). And the
configuration matched to fla-core's compression (non-overlapping blocks of 64: l = d = l' = 64,
D1 = D2 = 128, T 32768), where fla-core's ``parallel_nsa_compression`` (attention) and
``parallel_nsa_topk`` (importance and top-k) run on the same tensors where fla imports.

FLOPs: 2 * N1 * (D1 + D2) per compressed key a query sees (docs/performance.md); the importance
scores and the top-k are timed, not counted. Our op runs graph-replayed on the named back end.
"""
from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass
from itertools import accumulate

import torch
import torch.nn.functional as F

import cann_attention
from cuda_timing import (begin, cuda_time, graphed, named, print_not_measured, print_rows,
                         run_meta, sweep, write_json)

DEVICE = "cuda"            # the tests run the measurement on CPU tensors (emulator)
CHUNK_ROWS = 1024          # query rows per chunk of the plain PyTorch peer
FLT_MAX = torch.finfo(torch.float32).max


@dataclass(frozen=True)
class Shape:
    name: str
    lens: tuple[int, ...]     # tokens (query rows) per sequence
    D1: int = 192
    D2: int = 128
    N1: int = 64
    N2: int = 4
    l: int = 32
    d: int = 16
    ls: int = 64
    K: int = 16

    @property
    def c_lens(self) -> tuple[int, ...]:
        """Compressed tokens per sequence: the windows of l tokens at stride d."""
        return tuple(max(0, (t - self.l) // self.d + 1) for t in self.lens)

    def visible_pairs(self) -> int:
        """(query, compressed key) pairs the causal mask leaves visible."""
        return sum(sum(min(c, max(0, (i - self.l + 1) // self.d + 1)) for i in range(t))
                   for t, c in zip(self.lens, self.c_lens))

    def flops(self) -> int:
        return 2 * self.N1 * (self.D1 + self.D2) * self.visible_pairs()


def perf_shapes() -> list[Shape]:
    out = [Shape(f"T{t}-D1_{d1}", (t,), D1=d1) for t in (8192, 32768) for d1 in (192, 128)]
    out.append(Shape("varlen-T32768-D1_192", (4096, 12288, 8192, 8192)))
    out.append(Shape("fla-matched-T32768", (32768,), D1=128, l=64, d=64, ls=64))
    return out


def inputs(sh: Shape, device=None, seed=0):
    """(args, kwargs) of the op: TND tensors, the causal atten_mask (True: masked)."""
    device = device or DEVICE
    g = torch.Generator(device=device).manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g, device=device).to(torch.bfloat16)
    t1, t2 = sum(sh.lens), sum(sh.c_lens)
    q, k, v = r(t1, sh.N1, sh.D1), r(t2, sh.N2, sh.D1), r(t2, sh.N2, sh.D2)
    i = torch.arange(max(sh.lens), device=device).view(-1, 1)
    c = torch.arange(max(sh.c_lens), device=device).view(1, -1)
    mask = c * sh.d + sh.l - 1 > i                      # the window ends after the query
    m = sh.ls // sh.d
    kw = dict(atten_mask=mask, actual_seq_qlen=list(accumulate(sh.lens)),
              actual_cmp_seq_kvlen=list(accumulate(sh.c_lens)),
              actual_sel_seq_kvlen=list(accumulate(-(-c // m) for c in sh.c_lens)))
    return (q, k, v, sh.D1 ** -0.5, sh.N1, sh.l, sh.d, sh.ls, sh.K), kw


def importance_weights(sh: Shape, device) -> torch.Tensor:
    """The trapezoid tap weights w_t, t = 0 .. M + Nw - 2 (docs/nsa_compress_attention.md)."""
    m, nw = sh.ls // sh.d, sh.l // sh.d
    taps = m + nw - 1
    return torch.tensor([min(t + 1, taps - t, nw) for t in range(taps)], dtype=torch.float32,
                        device=device)


def plain_torch(sh: Shape, args, kw):
    """(attention_out, topk_indices) in plain PyTorch: per sequence and chunk of query rows,
    bf16 matmuls, an fp32 softmax with masked scores replaced by -FLT_MAX, the importance as a
    strided 1-D convolution of P with the tap weights, the group sum and a stable descending
    sort (the op's order: ties to the smaller block)."""
    q, k, v, scale = args[:4]
    mask = kw["atten_mask"]
    g, m = sh.N1 // sh.N2, sh.ls // sh.d
    w = importance_weights(sh, q.device).flip(0).view(1, 1, -1)
    taps = w.shape[-1]
    out = torch.zeros(q.shape[0], sh.N1, sh.D2, dtype=q.dtype, device=q.device)
    idx = torch.zeros(q.shape[0], sh.N2, sh.K, dtype=torch.int64, device=q.device)
    q0 = c0 = 0
    for t, c in zip(sh.lens, sh.c_lens):
        kb = k[c0:c0 + c].permute(1, 2, 0)                              # [N2, D1, C]
        vb = v[c0:c0 + c].transpose(0, 1)                               # [N2, C, D2]
        for r0 in range(0, t, CHUNK_ROWS):
            r1 = min(t, r0 + CHUNK_ROWS)
            qb = q[q0 + r0:q0 + r1].view(r1 - r0, sh.N2, g, sh.D1).permute(1, 0, 2, 3)
            s = (qb.flatten(1, 2) @ kb).float().view(sh.N2, r1 - r0, g, c) * scale
            s = s.masked_fill(mask[r0:r1, :c].view(1, r1 - r0, 1, c), -FLT_MAX)
            p = torch.softmax(s, -1)                                    # [N2, rows, G, C]
            o = p.to(q.dtype).flatten(1, 2) @ vb                        # [N2, rows*G, D2]
            out[q0 + r0:q0 + r1] = o.view(sh.N2, r1 - r0, g, sh.D2).permute(1, 0, 2, 3) \
                .reshape(r1 - r0, sh.N1, sh.D2)
            x = F.pad(p.sum(2).flatten(0, 1).unsqueeze(1), (taps - 1, m))[..., m:]
            imp = F.conv1d(x, w, stride=m)[..., :-(-c // m)]             # [N2*rows, 1, Sel]
            top = imp.view(sh.N2, r1 - r0, -1).sort(dim=-1, descending=True, stable=True)
            top = top.indices[..., :sh.K]
            idx[q0 + r0:q0 + r1] = top.transpose(0, 1)
        q0, c0 = q0 + t, c0 + c
    return out, idx


def fla_peer(sh: Shape, args, repeats):
    """{impl: ms} of fla-core's compression and its top-k, or a reason they did not run."""
    try:
        from fla.ops.nsa import parallel as fla_nsa
    except ImportError as e:
        return {}, f"not importable: {e}"
    if not (sh.l == sh.d == sh.ls and len(sh.lens) == 1):
        return {}, "runs the matched configuration (non-overlapping blocks) only"
    q, k, v, scale = (a.unsqueeze(0) if isinstance(a, torch.Tensor) else a for a in args[:4])
    comp = fla_nsa.parallel_nsa_compression
    extra = {"TK": k.shape[1]} if "TK" in inspect.signature(comp).parameters else {}

    def attention():
        return comp(q, k, v, block_size=sh.l, scale=scale, **extra)
    times = {"fla-compression": cuda_time(graphed(attention), repeats)}
    topk = getattr(fla_nsa, "parallel_nsa_topk", None)
    if topk is not None:
        def both():
            o, lse_ = attention()
            return o, topk(q, k, lse_, sh.K, block_size=sh.l, scale=scale)
        try:
            times["fla-compression+topk"] = cuda_time(graphed(both), repeats)
        except (TypeError, RuntimeError) as e:
            return times, f"parallel_nsa_topk: {str(e).splitlines()[0][:120]}"
    return times, None


def measure(sh, a, ceil, rows, missing):
    op = torch.ops.cann_attention.npu_nsa_compress_attention
    args, kw = inputs(sh)
    flops = sh.flops()
    floor_ms = flops / (ceil[0] * 1e9)

    def add(impl, ms, **extra):
        rows.append(dict(shape=asdict(sh), impl=impl, ms=ms, repeats=a.repeats,
                         tflops=flops / ms / 1e9, gbps=0.0, floor_ms=floor_ms, **extra))
    with cann_attention.use(backend=a.backend):
        ms = cuda_time(graphed(lambda: op(*args, **kw)), a.repeats)
        got_out, got_idx = op(*args, **kw)[:2]
    want_out, want_idx = plain_torch(sh, args, kw)
    err = float((got_out.float() - want_out.float()).norm() / want_out.float().norm())
    same = float((got_idx.long() == want_idx).float().mean())
    add("triton", ms, graph_ms=ms, op_rel_err=err, topk_agreement=same)
    reps = max(3, a.repeats // 4)
    add("torch", cuda_time(lambda: plain_torch(sh, args, kw), reps))
    times, why = fla_peer(sh, args, a.repeats)
    for impl, t in times.items():
        add(impl, t)
    if why:
        missing.setdefault("fla", []).append(f"{sh.name}: {why}")
    torch.cuda.empty_cache()
    return err, same


def main(a):
    gpu, (mm, copy) = begin(a)
    shapes = named(perf_shapes(), a.shapes)
    rows, missing = sweep(
        shapes, lambda sh, rows, missing: "attention error %.1e, top-k agreement %.4f vs plain "
        "PyTorch" % measure(sh, a, (mm, copy), rows, missing), a.budget_s, a.json, gpu)
    print_rows(rows, ours="triton", width=26)
    print_not_measured(missing)
    meta = run_meta(gpu, (mm, copy), a.backend, missing, bool(a.shapes))
    if a.json:
        write_json(a.json, meta, rows)
