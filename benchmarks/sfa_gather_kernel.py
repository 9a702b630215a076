"""The gather microkernel of bench_sparse_flash_attention.py's ``gather_ceiling``.

A module of its own so that the benchmark script imports Triton only on its CUDA path: the CPU
benchmark and the CPU tests that import the script then leave Triton unimported, and the
interpreter tests can still turn on TRITON_INTERPRET before its first import.
"""
import triton
import triton.language as tl


@triton.jit
def sum_rows(key, key_rope, rows, out, D: tl.constexpr, DR: tl.constexpr):
    """Read 64 cache rows (D + DR elements each) and store their sum: a gather, no more."""
    r = tl.load(rows + tl.program_id(0) * 64 + tl.arange(0, 64)).to(tl.int64)
    acc = tl.zeros([64, 128], tl.float32)
    for c in tl.static_range(0, D, 128):
        acc += tl.load(key + r[:, None] * D + c + tl.arange(0, 128)[None, :]).to(tl.float32)
    b_r = tl.load(key_rope + r[:, None] * DR + tl.arange(0, DR)[None, :]).to(tl.float32)
    tl.store(out + tl.program_id(0), tl.sum(acc) + tl.sum(b_r))
