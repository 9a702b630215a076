"""The NSA compressed-attention Triton kernel builds for Hopper (sm_90) anywhere.

The interpreter runs its source on CPU (test_nsa_compress_attention_triton.py), but it is more
permissive than the compiler (tl.gather, the reshapes of the group sum, the int64 sort), so CI
also compiles it ahead of time for sm_90 with Triton's bundled ptxas, with the constexprs the
back end derives from H100 plans of calls at the corners of the op's range, and checks that
its shared memory fits an SM's 227 KiB (one subprocess, so the interpreter setting of the
other kernel tests does not apply).
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None,
                                reason="Triton is not installed (pip install -e \".[gpu]\")")

BUILD = r"""
import inspect, sys
import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
import cann_attention
from cann_attention.op_host.common.platform import H100
from cann_attention.op_host.nsa_compress_attention.tiling import plan
from cann_attention.op_kernel.nsa_compress_attention import triton as nt

OP = cann_attention.OPS["npu_nsa_compress_attention"]
NAMES = list(inspect.signature(nt._nsa_kernel.fn).parameters)


def build(sq, c, n1, n2, d1, d2, l, d, ls, k, bf16, masks):
    dt = torch.bfloat16 if bf16 else torch.float16
    m = ls // d
    args = (torch.empty(sq, n1, d1, dtype=dt), torch.empty(c, n2, d1, dtype=dt),
            torch.empty(c, n2, d2, dtype=dt), 0.1, n1, l, d, ls, k)
    kw = dict(actual_seq_qlen=[sq], actual_cmp_seq_kvlen=[c],
              actual_sel_seq_kvlen=[-(-c // m)],
              atten_mask=torch.zeros(sq, c, dtype=torch.bool) if masks else None,
              topk_mask=torch.zeros(sq, -(-c // m), dtype=torch.bool) if masks else None)
    p = OP.parse(OP.bind(args, kw))
    OP.check(p)
    launch = nt._Launch(p, plan(p, H100))
    const = {n: v for n, v in launch.kernel.kwargs.items()
             if n not in ("num_warps", "num_stages")}
    ty = "*bf16" if bf16 else "*fp16"
    ptr = {"query": ty, "key": ty, "value": ty, "out": ty, "atten_mask": "*u8",
           "topk_mask": "*u8", "tasks": "*i64", "core_first": "*i64", "topk": "*i32",
           "stat_max": "*fp32", "stat_sum": "*fp32", "scale": "fp32"}
    sig = {n: "constexpr" if n in const else ptr.get(n, "i32") for n in NAMES}
    # pointers divisible by 16, as a launch specialises them: only then are the loads
    # pipelined, and the shared memory is what a GPU allocates
    attrs = {(i,): [["tt.divisibility", 16]] for i, n in enumerate(NAMES)
             if sig[n].startswith("*")}
    src = ASTSource(nt._nsa_kernel, sig, {(NAMES.index(n),): v for n, v in const.items()
                                          if n not in ("num_warps", "num_stages")}, attrs)
    kernel = triton.compile(src, target=GPUTarget("cuda", 90, 32),
                            options=dict(num_warps=launch.kernel.kwargs["num_warps"],
                                         num_stages=launch.kernel.kwargs["num_stages"]))
    assert kernel.metadata.shared <= 227 * 1024, f"shared memory {kernel.metadata.shared} B"


# typical (G = 2, D = 128, masks); G = 64 with M = 1 and 32 blocks (NB = 64: a sort of 128
# keys); D1 = D2 = 768 (D1 in slices, D2 in three passes), Nw = 2, no masks
build(100, 500, 4, 2, 128, 128, 32, 16, 64, 16, 0, 1)
build(100, 2000, 64, 4, 192, 128, 32, 16, 64, 16, 1, 1)    # PERF.md's shape (G = 16, D1 192)
build(100, 4000, 64, 1, 192, 128, 16, 16, 16, 32, 1, 1)
build(30, 700, 4, 4, 768, 768, 128, 64, 128, 8, 1, 0)
print("built")
"""


def test_kernel_builds_for_sm90():
    env = {name: value for name, value in os.environ.items() if name != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")       # Triton 3.9's default, said quietly
    res = subprocess.run([sys.executable, "-c", BUILD], capture_output=True, text=True,
                         env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]
    assert res.stdout.strip().endswith("built")
