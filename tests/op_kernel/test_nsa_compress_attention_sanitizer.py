"""No out-of-bounds access by the NSA Triton kernel (compute-sanitizer memcheck on a GPU).

Runs this file as a program under ``compute-sanitizer --tool memcheck`` (testing/sanitizer.py):
varlen batches with an empty and a one-row batch, overlapping windows, both masks, the largest
group (64 heads a KV head), head dims past the kernel's slices, blocks not a power of two; each
compared with the emulator. The lengths are host lists, checked with the shapes, and the masks
are read inside their (max Sq, max C) and (max Sq, max Sel) bounds, so no value of a call can
steer a read: the cases cover the tiles' edges.
"""
from __future__ import annotations

import os
import sys

import pytest
import torch

CASES = [
    dict(q_lens=(5, 0, 9, 1), c_lens=(37, 12, 20, 44)),
    dict(q_lens=(3, 6), c_lens=(61, 90), n1=8, n2=1, d1=8, d2=7, l=128, d=16, ls=128, k=3),
    dict(q_lens=(7, 2), c_lens=(300, 45), n1=64, n2=1, d1=192, d2=128, k=4),
    dict(q_lens=(4,), c_lens=(70,), n1=4, n2=2, d1=288, d2=272, l=32, d=16, ls=96, k=2),
]


@pytest.mark.gpu
def test_memcheck_clean():
    from testing.sanitizer import assert_memcheck_clean
    assert_memcheck_clean(os.path.abspath(__file__))


def main():
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from cann_attention.op_host.common.platform import platform_for_device
    from cann_attention.op_host.nsa_compress_attention import tiling
    from cann_attention.op_kernel.nsa_compress_attention import emulate
    from cann_attention.op_kernel.nsa_compress_attention import triton as nsa_triton
    from testing.calls import checked
    from testing.nsa_compress_attention import Case, make
    platform = platform_for_device("cuda")
    for kw in CASES:
        case = Case(dtype=torch.bfloat16, **kw)
        args, kwargs = make(case)
        on = [a.cuda() if isinstance(a, torch.Tensor) else a for a in args]
        kwon = {k: v.cuda() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
        p, t = checked("npu_nsa_compress_attention", *on, **kwon)
        plan = tiling.plan(p, platform)
        got = nsa_triton.run(p, plan, t)
        torch.cuda.synchronize()
        want = emulate.run(p, plan, t)
        torch.testing.assert_close(got[0].float().cpu(), want[0].float().cpu(), atol=3e-2,
                                   rtol=3e-2, msg=case.id)
        print("ok", case.id, flush=True)


if __name__ == "__main__":
    main()
