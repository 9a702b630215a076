"""The metadata kernel (page scan, schedule) and the merge kernel build for Hopper (sm_90) anywhere.

The interpreter runs their source on CPU (test_sparse_flash_attention_metadata.py), but it is
more permissive than the compiler (a name rebound with another shape inside a loop runs there
and fails to compile), so CI also compiles them ahead of time for sm_90 with Triton's bundled
ptxas, for every combination of layouts and flags the plan can ask for (a subprocess, so the
interpreter setting of the other kernel tests does not apply).
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
from cann_attention.op_kernel.sparse_flash_attention import metadata, triton as sfa_triton
q_tnd, kv_layout, has_aq, has_akv, causal = (int(x) for x in sys.argv[1:6])
fn = metadata._sfa_metadata_kernel
names = list(inspect.signature(fn.fn).parameters)
const = dict(Q_TND=q_tnd, KV_LAYOUT=kv_layout, HAS_AQ=has_aq, HAS_AKV=has_akv, CAUSAL=causal,
             OVERHEAD=1, BLOCK=metadata.BLOCK, BLOCK_C=256, LOG_B=8, LOG_T=14, LOG_C=9,
             PAGE_BLOCK=metadata.PAGE_BLOCK)
ptr = {"aq": "*i32", "akv": "*i32", "block_table": "*i32", "idx": "*i32", "meta": "*i64"}
sig = {n: "constexpr" if n in const else ptr.get(n, "i64") for n in names}
src = ASTSource(fn, sig, {(names.index(k),): v for k, v in const.items()})
triton.compile(src, target=GPUTarget("cuda", 90, 32),
               options=dict(num_warps=metadata.SCHEDULE_WARPS))
fn = sfa_triton._merge_kernel
names = list(inspect.signature(fn.fn).parameters)
const = dict(HG=64, HEADS=16, DV=512, COLUMNS=sfa_triton.MERGE_COLUMNS, HAS_SINKS=1)
sig = {n: "constexpr" if n in const else "i32" if n == "n1" else
       "*bf16" if n == "out" else "*i64" if n.startswith(("split", "task")) else "*fp32"
       for n in names}
src = ASTSource(fn, sig, {(names.index(k),): v for k, v in const.items()})
triton.compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=4))
print("built")
"""


@pytest.mark.parametrize("q_tnd,kv_layout,has_aq,has_akv,causal",
                         [(0, 0, 0, 0, 1), (0, 0, 1, 1, 0), (1, 1, 1, 1, 1), (1, 2, 1, 1, 1),
                          (0, 2, 0, 1, 0), (0, 2, 0, 0, 1)])
def test_metadata_kernel_builds_for_sm90(q_tnd, kv_layout, has_aq, has_akv, causal):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    res = subprocess.run([sys.executable, "-c", BUILD, str(q_tnd), str(kv_layout), str(has_aq),
                          str(has_akv), str(causal)], capture_output=True, text=True, env=env,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]
    assert res.stdout.strip().endswith("built")
