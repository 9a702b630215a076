"""int8 post-quant rounding (postquant.py): half-to-even, saturation and the NPU fp16 paths."""
from __future__ import annotations

import torch

from cann_attention.op_kernel.incre_flash_attention.postquant import (
    quantize, to_fp16_half_away)
from cann_attention.op_kernel.incre_flash_attention.reference import postquant


def test_incre_flash_attention_postquant_half_to_even_and_saturation():
    o = torch.tensor([[0.5, 1.5, 2.5, -0.5, -1.5, 300.0, -300.0, 126.6]])
    got = quantize(o, torch.tensor([1.0]), None)
    assert got.tolist() == [[0, 2, 2, 0, -2, 127, -128, 127]]
    assert torch.equal(got, postquant(o, torch.tensor([1.0]), None))


def test_incre_flash_attention_postquant_per_tensor_npu_fp16_path():
    # o = 0.12165, s = 37: fp32 gives 4.50105 -> 5; in fp16, o -> 0.12164307 and the product
    # rounds to 4.5 exactly -> half to even -> 4. The two paths differ by one LSB here.
    o = torch.tensor([[0.12164999544620514]])
    s = torch.tensor([37.0])
    assert quantize(o, s, None, emulate_npu=True).item() == 4
    assert quantize(o, s, None).item() == 5
    assert postquant(o, s, None, emulate_npu=True).item() == 4


def test_incre_flash_attention_postquant_per_channel_half_away():
    o = torch.tensor([[0.5, -0.5, 2.5, -2.5]])
    s = torch.ones(1, 4)
    got = quantize(o, s, None, emulate_npu=True)
    assert got.tolist() == [[1, -1, 3, -3]]
    assert torch.equal(got, postquant(o, s, None, emulate_npu=True))
    assert quantize(o, s, None).tolist() == [[0, 0, 2, -2]]


def test_incre_flash_attention_fp16_half_away_rounding():
    # 1 + 2^-11 is exactly halfway between fp16 1.0 and 1 + 2^-10: away -> 1 + 2^-10
    x = torch.tensor([1 + 2 ** -11, -(1 + 2 ** -11), 1 + 3 * 2 ** -11, 3.0], dtype=torch.float32)
    got = to_fp16_half_away(x)
    assert got.tolist() == [1 + 2 ** -10, -(1 + 2 ** -10), 1 + 2 * 2 ** -10, 3.0]
    y = torch.randn(1000) * 50
    close = (to_fp16_half_away(y) - y.half().double()).abs()
    assert float(close.max()) <= float((y.abs() * 2 ** -10).max())
