"""Every validation rule of op_host/flash_attention/check.py triggers with a message naming the
argument and stating expected vs actual."""
import pytest
import torch

import cann_attention  # noqa: F401
from cann_attention.op_host.common.errors import CannAttentionError, CannAttentionTypeError

OP = torch.ops.cann_attention.npu_flash_attention
I32 = torch.int32


def base():
    q = torch.randn(2, 4, 4, 16)
    k = torch.randn(2, 8, 2, 16)
    return [q, k, k.clone(), 0.25], {}


def tnd():
    q = torch.randn(6, 4, 16)
    k = torch.randn(10, 2, 16)
    return [q, k, k.clone(), 0.25], dict(
        layout_query="TND", layout_kv="TND", actual_seq_lengths_query=torch.tensor([2, 6], dtype=I32),
        actual_seq_lengths_kv=torch.tensor([3, 10], dtype=I32))


def paged():
    q = torch.randn(2, 1, 4, 16)
    k = torch.randn(5, 16, 2, 16)
    return [q, k, k.clone(), 0.25], dict(
        layout_kv="PA_BSND", block_table=torch.tensor([[0, 1], [2, 3]], dtype=I32),
        actual_seq_lengths_kv=torch.tensor([20, 9], dtype=I32))


def _set(i, value):
    def f(a, kw):
        a[i] = value
    return f


def _kw(**upd):
    def f(a, kw):
        kw.update(upd)
    return f


CASES = [
    # id, base, mutation, error type, message fragments
    ("query_dtype", base, _set(0, torch.randn(2, 4, 4, 16).to(torch.float64)),
     CannAttentionTypeError, ["query", "float16, bfloat16 or float32", "float64"]),
    ("key_dtype", base, _set(1, torch.randn(2, 8, 2, 16).half()), CannAttentionTypeError,
     ["key", "float32 (= query)", "float16"]),
    ("value_dtype", base, _set(2, torch.randn(2, 8, 2, 16).half()), CannAttentionTypeError,
     ["value", "float32 (= query)"]),
    ("layout_query", base, _kw(layout_query="BSH"), CannAttentionError,
     ["layout_query", "BSND/TND/BNSD", "'BSH'"]),
    ("layout_kv", base, _kw(layout_kv="BNSD"), CannAttentionError, ["layout_kv", "'BNSD'"]),
    ("layout_pair", base, _kw(layout_kv="TND"), CannAttentionError,
     ["layout_kv", "BSND or PA_BSND with layout_query BSND", "TND"]),
    ("scale_inf", base, _set(3, float("inf")), CannAttentionError, ["scale_value", "finite"]),
    ("sparse_mode", base, _kw(sparse_mode=5), CannAttentionError, ["sparse_mode", "0, 1, 2, 3, 4", "5"]),
    ("mode1_needs_mask", base, _kw(sparse_mode=1), CannAttentionError,
     ["atten_mask", "sparse_mode is 1", "None"]),
    ("empty_band", base, _kw(sparse_mode=4, pre_tokens=3, next_tokens=-4), CannAttentionError,
     ["pre_tokens/next_tokens", ">= 0", "3 + -4"]),
    ("chunk_size", base, _kw(chunk_size=0), CannAttentionError, ["chunk_size", ">= 1", "0"]),
    ("query_rank", base, _set(0, torch.randn(2, 4, 64)), CannAttentionError,
     ["query", "rank 4 for layout BSND"]),
    ("key_rank", base, _set(1, torch.randn(16, 32)), CannAttentionError, ["key", "rank 4"]),
    ("query_zero_dim", base, _set(0, torch.randn(2, 0, 4, 16)), CannAttentionError,
     ["query", "no zero dimension"]),
    ("key_zero_dim", base, _set(1, torch.randn(2, 0, 2, 16)), CannAttentionError,
     ["key", "no zero dimension"]),
    ("value_shape", base, _set(2, torch.randn(2, 8, 2, 32)), CannAttentionError,
     ["value", "(= key)"]),
    ("heads_divide", base, _set(0, torch.randn(2, 4, 3, 16)), CannAttentionError,
     ["key", "dividing N1=3"]),
    ("group_max", base, lambda a, kw: (a.__setitem__(0, torch.randn(1, 2, 128, 16)),
                                       a.__setitem__(1, torch.randn(1, 8, 1, 16)),
                                       a.__setitem__(2, torch.randn(1, 8, 1, 16))),
     CannAttentionError, ["key", "N1 / N2 <= 64", "128 / 1"]),
    ("head_dim", base, lambda a, kw: [a.__setitem__(i, t[..., :8]) for i, t in
                                      enumerate(a[:3])], CannAttentionError,
     ["query", "multiple of 16", "8"]),
    ("head_dim_max", base, lambda a, kw: [a.__setitem__(i, torch.randn(*t.shape[:-1], 528))
                                          for i, t in enumerate(a[:3])], CannAttentionError,
     ["query", "[16, 512]", "528"]),
    ("key_head_dim", base, lambda a, kw: (a.__setitem__(1, torch.randn(2, 8, 2, 32)),
                                          a.__setitem__(2, torch.randn(2, 8, 2, 32))),
     CannAttentionError, ["key", "D (last dim) == 16 (= query)", "32"]),
    ("lengths_dtype", base, _kw(actual_seq_lengths_kv=torch.tensor([1.0, 2.0])),
     CannAttentionTypeError, ["actual_seq_lengths_kv", "int32 or int64", "float32"]),
    ("lengths_rank", base, _kw(actual_seq_lengths_kv=torch.tensor([[1, 2]], dtype=I32)),
     CannAttentionError, ["actual_seq_lengths_kv", "non-empty 1-D"]),
    ("tnd_needs_q_lengths", tnd, _kw(actual_seq_lengths_query=None), CannAttentionError,
     ["actual_seq_lengths_query", "layout_query is TND", "None"]),
    ("tnd_needs_kv_lengths", tnd, _kw(actual_seq_lengths_kv=None), CannAttentionError,
     ["actual_seq_lengths_kv", "layout_kv is TND", "None"]),
    ("lengths_count", base, _kw(actual_seq_lengths_kv=torch.tensor([1, 2, 3], dtype=I32)),
     CannAttentionError, ["actual_seq_lengths_kv", "2 elements (B)", "3"]),
    ("key_batch", base, lambda a, kw: (a.__setitem__(1, torch.randn(3, 8, 2, 16)),
                                       a.__setitem__(2, torch.randn(3, 8, 2, 16))),
     CannAttentionError,
     ["key", "shape[0] == B=2"]),
    ("tnd_decreasing", tnd, _kw(actual_seq_lengths_query=torch.tensor([4, 2], dtype=I32)),
     CannAttentionError, ["actual_seq_lengths_query", "non-decreasing", "2 after 4"]),
    ("tnd_last_is_T", tnd, _kw(actual_seq_lengths_kv=torch.tensor([3, 9], dtype=I32)),
     CannAttentionError, ["actual_seq_lengths_kv", "== T2=10", "9"]),
    ("tnd_beyond_T", tnd, _kw(actual_seq_lengths_query=torch.tensor([2, 7], dtype=I32)),
     CannAttentionError, ["actual_seq_lengths_query", "<= T1=6", "7"]),
    ("q_length_beyond_S1", base, _kw(actual_seq_lengths_query=torch.tensor([5, 1], dtype=I32)),
     CannAttentionError, ["actual_seq_lengths_query", "[0, S1=4]", "5 at batch 0"]),
    ("kv_length_negative", base, _kw(actual_seq_lengths_kv=torch.tensor([-1, 1], dtype=I32)),
     CannAttentionError, ["actual_seq_lengths_kv", "[0, S2=8]", "-1 at batch 0"]),
    ("pa_needs_table", paged, _kw(block_table=None), CannAttentionError,
     ["block_table", "a tensor when layout_kv is PA_BSND", "None"]),
    ("pa_needs_kv_lengths", paged, _kw(actual_seq_lengths_kv=None), CannAttentionError,
     ["actual_seq_lengths_kv", "layout_kv is PA_BSND"]),
    ("table_dtype", paged, _kw(block_table=torch.tensor([[0, 1], [2, 3]])), CannAttentionTypeError,
     ["block_table", "int32", "int64"]),
    ("table_rank", paged, _kw(block_table=torch.tensor([0, 1], dtype=I32)), CannAttentionError,
     ["block_table", "rank 2"]),
    ("table_batch", paged, _kw(block_table=torch.tensor([[0, 1]], dtype=I32)), CannAttentionError,
     ["block_table", "shape[0] == B=2"]),
    ("block_size", paged, lambda a, kw: (a.__setitem__(1, torch.randn(5, 24, 2, 16)),
                                         a.__setitem__(2, torch.randn(5, 24, 2, 16))),
     CannAttentionError, ["key", "block_size (key.shape[1]) a multiple of 16", "24"]),
    ("table_too_short", paged, _kw(actual_seq_lengths_kv=torch.tensor([33, 9], dtype=I32)),
     CannAttentionError, ["actual_seq_lengths_kv", "max_blocks_per_seq*block_size=32", "33"]),
    ("table_without_pa", base, _kw(block_table=torch.zeros(2, 1, dtype=I32)), CannAttentionError,
     ["block_table", "None when layout_kv is BSND"]),
    ("table_entry_outside", paged, _kw(block_table=torch.tensor([[0, 5], [2, -1]], dtype=I32)),
     CannAttentionError, ["block_table", "[0, block_num=5)", "block_table[0, 1] = 5"]),
    ("table_entry_negative", paged, _kw(block_table=torch.tensor([[0, 1], [-1, 3]], dtype=I32)),
     CannAttentionError, ["block_table", "block_table[1, 0] = -1"]),
    ("mask_with_tnd", tnd, _kw(atten_mask=torch.zeros(6, 10, dtype=torch.bool)),
     CannAttentionError, ["atten_mask", "None with layout_query TND"]),
    ("pse_with_tnd", tnd, _kw(pse_shift=torch.zeros(1, 4, 6, 10)), CannAttentionError,
     ["pse_shift", "None with layout_query TND"]),
    ("mask_dtype", base, _kw(atten_mask=torch.zeros(4, 8)), CannAttentionTypeError,
     ["atten_mask", "bool, int8 or uint8", "float32"]),
    ("mask_shape", base, _kw(atten_mask=torch.zeros(2, 2, 4, 8, dtype=torch.bool)),
     CannAttentionError, ["atten_mask", "(2, 1, S1, S2)", "(2, 2, 4, 8)"]),
    ("mask_rows", base, _kw(atten_mask=torch.zeros(3, 8, dtype=torch.bool)), CannAttentionError,
     ["atten_mask", "S1=4", "(3, 8)"]),
    ("mask_cols", base, _kw(atten_mask=torch.zeros(4, 9, dtype=torch.bool)), CannAttentionError,
     ["atten_mask", "last dim == S2=8", "9"]),
    ("mask_cols_paged", paged, _kw(atten_mask=torch.zeros(1, 19, dtype=torch.bool)),
     CannAttentionError, ["atten_mask", ">= max(actual_seq_lengths_kv)=20", "19"]),
    ("pse_dtype", base, _kw(pse_shift=torch.zeros(1, 4, 4, 8, dtype=torch.int32)),
     CannAttentionTypeError, ["pse_shift", "float16, bfloat16 or float32", "int32"]),
    ("pse_shape", base, _kw(pse_shift=torch.zeros(1, 2, 4, 8)), CannAttentionError,
     ["pse_shift", "N1=4", "(1, 2, 4, 8)"]),
    ("pse_cols", base, _kw(pse_shift=torch.zeros(2, 4, 4, 7)), CannAttentionError,
     ["pse_shift", "last dim == S2=8", "7"]),
    ("sink_shape", base, _kw(learnable_sink=torch.zeros(2)), CannAttentionError,
     ["learnable_sink", "shape (4,) (N1)", "(2,)"]),
    ("sink_dtype", base, _kw(learnable_sink=torch.zeros(4, dtype=torch.float64)),
     CannAttentionTypeError, ["learnable_sink", "float32", "float64"]),
    ("query_not_tensor", base, _set(0, [1.0]), CannAttentionTypeError,
     ["query", "a torch.Tensor", "list"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_rule(case):
    _, make, mutate, err, fragments = case
    args, kwargs = make()
    mutate(args, kwargs)
    if isinstance(args[0], list):
        from cann_attention.flash_attention import npu_flash_attention as call
    else:
        call = OP
    with pytest.raises(err) as info:
        call(*args, **kwargs)
    msg = str(info.value)
    assert msg.startswith("npu_flash_attention: "), msg
    for fragment in fragments:
        assert fragment in msg, f"{fragment!r} not in {msg!r}"


@pytest.mark.parametrize("make", [base, tnd, paged])
def test_valid_bases_pass(make):
    args, kwargs = make()
    out, _, _ = OP(*args, **kwargs)
    assert out.shape == args[0].shape and torch.isfinite(out).all()


def test_mask_ignored_for_modes_2_3_4():
    """atten_mask is ignored for modes 2/3/4 (CANN wants a compressed template)."""
    args, _ = base()
    ref, _, _ = OP(*args, sparse_mode=3)
    out, _, _ = OP(*args, sparse_mode=3, atten_mask=torch.ones(2048, 2048, dtype=torch.bool))
    assert torch.equal(out, ref)
