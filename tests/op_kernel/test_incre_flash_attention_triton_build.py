"""The split-KV decode kernel builds for Hopper (sm_90) anywhere.

The interpreter runs its source on CPU (test_incre_flash_attention_triton.py), but it is more
permissive than the compiler (atomics' semantics, dtypes of tl.dot operands, scalar branches),
so CI also compiles it ahead of time for sm_90 with Triton's bundled ptxas, for the cache
kinds and flags the op can ask for (a subprocess, so the interpreter setting of the other
kernel tests does not apply). Pointers and strides are marked divisible by 16, as Triton
specialises them at a real launch; the build must then pipeline the K and V loads (cp.async
into shared memory: decode is bound by them) within Hopper's 227 KB of shared memory.
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
from cann_attention.op_kernel.incre_flash_attention import triton as ifa
dt, kv, g, d, bs2, page, paged, mask, pse, aq, aq_channel, out = sys.argv[1:13]
g, d, bs2, page = int(g), int(d), int(bs2), int(page)
ptr = {"query": dt, "key": kv, "value": kv, "block_table": "*i32", "mask": "*u8", "pse": dt,
       "aq_scale": dt, "aq_offset": dt, "out": out, "ws_m": "*fp32", "ws_l": "*fp32",
       "ws_acc": "*fp32", "arrivals": "*i32", "pieces": "*i32", "splits": "*i32",
       "scale": "fp32"}
const = dict(G=g, G_PAD=max(16, triton.next_power_of_2(g)), D=d,
             D_PAD=max(16, triton.next_power_of_2(d)), BLOCK_S2=bs2,
             BS2_PAD=max(16, triton.next_power_of_2(bs2)), PAGE=page, N2=4, PAGED=int(paged),
             HAS_MASK=int(mask), HAS_PSE=int(pse), PSE_B=int(pse), AQ=int(aq),
             AQ_CHANNEL=int(aq_channel), AQ_OFFSET=int(aq_channel))
names = list(inspect.signature(ifa._ifa_kernel.fn).parameters)
sig = {n: "constexpr" if n in const else ptr.get(n, "i32") for n in names}
aligned = [n for n in names if n not in const and n not in ("scale", "n_blocks")]
attrs = {(names.index(n),): [["tt.divisibility", 16]] for n in aligned}
src = ASTSource(ifa._ifa_kernel, sig, {(names.index(c),): v for c, v in const.items()}, attrs)
k = triton.compile(src, target=GPUTarget("cuda", 90, 32),
                   options=dict(num_warps=ifa.NUM_WARPS, num_stages=ifa.NUM_STAGES))
print("built", k.metadata.shared, k.asm["ttgir"].count("async_copy_global_to_local"))
"""


@pytest.mark.parametrize("config", [
    ("*bf16", "*bf16", 8, 128, 128, 64, 1, 1, 1, 0, 0, "*bf16"),      # paged, mask, pse
    ("*fp16", "*i8", 4, 128, 128, 128, 1, 0, 0, 1, 1, "*fp32"),       # int8 per channel, post-quant
    ("*bf16", "*i8", 64, 64, 32, 1, 0, 1, 0, 1, 0, "*bf16"),          # 64 heads a group, per tensor
    ("*fp16", "*fp16", 1, 256, 48, 48, 1, 0, 1, 0, 0, "*fp16"),       # page 48, D 256
], ids=lambda c: "-".join(str(x).strip("*") for x in c))
def test_decode_kernel_builds_for_sm90(config):
    env = {name: value for name, value in os.environ.items() if name != "TRITON_INTERPRET"}
    res = subprocess.run([sys.executable, "-c", BUILD, *map(str, config)], capture_output=True,
                         text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]
    _, shared, async_copies = res.stdout.split()[-3:]
    assert int(shared) <= 227 * 1024, f"{shared} B of shared memory"
    assert int(async_copies) >= 2, "the K and V loads are not pipelined"


def _plan_tiles(n1, n2, d, kv_dtype):
    """(G, D, block_s2, the plan's shared-memory bytes) of a paged bf16-query call's H100 plan."""
    import torch

    from cann_attention.op_host.common.platform import H100
    from cann_attention.op_host.incre_flash_attention import check, tiling
    from testing.calls import parse
    q = torch.empty(2, 1, n1 * d, dtype=torch.bfloat16, device="meta")
    k = torch.empty(64, 64, n2 * d, dtype=kv_dtype, device="meta")
    bt = torch.empty(2, 32, dtype=torch.int32, device="meta")
    aq = torch.empty(2, n2 * d, dtype=torch.bfloat16, device="meta") if kv_dtype == torch.int8 \
        else None
    p = parse("npu_incre_flash_attention", q, k, k, actual_seq_lengths=[2048, 100],
              antiquant_scale=aq, block_table=bt, num_heads=n1, num_key_value_heads=n2,
              block_size=64)
    check.check(p)
    t = tiling.plan(p, H100)
    return p.group, d, t.block_s2, dict(t.tile_bytes)["SMEM"]


@pytest.mark.parametrize("n1,n2,d,int8", [(64, 1, 128, 0), (64, 1, 512, 0), (64, 2, 256, 1),
                                          (32, 1, 512, 0), (8, 1, 256, 0), (64, 8, 128, 1)],
                         ids=lambda v: str(v))
def test_plans_hold_the_compiled_kernels_shared_memory(n1, n2, d, int8):
    """The GPU plan's shared-memory model is an upper bound of what the compiled kernel uses
    (tiling.py: where it was not, the plan caps the step), so a planned kernel launches."""
    import torch
    g, d, bs2, planned = _plan_tiles(n1, n2, d, torch.int8 if int8 else torch.bfloat16)
    env = {name: value for name, value in os.environ.items() if name != "TRITON_INTERPRET"}
    config = ("*bf16", "*i8" if int8 else "*bf16", g, d, bs2, 64, 1, 0, 0, int8, int8, "*bf16")
    res = subprocess.run([sys.executable, "-c", BUILD, *map(str, config)], capture_output=True,
                         text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]
    shared = int(res.stdout.split()[-2])
    assert shared <= planned, f"G={g} D={d} block_s2={bs2}: {shared} B > planned {planned} B"
