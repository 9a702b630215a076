"""No out-of-bounds access by the IFA Triton kernel, on legal calls and malformed page tables.

Runs this file as a program under ``compute-sanitizer --tool memcheck`` (with PyTorch's caching
allocator off, so every tensor is its own allocation and a stray read past it is caught): every
paged cache layout, an int8 cache, masks with pse, left padding, a long window cut across SMs
(split tasks merged by their last piece), compared with the reference; then the paged cases
again with page-table entries outside the cache (value checks are off on device tensors), whose
other batches must be unchanged.
"""
from __future__ import annotations

import os
import sys

import pytest
import torch

CASES = [
    dict(b=3, s=200, paged="PA3", block_size=16, lens=(200, 33, 1)),
    dict(b=3, s=300, paged="PA4", block_size=64, layout="BNSD", lens=(17, 300, 64)),
    dict(b=2, n1=16, n2=4, d=128, s=400, paged="PA4S", block_size=32, int8="channel",
         mask="2-bool", pse="B", lens=(400, 3)),
    dict(lens=(40, 90), pad=10, layout="BNSD", mask="4-uint8"),
    dict(b=1, n1=32, n2=8, d=128, s=20000, paged="PA3", block_size=128, lens=(20000,),
         postquant="tensor"),
]


@pytest.mark.gpu
def test_memcheck_clean():
    from testing.sanitizer import assert_memcheck_clean
    assert_memcheck_clean(os.path.abspath(__file__))


def main():
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from cann_attention.op_host.common.platform import platform_for_device
    from cann_attention.op_host.incre_flash_attention import tiling
    from cann_attention.op_kernel.incre_flash_attention import triton as ifa_triton
    from testing.calls import checked, fields_of
    from testing.incre_flash_attention_cases import Case, build, reference
    from testing.oracle import assert_close
    platform = platform_for_device("cuda")
    for kw in CASES:
        c = Case(dtype="bf16", **kw)
        args = build(c)
        p, t = checked("npu_incre_flash_attention", **{
            k: v.cuda() if isinstance(v, torch.Tensor) else v for k, v in args.items()})
        plan = tiling.plan(p, platform)
        got = ifa_triton.run(p, plan, t).cpu()
        torch.cuda.synchronize()
        want = reference(args)
        if c.postquant:
            assert int((got.int() - want.int()).abs().max()) <= 1, c.id
        else:
            assert_close(got, want.float(), reference(args, compute_dtype=torch.bfloat16).float(),
                         c.id)
        if c.paged:
            table = t.block_table.clone()
            table[0, 1::2] = -3
            table[-1, 0] = 10 ** 7
            hostile = type(t)(**dict(fields_of(t), block_table=table))
            bad = ifa_triton.run(p, plan, hostile).cpu()
            torch.cuda.synchronize()
            if c.b > 2:
                assert torch.equal(bad[1:-1], got[1:-1]), c.id
        print("ok", c.id, "splits", int(plan.task_num_splits.max()), flush=True)


if __name__ == "__main__":
    main()
