"""Design data of the indexer's Triton kernel (op_kernel/lightning_indexer/triton.py), not a
benchmark of the op: what one bitonic ``tl.sort`` of N int64 keys costs a program (N = 2048,
4096, 8192; one and two programs per SM), and the scoring rate of the kernel's per-row loop
without its top-k (S1=4096 x S2=32768, N1=64, causal; ROWS query rows per program, keys per
step, warps, pipeline stages, programs). The numbers chose the selection by compaction over the
sort-at-every-overflow of the first kernel. Needs a CUDA device:

    python benchmarks/lightning_indexer_micro.py OUT.json
"""
import sys, json, torch, triton, triton.language as tl
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from cuda_timing import cuda_time

@triton.jit
def sort_k(ws, iters, N: tl.constexpr):
    pid = tl.program_id(0)
    o = tl.arange(0, N)
    p = ws + pid.to(tl.int64) * N
    for i in range(iters):
        v = tl.load(p + o)
        v = tl.sort(v, 0, descending=True)
        tl.store(p + o, v + 1)

@triton.jit
def score_k(q, k, w, out, S2, S1, ROWS: tl.constexpr, N1: tl.constexpr, D: tl.constexpr, BN: tl.constexpr):
    pid = tl.program_id(0)
    o_h = tl.arange(0, ROWS * N1); o_d = tl.arange(0, D); o_n = tl.arange(0, BN)
    for r0 in range(pid * ROWS, S1, tl.num_programs(0) * ROWS):
        qt = tl.load(q + (r0 * N1 + o_h[:, None]) * D + o_d[None, :])
        ww = tl.load(w + r0 * N1 + o_h).to(tl.float32)
        n_vis = S2 - S1 + r0 + ROWS
        best = tl.zeros([BN], tl.float32)
        for j0 in range(0, n_vis, BN):
            pos = j0 + o_n
            kt = tl.load(k + pos[:, None] * D + o_d[None, :], mask=(pos < n_vis)[:, None], other=0.0)
            x = tl.dot(qt, tl.trans(kt))
            s = tl.reshape(tl.maximum(x, 0.0) * ww[:, None], [ROWS, N1, BN])
            s = tl.sum(s, 1)
            best = tl.maximum(best, tl.max(s, 0))
        tl.store(out + r0 // ROWS * BN + o_n, best)

res = {}
ws = torch.randint(0, 2**62, (264 * 8192,), device="cuda", dtype=torch.int64)
for N in (2048, 4096, 8192):
    for grid in (132, 264):
        it = 20
        ms = cuda_time(lambda: sort_k[(grid,)](ws, it, N=N, num_warps=8), 5)
        res[f"sort{N}_grid{grid}_us_per_sort"] = ms * 1e3 / it
        print(N, grid, ms * 1e3 / it, "us per sort per program", flush=True)
S1, S2, N1 = 4096, 32768, 64
q = torch.randn(S1, N1, 128, device="cuda", dtype=torch.bfloat16)
k = torch.randn(S2, 128, device="cuda", dtype=torch.bfloat16)
w = torch.randn(S1, N1, device="cuda", dtype=torch.bfloat16)
out = torch.empty(S1 * 128, device="cuda")
fl = 2 * N1 * 128 * sum(S2 - S1 + s + 1 for s in range(S1))
for rows in (1, 2, 4):
    for bn in (64, 128):
        for warps, stages in ((4, 2), (8, 2), (8, 3)):
            for grid in ((132, 264) if rows == 1 else (132,)):
                try:
                    ms = cuda_time(lambda: score_k[(grid,)](q, k, w, out, S2, S1, ROWS=rows, N1=N1, D=128, BN=bn, num_warps=warps, num_stages=stages), 5)
                    res[f"score_rows{rows}_bn{bn}_w{warps}_s{stages}_g{grid}"] = [ms, fl / ms / 1e9]
                    print(rows, bn, warps, stages, grid, f"{ms:.3f} ms {fl/ms/1e9:.0f} TFLOPS", flush=True)
                except Exception as e:
                    print(rows, bn, warps, stages, grid, "ERR", repr(e)[:100])
json.dump(res, open(sys.argv[1], "w"), indent=1)
