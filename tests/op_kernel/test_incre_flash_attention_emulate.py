"""Emulator == reference for npu_incre_flash_attention, feature by feature and combined.

Float outputs go through the dtype-aware oracle (reference in fp32 vs the same computation in
the query dtype); int8 outputs must be within 1 LSB of the reference. Each case builds its
inputs from a ``Case`` (dimension letters in the test ids).
"""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import cann_attention
from cann_attention.op_host.common.platform import ASCEND_A3, CPU, H100, H200, ASCEND_910B
from cann_attention.op_kernel.incre_flash_attention import reference as ref
from testing.incre_flash_attention_cases import DT, Case, build, reference as _reference
from testing.oracle import assert_close


def check_case(c: Case, platform=None) -> torch.Tensor:
    args = build(c)
    if platform is None:
        out = cann_attention.incre_flash_attention(**args)
    else:
        with cann_attention.use(platform=platform):
            out = cann_attention.incre_flash_attention(**args)
    expected = _reference(args)
    assert out.shape == args["query"].shape
    if c.postquant:
        assert out.dtype == torch.int8
        assert int((out.int() - expected.int()).abs().max()) <= 1
    else:
        assert out.dtype == args["query"].dtype
        baseline = _reference(args, compute_dtype=DT[c.dtype])
        assert_close(out, expected.float(), baseline.float())
    return out


# ---- heads (GQA) and head dims -------------------------------------------------------------
HEADS = [Case(b=2, n1=a, n2=b_, d=128, s=160, lens=(160, 77)) for a, b_ in
         [(32, 8), (64, 8), (8, 1), (40, 8), (64, 64)]]
DIMS = [Case(n1=32, n2=8, d=d, s=72, layout=lay, dtype=dt, lens=(72, 41))
        for d in (64, 128, 256) for lay, dt in (("BSH", "bf16"), ("BNSD", "fp16"), ("BSND", "bf16"))]


@pytest.mark.parametrize("c", HEADS + DIMS, ids=lambda c: c.id)
def test_incre_flash_attention_heads_layouts(c):
    check_case(c)


# ---- lengths: full cache, broadcast length, zero lengths, empty cache -----------------------
LENGTHS = [
    Case(lens=None),                                   # full cache (L_b = S)
    Case(b=3, lens=(50,)),                             # length 1: broadcast
    Case(b=3, lens=(0, 96, 0)),                        # zero lengths -> zero rows
    Case(b=2, s=0, lens=(0, 0), layout="BNSD"),       # empty cache
    Case(b=2, s=1, lens=(1, 1)),
]


@pytest.mark.parametrize("c", LENGTHS, ids=lambda c: c.id)
def test_incre_flash_attention_lengths(c):
    out = check_case(c)
    for b, n in enumerate((c.lens or (c.s,)) * (c.b if c.lens and len(c.lens) == 1 else 1)):
        if n == 0:
            assert not out[b].float().abs().any()


# ---- paged KV ------------------------------------------------------------------------------
PAGED = [Case(b=3, s=s, paged=pa, block_size=bs, layout="BNSD" if pa == "PA4" else lay,
              lens=lens, dtype=dt)
         for pa, bs, s, lens, lay, dt in [
             ("PA3", 16, 200, (200, 33, 1), "BSH", "bf16"),
             ("PA3", 48, 150, (150, 0, 49), "BSND", "fp16"),
             ("PA3", 128, 300, (300, 129, 7), "BNSD", "bf16"),
             ("PA3", 512, 600, (600, 511, 513), "BSH", "fp16"),
             ("PA4", 16, 100, (17, 100, 64), "BNSD", "fp16"),
             ("PA4", 256, 520, (520, 256, 3), "BNSD", "bf16")]]


@pytest.mark.parametrize("c", PAGED, ids=lambda c: c.id)
def test_incre_flash_attention_paged(c):
    check_case(c)


# vLLM's 4-D cache (num_blocks, block_size, num_kv_heads, head_size) with a BSH / BSND query:
# vllm-ascend's AscendC8KVCacheMethod passes its int8 caches so, with per-channel
# antiquant_scale (2, kvH) in fp16 and no offset; the same cache shape in fp16 / bf16.
VLLM_PAGED = [Case(b=3, n1=16, n2=4, d=128, s=300, paged="PA4S", block_size=128, layout=lay,
                   int8=int8, aq_offset=off, lens=(300, 1, 129), dtype=dt)
              for lay, int8, off, dt in [("BSH", "channel", False, "fp16"),
                                         ("BSH", "channel", True, "bf16"),
                                         ("BSND", "channel", True, "fp16"),
                                         ("BSH", "tensor", False, "bf16"),
                                         ("BSH", None, True, "fp16"),
                                         ("BSND", None, True, "bf16")]]
VLLM_PAGED += [Case(b=2, s=100, paged="PA4S", block_size=32, int8="channel", mask="2-bool",
                    pse="B", lens=(100, 35), dtype="fp16"),
               Case(b=2, n1=8, n2=1, s=600, paged="PA4S", block_size=64, layout="BSND",
                    int8="channel", lens=(600, 200), postquant="tensor")]


@pytest.mark.parametrize("c", VLLM_PAGED, ids=lambda c: c.id)
def test_incre_flash_attention_paged_vllm_cache(c):
    check_case(c)


@pytest.mark.parametrize("platform", [ASCEND_A3, H100], ids=lambda p: p.name)
@pytest.mark.parametrize("int8", [None, "channel"])
def test_incre_flash_attention_paged_vllm_cache_is_the_3d_layout(int8, platform):
    """(blocks, bs, kvN, D) gives the bits of its 3-D view (blocks, bs, kvH)."""
    args = build(Case(b=3, s=260, paged="PA4S", block_size=64, int8=int8, lens=(260, 64, 3),
                      dtype="fp16"))
    flat = dict(args, key=args["key"].flatten(2), value=args["value"].flatten(2))
    with cann_attention.use(platform=platform):
        assert torch.equal(cann_attention.incre_flash_attention(**args),
                           cann_attention.incre_flash_attention(**flat))


# ---- int8 antiquant --------------------------------------------------------------------------
ANTIQUANT = [Case(n1=16, n2=4, d=64, s=130, layout=lay, int8=mode, aq_offset=off, lens=(130, 61),
                  dtype=dt)
             for lay, mode, off, dt in [("BSH", "channel", True, "bf16"),
                                        ("BNSD", "channel", False, "fp16"),
                                        ("BSND", "channel", True, "fp16"),
                                        ("BSH", "tensor", True, "fp16"),
                                        ("BNSD", "tensor", False, "bf16")]]
ANTIQUANT += [Case(b=2, s=200, paged="PA3", block_size=32, int8="channel", lens=(200, 31)),
              Case(b=2, s=260, paged="PA4", block_size=128, layout="BNSD", int8="tensor",
                   lens=(129, 260), dtype="fp16")]


@pytest.mark.parametrize("c", ANTIQUANT, ids=lambda c: c.id)
def test_incre_flash_attention_antiquant(c):
    check_case(c)


def test_incre_flash_attention_antiquant_index0_is_key():
    """Scaling only index 1 (value) scales the output; scaling only index 0 does not."""
    c = Case(n1=4, n2=4, d=64, s=40, int8="tensor", aq_offset=False, dtype="fp16")
    args = build(c)
    args["antiquant_scale"] = torch.tensor([0.01, 0.01], dtype=torch.float16)
    base = cann_attention.incre_flash_attention(**args).float()
    args["antiquant_scale"] = torch.tensor([0.01, 0.02], dtype=torch.float16)
    torch.testing.assert_close(cann_attention.incre_flash_attention(**args).float(), 2 * base,
                               rtol=2e-3, atol=1e-4)


# ---- post-quant ----------------------------------------------------------------------------
POSTQUANT = [Case(postquant=mode, emulate_npu=npu, dtype=dt, layout=lay, lens=(96, 40))
             for mode, npu, dt, lay in [("tensor", False, "fp16", "BSH"),
                                        ("tensor", True, "fp16", "BNSD"),
                                        ("channel", False, "bf16", "BSND"),
                                        ("channel", True, "fp16", "BSH"),
                                        ("tensor", True, "bf16", "BSH")]]
POSTQUANT += [Case(postquant="tensor", int8="channel", lens=(96, 0)),
              Case(b=2, s=100, paged="PA3", block_size=32, postquant="tensor", lens=(100, 64))]


@pytest.mark.parametrize("c", POSTQUANT, ids=lambda c: c.id)
def test_incre_flash_attention_postquant(c):
    out = check_case(c)
    for b, n in enumerate(c.lens):
        if n == 0:
            assert not out[b].any()


# ---- masks and pse -------------------------------------------------------------------------
MASKS = [Case(mask=f"{rank}-{dt}", layout=lay, lens=(96, 50))
         for rank, dt, lay in [(2, "bool", "BSH"), (3, "int8", "BNSD"), (4, "uint8", "BSND"),
                               (4, "bool", "BSH")]]
MASKS += [Case(mask="2-bool", mask_all_b0=True, lens=(96, 50)),
          Case(pse="1", lens=(96, 70)), Case(pse="B", layout="BNSD", dtype="fp16"),
          Case(pse="B", mask="4-bool", layout="BSND", lens=(30, 96)),
          Case(b=2, s=100, paged="PA3", block_size=32, mask="2-bool", pse="B", lens=(100, 35)),
          Case(b=2, s=100, paged="PA4", block_size=16, layout="BNSD", mask="3-int8", pse="1",
               lens=(80, 100), dtype="fp16")]


@pytest.mark.parametrize("c", MASKS, ids=lambda c: c.id)
def test_incre_flash_attention_mask_pse(c):
    check_case(c)


def test_incre_flash_attention_fully_masked_row_is_mean_of_values():
    """All positions masked: all logits -1e12 -> uniform softmax -> mean of V over the window."""
    c = Case(b=1, n1=2, n2=2, d=64, s=40, mask="2-bool", mask_all_b0=True, lens=(25,),
             dtype="fp16")
    args = build(c)
    out = cann_attention.incre_flash_attention(**args).float().reshape(2, 64)
    v = args["value"].float().reshape(1, 40, 2, 64)[0, :25]
    torch.testing.assert_close(out, v.mean(0), rtol=2e-3, atol=2e-3)


# ---- left padding --------------------------------------------------------------------------
PADDING = [Case(lens=(40, 60), pad=20), Case(lens=(40, 60), pad=-5, layout="BNSD"),
           Case(lens=(40, 90), pad=10, mask="2-bool", pse="B", layout="BSND"),
           Case(lens=(40, 90), pad=50),   # batch 1 starts below 0 -> zeros
           Case(int8="channel", lens=(40, 60), pad=7)]


@pytest.mark.parametrize("c", PADDING, ids=lambda c: c.id)
def test_incre_flash_attention_left_padding(c):
    out = check_case(c)
    start = [c.s - max(c.pad, 0) - n for n in c.lens]
    for b, st in enumerate(start):
        assert bool(out[b].float().abs().any()) == (st >= 0)


def test_incre_flash_attention_left_padding_window_is_read():
    """With padding P the window is [S-P-L, S-P): equals right padding on the shifted cache."""
    c = Case(b=1, lens=(30,), pad=10, dtype="fp16")
    args = build(c)
    out = cann_attention.incre_flash_attention(**args)
    shifted = dict(args, kv_padding_size=None,
                   key=args["key"][:, 56:86].contiguous(), value=args["value"][:, 56:86].contiguous())
    torch.testing.assert_close(out, cann_attention.incre_flash_attention(**shifted))


@pytest.mark.parametrize("case", ["no_lengths", "paged"])
def test_incre_flash_attention_padding_silently_ignored(case):
    if case == "no_lengths":
        c = Case(pad=30)
    else:
        c = Case(b=2, s=64, paged="PA3", block_size=16, lens=(64, 20), pad=30)
    args = build(c)
    out = cann_attention.incre_flash_attention(**args)
    plain = cann_attention.incre_flash_attention(**dict(args, kv_padding_size=None))
    assert torch.equal(out, plain)


# ---- inner_precise, platforms (split-KV), tensor-list --------------------------------------
def test_incre_flash_attention_inner_precise_has_no_semantic_effect():
    c = Case(dtype="fp16", lens=(96, 31))
    a = cann_attention.incre_flash_attention(**build(c))
    b = cann_attention.incre_flash_attention(**build(replace(c, inner_precise=0)))
    assert torch.equal(a, b)


SPLIT = [Case(b=1, n1=8, n2=1, d=128, s=2048, lens=(2048,)),
         Case(b=2, n1=16, n2=2, d=64, s=700, lens=(700, 3), mask="2-bool", pse="B"),
         Case(b=2, s=600, paged="PA3", block_size=64, int8="channel", lens=(600, 200),
              postquant="tensor")]


@pytest.mark.parametrize("platform", [ASCEND_910B, ASCEND_A3, H100, H200, CPU],
                         ids=lambda p: p.name)
@pytest.mark.parametrize("c", SPLIT, ids=lambda c: c.id)
def test_incre_flash_attention_split_kv_on_platform_plans(c, platform):
    check_case(c, platform)


def test_incre_flash_attention_tensor_list_mode():
    """B tensors of batch 1, own S each (tensor-list mode): equals per-batch references."""
    c = Case(b=3, s=50, dtype="fp16")
    g = torch.Generator().manual_seed(5)
    q = torch.randn(3, 1, 8 * 64, generator=g).half()
    ss = (50, 17, 33)
    ks = [torch.randn(1, s, 2 * 64, generator=g).half() for s in ss]
    vs = [torch.randn(1, s, 2 * 64, generator=g).half() for s in ss]
    out = cann_attention.incre_flash_attention(q, ks, vs, num_heads=8, num_key_value_heads=2,
                                               scale_value=0.125, kv_padding_size=[3])
    for b in range(3):
        expected = ref.incre_flash_attention(q[b:b + 1], ks[b], vs[b], num_heads=8,
                                             num_key_value_heads=2, scale_value=0.125)
        base = ref.incre_flash_attention(q[b:b + 1], ks[b], vs[b], num_heads=8,
                                         num_key_value_heads=2, scale_value=0.125,
                                         compute_dtype=torch.float16)
        assert_close(out[b:b + 1], expected.float(), base.float())
    del c
    one = cann_attention.incre_flash_attention(q[:1], [ks[0]], [vs[0]], num_heads=8,
                                               num_key_value_heads=2, scale_value=0.125)
    torch.testing.assert_close(one, out[:1])
