"""Every validation rule of docs/lightning_indexer.md, Errors (and the project's rules P):
one call that breaks it, and the message that names the argument."""
from __future__ import annotations

import pytest
import torch

import cann_attention  # noqa: F401  (registers torch.ops.custom)
from cann_attention.op_host.common.errors import CannAttentionError, CannAttentionTypeError

BF16 = torch.bfloat16
I32 = torch.int32


def _bsnd(b=2, s1=3, n1=8, s2=40, dtype=BF16):
    return dict(query=torch.randn(b, s1, n1, 128, dtype=dtype),
                key=torch.randn(b, s2, 1, 128, dtype=dtype),
                weights=torch.randn(b, s1, n1, dtype=dtype), sparse_count=16)


def _tnd():
    return dict(query=torch.randn(5, 8, 128, dtype=BF16), key=torch.randn(30, 1, 128, dtype=BF16),
                weights=torch.randn(5, 8, dtype=BF16), layout_query="TND", layout_key="TND",
                actual_seq_lengths_query=torch.tensor([2, 5], dtype=I32),
                actual_seq_lengths_key=torch.tensor([10, 30], dtype=I32), sparse_count=16)


def _pa(block_size=16, blocks=6):
    return dict(query=torch.randn(2, 1, 8, 128, dtype=BF16),
                key=torch.randn(blocks, block_size, 1, 128, dtype=BF16),
                weights=torch.randn(2, 1, 8, dtype=BF16), layout_key="PA_BSND",
                block_table=torch.tensor([[0, 1, 2], [3, 4, 5]], dtype=I32),
                actual_seq_lengths_key=torch.tensor([40, 33], dtype=I32), sparse_count=16)


def _with(base, **changes):
    args = dict(base)
    for name, value in changes.items():
        if value is _DROP:
            args.pop(name)
        else:
            args[name] = value
    return args


_DROP = object()

RULES = [
    # (id, args, error type, message regex)
    ("layout_query", _with(_bsnd(), layout_query="BNSD"), CannAttentionError,
     r"layout_query: expected one of BSND/TND, got 'BNSD'"),
    ("layout_key", _with(_bsnd(), layout_key="BSH"), CannAttentionError,
     r"layout_key: expected one of PA_BSND/BSND/TND, got 'BSH'"),
    ("layout_pair", _with(_tnd(), layout_key="BSND"), CannAttentionError,
     r"layout_key: expected under non-PA conditions, layout_query and layout_key should be "
     r"equal .*got BSND"),
    ("sparse_count_0", _with(_bsnd(), sparse_count=0), CannAttentionError,
     r"sparse_count: expected a value in \[1, 2048\] or one of \[3072, .*8192\], got 0"),
    ("sparse_count_2049", _with(_bsnd(), sparse_count=2049), CannAttentionError,
     r"sparse_count: .* got 2049"),
    ("sparse_count_9000", _with(_bsnd(), sparse_count=9000), CannAttentionError,
     r"sparse_count: .* got 9000"),
    ("sparse_mode", _with(_bsnd(), sparse_mode=1), CannAttentionError,
     r"sparse_mode: expected 0 or 3 \(input attr sparse_mode only supported 0 or 3\), got 1"),
    ("pre_tokens", _with(_bsnd(), pre_tokens=100), CannAttentionError,
     r"pre_tokens: expected 9223372036854775807 \(the default\), got 100"),
    ("next_tokens", _with(_bsnd(), next_tokens=0), CannAttentionError,
     r"next_tokens: expected 9223372036854775807 \(the default\), got 0"),
    ("return_value_PA", _with(_pa(), return_value=True), CannAttentionError,
     r"return_value: expected False when layout_key is PA_BSND, got True"),
    ("query_dtype", _bsnd(dtype=torch.float32), CannAttentionTypeError,
     r"query: expected dtype float16 or bfloat16, got float32"),
    ("key_dtype", _with(_bsnd(), key=torch.randn(2, 40, 1, 128, dtype=torch.float16)),
     CannAttentionTypeError, r"key: expected dtype bfloat16 \(= query\), got float16"),
    ("weights_dtype", _with(_bsnd(), weights=torch.randn(2, 3, 8, dtype=torch.float16)),
     CannAttentionTypeError, r"weights: expected dtype bfloat16 \(= query\) or float32, "
     r"got float16"),
    ("aq_dtype", _with(_bsnd(), actual_seq_lengths_query=torch.tensor([3, 3])),
     CannAttentionTypeError, r"actual_seq_lengths_query: expected dtype int32, got int64"),
    ("ak_dtype", _with(_bsnd(), actual_seq_lengths_key=torch.tensor([3, 3])),
     CannAttentionTypeError, r"actual_seq_lengths_key: expected dtype int32, got int64"),
    ("block_table_dtype", _with(_pa(), block_table=torch.zeros(2, 3, dtype=torch.int64)),
     CannAttentionTypeError, r"block_table: expected dtype int32, got int64"),
    ("query_rank", _with(_bsnd(), query=torch.randn(2, 3, 8, dtype=BF16)), CannAttentionError,
     r"query: expected rank 4 for layout_query BSND"),
    ("query_zero_dim", _with(_bsnd(), query=torch.randn(2, 0, 8, 128, dtype=BF16)),
     CannAttentionError, r"query: expected no zero dimension"),
    ("key_rank", _with(_tnd(), key=torch.randn(1, 30, 1, 128, dtype=BF16)), CannAttentionError,
     r"key: expected rank 3 for layout_key TND"),
    ("weights_rank", _with(_bsnd(), weights=torch.randn(6, 8, dtype=BF16)), CannAttentionError,
     r"weights: expected rank 3 \(\(B, S1, N1\)\)"),
    ("PA_no_block_table", _with(_pa(), block_table=_DROP), CannAttentionError,
     r"block_table: expected a tensor when layout_key is PA_BSND, got None"),
    ("PA_block_table_rank", _with(_pa(), block_table=torch.zeros(6, dtype=I32)),
     CannAttentionError, r"block_table: expected rank 2 \(B, max_blocks_per_seq\)"),
    ("PA_block_table_empty", _with(_pa(), block_table=torch.zeros(2, 0, dtype=I32)),
     CannAttentionError, r"block_table: expected shape\[1\] > 0"),
    ("PA_block_table_batch", _with(_pa(), block_table=torch.zeros(3, 3, dtype=I32)),
     CannAttentionError, r"block_table: expected shape\[0\] == B=2, got shape \(3, 3\)"),
    ("PA_no_ak", _with(_pa(), actual_seq_lengths_key=_DROP), CannAttentionError,
     r"actual_seq_lengths_key: expected a tensor when layout_key is PA_BSND, got None"),
    ("PA_block_size_16", _with(_pa(), key=torch.randn(6, 24, 1, 128, dtype=BF16)),
     CannAttentionError, r"key: expected block_size \(key.shape\[1\]\) a multiple of 16, got 24"),
    ("PA_block_size_1024", _with(_pa(), key=torch.randn(1, 1040, 1, 128, dtype=BF16)),
     CannAttentionError, r"key: expected block_size \(key.shape\[1\]\) in \(0, 1024\], got 1040"),
    ("PA_block_count_0", _with(_pa(), key=torch.randn(0, 16, 1, 128, dtype=BF16)),
     CannAttentionError, r"key: expected block_count \(key.shape\[0\]\) > 0, got 0"),
    ("TND_no_ak", _with(_tnd(), actual_seq_lengths_key=_DROP), CannAttentionError,
     r"actual_seq_lengths_key: expected a tensor when layout_key is TND, got None"),
    ("TND_no_aq", _with(_tnd(), layout_key="PA_BSND", key=torch.randn(4, 16, 1, 128, dtype=BF16),
                        block_table=torch.zeros(2, 2, dtype=I32),
                        actual_seq_lengths_query=_DROP), CannAttentionError,
     r"actual_seq_lengths_query: expected a tensor when layout_query is TND, got None"),
    ("nonPA_block_table", _with(_bsnd(), block_table=torch.zeros(2, 2, dtype=I32)),
     CannAttentionError, r"block_table: expected None when layout_key is BSND"),
    ("key_N2", _with(_bsnd(), key=torch.randn(2, 40, 2, 128, dtype=BF16)), CannAttentionError,
     r"key: expected N2 \(key.shape\[-2\]\) == 1 \(only support 1\), got 2"),
    ("query_D", _with(_bsnd(), query=torch.randn(2, 3, 8, 64, dtype=BF16)), CannAttentionError,
     r"query: expected head_dim \(last dim\) == 128, got 64"),
    ("key_D", _with(_bsnd(), key=torch.randn(2, 40, 1, 64, dtype=BF16)), CannAttentionError,
     r"key: expected head_dim \(last dim\) == 128 \(= query\), got 64"),
    ("aq_empty", _with(_bsnd(), actual_seq_lengths_query=torch.zeros(0, dtype=I32)),
     CannAttentionError, r"actual_seq_lengths_query: expected a non-empty 1-D tensor"),
    ("ak_empty", _with(_bsnd(), actual_seq_lengths_key=torch.zeros(0, dtype=I32)),
     CannAttentionError, r"actual_seq_lengths_key: expected a non-empty 1-D tensor"),
    ("aq_len_BSND", _with(_bsnd(), actual_seq_lengths_query=torch.tensor([3], dtype=I32)),
     CannAttentionError, r"actual_seq_lengths_query: expected 2 elements \(B\), got 1"),
    ("TND_len_aq_ak", _with(_tnd(), actual_seq_lengths_key=torch.tensor([30], dtype=I32)),
     CannAttentionError, r"actual_seq_lengths_key: expected 2 elements \(B\), got 1"),
    ("PA_len_ak", _with(_pa(), actual_seq_lengths_key=torch.tensor([1, 2, 3], dtype=I32)),
     CannAttentionError, r"actual_seq_lengths_key: expected 2 elements \(B\), got 3"),
    ("BSND_key_batch", _with(_bsnd(), key=torch.randn(3, 40, 1, 128, dtype=BF16)),
     CannAttentionError, r"key: expected shape\[0\] == B=2, got shape \(3, 40, 1, 128\)"),
    ("weights_N1", _with(_bsnd(), weights=torch.randn(2, 3, 4, dtype=BF16)), CannAttentionError,
     r"weights: expected shape \(2, 3, 8\) .*got \(2, 3, 4\)"),
    ("weights_T1", _with(_tnd(), weights=torch.randn(4, 8, dtype=BF16)), CannAttentionError,
     r"weights: expected shape \(5, 8\) .*got \(4, 8\)"),
    # project rules (P)
    ("P_N1_64", _bsnd(n1=72), CannAttentionError, r"query: expected N1 \(query.shape\[-2\]\) "
     r"<= 64, got 72"),
    ("P_aq_beyond_S1", _with(_bsnd(), actual_seq_lengths_query=torch.tensor([3, 4], dtype=I32)),
     CannAttentionError, r"actual_seq_lengths_query: expected every length in \[0, S1=3\], "
     r"got 4 at batch 1"),
    ("P_ak_beyond_S2", _with(_bsnd(), actual_seq_lengths_key=torch.tensor([41, 4], dtype=I32)),
     CannAttentionError, r"actual_seq_lengths_key: expected every length in \[0, S2=40\], "
     r"got 41 at batch 0"),
    ("P_ak_negative", _with(_bsnd(), actual_seq_lengths_key=torch.tensor([-1, 4], dtype=I32)),
     CannAttentionError, r"actual_seq_lengths_key: expected every length in \[0, S2=40\]"),
    ("P_TND_decreasing", _with(_tnd(), actual_seq_lengths_query=torch.tensor([3, 2], dtype=I32)),
     CannAttentionError, r"actual_seq_lengths_query: expected non-decreasing, non-negative"),
    ("P_TND_beyond_T2", _with(_tnd(), actual_seq_lengths_key=torch.tensor([10, 31], dtype=I32)),
     CannAttentionError, r"actual_seq_lengths_key: expected a last prefix sum <= T2=30, got 31"),
    ("P_PA_beyond_pages", _with(_pa(), actual_seq_lengths_key=torch.tensor([49, 3], dtype=I32)),
     CannAttentionError, r"actual_seq_lengths_key: expected every length in "
     r"\[0, max_blocks_per_seq\*block_size=48\], got 49"),
    ("P_PA_entry_high", _with(_pa(), block_table=torch.tensor([[0, 1, 2], [3, 6, 5]], dtype=I32)),
     CannAttentionError, r"block_table: expected entries in \[0, block_count=6\) .*"
     r"got block_table\[1, 1\] = 6"),
    ("P_PA_entry_negative", _with(_pa(), block_table=torch.tensor([[0, -1, 2], [3, 4, 5]],
                                                                  dtype=I32)),
     CannAttentionError, r"block_table: expected entries .*got block_table\[0, 1\] = -1"),
]


@pytest.mark.parametrize("args,error,message", [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_lightning_indexer_check_rule(args, error, message):
    with pytest.raises(error, match=r"^npu_lightning_indexer: " + message):
        torch.ops.cann_attention.npu_lightning_indexer(**args)


def test_lightning_indexer_check_tensor_type():
    """A non-tensor argument: the schema refuses it in torch.ops; the Python entry point (the
    op's implementation) names the argument."""
    with pytest.raises(CannAttentionTypeError,
                       match=r"^npu_lightning_indexer: weights: expected a torch.Tensor, got list"):
        cann_attention.npu_lightning_indexer(**_with(_bsnd(), weights=[1.0]))


def test_lightning_indexer_check_accepts_edge_values():
    """Values at the edges of the rules run: sparse_count 3072 and 1, fp32 weights, unused
    page-table entries of -1, zero-length sequences."""
    args = _with(_bsnd(), sparse_count=3072, weights=torch.randn(2, 3, 8))
    assert torch.ops.cann_attention.npu_lightning_indexer(**args)[0].shape == (2, 3, 1, 3072)
    assert torch.ops.cann_attention.npu_lightning_indexer(**_with(_bsnd(), sparse_count=1))[0].shape \
        == (2, 3, 1, 1)
    pa = _with(_pa(), block_table=torch.tensor([[0, 1, -1], [3, -1, 99]], dtype=I32),
               actual_seq_lengths_key=torch.tensor([32, 0], dtype=I32))
    idx, _ = torch.ops.cann_attention.npu_lightning_indexer(**pa)
    assert (idx[1] == -1).all() and (idx[0, 0, 0, :16] >= 0).all()
