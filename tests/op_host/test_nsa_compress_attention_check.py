"""Every validation rule of docs/nsa_compress_attention.md, Errors: a call that breaks it is
refused before any computation with an error naming the argument (expected vs actual)."""
from __future__ import annotations

import re
from dataclasses import replace

import pytest
import torch

from cann_attention import npu_nsa_compress_attention
from cann_attention.op_host.common.errors import CannAttentionError, CannAttentionTypeError
from cann_attention.op_host.nsa_compress_attention import check
from testing.calls import parse
from testing.nsa_compress_attention import Case, make

OP = torch.ops.cann_attention.npu_nsa_compress_attention
BASE = Case((4, 3), (20, 13), n1=4, n2=2, d1=32, d2=16, l=32, d=16, ls=64, k=2)


def _call(case=BASE, args=None, **kw):
    a, kwargs = make(case)
    a = list(a)
    for i, v in (args or {}).items():
        a[i] = v
    kwargs.update(kw)
    return OP(*a, **kwargs)


def _t(shape, dtype=torch.float16):
    return torch.zeros(shape, dtype=dtype)


# (id, call, error type, message regex)
RULES = [
    # 16. dtypes
    ("dtype-query-int", lambda: _call(args={0: _t((8, 4, 32), torch.int32)}),
     CannAttentionTypeError, r"query: expected dtype float16 or bfloat16 \(float32 or float64: "
                             r"CPU only\), got int32"),
    ("dtype-key-fp32-for-fp64", lambda: _call(args={0: _t((8, 4, 32), torch.float64),
                                                    1: _t((34, 2, 32), torch.float32)}),
     CannAttentionTypeError, r"key: expected dtype float64 \(= query\), got float32"),
    ("dtype-key", lambda: _call(args={1: _t((34, 2, 32), torch.bfloat16)}),
     CannAttentionTypeError, r"key: expected dtype float16 \(= query\), got bfloat16"),
    ("dtype-value", lambda: _call(args={2: _t((34, 2, 16), torch.bfloat16)}),
     CannAttentionTypeError, r"value: expected dtype float16 \(= query\), got bfloat16"),
    # 7. layout
    ("layout-4d-query", lambda: _call(args={0: _t((1, 8, 4, 32))}),
     CannAttentionError, r"query: expected a 3-D tensor \(T, N, D\): only layout TND"),
    # 1.-5. attributes
    ("l-not-mult-16", lambda: _call(args={5: 24}), CannAttentionError,
     r"compress_block_size: expected a multiple of 16 in \[16, 128\], got 24"),
    ("l-too-big", lambda: _call(args={5: 144}), CannAttentionError,
     r"compress_block_size: expected a multiple of 16 in \[16, 128\], got 144"),
    ("d-not-allowed", lambda: _call(args={6: 80}), CannAttentionError,
     r"compress_stride: expected 16, 32, 48 or 64, got 80"),
    ("ls-not-mult-16", lambda: _call(args={7: 72}), CannAttentionError,
     r"select_block_size: expected a multiple of 16 in \[16, 128\], got 72"),
    ("ls-too-big", lambda: _call(args={7: 160}), CannAttentionError,
     r"select_block_size: expected a multiple of 16 in \[16, 128\], got 160"),
    ("l-below-d", lambda: _call(args={5: 16, 6: 32}), CannAttentionError,
     r"compress_block_size: expected >= compress_stride=32, got 16"),
    ("ls-below-l", lambda: _call(args={5: 64, 7: 48}), CannAttentionError,
     r"select_block_size: expected >= compress_block_size=64, got 48"),
    ("ls-mod-d", lambda: _call(args={5: 32, 6: 32, 7: 48}), CannAttentionError,
     r"select_block_size: expected a multiple of compress_stride=32, got 48"),
    ("l-mod-d-choice", lambda: _call(args={5: 48, 6: 32, 7: 96}), CannAttentionError,
     r"compress_block_size: expected a multiple of compress_stride=32 \(project rule"),
    ("k-zero", lambda: _call(args={8: 0}), CannAttentionError,
     r"select_block_count: expected a value in \[1, 32\], got 0"),
    ("k-33", lambda: _call(args={8: 33}), CannAttentionError,
     r"select_block_count: expected a value in \[1, 32\], got 33"),
    # 6. select_block_count <= min_b ceil(C[b] / M): C = (20, 13), M = 4 -> min Sel = 4
    ("k-above-min-sel", lambda: _call(args={8: 5}), CannAttentionError,
     r"select_block_count: expected <= min_b ceil\(C\[b\] / M\) = 4 .*got 5"),
    # 8. / 9. heads
    ("n2-zero", lambda: _call(args={1: _t((34, 0, 32)), 2: _t((34, 0, 16))}),
     CannAttentionError, r"key: expected N2 \(key.shape\[1\]\) > 0, got 0"),
    ("value-n2", lambda: _call(args={2: _t((34, 1, 16))}), CannAttentionError,
     r"value: expected N2 \(value.shape\[1\]\) == 2 \(= key\), got 1"),
    ("n1-mod-n2", lambda: _call(args={0: _t((8, 6, 32)), 1: _t((34, 4, 32)),
                                      2: _t((34, 4, 16)), 4: 6}),
     CannAttentionError, r"query: expected N1 \(query.shape\[1\]\) a positive multiple of N2=4"),
    ("g-not-pow2", lambda: _call(args={0: _t((8, 6, 32)), 4: 6}), CannAttentionError,
     r"query: expected G = N1 / N2 in \{1, 2, 4, ..., 64\}.*got G=3"),
    ("g-128", lambda: _call(args={0: _t((8, 128, 32)), 1: _t((34, 1, 32)), 2: _t((34, 1, 16)),
                                  4: 128}),
     CannAttentionError, r"got G=128"),
    ("head-num", lambda: _call(args={4: 8}), CannAttentionError,
     r"head_num: expected the query head count N1=4, got 8"),
    # 10. head dims
    ("key-d1", lambda: _call(args={1: _t((34, 2, 48))}), CannAttentionError,
     r"key: expected D1 \(key.shape\[2\]\) == 32 \(= query\), got 48"),
    ("d1-zero", lambda: _call(args={0: _t((8, 4, 0)), 1: _t((34, 2, 0))}),
     CannAttentionError, r"query: expected D1 \(query.shape\[2\]\) in \(0, 768\], got 0"),
    ("d1-too-big", lambda: _call(args={0: _t((8, 4, 784)), 1: _t((34, 2, 784))}),
     CannAttentionError, r"query: expected D1 \(query.shape\[2\]\) in \(0, 768\], got 784"),
    ("d2-above-d1", lambda: _call(args={2: _t((34, 2, 48))}), CannAttentionError,
     r"value: expected D2 \(value.shape\[2\]\) in \(0, D1=32\], got 48"),
    ("d2-above-d1-unaligned", lambda: _call(args={0: _t((8, 4, 8)), 1: _t((34, 2, 8)),
                                                  2: _t((34, 2, 9))}),
     CannAttentionError, r"value: expected D2 \(value.shape\[2\]\) in \(0, D1=8\], got 9"),
    ("d2-zero", lambda: _call(args={2: _t((34, 2, 0))}), CannAttentionError,
     r"value: expected D2 \(value.shape\[2\]\) in \(0, D1=32\], got 0"),
    ("value-t2", lambda: _call(args={2: _t((30, 2, 16))}), CannAttentionError,
     r"value: expected T2 \(value.shape\[0\]\) == 34 \(= key\), got 30"),
    # 17. required lists, 11. batch counts
    ("qlen-missing", lambda: _call(actual_seq_qlen=None), CannAttentionError,
     r"actual_seq_qlen: expected a list of prefix sums \(required for layout TND\), got None"),
    ("cmp-missing", lambda: _call(actual_cmp_seq_kvlen=None), CannAttentionError,
     r"actual_cmp_seq_kvlen: expected a list of prefix sums"),
    ("sel-missing", lambda: _call(actual_sel_seq_kvlen=None), CannAttentionError,
     r"actual_sel_seq_kvlen: expected a list of prefix sums"),
    ("qlen-empty", lambda: _call(actual_seq_qlen=[]), CannAttentionError,
     r"actual_seq_qlen: expected at least one batch, got an empty list"),
    ("batch-count", lambda: _call(actual_cmp_seq_kvlen=[20]), CannAttentionError,
     r"actual_cmp_seq_kvlen: expected 2 entries \(= actual_seq_qlen\): VarLen scene, "
     r"q is not equal kv, got 1"),
    ("sel-batch-count", lambda: _call(actual_sel_seq_kvlen=[5, 9, 9]), CannAttentionError,
     r"actual_sel_seq_kvlen: expected 2 entries \(= actual_seq_qlen\), got 3"),
    # 17. (P) prefix sums non-decreasing; 12. inside the tensors
    ("qlen-decreasing", lambda: _call(actual_seq_qlen=[4, 2]), CannAttentionError,
     r"actual_seq_qlen: expected non-decreasing, non-negative inclusive prefix sums, "
     r"got 2 after 4 at batch 1"),
    ("qlen-beyond-t1", lambda: _call(actual_seq_qlen=[4, 9]), CannAttentionError,
     r"actual_seq_qlen: expected a last prefix sum <= T1 \(query.shape\[0\]\)=8, got 9"),
    ("cmp-beyond-t2", lambda: _call(actual_cmp_seq_kvlen=[20, 35],
                                    actual_sel_seq_kvlen=[5, 9]), CannAttentionError,
     r"actual_cmp_seq_kvlen: expected a last prefix sum <= T2 \(key.shape\[0\]\)=34, got 35"),
    # 14. Sel[b] == ceil(C[b] / M)
    ("sel-inconsistent", lambda: _call(actual_sel_seq_kvlen=[5, 10]), CannAttentionError,
     r"actual_sel_seq_kvlen: expected Sel\[1\] = ceil\(C\[1\] / M\) = ceil\(13 / 4\) = 4, "
     r"got 5"),
    # 13. max C <= 14000
    ("max-c", lambda: _call(args={1: _t((14001, 2, 32)), 2: _t((14001, 2, 16))},
                            actual_cmp_seq_kvlen=[14001, 14001],
                            actual_sel_seq_kvlen=[3501, 3501], atten_mask=None, topk_mask=None),
     CannAttentionError, r"actual_cmp_seq_kvlen: expected every compressed length C\[b\] <= "
                         r"14000, got max C = 14001"),
    # 15. masks
    ("atten-mask-dtype", lambda: _call(atten_mask=_t((4, 20), torch.float16)),
     CannAttentionTypeError, r"atten_mask: expected dtype bool or uint8, got float16"),
    ("topk-mask-dtype", lambda: _call(topk_mask=_t((4, 5), torch.int32)),
     CannAttentionTypeError, r"topk_mask: expected dtype bool or uint8, got int32"),
    ("atten-mask-shape", lambda: _call(atten_mask=_t((7, 33), torch.bool)), CannAttentionError,
     r"atten_mask: expected shape \(4, 20\) \(max Sq, max C\), got \(7, 33\)"),
    ("topk-mask-shape", lambda: _call(topk_mask=_t((4, 20), torch.bool)), CannAttentionError,
     r"topk_mask: expected shape \(4, 5\) \(max Sq, max ceil\(C / M\)\), got \(4, 20\)"),
]


@pytest.mark.parametrize("call,exc,pattern", [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_rule_is_refused_with_message(call, exc, pattern):
    with pytest.raises(exc, match=pattern) as info:
        call()
    assert str(info.value).startswith("npu_nsa_compress_attention: ")


def test_python_types_are_refused():
    args, kwargs = make(BASE)
    bad = list(args)
    bad[4] = 4.0
    with pytest.raises(CannAttentionTypeError, match=r"head_num: expected an int, got float"):
        npu_nsa_compress_attention(*bad, **kwargs)
    with pytest.raises(CannAttentionTypeError, match=r"actual_seq_qlen: expected a list of int"):
        npu_nsa_compress_attention(*args, **dict(kwargs, actual_seq_qlen="4,7"))
    with pytest.raises(CannAttentionTypeError, match=re.escape("query: expected a torch.Tensor")):
        npu_nsa_compress_attention(None, *args[1:], **kwargs)


def test_valid_base_call_passes():
    out = _call()
    assert out[1].shape == (8, 2, 2)


@pytest.mark.parametrize("d1,d2", [(8, 7), (40, 24), (8, 8), (1, 1)])
def test_head_dims_need_not_be_multiples_of_16(d1, d2):
    """Only MindSpore's page asks for multiples of 16; CANN's tiling pads D (upstream tests use
    D1 = 8, D2 = 7)."""
    out = _call(replace(BASE, d1=d1, d2=d2))
    assert out[0].shape == (8, 4, d2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fp32_fp64_accepted_on_cpu(dtype):
    out, idx, smax, ssum = _call(replace(BASE, dtype=dtype))
    assert out.dtype == dtype and idx.dtype == torch.int32
    assert smax.dtype == ssum.dtype == (torch.float64 if dtype == torch.float64
                                        else torch.float32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fp32_fp64_refused_off_cpu(dtype):
    """On any other device (meta stands in for the NPU here) the fp16 / bf16 rule holds."""
    args, kwargs = make(BASE)
    args = (torch.empty(args[0].shape, dtype=dtype, device="meta"),
            torch.empty(args[1].shape, dtype=dtype, device="meta"),
            torch.empty(args[2].shape, dtype=dtype, device="meta")) + args[3:]
    p = parse("npu_nsa_compress_attention", *args, **dict(kwargs, atten_mask=None,
                                                           topk_mask=None))
    with pytest.raises(CannAttentionTypeError, match=r"query: expected dtype float16 or "
                       rf"bfloat16, got {str(dtype)[6:]}$"):
        check.check(p)
