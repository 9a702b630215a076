"""One test per validation rule of docs/sparse_flash_attention.md, Errors (and the project's
own rules, P): each feeds one wrong argument and checks the exception and its message."""
from __future__ import annotations

import pytest
import torch

from cann_attention.op_host.common.errors import CannAttentionError, CannAttentionTypeError
from testing.sparse_flash_attention_cases import make_case

OP = torch.ops.cann_attention.npu_sparse_flash_attention


def bsnd():
    return make_case(B=2, S1=2, S2=32, N1=4, K=8)


def paged():
    return make_case(B=2, S1=2, S2=32, N1=4, K=8, layout_kv="PA_BSND", page=16)


def tnd():
    return make_case(B=2, S1=2, S2=32, N1=4, K=8, layout_query="TND", layout_kv="TND")


def replace_arg(case, i, value):
    case.args = case.args[:i] + (value,) + case.args[i + 1:]
    return case


def expect(case, exc, pattern, **override):
    with pytest.raises(exc, match=pattern):
        case.call(OP, **override)


def test_rule1_not_a_tensor():
    case = replace_arg(bsnd(), 3, [[0, 1]])
    # torch.ops rejects non-tensors in its schema; the Python entry point names the argument
    with pytest.raises((TypeError, RuntimeError)):
        case.call(OP)
    from cann_attention import npu_sparse_flash_attention
    with pytest.raises(CannAttentionTypeError, match="sparse_indices: expected a torch.Tensor"):
        case.call(npu_sparse_flash_attention)


def test_rule2_query_dtype():
    case = bsnd()
    case = replace_arg(case, 0, case.args[0].float())
    expect(case, CannAttentionTypeError, "query: expected dtype float16 or bfloat16, got float32")


def test_rule2_key_value_dtype_differs():
    case = bsnd()
    case = replace_arg(case, 1, case.args[1].half())
    expect(case, TypeError, "key: expected dtype bfloat16")
    case = bsnd()
    case = replace_arg(case, 2, case.args[2].half())
    expect(case, TypeError, "value: expected dtype bfloat16")


def test_rule3_layouts():
    expect(bsnd(), CannAttentionError, "layout_query: expected one of BSND/TND, got 'BNSD'",
           layout_query="BNSD")
    expect(bsnd(), CannAttentionError, "layout_kv: expected one of BSND/TND/PA_BSND",
           layout_kv="BSH")


@pytest.mark.parametrize("sbs", [0, 3, 256])
def test_rule4_sparse_block_size(sbs):
    case = replace_arg(bsnd(), 5, sbs)
    expect(case, CannAttentionError, "sparse_block_size: expected a power of 2 in \\[1, 128\\]")


def test_rule5_query_rank_and_empty_tensors():
    case = bsnd()
    expect(replace_arg(bsnd(), 0, case.args[0][0]), CannAttentionError,
           "query: expected rank 4 for layout BSND")
    expect(replace_arg(bsnd(), 0, case.args[0][:, :0]), CannAttentionError,
           "query: expected no zero dimension")
    expect(replace_arg(bsnd(), 1, case.args[1][:0]), CannAttentionError,
           "key: expected a non-empty tensor")
    expect(replace_arg(bsnd(), 3, case.args[3][..., :0]), CannAttentionError,
           "sparse_indices: expected a non-empty tensor")


@pytest.mark.parametrize("mode", [1, 2, 4])
def test_rule6_sparse_mode(mode):
    expect(bsnd(), CannAttentionError, f"sparse_mode: expected 0 or 3, got {mode}",
           sparse_mode=mode)


def test_rule7_pre_next_tokens():
    expect(bsnd(), CannAttentionError, "pre_tokens: expected 9223372036854775807",
           pre_tokens=100)
    expect(bsnd(), CannAttentionError, "next_tokens: expected 9223372036854775807",
           next_tokens=0)


def test_rule8_attention_mode_and_rope():
    expect(bsnd(), CannAttentionError, "attention_mode: expected query_rope and key_rope to be "
           "None in MHA/GQA mode", attention_mode=0)
    expect(bsnd(), CannAttentionError, "attention_mode: expected 2", attention_mode=1)
    expect(bsnd(), CannAttentionError, "query_rope/key_rope: expected both given or both None",
           key_rope=None)
    expect(bsnd(), CannAttentionError, "query_rope: expected a tensor", query_rope=None,
           key_rope=None)


def test_rule9_layout_pair():
    case = tnd()
    expect(case, CannAttentionError, "layout_kv: expected PA_BSND or the query layout TND, "
           "got BSND", layout_kv="BSND")


def test_rule10_paged_cache():
    case = paged()
    bt = case.kwargs["block_table"]
    expect(case, CannAttentionError, "block_table: expected a tensor when layout_kv is PA_BSND",
           block_table=None)
    expect(paged(), CannAttentionError, "block_table: expected rank 2", block_table=bt[0])
    expect(paged(), CannAttentionError, "block_table: expected shape\\[1\\] > 0",
           block_table=bt[:, :0])
    expect(paged(), CannAttentionError, "block_table: expected shape\\[0\\] == B=2",
           block_table=bt[:1])
    case = paged()
    k = case.args[1]
    for bad, msg in ((k[:, :8], "a multiple of 16"),
                     (torch.zeros(1, 1040, 1, 512, dtype=k.dtype), "in \\(0, 1024\\]")):
        c = paged()
        c = replace_arg(replace_arg(c, 1, bad), 2, bad)
        c.kwargs["key_rope"] = torch.zeros(bad.shape[:-1] + (64,), dtype=k.dtype)
        expect(c, CannAttentionError, "key: expected block_size \\(key.shape\\[1\\]\\) " + msg)
    c = replace_arg(paged(), 5, 32)
    expect(c, CannAttentionError, "sparse_block_size: expected a divisor of block_size=16")
    expect(replace_arg(replace_arg(paged(), 1, k[0]), 2, k[0]), CannAttentionError,
           "key: expected rank 4 \\(block_num, block_size, 1, 512\\) for PA_BSND")


def test_rule10_block_num_zero():
    c = paged()
    k = c.args[1][:0]
    c = replace_arg(replace_arg(c, 1, k), 2, k)
    c.kwargs["key_rope"] = c.kwargs["key_rope"][:0]
    expect(c, CannAttentionError, "key: expected a non-empty tensor")


def test_rule11_block_table_without_paging():
    expect(bsnd(), CannAttentionError, "block_table: expected None when layout_kv is BSND",
           block_table=torch.zeros(2, 2, dtype=torch.int32))


def test_rule12_heads():
    case = bsnd()
    k2 = case.args[1].expand(-1, -1, 2, -1)
    c = replace_arg(replace_arg(bsnd(), 1, k2), 2, k2)
    c.kwargs["key_rope"] = c.kwargs["key_rope"].expand(-1, -1, 2, -1)
    expect(c, CannAttentionError, "key: expected N2 \\(key.shape\\[-2\\]\\) == 1, got 2")
    c = make_case(B=1, S1=1, S2=16, N1=3, K=4)
    expect(c, CannAttentionError, "query: expected N1 .* in \\{1, 2, 4, ..., 128\\}, got 3")
    c = make_case(B=1, S1=1, S2=16, N1=256, K=4)
    expect(c, CannAttentionError, "got 256")


def test_rule13_head_dims():
    case = bsnd()
    q = case.args[0][..., :256]
    expect(replace_arg(bsnd(), 0, q), CannAttentionError, "query: expected D \\(last dim\\) == 512")
    v = case.args[2][..., :256]
    expect(replace_arg(bsnd(), 2, v), CannAttentionError, "value: expected D \\(last dim\\) == 512")
    expect(bsnd(), CannAttentionError, "query_rope: expected Dr \\(last dim\\) == 64",
           query_rope=case.kwargs["query_rope"][..., :32])
    expect(bsnd(), CannAttentionError, "query_rope: expected rank 4",
           query_rope=case.kwargs["query_rope"][0])


def test_rule14_shape_consistency():
    case = bsnd()
    expect(bsnd(), CannAttentionError, "key_rope: expected shape \\(2, 32, 1, 64\\)",
           key_rope=case.kwargs["key_rope"][:, :16])
    expect(bsnd(), CannAttentionError, "query_rope: expected shape \\(2, 2, 4, 64\\)",
           query_rope=case.kwargs["query_rope"][:, :1])
    expect(replace_arg(bsnd(), 3, case.args[3].expand(-1, -1, 2, -1)), CannAttentionError,
           "sparse_indices: expected shape \\(2, 2, 1, 'K'\\)")
    expect(replace_arg(bsnd(), 2, case.args[2][:, :16]), CannAttentionError,
           "value: expected shape \\(2, 32, 1, 512\\)")


def test_rule15_dtype_consistency():
    case = bsnd()
    expect(bsnd(), CannAttentionTypeError, "key_rope: expected dtype bfloat16",
           key_rope=case.kwargs["key_rope"].half())
    expect(bsnd(), CannAttentionTypeError, "query_rope: expected dtype bfloat16",
           query_rope=case.kwargs["query_rope"].half())
    expect(replace_arg(bsnd(), 3, case.args[3].long()), CannAttentionTypeError,
           "sparse_indices: expected dtype int32, got int64")
    p = paged()
    expect(p, CannAttentionTypeError, "block_table: expected dtype int32",
           block_table=p.kwargs["block_table"].long())
    expect(bsnd(), CannAttentionTypeError, "actual_seq_lengths_kv: expected dtype int32",
           actual_seq_lengths_kv=torch.tensor([3, 4]))


def test_rule16_required_lengths():
    expect(tnd(), CannAttentionError, "actual_seq_lengths_query: expected a tensor when "
           "layout_query is TND", actual_seq_lengths_query=None)
    expect(tnd(), CannAttentionError, "actual_seq_lengths_kv: expected a tensor when "
           "layout_kv is TND", actual_seq_lengths_kv=None)
    expect(paged(), CannAttentionError, "actual_seq_lengths_kv: expected a tensor when "
           "layout_kv is PA_BSND", actual_seq_lengths_kv=None)


def test_rule17_length_vector_size():
    expect(bsnd(), CannAttentionError, "actual_seq_lengths_kv: expected 2 elements \\(B\\), got 1",
           actual_seq_lengths_kv=torch.tensor([3], dtype=torch.int32))
    expect(bsnd(), CannAttentionError, "actual_seq_lengths_query: expected a non-empty 1-D",
           actual_seq_lengths_query=torch.zeros(0, dtype=torch.int32))


@pytest.mark.parametrize("layout_query", ["BSND", "TND"])
def test_rule18_lse_with_paged_cache_is_accepted(layout_query):
    """CANN's tiling refuses lse with PA_BSND; vllm-ascend's build returns it (docs): the
    statistics take the query layout's shapes, (B, 1, S1, N1) or (1, T1, N1)."""
    case = make_case(B=2, S1=2, S2=32, N1=4, K=8, layout_query=layout_query,
                     layout_kv="PA_BSND", page=16)
    _, smax, ssum = case.call(OP, return_softmax_lse=True)
    want = (2, 1, 2, 4) if layout_query == "BSND" else (1, 4, 4)
    assert smax.shape == ssum.shape == want and smax.dtype == ssum.dtype == torch.float32


def test_projectP_lengths_inside_tensors():
    expect(bsnd(), CannAttentionError, "actual_seq_lengths_kv: expected every length in "
           "\\[0, S2=32\\], got 33 at batch 1",
           actual_seq_lengths_kv=torch.tensor([3, 33], dtype=torch.int32))
    expect(bsnd(), CannAttentionError, "actual_seq_lengths_query: expected every length in "
           "\\[0, S1=2\\], got -1 at batch 0",
           actual_seq_lengths_query=torch.tensor([-1, 2], dtype=torch.int32))
    expect(tnd(), CannAttentionError, "actual_seq_lengths_query: expected non-decreasing, "
           "non-negative inclusive prefix sums, got 2 after 3 at batch 1",
           actual_seq_lengths_query=torch.tensor([3, 2], dtype=torch.int32))
    expect(tnd(), CannAttentionError, "actual_seq_lengths_query: expected non-decreasing, "
           "non-negative inclusive prefix sums, got -1 after 0 at batch 0",
           actual_seq_lengths_query=torch.tensor([-1, 2], dtype=torch.int32))
    expect(tnd(), CannAttentionError, "actual_seq_lengths_kv: expected a last prefix sum "
           "<= T2=64", actual_seq_lengths_kv=torch.tensor([32, 65], dtype=torch.int32))
    expect(paged(), CannAttentionError, "max_blocks_per_seq\\*block_size=48",
           actual_seq_lengths_kv=torch.tensor([32, 49], dtype=torch.int32))


def test_projectP_block_table_entries_out_of_range():
    case = paged()
    bt = case.kwargs["block_table"].clone()
    bt[1, 0] = case.args[1].shape[0]          # one past the last page
    expect(case, CannAttentionError, "block_table: expected entries in \\[0, block_num=7\\).*"
           "block_table\\[1, 0\\] = 7", block_table=bt)
    bt[1, 0] = -1
    expect(case, CannAttentionError, "block_table\\[1, 0\\] = -1", block_table=bt)


def test_projectP_sinks():
    expect(bsnd(), CannAttentionError, "sinks: expected shape \\(4,\\)", sinks=torch.zeros(3))
    expect(bsnd(), CannAttentionTypeError, "sinks: expected dtype float32",
           sinks=torch.zeros(4, dtype=torch.bfloat16))


def test_rank0_value_and_query_rope_are_named_not_index_errors():
    case = bsnd()
    expect(replace_arg(case, 2, torch.tensor(1.0, dtype=torch.bfloat16)), CannAttentionError,
           r"value: expected a dimension at index -1, got shape \(\)")
    case = bsnd()
    expect(case, CannAttentionError, r"query_rope: expected a dimension at index -1, got shape "
           r"\(\)", query_rope=torch.tensor(1.0, dtype=torch.bfloat16))
