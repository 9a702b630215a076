"""The indexer's Triton kernel builds for Hopper (sm_90) anywhere.

The interpreter runs its source on CPU (test_lightning_indexer_triton.py), but it is more
permissive than the compiler, so CI also compiles it ahead of time for sm_90 with Triton's
bundled ptxas, for the layouts and flags the op can ask for (a subprocess, so the interpreter
setting of the other kernel tests does not apply).
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
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from cann_attention.op_kernel.lightning_indexer import triton as li
q_tnd, k_layout, has_aq, has_ak, causal, values, k, n1, w32, splits = (
    int(x) for x in sys.argv[1:11])
k_pad, cap, ch = li.sizes(k, 128)
ptr = {"query": "*bf16", "key": "*bf16", "weights": "*fp32" if w32 else "*bf16",
       "aq": "*i32", "ak": "*i32", "block_table": "*i32", "out_idx": "*i32",
       "out_val": "*bf16", "ws": "*i64", "lists": "*i64"}


def build(fn, const):
    names = list(inspect.signature(fn.fn).parameters)
    src_ty = {"src": "*fp32" if const.get("SCORES") else "*i64",
              "out_val": "*fp32" if const.get("SCORES") else ptr["out_val"]}
    sig = {n: "constexpr" if n in const else src_ty.get(n, ptr.get(n, "i32")) for n in names}
    src = ASTSource(fn, sig, {(names.index(c),): v for c, v in const.items()})
    triton.compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=li.NUM_WARPS))


build(li._li_kernel, dict(
    N1=n1, N1P=max(16, triton.next_power_of_2(n1)), D=128, K=k, K_PAD=k_pad, CAP=cap, CH=ch,
    BLOCK_N=128, SPLITS=splits, Q_TND=q_tnd, K_LAYOUT=k_layout, HAS_AQ=has_aq, HAS_AK=has_ak,
    CAUSAL=causal, VALUES=values, LBLOCK=li.LENGTHS_BLOCK, PBLOCK=li.PAGES_BLOCK))
if splits > 1:
    build(li._select_kernel, dict(K=k, K_PAD=k_pad, CAP=cap, CH=ch, SCORES=False,
                                  BLOCK=min(k_pad, li.MERGE_BLOCK), VALUES=values))
    k_pad, cap, ch = li.sizes(k, li.TOPK_BLOCK)
    build(li._select_kernel, dict(K=k, K_PAD=k_pad, CAP=cap, CH=ch, SCORES=True,
                                  BLOCK=li.TOPK_BLOCK, VALUES=1))
print("built")
"""


@pytest.mark.parametrize("q_tnd,k_layout,has_aq,has_ak,causal,values,k,n1,w32,splits",
                         [(0, 2, 0, 1, 1, 0, 2048, 64, 0, 16), (1, 1, 1, 1, 1, 1, 200, 8, 1, 1),
                          (0, 0, 1, 0, 0, 1, 8, 1, 0, 3), (0, 2, 0, 1, 1, 1, 8192, 64, 0, 4)])
def test_indexer_kernel_builds_for_sm90(q_tnd, k_layout, has_aq, has_ak, causal, values, k, n1,
                                        w32, splits):
    """The row kernel; where rows are split, the merge and the selection alone (topk_rows)."""
    env = {name: value for name, value in os.environ.items() if name != "TRITON_INTERPRET"}
    args = [str(x) for x in (q_tnd, k_layout, has_aq, has_ak, causal, values, k, n1, w32,
                             splits)]
    res = subprocess.run([sys.executable, "-c", BUILD, *args], capture_output=True, text=True,
                         env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]
    assert res.stdout.strip().endswith("built")
