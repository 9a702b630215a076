"""Every validation rule (docs/incre_flash_attention.md, Errors) raises a clear error.

Each case starts from a valid decode call and breaks one rule; the test checks the exception
class of MindSpore's split (TypeError / ValueError / RuntimeError) and the message, which names
the argument and states expected vs actual.
"""
from __future__ import annotations

import pytest
import torch

import cann_attention
from cann_attention.op_host.common.errors import CannAttentionError

B, N, N2, D, S = 2, 8, 2, 64, 64
BF, FP = torch.bfloat16, torch.float16


def base(layout="BSH", dtype=BF):
    q = {"BSH": (B, 1, N * D), "BNSD": (B, N, 1, D), "BSND": (B, 1, N, D)}[layout]
    kv = {"BSH": (B, S, N2 * D), "BNSD": (B, N2, S, D), "BSND": (B, S, N2, D)}[layout]
    return dict(query=torch.randn(q).to(dtype), key=torch.randn(kv).to(dtype),
                value=torch.randn(kv).to(dtype), num_heads=N, num_key_value_heads=N2,
                input_layout=layout, scale_value=0.125)


def paged(block_size=16, kv_dtype=BF, lens=(40, 20)):
    a = base()
    blocks = 8
    a.update(key=torch.randn(blocks, block_size, N2 * D).to(kv_dtype),
             value=torch.randn(blocks, block_size, N2 * D).to(kv_dtype),
             block_table=torch.arange(8, dtype=torch.int32).reshape(2, 4) % blocks,
             block_size=block_size, actual_seq_lengths=list(lens))
    if kv_dtype == torch.int8:
        a["antiquant_scale"] = torch.ones(2, N2 * D, dtype=BF)
    return a


def paged4(layout="BSH", kv_dtype=BF, bs=16, n2=N2, d=D):
    """paged() with vLLM's 4-D cache (block_num, block_size, kvN, D) and a BSH / BSND query
    (``bs``, ``n2``, ``d`` break the cache's shape)."""
    a = paged(kv_dtype=kv_dtype)
    a.update(key=torch.randn(8, bs, n2, d).to(kv_dtype), value=torch.randn(8, bs, n2, d).to(
        kv_dtype), input_layout=layout)
    if layout == "BSND":
        a["query"] = a["query"].reshape(B, 1, N, D)
        if kv_dtype == torch.int8:
            a["antiquant_scale"] = torch.ones(2, N2, D, dtype=BF)
    return a


def with_(a, **kw):
    return {**a, **kw}


def int8_kv(a, layout="BSH"):
    shp = {"BSH": (2, N2 * D), "BNSD": (2, N2, 1, D), "BSND": (2, N2, D)}[layout]
    return with_(a, key=a["key"].to(torch.int8), value=a["value"].to(torch.int8),
                 antiquant_scale=torch.ones(shp, dtype=a["query"].dtype))


CASES = [
    # (id, args, exception, message regex)
    ("query_dtype", with_(base(), query=torch.randn(B, 1, N * D)), TypeError,
     r"query: expected dtype float16 or bfloat16, got float32"),
    ("kv_dtype_differ", with_(base(), value=torch.randn(B, S, N2 * D).half()), TypeError,
     r"value: expected dtype bfloat16 \(= key\), got float16"),
    ("fp16_query_bf16_kv", with_(base(dtype=FP), key=torch.randn(B, S, N2 * D).to(BF),
                                 value=torch.randn(B, S, N2 * D).to(BF)), TypeError,
     r"key: expected dtype float16 \(= query\) or int8, got bfloat16"),
    ("int8_kv_without_scale", with_(base(), key=torch.zeros(B, S, N2 * D, dtype=torch.int8),
                                    value=torch.zeros(B, S, N2 * D, dtype=torch.int8)),
     RuntimeError, r"antiquant_scale: expected a tensor when key/value are int8"),
    ("scale_without_int8", with_(base(), antiquant_scale=torch.ones(2, N2 * D, dtype=BF)),
     RuntimeError, r"key: expected dtype int8 when antiquant_scale is given"),
    ("mask_dtype", with_(base(), attn_mask=torch.zeros(B, S)), TypeError,
     r"attn_mask: expected dtype bool, int8 or uint8, got float32"),
    ("pse_dtype_fp32", with_(base(), pse_shift=torch.zeros(1, N, 1, S)), TypeError,
     r"pse_shift: expected dtype float16 or bfloat16, got float32"),
    ("pse_dtype_ne_query", with_(base(), pse_shift=torch.zeros(1, N, 1, S, dtype=FP)),
     TypeError, r"pse_shift: expected dtype bfloat16 \(= query\), got float16"),
    ("scale_value_type", with_(base(), scale_value="0.1"), TypeError,
     r"scale_value: expected a float, got str"),
    ("input_layout_type", with_(base(), input_layout=1), TypeError,
     r"input_layout: expected a str, got int"),
    ("num_heads_type", with_(base(), num_heads=8.0), TypeError,
     r"num_heads: expected an int, got float"),
    ("num_kv_heads_type", with_(base(), num_key_value_heads="2"), TypeError,
     r"num_key_value_heads: expected an int, got str"),
    ("inner_precise_type", with_(base(), inner_precise=1.0), TypeError,
     r"inner_precise: expected an int, got float"),
    ("quant_scale1_dtype", with_(base(), quant_scale1=torch.ones(1, dtype=FP)), TypeError,
     r"quant_scale1: expected dtype float32, got float16"),
    ("quant_scale2_dtype", with_(base(dtype=FP), quant_scale2=torch.ones(1, dtype=FP)),
     TypeError, r"quant_scale2: expected a float32 tensor, got float16"),
    ("quant_offset2_dtype", with_(base(dtype=FP), quant_scale2=torch.ones(1),
                                  quant_offset2=torch.ones(1, dtype=torch.int32)), TypeError,
     r"quant_offset2: expected a float32 tensor, got int32"),
    ("asl_length", with_(base(), actual_seq_lengths=[1, 2, 3]), ValueError,
     r"actual_seq_lengths: expected length 1 or B=2, got 3"),
    ("layout_value", with_(base(), input_layout="TND"), ValueError,
     r"input_layout: expected one of BSH/BNSD/BSND, got 'TND'"),
    ("heads_not_dividing_qh", with_(base(), num_heads=7, num_key_value_heads=1), ValueError,
     r"num_heads: expected a divisor of Q_H=512, got 7"),
    ("heads_not_multiple_of_kv", with_(base(), num_key_value_heads=3), ValueError,
     r"num_heads: expected a multiple of num_key_value_heads=3, got 8"),
    ("num_heads_nonpositive", with_(base(), num_heads=0), RuntimeError,
     r"num_heads: expected > 0, got 0"),
    ("mask_shape_rank", with_(base(), attn_mask=torch.zeros(B, 2, S, dtype=torch.bool)),
     RuntimeError, r"attn_mask: expected shape \(B, S'\), \(B, 1, S'\) or \(B, 1, 1, S'\)"),
    ("mask_batch", with_(base(), attn_mask=torch.zeros(3, S, dtype=torch.bool)), RuntimeError,
     r"attn_mask: expected shape .* with B=2, got shape \(3, 64\)"),
    ("mask_too_short", with_(base(), attn_mask=torch.zeros(B, S - 1, dtype=torch.bool)),
     RuntimeError, r"attn_mask: expected S' \(last dim\) >= 64"),
    ("query_empty", with_(base(), query=torch.zeros(0, 1, N * D, dtype=BF)), RuntimeError,
     r"query: expected a non-empty tensor"),
    ("group_over_64", with_(base(), query=torch.randn(1, 1, 128 * 8).to(BF),
                            key=torch.randn(1, S, 8).to(BF), value=torch.randn(1, S, 8).to(BF),
                            num_heads=128, num_key_value_heads=1), RuntimeError,
     r"num_heads: expected num_heads / num_key_value_heads <= 64, got 128"),
    ("head_dim_over_512", with_(base(), query=torch.randn(1, 1, 1024).to(BF),
                                key=torch.randn(1, S, 1024).to(BF),
                                value=torch.randn(1, S, 1024).to(BF), num_heads=1,
                                num_key_value_heads=1), RuntimeError,
     r"query: expected head dim D <= 512, got 1024"),
    ("num_heads_over_256", with_(base(), query=torch.randn(1, 1, 512).to(BF),
                                 key=torch.randn(1, S, 512).to(BF),
                                 value=torch.randn(1, S, 512).to(BF), num_heads=512,
                                 num_key_value_heads=0), RuntimeError,
     r"num_heads: expected <= 256, got 512"),
    ("bsh_qs_not_1", with_(base(), query=torch.randn(B, 2, N * D).to(BF)), RuntimeError,
     r"query: expected Q_S \(dim 1\) == 1"),
    ("bnsd_rank", with_(base("BNSD"), query=torch.randn(B, N, D).to(BF)), RuntimeError,
     r"query: expected rank 4 for input_layout BNSD"),
    ("bnsd_heads", with_(base("BNSD"), num_heads=4, num_key_value_heads=2), RuntimeError,
     r"query: expected N \(dim 1\) == num_heads=4"),
    ("key_rank", with_(base("BSND"), key=torch.randn(B, S, N2 * D).to(BF),
                       value=torch.randn(B, S, N2 * D).to(BF)), RuntimeError,
     r"key: expected rank 4 \(B, S, kvN, D\) for input_layout BSND"),
    ("key_heads", with_(base("BNSD"), key=torch.randn(B, 4, S, D).to(BF),
                        value=torch.randn(B, 4, S, D).to(BF)), RuntimeError,
     r"key: expected kvN \(dim 1\) == num_key_value_heads=2"),
    ("key_batch", with_(base(), key=torch.randn(3, S, N2 * D).to(BF),
                        value=torch.randn(3, S, N2 * D).to(BF)), RuntimeError,
     r"key: expected batch \(dim 0\) == B=2"),
    ("value_shape", with_(base(), value=torch.randn(B, S + 1, N2 * D).to(BF)), RuntimeError,
     r"value: expected shape \(2, 64, 128\) \(= key\)"),
    ("asl_value_range", with_(base(), actual_seq_lengths=[65, 3]), RuntimeError,
     r"actual_seq_lengths: expected every length in \[0, S=64\], got 65 at batch 0"),
    ("asl_negative", with_(base(), actual_seq_lengths=[-1]), RuntimeError,
     r"actual_seq_lengths: expected every length in \[0, S=64\], got -1 at batch 0"),
    ("pa_block_size_zero", with_(paged(), block_size=0), RuntimeError,
     r"block_size: expected != 0 when block_table is given, got 0"),
    ("pa_block_size_align", paged(block_size=24), RuntimeError,
     r"block_size: expected a positive multiple of 16 for bfloat16 key/value, got 24"),
    ("pa_block_size_align_int8", paged(block_size=16, kv_dtype=torch.int8), RuntimeError,
     r"block_size: expected a positive multiple of 32 for int8 key/value, got 16"),
    ("pa_block_size_max", paged(block_size=528), RuntimeError,
     r"block_size: expected <= 512, got 528"),
    ("pa_table_dtype", with_(paged(), block_table=torch.zeros(2, 4, dtype=torch.int64)),
     TypeError, r"block_table: expected dtype int32, got int64"),
    ("pa_table_rank", with_(paged(), block_table=torch.zeros(8, dtype=torch.int32)),
     RuntimeError, r"block_table: expected rank 2"),
    ("pa_table_batch", with_(paged(), block_table=torch.zeros(3, 4, dtype=torch.int32)),
     RuntimeError, r"block_table: expected shape\[0\] == B=2"),
    ("pa_needs_lengths", with_(paged(), actual_seq_lengths=None), RuntimeError,
     r"actual_seq_lengths: expected a list when block_table is given"),
    ("pa_lengths_beyond_table", paged(lens=(65, 1)), RuntimeError,
     r"actual_seq_lengths: expected every length in \[0, max_block_num_per_seq\*block_size=64\]"),
    ("pa_too_few_blocks", with_(paged(), key=torch.randn(3, 16, N2 * D).to(BF),
                                value=torch.randn(3, 16, N2 * D).to(BF),
                                block_table=torch.zeros(2, 4, dtype=torch.int32)), RuntimeError,
     r"key: expected block_num \(dim 0\) >= sum_b ceil\(L_b / block_size\) = 5, got 3"),
    ("pa_bnsd_key_needs_bnsd_query", with_(paged(), key=torch.randn(8, N2, 16, D).to(BF),
                                           value=torch.randn(8, N2, 16, D).to(BF)),
     RuntimeError, r"key: expected \(block_num, 16, 2, 64\) \(block_num, block_size, kvN, D\) "
                   r"for input_layout BSH \(\(block_num, kvN, block_size, D\) needs BNSD\), "
                   r"got shape \(8, 2, 16, 64\)"),
    ("pa4_bsh_head_dim", paged4(d=D // 2), RuntimeError,
     r"key: expected \(block_num, 16, 2, 64\) \(block_num, block_size, kvN, D\) for "
     r"input_layout BSH .* got shape \(8, 16, 2, 32\)"),
    ("pa4_bsh_kv_heads", paged4(n2=N2 * 2), RuntimeError,
     r"key: expected \(block_num, 16, 2, 64\) .* got shape \(8, 16, 4, 64\)"),
    ("pa4_bsnd_block_dim", paged4(layout="BSND", bs=32), RuntimeError,
     r"key: expected \(block_num, 16, 2, 64\) \(block_num, block_size, kvN, D\) for "
     r"input_layout BSND .* got shape \(8, 32, 2, 64\)"),
    ("pa4_int8_bsh_block_size_align", paged4(kv_dtype=torch.int8), RuntimeError,
     r"block_size: expected a positive multiple of 32 for int8 key/value, got 16"),
    ("pa4_value_rank_differs", with_(paged4(), value=torch.randn(8, 16, N2 * D).to(BF)),
     RuntimeError, r"value: expected shape \(8, 16, 2, 64\) \(= key\), got \(8, 16, 128\)"),
    ("pa4_bnsd_with_vllm_shape", with_(paged4(), query=torch.randn(B, N, 1, D).to(BF),
                                       input_layout="BNSD", key=torch.randn(8, 16, 4, D).to(BF),
                                       value=torch.randn(8, 16, 4, D).to(BF)), RuntimeError,
     r"key: expected \(block_num, 2, 16, 64\) \(block_num, kvN, block_size, D\), "
     r"got shape \(8, 16, 4, 64\)"),
    ("pa_key_rank_5", with_(paged(), key=torch.randn(8, 16, N2, D, 1).to(BF),
                            value=torch.randn(8, 16, N2, D, 1).to(BF)), RuntimeError,
     r"key: expected rank 3 \(block_num, block_size, kvH\) or 4 \(\(block_num, kvN, "
     r"block_size, D\) with BNSD, \(block_num, block_size, kvN, D\) with BSH / BSND\)"),
    ("pa_key_block_dim", with_(paged(), key=torch.randn(8, 32, N2 * D).to(BF),
                               value=torch.randn(8, 32, N2 * D).to(BF)), RuntimeError,
     r"key: expected block_size \(dim 1\) == block_size=16"),
    ("pa_table_entry_out_of_range",
     with_(paged(), block_table=torch.tensor([[0, 1, 9, 5], [3, 4, -1, -1]], dtype=torch.int32)),
     RuntimeError, r"block_table: expected entries in \[0, block_num=8\) .* got "
                   r"block_table\[0, 2\] = 9"),
    ("antiquant_shape", with_(int8_kv(base()), antiquant_scale=torch.ones(2, N2, D, dtype=BF)),
     RuntimeError, r"antiquant_scale: expected The shape of antiquant parameter \(2, 128\)"),
    ("antiquant_dtype", with_(int8_kv(base()), antiquant_scale=torch.ones(2, N2 * D)),
     TypeError, r"antiquant_scale: expected dtype bfloat16 \(= query\), got float32"),
    ("antiquant_offset_dtype", with_(int8_kv(base()), antiquant_offset=torch.ones(2, N2 * D,
                                                                                 dtype=FP)),
     TypeError, r"antiquant_offset: expected dtype bfloat16 \(= antiquant_scale\), got float16"),
    ("antiquant_offset_shape", with_(int8_kv(base()), antiquant_offset=torch.ones(2, dtype=BF)),
     RuntimeError, r"antiquant_offset: expected The shape of antiquant parameter \(2, 128\)"),
    ("antiquant_offset_alone", with_(base(), antiquant_offset=torch.ones(2, dtype=BF)),
     RuntimeError, r"antiquant_offset: expected None when antiquant_scale is None"),
    ("dequant_scale1_not_enabled", with_(base(), dequant_scale1=torch.ones(1)), RuntimeError,
     r"dequant_scale1: expected None \(not enabled"),
    ("quant_scale1_not_enabled", with_(base(), quant_scale1=torch.ones(1)), RuntimeError,
     r"quant_scale1: expected None \(not enabled"),
    ("dequant_scale2_not_enabled", with_(base(), dequant_scale2=torch.ones(1)), RuntimeError,
     r"dequant_scale2: expected None \(not enabled"),
    ("quant_offset2_alone", with_(base(), quant_offset2=torch.ones(1)), RuntimeError,
     r"quant_offset2: expected None when quant_scale2 is None"),
    ("quant_scale2_shape", with_(base(), quant_scale2=torch.ones(3)), RuntimeError,
     r"quant_scale2: expected 1 element \(per-tensor\) or N\*D=512 elements"),
    ("quant_offset2_shape", with_(base(), quant_scale2=torch.ones(1),
                                  quant_offset2=torch.ones(1, 1)), RuntimeError,
     r"quant_offset2: expected shape \(1,\) \(= quant_scale2\), got shape \(1, 1\)"),
    ("per_channel_postquant_with_pa", with_(paged(), quant_scale2=torch.ones(N * D)),
     RuntimeError, r"quant_scale2: expected per-tensor .* page attention"),
    ("pse_rank", with_(base(), pse_shift=torch.zeros(N, 1, S, dtype=BF)), RuntimeError,
     r"pse_shift: expected rank 4"),
    ("pse_shape", with_(base(), pse_shift=torch.zeros(B, N, 2, S, dtype=BF)), RuntimeError,
     r"pse_shift: expected shape \(1 or 2, 8, 1, S\)"),
    ("pse_too_short", with_(base(), pse_shift=torch.zeros(1, N, 1, S - 1, dtype=BF)),
     RuntimeError, r"pse_shift: expected S \(last dim\) >= 64"),
    ("pse_head_dim", with_(base(), query=torch.randn(B, 1, N * 8).to(BF),
                           key=torch.randn(B, S, N2 * 8).to(BF),
                           value=torch.randn(B, S, N2 * 8).to(BF),
                           pse_shift=torch.zeros(1, N, 1, S, dtype=BF)), RuntimeError,
     r"pse_shift: expected head dim D a multiple of 16"),
    ("inner_precise_value", with_(base(), inner_precise=2), RuntimeError,
     r"inner_precise: expected precision mode\[2\] should be 0 or 1, got 2"),
    ("kv_padding_shape", with_(base(), actual_seq_lengths=[3], kv_padding_size=[1, 2]),
     RuntimeError, r"kv_padding_size: expected shape \(\) or \(1,\), got 2 values"),
    ("tensor_list_length", with_(base(), key=[torch.randn(1, S, N2 * D).to(BF)] * 3,
                                 value=[torch.randn(1, S, N2 * D).to(BF)] * 3), RuntimeError,
     r"key: expected a list of 1 or B=2 tensors, got 3 tensors"),
    ("tensor_list_shapes", with_(base(), key=[torch.randn(1, S, N2 * D).to(BF),
                                              torch.randn(1, S, D).to(BF)],
                                 value=[torch.randn(1, S, N2 * D).to(BF)] * 2), RuntimeError,
     r"key: expected batch-1 tensors of shape \(1, 64, 128\) except the S axis"),
    ("tensor_list_with_pa", with_(paged(), key=[torch.randn(1, S, N2 * D).to(BF)] * 2,
                                  value=[torch.randn(1, S, N2 * D).to(BF)] * 2), RuntimeError,
     r"block_table: expected None in tensor-list mode"),
    ("tensor_list_length_over_own_s", with_(base(), key=[torch.randn(1, 10, N2 * D).to(BF),
                                                         torch.randn(1, 20, N2 * D).to(BF)],
                                            value=[torch.randn(1, 10, N2 * D).to(BF),
                                                   torch.randn(1, 20, N2 * D).to(BF)],
                                            actual_seq_lengths=[15, 15]), RuntimeError,
     r"actual_seq_lengths: expected a length in \[0, S_b=10\]"),
    ("batch_over_65536", with_(base(), query=torch.randn(65537, 1, 16).to(BF),
                               key=torch.randn(65537, 1, 16).to(BF),
                               value=torch.randn(65537, 1, 16).to(BF), num_heads=1,
                               num_key_value_heads=0), RuntimeError,
     r"query: expected B <= 65536, got 65537"),
    ("pa_kvh_over_65535", dict(query=torch.randn(1, 1, 128 * 512).to(BF),
                               key=torch.randn(1, 16, 128 * 512).to(BF),
                               value=torch.randn(1, 16, 128 * 512).to(BF), num_heads=128,
                               block_table=torch.zeros(1, 1, dtype=torch.int32), block_size=16,
                               actual_seq_lengths=[16]), RuntimeError,
     r"key: expected kvH <= 65535 for the paged layout"),
    ("pa4_kvh_over_65535", dict(query=torch.randn(1, 1, 128 * 512).to(BF),
                                key=torch.randn(1, 16, 128, 512).to(BF),
                                value=torch.randn(1, 16, 128, 512).to(BF), num_heads=128,
                                block_table=torch.zeros(1, 1, dtype=torch.int32), block_size=16,
                                actual_seq_lengths=[16]), RuntimeError,
     r"key: expected kvH <= 65535 for the paged layout \(block_num, block_size, kvH\), "
     r"got 65536"),
    ("pa_too_many_blocks_per_seq", with_(paged(), block_table=torch.zeros(2, 16385,
                                                                          dtype=torch.int32)),
     RuntimeError, r"block_table: expected max_block_num_per_seq \(shape\[1\]\) in \[1, 16384\]"),
    ("asl_float_tensor", with_(base(), actual_seq_lengths=torch.tensor([1.0, 2.0])), TypeError,
     r"actual_seq_lengths: expected an integer tensor"),
]


@pytest.mark.parametrize("args,exc,msg", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_incre_flash_attention_rule(args, exc, msg):
    with pytest.raises(exc, match=msg) as info:
        cann_attention.incre_flash_attention(**args)
    assert isinstance(info.value, CannAttentionError)
    assert str(info.value).startswith("npu_incre_flash_attention: ")


def test_incre_flash_attention_rules_also_raise_through_torch_ops():
    a = with_(base(), actual_seq_lengths=[1, 2, 3])
    with pytest.raises(ValueError, match="actual_seq_lengths: expected length 1 or B=2"):
        torch.ops.cann_attention.npu_incre_flash_attention(a.pop("query"), a.pop("key"), a.pop("value"),
                                                   **a)


def test_incre_flash_attention_unused_table_entries_are_not_read():
    """Entries past ceil(L_b / block_size) may hold anything (-1 here): accepted, never read."""
    a = with_(paged(), block_table=torch.tensor([[0, 1, 2, -1], [3, 4, -7, 99]],
                                                dtype=torch.int32))
    out = cann_attention.incre_flash_attention(**a)
    assert torch.isfinite(out.float()).all()


def test_incre_flash_attention_valid_base_calls_pass():
    for layout in ("BSH", "BNSD", "BSND"):
        cann_attention.incre_flash_attention(**base(layout))
    cann_attention.incre_flash_attention(**paged())
    cann_attention.incre_flash_attention(**paged(block_size=32, kv_dtype=torch.int8))
    for layout in ("BSH", "BSND"):     # vLLM's 4-D cache (block_num, block_size, kvN, D)
        cann_attention.incre_flash_attention(**paged4(layout))
        a = paged4(layout, kv_dtype=torch.int8, bs=32)
        a.update(block_size=32)
        cann_attention.incre_flash_attention(**a)
