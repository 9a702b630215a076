"""No out-of-bounds access by the GPU back end on invalid or out-of-range values.

Runs this file as a program under ``compute-sanitizer --tool memcheck`` (with PyTorch's caching
allocator off, so every tensor is its own allocation and a stray read past it is caught). The
program runs the metadata kernel and every kernel variant that serves the case (Gluon on Hopper)
on cases whose indices point past tau, past the cache, after a -1, and through a shuffled page
table (compared with the reference), and, with value checks off, on malformed values the op
does not check on a device: lengths past the tensors and negative, decreasing TND prefix sums,
page-table entries outside the cache (compared with the emulator, which makes them safe the
same documented way).
"""
from __future__ import annotations

import os
import sys

import pytest
import torch

CASES = [
    dict(B=2, S1=4, S2=40, N1=4, K=24, sbs=2, malformed=True, q_lens=[4, 4], kv_lens=[40, 3],
         return_softmax_lse=True),
    dict(B=2, S1=3, S2=300, N1=16, K=40, sbs=16, layout_query="TND", layout_kv="PA_BSND",
         q_lens=[3, 1], kv_lens=[300, 50], page=32, malformed=True),
    dict(B=3, S1=2, S2=200, N1=64, K=300, layout_kv="PA_BSND", page=64,
         q_lens=[2, 2, 1], kv_lens=[200, 7, 33]),
    dict(B=2, S1=3, S2=260, N1=128, K=150, sbs=2, layout_query="TND", layout_kv="PA_BSND",
         q_lens=[3, 2], kv_lens=[260, 40], page=64, malformed=True),
]


@pytest.mark.gpu
def test_memcheck_clean():
    from testing.sanitizer import assert_memcheck_clean
    assert_memcheck_clean(os.path.abspath(__file__))


def _malformed(t, layout_kv):
    """The same tensors with every length and page-table value the device path does not check
    made hostile."""
    from testing.calls import fields_of
    bad = fields_of(t)
    dev = t.query.device
    if t.actual_seq_lengths_query is not None:
        n = t.actual_seq_lengths_query.numel()
        bad["actual_seq_lengths_query"] = torch.tensor([10**6, -4] * n, dtype=torch.int32,
                                                       device=dev)[:n]
    n = t.actual_seq_lengths_kv.numel() if t.actual_seq_lengths_kv is not None else 0
    if n:
        bad["actual_seq_lengths_kv"] = torch.tensor([2**31 - 1, -7] * n, dtype=torch.int32,
                                                    device=dev)[:n]
    if layout_kv == "PA_BSND":
        bt = t.block_table.clone()
        bt[:, 1::2] = -3
        bt[0, 0] = 10**7
        bad["block_table"] = bt
    return type(t)(**bad)


def main():
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from cann_attention.op_host.common.platform import platform_for_device
    from cann_attention.op_host.common.errors import CannAttentionError
    from cann_attention.op_host.sparse_flash_attention import tiling
    from cann_attention.op_kernel.sparse_flash_attention import emulate, reference
    from cann_attention.op_kernel.sparse_flash_attention import triton as sfa_triton
    from testing.oracle import assert_close
    from testing.sparse_flash_attention_cases import kernel_inputs, make_case
    platform = platform_for_device("cuda")
    for kw in CASES:
        case = make_case(**kw)
        p, t = kernel_inputs(case, "cuda")
        ref = case.call(reference.sparse_flash_attention)[0]
        low = case.call(reference.sparse_flash_attention, compute_dtype=torch.bfloat16)[0]
        hostile = _malformed(t, kw.get("layout_kv", "BSND"))
        for variant in tiling.GPU_VARIANTS:
            try:
                plan = tiling.plan(p, platform, variant)
            except CannAttentionError:          # a variant that does not serve this case
                continue
            got = sfa_triton.run(p, plan, t)[0]
            torch.cuda.synchronize()
            assert_close(got.cpu(), ref, low, f"{case.id} {variant}")
            got = sfa_triton.run(p, plan, hostile)[0]
            want = emulate.run(p, plan, hostile)[0]
            torch.cuda.synchronize()
            # the clamped lengths expose the case's NaN-poisoned rows: NaN where both read them
            torch.testing.assert_close(got.float().cpu(), want.float().cpu(), atol=3e-2,
                                       rtol=3e-2, equal_nan=True,
                                       msg=f"{case.id} {variant} malformed")
        print("ok", case.id, flush=True)


if __name__ == "__main__":
    main()
