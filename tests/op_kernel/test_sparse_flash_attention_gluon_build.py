"""The Gluon kernels build for Hopper (sm_90) on any machine, as the builds they are meant to be.

CI has no GPU, and Triton's interpreter does not run Gluon, so without this file a change that
breaks a Gluon kernel would only show on a GPU. Triton compiles ahead of time for a named
target with its bundled ptxas; the test (a subprocess, so Triton's interpreter setting of the
other kernel tests does not apply) builds each kernel for sm_90 and checks what its module doc
promises (``KERNELS``): the warpgroup matrix shapes (gluon.py: scores 64x32 and output 64x256
per warpgroup; gluon_ws.py: a consumer's 64x64 block scores and 64x256 output half), for
gluon_ws.py the register hand-over and the mbarrier pacing, cp.async copies, shared memory
within Hopper's 227 KB per block, and for gluon_ws.py that the SASS (from the cuobjdump that
Triton ships) has no more than a few register spills. Runtime behaviour is covered on a Hopper
GPU by test_sparse_flash_attention_triton.py.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

# Triton is not imported here: the kernel tests set TRITON_INTERPRET before they import it.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None,
                                reason="Triton is not installed (pip install -e \".[gpu]\")")
NO_GLUON = 3     # exit status of the build script when this Triton has no Gluon dialect

HOPPER_SMEM_PER_BLOCK = 227 * 1024

BUILD = r"""
import importlib, inspect, json, os, re, subprocess, sys
import triton
from triton.backends.compiler import GPUTarget
try:
    from triton.experimental.gluon._runtime import GluonASTSource
except ImportError:
    sys.exit(3)
module, kernel, warps = sys.argv[4], sys.argv[5], int(sys.argv[6])
fn = getattr(importlib.import_module(
    "cann_attention.op_kernel.sparse_flash_attention." + module), kernel)

dtype, paged, sinks, hg = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[8])
page_shift = int(sys.argv[9])
names = list(inspect.signature(fn.fn).parameters)
const = dict(HG=hg, BLOCK_S2=64, SBS=1, ENTRIES=64, DV=512, DR=64, PAGED=paged,
             PAGE_SHIFT=page_shift, HAS_SINKS=sinks)
ptr = {"q_nope": dtype, "q_rope": dtype, "key": dtype, "key_rope": dtype, "out": dtype,
       "idx": "i32", "block_table": "i32", "kv_start": "i64", "sinks": "fp32",
       "smax": "fp32", "ssum": "fp32", "ws_m": "fp32", "ws_l": "fp32", "ws_acc": "fp32"}
ints = {"scale": "fp32", "n1": "i32", "k_entries": "i32", "bt_stride": "i32",
        "page_size": "i32"}
sig = {n: "constexpr" if n in const else ints[n] if n in ints else "*" + ptr.get(n, "i64")
       for n in names}
attrs = {(i,): [["tt.divisibility", 16]] for i, n in enumerate(names)
         if sig[n].startswith("*")}
src = GluonASTSource(fn, sig, {(names.index(k),): v for k, v in const.items()}, attrs)
k = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=warps))
cuobjdump = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin",
                         "cuobjdump")
spills = None                   # local-memory stores in the SASS, where Triton ships cuobjdump
if os.path.exists(cuobjdump):
    open(sys.argv[7], "wb").write(k.asm["cubin"])
    sass = subprocess.run([cuobjdump, "-sass", sys.argv[7]], capture_output=True, text=True,
                          check=True).stdout
    spills = len(re.findall(r"\bSTL\b", sass))
print(json.dumps(dict(shared=k.metadata.shared, ptx=k.asm["ptx"], spills=spills)))
"""


# (module, kernel, warps at launch, instructions its module doc promises, most local-memory
# stores (register spills) allowed in its SASS or None)
KERNELS = {
    "gluon": ("gluon", "_sfa_gluon_kernel", 8,
              ["wgmma.mma_async.sync.aligned.m64n32k16.f32",      # scores, 32 keys a warpgroup
               "wgmma.mma_async.sync.aligned.m64n256k16.f32"],    # output, 256 columns
              None),
    # gluon_ws._in_loop keeps the consumers' wgmma descriptors in the loop; hoisted, they
    # spill (about 100-175 stores, against 0-10 in the loop), the largest single cost it had
    "gluon-ws": ("gluon_ws", "_sfa_gluon_ws_kernel", 4,
                 ["wgmma.mma_async.sync.aligned.m64n64k16.f32",   # a consumer's block scores
                  "wgmma.mma_async.sync.aligned.m64n256k16.f32",  # its half of the output
                  "setmaxnreg.inc.sync.aligned.u32",              # consumers get registers
                  "setmaxnreg.dec.sync.aligned.u32",              # the producer gives them
                  "cp.async.mbarrier.arrive.noinc",               # copies arrive on barriers
                  "mbarrier.try_wait.parity"],
                 32),
}


# (variant, dtype, paged, sinks, head group, page shift): 64-head plans for both (pages of 64
# keys: the page-table walk shifts), a 16-head plan (rows 16..63 of the tile unused) for
# gluon-ws, the only one that serves it, and pages of a size that is no power of two (-1: the
# walk divides)
BUILDS = ([(variant, *build) for variant in KERNELS
           for build in (("bf16", 1, 1, 64, 6), ("fp16", 0, 0, 64, -1))]
          + [("gluon-ws", "bf16", 0, 1, 16, -1), ("gluon-ws", "bf16", 1, 0, 64, -1)])


@pytest.mark.parametrize("variant,dtype,paged,sinks,hg,page_shift", BUILDS)
def test_gluon_kernel_builds_for_sm90(variant, dtype, paged, sinks, hg, page_shift, tmp_path):
    module, kernel, warps, wanted, max_spills = KERNELS[variant]
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    res = subprocess.run([sys.executable, "-c", BUILD, dtype, str(paged), str(sinks), module,
                          kernel, str(warps), str(tmp_path / "kernel.cubin"), str(hg),
                          str(page_shift)],
                         capture_output=True, text=True, env=env, timeout=600)
    if res.returncode == NO_GLUON:
        pytest.skip("this Triton has no Gluon dialect")
    assert res.returncode == 0, res.stderr[-4000:]
    built = json.loads(res.stdout.strip().splitlines()[-1])
    ptx = built["ptx"]
    assert 0 < built["shared"] <= HOPPER_SMEM_PER_BLOCK, built["shared"]
    for instruction in wanted:
        assert instruction in ptx, f"{variant}: no {instruction}"
    assert "cp.async.cg.shared.global" in ptx or "cp.async.ca.shared.global" in ptx, \
        "key rows are not copied with cp.async"
    if max_spills is not None and built["spills"] is not None:
        assert built["spills"] <= max_spills, \
            f"{variant}: {built['spills']} local-memory stores (register spills) in the SASS"
