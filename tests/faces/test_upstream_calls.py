"""Each real upstream call of the attention ops, reproduced on CPU as the upstream code makes it.

Every test copies one call expression from an upstream file (named in the comment above it):
the same positional / keyword arguments, the same shapes, dtypes and layouts (at fewer tokens
and heads; the head dims the ops fix are kept), and the same use of the result (unpacking,
``.transpose``, ``.view``, feeding the indexer's result to the attention as ``sparse_indices``).
The result is checked against the op's readable golden (``op_kernel/<op>/reference.py``) with
the dtype-aware oracle (``testing/oracle.py``), and its type / shape / dtype as upstream uses it.

Paged caches hold NaN in every slot no request owns (testing/upstream_calls.py), so a read past
a request's length shows up as NaN in the output.
"""
from __future__ import annotations

import importlib
import math

import torch

import cann_attention  # noqa: F401  (registers torch.ops.custom.*)
from cann_attention.op_kernel.incre_flash_attention import reference as ifa_ref
from cann_attention.op_kernel.lightning_indexer import reference as li_ref
from cann_attention.op_kernel.nsa_compress_attention import reference as nsa_ref
from cann_attention.op_kernel.sparse_flash_attention import reference as sfa_ref
from testing import upstream_calls as U
from testing.oracle import assert_close, assert_stats_close

D, DR, DI = U.D_LATENT, U.D_ROPE, U.D_INDEX


def torch_npu_face():
    """``import cann_attention.torch_npu as torch_npu`` (a missing face fails the test)."""
    return importlib.import_module("cann_attention.torch_npu")


def mindspore_face():
    """``import cann_attention.mindspore as ms_ops``."""
    return importlib.import_module("cann_attention.mindspore")


def deepseek_v32_softmax_scale() -> float:
    """DeepSeek-V3.2's MLA softmax scale: q_head_dim ** -0.5 * mscale ** 2 (YaRN factor 40,
    mscale_all_dim 1), as modeling_deepseek.py computes it."""
    mscale = 0.1 * 1.0 * math.log(40) + 1.0
    return (128 + 64) ** -0.5 * mscale * mscale


# ---------------------------------------------------------------------------------------------
# checks against the goldens
# ---------------------------------------------------------------------------------------------

def check_sfa_out(out, args, kwargs, what):
    """attention_out of npu_sparse_flash_attention against the golden (fp32 expected, baseline
    in the input dtype); no NaN (no poisoned cache slot read)."""
    query = args[0] if args else kwargs["query"]
    assert isinstance(out, torch.Tensor), f"{what}: {type(out).__name__}, not a Tensor"
    assert out.dtype == query.dtype and out.shape == query.shape, \
        f"{what}: {out.dtype} {tuple(out.shape)} != {query.dtype} {tuple(query.shape)}"
    assert not torch.isnan(out).any(), f"{what}: NaN in the output (a poisoned slot was read)"
    want = sfa_ref.sparse_flash_attention(*args, **kwargs)
    low = sfa_ref.sparse_flash_attention(*args, **kwargs, compute_dtype=query.dtype)
    assert_close(out, want[0], low[0], what)
    return want


def check_indexer(indices, args, kwargs, what):
    """sparse_indices of npu_lightning_indexer: int32, the op's shape, equal to the golden (the
    golden's score arithmetic is exactly rounded and its tie rule fixed: docs/lightning_indexer)."""
    want, _ = li_ref.lightning_indexer(*args, **kwargs)
    assert isinstance(indices, torch.Tensor), f"{what}: {type(indices).__name__}, not a Tensor"
    assert indices.dtype == torch.int32, f"{what}: dtype {indices.dtype}"
    assert indices.shape == want.shape, f"{what}: shape {tuple(indices.shape)} != {tuple(want.shape)}"
    bad = (indices != want).any(-1).nonzero()
    assert bad.numel() == 0, f"{what}: rows {bad.flatten().tolist()[:8]} differ from the golden"
    return want


def check_ifa_out(out, expected_shape, args, kwargs, what):
    query = args[0]
    assert isinstance(out, torch.Tensor), f"{what}: {type(out).__name__}, not a Tensor"
    assert out.dtype == query.dtype, f"{what}: dtype {out.dtype} != {query.dtype}"
    assert tuple(out.shape) == tuple(expected_shape), f"{what}: shape {tuple(out.shape)}"
    assert not torch.isnan(out).any(), f"{what}: NaN in the output"
    want = ifa_ref.incre_flash_attention(*args, **kwargs)
    low = ifa_ref.incre_flash_attention(*args, **kwargs, compute_dtype=query.dtype)
    assert_close(out.reshape(want.shape), want, low, what)


# ---------------------------------------------------------------------------------------------
# DeepSeek-V3.2 caches as the serving engines allocate them
# ---------------------------------------------------------------------------------------------

def dsv32_caches(table, kv_lens, num_blocks, block_size, g):
    """(index-key cache, latent (nope) cache, rope cache): (num_blocks, block_size, 1, 128 /
    512 / 64) bf16 sharing one page table."""
    index_k = U.paged_cache(table, kv_lens, num_blocks, block_size, (1, DI), g)
    nope = U.paged_cache(table, kv_lens, num_blocks, block_size, (1, D), g)
    rope = U.paged_cache(table, kv_lens, num_blocks, block_size, (1, DR), g)
    return index_k, nope, rope


def dsv32_queries(g, t, n_heads, n_index_heads=64):
    """Per token: index query (T, 64, 128), indexer weights (T, 64), absorbed query (T, N, 512)
    and its rope part (T, N, 64), bf16."""
    return (U.randn(g, t, n_index_heads, DI), U.randn(g, t, n_index_heads),
            U.randn(g, t, n_heads, D), U.randn(g, t, n_heads, DR))


# ---------------------------------------------------------------------------------------------
# hicann/cann-recipes-infer, DeepSeek-V3.2-Exp (torch.ops.custom, the ops' own package)
# ---------------------------------------------------------------------------------------------

# hicann/cann-recipes-infer models/deepseek-v3.2-exp/models/indexer.py (Indexer.li_fusion) and
# models/deepseek-v3.2-exp/models/modeling_deepseek.py (apply_attention_fusion), at 5345125^
# (the last tree calling torch.ops.custom.*; the ops left the repo in af01a94): MTP decode,
# 2 tokens per request, index_topk 2048, pa_block_size 128, block_table = arange.
def test_cann_recipes_dsv32_decode_indexer_then_sparse_attention_custom_ops():
    g = U.gen(1)
    bsz, q_len, n_heads, block_size, cache_len = 2, 2, 16, 128, 17     # pa_max_length 2176
    kv_len = torch.tensor([[2099, 2100], [300, 301]])                  # MTP: (B, q_len), int64
    actual_seq_lengths_kv = torch.max(kv_len, axis=1)[0].to(torch.int32)
    actual_seq_lengths_q = torch.tensor([q_len + i * q_len for i in range(bsz)],
                                        dtype=torch.int32)
    block_table = U.arange_block_table(bsz, cache_len)
    lens = actual_seq_lengths_kv.tolist()
    index_k, nope, rope = dsv32_caches(block_table, lens, bsz * cache_len, block_size, g)
    q_idx, weights, q_nope, q_pe = dsv32_queries(g, bsz * q_len, n_heads)
    q = q_idx.view(bsz, q_len, 64, DI)                                 # [b, s, 64, 128]

    # Indexer.li_fusion (not pypto, not int8): TND query, PA_BSND key
    q = q.view(-1, 64, DI)
    li_input_kwargs = {
        "key": index_k,
        "actual_seq_lengths_query": actual_seq_lengths_q.to(torch.int32),
        "actual_seq_lengths_key": actual_seq_lengths_kv.to(torch.int32),
        "block_table": block_table,
        "layout_key": 'PA_BSND',
        "sparse_count": 2048,
        "sparse_mode": 3,
        "query": q,
        "weights": weights,
        "layout_query": 'TND',
    }
    topk_indices = torch.ops.custom.npu_lightning_indexer(**li_input_kwargs)
    check_indexer(topk_indices, (), li_input_kwargs, "npu_lightning_indexer")
    assert topk_indices.shape == (bsz * q_len, 1, 2048)

    # apply_attention_fusion (no offload, no int8 cache)
    q_nope = q_nope.view(bsz, q_len, n_heads, D).contiguous().view(bsz * q_len, n_heads, -1)
    q_pe = q_pe.view(bsz, q_len, n_heads, DR).contiguous().view(bsz * q_len, n_heads, -1)
    slc_fa_input_kwargs = {
        "query": q_nope,
        "key": nope,
        "value": nope,
        "sparse_indices": topk_indices,
        "scale_value": deepseek_v32_softmax_scale(),
        "actual_seq_lengths_query": actual_seq_lengths_q.to(torch.int32),
        "actual_seq_lengths_kv": actual_seq_lengths_kv.to(torch.int32),
        "block_table": block_table,
        "sparse_block_size": 1,
        "layout_query": 'TND',
        "layout_kv": 'PA_BSND',
        "sparse_mode": 3,
    }
    slc_fa_input_kwargs.update({"query_rope": q_pe, "key_rope": rope})
    slc_fa_fusion = torch.ops.custom.npu_sparse_flash_attention(**slc_fa_input_kwargs)
    check_sfa_out(slc_fa_fusion, (), slc_fa_input_kwargs, "npu_sparse_flash_attention")
    slc_fa_fusion = slc_fa_fusion.transpose(0, 1)
    assert slc_fa_fusion.shape == (n_heads, bsz * q_len, D)


# hicann/cann-recipes-infer models/deepseek-v3.2-exp/models/modeling_deepseek.py and indexer.py
# at af01a94^ (torch_npu.npu_sparse_flash_attention(**kwargs) with attention_mode=2, unpacked
# into 3; torch_npu.npu_lightning_indexer(**kwargs)[0]): prefill, actual_seq_lengths_kv =
# kv_len_withpad (seq_len per request), prefill_block_table = arange.
def test_cann_recipes_dsv32_prefill_torch_npu_form():
    torch_npu = torch_npu_face()
    g = U.gen(2)
    bsz, seq_len, n_heads, block_size, cache_len = 2, 5, 8, 128, 2
    actual_seq_lengths_q = torch.tensor([seq_len + i * seq_len for i in range(bsz)],
                                        dtype=torch.int32)
    actual_seq_lengths_kv = torch.tensor([seq_len for _ in range(bsz)]).to(torch.int32)
    block_table = U.arange_block_table(bsz, cache_len)
    index_k, nope, rope = dsv32_caches(block_table, [seq_len] * bsz, bsz * cache_len,
                                       block_size, g)
    q_idx, weights, q_nope, q_pe = dsv32_queries(g, bsz * seq_len, n_heads)

    li_input_kwargs = {
        "key": index_k,
        "actual_seq_lengths_query": actual_seq_lengths_q.to(torch.int32),
        "actual_seq_lengths_key": actual_seq_lengths_kv.to(torch.int32),
        "block_table": block_table,
        "layout_key": 'PA_BSND',
        "sparse_count": 2048,
        "sparse_mode": 3,
        "query": q_idx.view(-1, 64, DI),
        "weights": weights,
        "layout_query": 'TND',
    }
    topk_indices = torch_npu.npu_lightning_indexer(**li_input_kwargs)[0]
    check_indexer(topk_indices, (), li_input_kwargs, "torch_npu.npu_lightning_indexer")
    # causal prefill with index_topk above every length: row s of a request selects s + 1 keys
    valid = (topk_indices[:, 0] >= 0).sum(-1)
    assert valid.tolist() == [s + 1 for _ in range(bsz) for s in range(seq_len)]

    slc_fa_input_kwargs = {
        "query": q_nope,
        "key": nope,
        "value": nope,
        "sparse_indices": topk_indices,
        "scale_value": deepseek_v32_softmax_scale(),
        "actual_seq_lengths_query": actual_seq_lengths_q.to(torch.int32),
        "actual_seq_lengths_kv": actual_seq_lengths_kv.to(torch.int32),
        "block_table": block_table,
        "sparse_block_size": 1,
        "layout_query": 'TND',
        "layout_kv": 'PA_BSND',
        "sparse_mode": 3,
        "attention_mode": 2,
    }
    slc_fa_input_kwargs.update({"query_rope": q_pe, "key_rope": rope})
    slc_fa_fusion, _, _ = torch_npu.npu_sparse_flash_attention(**slc_fa_input_kwargs)
    check_sfa_out(slc_fa_fusion, (), slc_fa_input_kwargs, "torch_npu.npu_sparse_flash_attention")
    assert slc_fa_fusion.transpose(0, 1).shape == (n_heads, bsz * seq_len, D)


# hicann/cann-recipes-infer ops/ascendc/torch_ops_extension/custom_ops/csrc/
# ops_def_registration.cpp (m.def of npu_sparse_flash_attention; the same string in every
# version from 8dd3a3b to af01a94^): what torch.compile / graph capture of the calls above see.
def test_cann_recipes_custom_sparse_flash_attention_schema():
    upstream = (
        "npu_sparse_flash_attention(Tensor query, Tensor key, Tensor value, "
        "Tensor sparse_indices, float scale_value, int sparse_block_size, *, "
        "Tensor? block_table=None, Tensor? actual_seq_lengths_query=None, "
        "Tensor? actual_seq_lengths_kv=None, Tensor? query_rope=None, Tensor? key_rope=None, "
        "str layout_query='BSND', str layout_kv='BSND', int sparse_mode=3) -> Tensor")
    want = torch._C.parse_schema("custom::" + upstream)
    got = torch.ops.custom.npu_sparse_flash_attention.default._schema
    assert str(got) == str(want), f"{got}\n!=\n{want}"


# hicann/cann-recipes-infer ops/ascendc/examples/test_npu_sparse_flash_attention.py
# (TestCustomSFA.test_tnd_pabsnd_sfa_eager, at af01a94^; custom_ops mounts torch.ops.custom.*
# onto torch_npu, so the call is the custom op: sparse_block_size 6th positional, one Tensor).
def test_cann_recipes_example_sfa_tnd_pabsnd():
    g = U.gen(3)
    query_type = torch.float16
    scale_value = 0.041666666666666664
    sparse_block_size = 1
    sparse_block_count = 64            # 2048 upstream
    t, b, s2, n1, n2, dn, dr = 10, 4, 512, 8, 1, 512, 64            # s2 8192, n1 128 upstream
    block_size, s2_act, s1_max = 256, 300, 5                          # s2_act 4096 upstream
    query = U.uniform(g, -10, 10, t, n1, dn, dtype=query_type)
    key = U.uniform(g, -5, 10, b * (s2 // block_size), block_size, n2, dn, dtype=query_type)
    value = key.clone()
    idxs = torch.randperm(s2_act - s1_max + 1, generator=g)[:sparse_block_count].tolist()
    sparse_indices = torch.tensor([idxs for _ in range(t * n2)]).reshape(
        t, n2, sparse_block_count).to(torch.int32)
    query_rope = U.uniform(g, -10, 10, t, n1, dr, dtype=query_type)
    key_rope = U.uniform(g, -10, 10, b * (s2 // block_size), block_size, n2, dr,
                         dtype=query_type)
    act_seq_q = torch.tensor([1, 3, 8, 10]).to(torch.int32)
    act_seq_kv = torch.tensor([s2_act] * b).to(torch.int32)
    block_table = torch.tensor([range(b * s2 // block_size)], dtype=torch.int32).reshape(b, -1)

    npu_out = torch.ops.custom.npu_sparse_flash_attention(
        query, key, value, sparse_indices, scale_value, sparse_block_size,
        actual_seq_lengths_query=act_seq_q, actual_seq_lengths_kv=act_seq_kv,
        query_rope=query_rope, key_rope=key_rope,
        layout_query='TND', layout_kv='PA_BSND', sparse_mode=3, block_table=block_table)
    args = (query, key, value, sparse_indices, scale_value, sparse_block_size)
    kwargs = dict(actual_seq_lengths_query=act_seq_q, actual_seq_lengths_kv=act_seq_kv,
                  query_rope=query_rope, key_rope=key_rope, layout_query='TND',
                  layout_kv='PA_BSND', sparse_mode=3, block_table=block_table)
    want = check_sfa_out(npu_out, args, kwargs, "custom npu_sparse_flash_attention example")
    # upstream's own acceptance: np.isclose(rtol=0.005, atol=0.0001) on > 99% of elements
    npu_out = npu_out.cpu().to(torch.float32)
    ratio = torch.isclose(npu_out, want[0].float(), rtol=0.005, atol=0.0001).float().mean()
    assert ratio > 0.99, f"precision compare fail: {float(ratio):.4f}"


# hicann/cann-recipes-infer ops/ascendc/examples/test_npu_lightning_indexer.py
# (test_tnd_lightning_indexer_eager, at af01a94^): torch.ops.custom.npu_lightning_indexer,
# TND query, PA_BSND key, block_size 256, sparse_count 2048; result .reshape(-1, sparse_count).
def test_cann_recipes_example_lightning_indexer_tnd_pabsnd():
    g = U.gen(4)
    b, t, s2, n1, n2, d, block_size = 3, 5, 2304, 64, 1, 128, 256      # s2 8192 upstream
    layout_query = 'TND'
    query = U.uniform(g, -10, 10, t, n1, d, dtype=torch.bfloat16)
    key = U.uniform(g, -10, 10, b * (s2 // block_size), block_size, n2, d, dtype=torch.bfloat16)
    weights = U.uniform(g, -1, 1, t, n1, dtype=torch.bfloat16)
    actual_seq_lengths_query = torch.tensor([1, 3, 5]).to(torch.int32)
    actual_seq_lengths_key = torch.full((b,), s2).to(torch.int32)
    block_table = torch.tensor([range(b * s2 // block_size)], dtype=torch.int32).reshape(b, -1)
    layout_key = 'PA_BSND'
    sparse_count = 2048
    sparse_mode = 3

    npu_out = torch.ops.custom.npu_lightning_indexer(
        query, key, weights, actual_seq_lengths_query=actual_seq_lengths_query,
        actual_seq_lengths_key=actual_seq_lengths_key, block_table=block_table,
        layout_query=layout_query, layout_key=layout_key, sparse_count=sparse_count,
        sparse_mode=sparse_mode)
    kwargs = dict(actual_seq_lengths_query=actual_seq_lengths_query,
                  actual_seq_lengths_key=actual_seq_lengths_key, block_table=block_table,
                  layout_query=layout_query, layout_key=layout_key, sparse_count=sparse_count,
                  sparse_mode=sparse_mode)
    check_indexer(npu_out, (query, key, weights), kwargs, "custom npu_lightning_indexer example")
    npu_out = npu_out.reshape(-1, sparse_count).cpu()
    assert npu_out.shape == (t, sparse_count)
    assert bool((npu_out >= 0).all())          # every row sees > 2048 keys: a full top-2048


# ---------------------------------------------------------------------------------------------
# SGLang Ascend backend (torch.ops.custom)
# ---------------------------------------------------------------------------------------------

def sglang_block_tables(seq_lens, page_size, g):
    """req_to_token[req_pool_indices, :seq_lens_max][:, ::page_size] // page_size: each
    request's pages in allocation order, width ceil(max seq_len / page_size)."""
    return U.shuffled_block_table(seq_lens, page_size, g)


def _sglang_step(mode):
    g = U.gen(5 if mode == "prefill" else 6)
    page_size, n_heads, index_topk = 128, 16, 2048
    if mode == "prefill":
        seq_lens = torch.tensor([5, 20])                        # extend without prefix
    else:
        seq_lens = torch.tensor([2200, 40])                     # decode, one token each
    bs = int(seq_lens.sum()) if mode == "prefill" else len(seq_lens)
    block_tables, num_pages = sglang_block_tables(seq_lens.tolist(), page_size, g)
    index_k, k_nope, k_pe = dsv32_caches(block_tables, seq_lens.tolist(), num_pages,
                                         page_size, g)
    q, weights, q_nope, q_pe = dsv32_queries(g, bs, n_heads)
    q = q.view(bs, 64, DI)
    seq_lens_cpu_int = seq_lens.int()
    return locals()


def _sglang_indexer(s):
    """python/sglang/srt/layers/attention/nsa/nsa_indexer.py Indexer.forward_npu (no CP)."""
    if s["mode"] == "prefill":
        actual_seq_lengths_kv = s["seq_lens"]
        actual_seq_lengths_q = s["seq_lens"].cumsum(dim=0)
    else:
        actual_seq_lengths_kv = s["seq_lens_cpu_int"]
        actual_seq_lengths_q = torch.tensor([1 + i * 1 for i in range(s["bs"])],
                                            dtype=torch.int32)
    block_table = s["block_tables"]
    block_table = (block_table[: actual_seq_lengths_q.size()[0]]
                   if s["mode"] == "prefill" else block_table)
    q, past_key_states, weights, n_heads, head_dim = (s["q"], s["index_k"], s["weights"], 64, DI)
    topk_indices = torch.ops.custom.npu_lightning_indexer(
        query=q.view(-1, n_heads, head_dim),
        key=past_key_states,
        weights=weights,
        actual_seq_lengths_query=actual_seq_lengths_q.to(torch.int32),
        actual_seq_lengths_key=actual_seq_lengths_kv.to(torch.int32),
        block_table=block_table,
        layout_query="TND",
        layout_key="PA_BSND",
        sparse_count=s["index_topk"],
        sparse_mode=3,
    )
    kwargs = dict(actual_seq_lengths_query=actual_seq_lengths_q.to(torch.int32),
                  actual_seq_lengths_key=actual_seq_lengths_kv.to(torch.int32),
                  block_table=block_table, layout_query="TND", layout_key="PA_BSND",
                  sparse_count=s["index_topk"], sparse_mode=3)
    check_indexer(topk_indices, (q.view(-1, n_heads, head_dim), past_key_states, weights),
                  kwargs, f"sglang {s['mode']} npu_lightning_indexer")
    return topk_indices


# sgl-project/sglang python/sglang/srt/layers/attention/nsa/nsa_indexer.py (Indexer.forward_npu,
# torch.ops.custom.npu_lightning_indexer) feeding python/sglang/srt/layers/attention/
# ascend_backend.py (AscendAttnBackend.forward_sparse, torch.ops.custom.npu_sparse_flash_attention),
# result used as deepseek_v2's forward_dsa_core_npu does: .view(-1, N, 512), prefill .transpose(0, 1).
def test_sglang_forward_npu_indexer_then_forward_sparse():
    for mode in ("prefill", "decode"):
        s = _sglang_step(mode)
        topk_indices = _sglang_indexer(s)
        q_nope, q_pe, k_nope, k_pe = s["q_nope"], s["q_pe"], s["k_nope"], s["k_pe"]
        block_table = s["block_tables"]
        q = q_nope
        if mode == "prefill":
            actual_seq_qlen = torch.cumsum(s["seq_lens"], dim=0)
        else:
            actual_seq_qlen = torch.arange(1, q.shape[0] + 1).to(q.device).to(torch.int32)
        actual_seq_lengths_kv = s["seq_lens_cpu_int"]
        scaling = deepseek_v32_softmax_scale()

        attn_out = torch.ops.custom.npu_sparse_flash_attention(
            query=q_nope,
            key=k_nope,
            value=k_nope,
            query_rope=q_pe,
            key_rope=k_pe,
            sparse_indices=topk_indices,
            scale_value=scaling,
            actual_seq_lengths_query=actual_seq_qlen.to(torch.int32),
            actual_seq_lengths_kv=actual_seq_lengths_kv.to(q.device),
            block_table=block_table,
            sparse_block_size=1,
            layout_query="TND",
            layout_kv="PA_BSND",
            sparse_mode=3,
        )
        kwargs = dict(query=q_nope, key=k_nope, value=k_nope, query_rope=q_pe, key_rope=k_pe,
                      sparse_indices=topk_indices, scale_value=scaling,
                      actual_seq_lengths_query=actual_seq_qlen.to(torch.int32),
                      actual_seq_lengths_kv=actual_seq_lengths_kv, block_table=block_table,
                      sparse_block_size=1, layout_query="TND", layout_kv="PA_BSND",
                      sparse_mode=3)
        check_sfa_out(attn_out, (), kwargs, f"sglang {mode} forward_sparse")
        attn_output = attn_out.view(-1, s["n_heads"], 512)
        if mode == "prefill":
            attn_output = attn_output.transpose(0, 1)
            assert attn_output.shape == (s["n_heads"], s["bs"], 512)
        else:
            assert attn_output.contiguous().shape == (s["bs"], s["n_heads"], 512)


# ---------------------------------------------------------------------------------------------
# vLLM-Ascend: SFA (DeepSeek-V3.2 / GLM-5 sparse attention) and its decode context parallel
# ---------------------------------------------------------------------------------------------

# vllm-project/vllm-ascend vllm_ascend/device/device_op.py: indexer_select_post_process
# (use_torch_npu_lightning_indexer branch: `topk_indices, _ = torch_npu.npu_lightning_indexer(...)`,
# weights a column slice of the fused wk_weights_proj output, vllm_ascend/attention/sfa_v1.py)
# and the A5 adaptor's `attn_output, _, _ = torch_npu.npu_sparse_flash_attention(...)` (6cd692a803).
def test_vllm_ascend_sfa_indexer_and_sparse_attention():
    torch_npu = torch_npu_face()
    g = U.gen(7)
    block_size, n_heads, head_dim = 128, 16, DI
    q_lens, kv_lens = [1, 3], [60, 2100]                         # a decode and a chunk
    t = sum(q_lens)
    block_table, num_blocks = U.shuffled_block_table(kv_lens, block_size, g)
    index_k, kv, key_rope = dsv32_caches(block_table, kv_lens, num_blocks, block_size, g)
    kv_cache = (kv, key_rope, index_k)
    kv_cache_indexer_k_idx = 2
    q_li, _, ql_nope, q_pe = dsv32_queries(g, t, n_heads)
    kw = U.randn(g, t, head_dim + 64)                           # wk_weights_proj(x)
    weights = kw[:, head_dim:]                                   # non-contiguous (T, 64) view
    assert not weights.is_contiguous()
    actual_seq_lengths_query = U.i32(U.prefix_sums(q_lens))     # cum_query_lens
    actual_seq_lengths_key = U.i32(kv_lens)
    scale = deepseek_v32_softmax_scale()

    topk_indices, _ = torch_npu.npu_lightning_indexer(
        query=q_li,
        key=kv_cache[kv_cache_indexer_k_idx],
        weights=weights,
        actual_seq_lengths_query=actual_seq_lengths_query,
        actual_seq_lengths_key=actual_seq_lengths_key,
        block_table=block_table,
        layout_query="TND",
        layout_key="PA_BSND",
        sparse_count=2048,
        sparse_mode=3,
    )
    check_indexer(topk_indices, (q_li, index_k, weights),
                  dict(actual_seq_lengths_query=actual_seq_lengths_query,
                       actual_seq_lengths_key=actual_seq_lengths_key, block_table=block_table,
                       layout_query="TND", layout_key="PA_BSND", sparse_count=2048,
                       sparse_mode=3), "vllm-ascend npu_lightning_indexer")

    attn_output, _, _ = torch_npu.npu_sparse_flash_attention(
        query=ql_nope,
        key=kv,
        value=kv,
        sparse_indices=topk_indices,
        scale_value=scale,
        sparse_block_size=1,
        block_table=block_table,
        actual_seq_lengths_query=actual_seq_lengths_query,
        actual_seq_lengths_kv=actual_seq_lengths_key,
        query_rope=q_pe,
        key_rope=key_rope,
        layout_query="TND",
        layout_kv="PA_BSND",
        sparse_mode=3,
        attention_mode=2,
    )
    check_sfa_out(attn_output, (), dict(
        query=ql_nope, key=kv, value=kv, sparse_indices=topk_indices, scale_value=scale,
        sparse_block_size=1, block_table=block_table,
        actual_seq_lengths_query=actual_seq_lengths_query,
        actual_seq_lengths_kv=actual_seq_lengths_key, query_rope=q_pe, key_rope=key_rope,
        layout_query="TND", layout_kv="PA_BSND", sparse_mode=3, attention_mode=2),
        "vllm-ascend npu_sparse_flash_attention")


def _dcp_remap(topk, rank, dcp_size):
    """The replicated-view indices -> rank-local positions (interleave size 1): entries the rank
    owns become p // dcp_size, compacted to the front in their order; the rest -1."""
    out = torch.full_like(topk, -1)
    for r in range(topk.shape[0]):
        row = topk[r, 0]
        mine = row[(row >= 0) & (row % dcp_size == rank)]
        out[r, 0, :mine.numel()] = torch.div(mine, dcp_size, rounding_mode="floor")
    return out


# vllm-project/vllm-ascend vllm_ascend/attention/context_parallel/sfa_cp.py
# (AscendSFADCPImpl._execute_sparse_flash_attention_process, 6cd692a803): decode context
# parallel, each rank attends over its interleaved KV shard with return_softmax_lse=True,
# layout_kv PA_BSND, sparse_mode 0; lse = softmax_max + log(softmax_sum) merges the ranks.
def test_vllm_ascend_dcp_sparse_attention_return_softmax_lse_paged():
    torch_npu = torch_npu_face()
    g = U.gen(8)
    dcp_size, block_size, n_heads, topk_count = 2, 128, 16, 2048
    q_lens, kv_lens = [1, 2], [150, 333]                          # global (replicated) lengths
    t = sum(q_lens)
    cum_query_lens = U.i32(U.prefix_sums(q_lens))
    scale = deepseek_v32_softmax_scale()
    ql_nope, q_pe = U.randn(g, t, n_heads, D), U.randn(g, t, n_heads, DR)

    # the replicated view: per-request latent / rope rows, and the indexer's top-k rows
    # (row 0 keeps only even positions: rank 1 owns none of them)
    latent = [U.randn(g, n, 1, D) for n in kv_lens]
    k_rope = [U.randn(g, n, 1, DR) for n in kv_lens]
    topk = U.causal_topk_rows(q_lens, kv_lens, 100, g,
                              keep=lambda b, s, p: b > 0 or p % 2 == 0)
    topk = torch.cat([topk, torch.full((t, topk_count - 100), -1, dtype=torch.int32)], 1)
    topk_indices = topk.view(t, 1, topk_count)

    # the global golden: every selected key over the whole sequence
    g_table, g_blocks = U.shuffled_block_table(kv_lens, block_size, g)
    g_kv = U.paged_cache(g_table, kv_lens, g_blocks, block_size, (1, D), g)
    g_rope = U.paged_cache(g_table, kv_lens, g_blocks, block_size, (1, DR), g)
    for b, n in enumerate(kv_lens):
        pos = torch.arange(n)
        g_kv[g_table[b, pos // block_size].long(), pos % block_size] = latent[b]
        g_rope[g_table[b, pos // block_size].long(), pos % block_size] = k_rope[b]
    global_kwargs = dict(query=ql_nope, key=g_kv, value=g_kv, sparse_indices=topk_indices,
                         scale_value=scale, sparse_block_size=1, block_table=g_table,
                         actual_seq_lengths_query=cum_query_lens,
                         actual_seq_lengths_kv=U.i32(kv_lens), query_rope=q_pe,
                         key_rope=g_rope, layout_query="TND", layout_kv="PA_BSND",
                         sparse_mode=0, attention_mode=2)
    want = sfa_ref.sparse_flash_attention(**global_kwargs)[0]
    low = sfa_ref.sparse_flash_attention(**global_kwargs, compute_dtype=torch.bfloat16)[0]

    outputs, lses = [], []
    for rank in range(dcp_size):
        local_lens = [(n - rank + dcp_size - 1) // dcp_size for n in kv_lens]
        table, blocks = U.shuffled_block_table(local_lens, block_size, g)
        kv = U.paged_cache(table, local_lens, blocks, block_size, (1, D), g)
        key_rope = U.paged_cache(table, local_lens, blocks, block_size, (1, DR), g)
        for b, n in enumerate(local_lens):
            pos = torch.arange(n)
            kv[table[b, pos // block_size].long(), pos % block_size] = \
                latent[b][pos * dcp_size + rank]
            key_rope[table[b, pos // block_size].long(), pos % block_size] = \
                k_rope[b][pos * dcp_size + rank]
        local_topk = _dcp_remap(topk_indices, rank, dcp_size)
        seq_lens = U.i32(local_lens)                             # dcp_context.seq_lens

        sfa_output, softmax_max, softmax_sum = torch_npu.npu_sparse_flash_attention(
            query=ql_nope,
            key=kv,
            value=kv,
            sparse_indices=local_topk,
            scale_value=scale,
            sparse_block_size=1,
            block_table=table,
            actual_seq_lengths_query=cum_query_lens,
            actual_seq_lengths_kv=seq_lens,
            query_rope=q_pe,
            key_rope=key_rope,
            layout_query="TND",
            layout_kv="PA_BSND",
            sparse_mode=0,
            attention_mode=2,
            return_softmax_lse=True,
        )
        local_kwargs = dict(global_kwargs, key=kv, value=kv, sparse_indices=local_topk,
                            block_table=table, actual_seq_lengths_kv=seq_lens,
                            key_rope=key_rope, return_softmax_lse=True)
        ref = check_sfa_out(sfa_output, (), local_kwargs, f"DCP rank {rank} attention_out")
        assert softmax_max.dtype == torch.float32 and softmax_sum.dtype == torch.float32
        assert softmax_max.shape == (1, t, n_heads), f"softmax_max {tuple(softmax_max.shape)}"
        assert_stats_close(softmax_max, ref[1], what=f"DCP rank {rank} softmax_max")
        assert_stats_close(softmax_sum, ref[2], what=f"DCP rank {rank} softmax_sum")
        if rank == 1:
            assert float(softmax_sum[0, 0].max()) == 0.0     # row 0: nothing on this rank

        output_dtype = sfa_output.dtype
        softmax_lse = softmax_max.to(torch.float32) + torch.log(softmax_sum.to(torch.float32))
        softmax_lse = softmax_lse.permute(1, 0, 2).reshape(softmax_lse.shape[1], -1, 1)
        assert softmax_lse.shape == (t, n_heads, 1)
        outputs.append(sfa_output)
        lses.append(softmax_lse)

    # the DCP merge: per-rank partial outputs weighted by softmax over their log-sum-exp
    lse = torch.stack([x[..., 0] for x in lses])                   # (dcp, T, N)
    lse = lse.masked_fill(torch.isnan(lse) | torch.isinf(lse), float("-inf"))
    lse_max = torch.amax(lse, dim=0).masked_fill(torch.amax(lse, dim=0) == float("-inf"), 0.0)
    w = torch.exp(lse - lse_max.unsqueeze(0)).nan_to_num(0.0)
    w = w / w.sum(dim=0, keepdim=True).clamp_min(1e-10)
    merged = (torch.stack(outputs).to(torch.float32) * w.unsqueeze(-1)).sum(0)
    assert_close(merged.to(output_dtype), want, low, "DCP merged output vs the whole sequence")


# ---------------------------------------------------------------------------------------------
# vLLM-Ascend: paged decode with npu_incre_flash_attention
# ---------------------------------------------------------------------------------------------

# vllm-project/vllm-ascend vllm_ascend/torchair/torchair_attention.py
# (AscendAttentionTorchairBackendImpl.forward, DecodeOnly, at a7f8ed38ed^): BSH query
# (num_tokens, 1, N * D), caches (num_blocks, block_size, kvN * D), output .view(T, hidden).
def test_vllm_ascend_torchair_paged_decode_incre_flash_attention():
    torch_npu = torch_npu_face()
    g = U.gen(9)
    num_heads, num_kv_heads, head_size, block_size = 8, 2, 128, 128
    seq_lens = [37, 300, 129]                                    # decode_meta.seq_lens_list
    num_tokens = len(seq_lens)
    hidden_size = num_heads * head_size
    block_table, num_blocks = U.shuffled_block_table(seq_lens, block_size, g)
    key_cache = U.paged_cache(block_table, seq_lens, num_blocks, block_size,
                              (num_kv_heads * head_size,), g)
    value_cache = U.paged_cache(block_table, seq_lens, num_blocks, block_size,
                                (num_kv_heads * head_size,), g)
    query = U.randn(g, num_tokens, num_heads, head_size)
    scale = 1.0 / math.sqrt(head_size)

    block_size = key_cache.shape[1]
    query = query.view(num_tokens, 1, num_heads * head_size).contiguous()
    output = torch_npu.npu_incre_flash_attention(
        query,
        key_cache,
        value_cache,
        num_key_value_heads=num_kv_heads,
        num_heads=num_heads,
        actual_seq_lengths=seq_lens,
        scale_value=scale,
        block_table=block_table,
        input_layout='BSH',
        block_size=block_size)
    check_ifa_out(output, (num_tokens, 1, hidden_size), (query, key_cache, value_cache),
                  dict(num_key_value_heads=num_kv_heads, num_heads=num_heads,
                       actual_seq_lengths=seq_lens, scale_value=scale, block_table=block_table,
                       input_layout='BSH', block_size=block_size), "torchair paged decode")
    assert output.view(num_tokens, hidden_size).shape == (num_tokens, hidden_size)


# vllm-project/vllm-ascend vllm_ascend/quantization/w8a8.py (AscendC8KVCacheMethod.apply,
# DecodeOnly, at a7f8ed38ed^): int8 KV cache (num_blocks, block_size, N, D) written with
# quant_per_tensor(div_mode=True), input_layout 'BSH', antiquant_scale = (2, kvN * D) fp16.
def test_vllm_ascend_w8a8_c8_decode_int8_4d_cache():
    torch_npu = torch_npu_face()
    g = U.gen(10)
    num_heads, num_kv_heads, head_size, block_size = 8, 2, 128, 128
    kv_h = num_kv_heads * head_size
    seq_lens = [10, 200]                                          # attn_metadata.seq_lens
    num_tokens = len(seq_lens)
    block_tables, num_blocks = U.shuffled_block_table(seq_lens, block_size, g)
    # process_weights_after_loading: antiquant_scale_comb = cat(k_scale[None], v_scale[None])
    key_antiquant_scale = (torch.rand(kv_h, generator=g) * 0.02 + 0.01).to(torch.float16)
    value_antiquant_scale = (torch.rand(kv_h, generator=g) * 0.02 + 0.01).to(torch.float16)
    antiquant_scale_comb = torch.cat((key_antiquant_scale.unsqueeze(0),
                                      value_antiquant_scale.unsqueeze(0)),
                                     dim=0).to(torch.float16).contiguous()
    # the C8 cache write: quant_per_tensor(key.view(-1, kvN * D), scale, None, True)
    key_cache = U.paged_cache(block_tables, seq_lens, num_blocks, block_size,
                              (num_kv_heads, head_size), g, dtype=torch.int8)
    value_cache = U.paged_cache(block_tables, seq_lens, num_blocks, block_size,
                                (num_kv_heads, head_size), g, dtype=torch.int8)
    for b, n in enumerate(seq_lens):
        pos = torch.arange(n)
        blk, off = block_tables[b, pos // block_size].long(), pos % block_size
        k = U.randn(g, n, kv_h, dtype=torch.float16)
        v = U.randn(g, n, kv_h, dtype=torch.float16)
        key_cache[blk, off] = U.quantize_per_channel(k, key_antiquant_scale).view(
            n, num_kv_heads, head_size)
        value_cache[blk, off] = U.quantize_per_channel(v, value_antiquant_scale).view(
            n, num_kv_heads, head_size)
    query = U.randn(g, num_tokens, num_heads * head_size, dtype=torch.float16)
    scale = 1.0 / math.sqrt(head_size)

    block_size = key_cache.shape[1]
    query = query.view(num_tokens, 1, num_heads * head_size).contiguous()
    key = key_cache
    value = value_cache
    output = torch_npu.npu_incre_flash_attention(
        query,
        key,
        value,
        num_key_value_heads=num_kv_heads,
        num_heads=num_heads,
        actual_seq_lengths=seq_lens,
        scale_value=scale,
        input_layout='BSH',
        block_size=block_size,
        block_table=block_tables,
        antiquant_scale=antiquant_scale_comb,
    )
    # the golden reads a BSH paged cache as (num_blocks, block_size, kvN * D): the same memory
    check_ifa_out(output, (num_tokens, 1, num_heads * head_size),
                  (query, key.view(num_blocks, block_size, kv_h),
                   value.view(num_blocks, block_size, kv_h)),
                  dict(num_key_value_heads=num_kv_heads, num_heads=num_heads,
                       actual_seq_lengths=seq_lens, scale_value=scale, input_layout='BSH',
                       block_size=block_size, block_table=block_tables,
                       antiquant_scale=antiquant_scale_comb), "w8a8 C8 decode")
    assert output.view(num_tokens, num_heads * head_size).shape == (num_tokens, 1024)


# ---------------------------------------------------------------------------------------------
# torch_npu documentation examples (Ascend/op-plugin docs/zh/custom_APIs/torch_npu/*.md)
# ---------------------------------------------------------------------------------------------

# Ascend/op-plugin docs/zh/custom_APIs/torch_npu/torch_npu-npu_sparse_flash_attention.md
# (单算子模式调用): BSND / BSND, fp16, attention_mode 2, pre/next tokens passed, 3 outputs.
def test_torch_npu_doc_sparse_flash_attention_example():
    torch_npu = torch_npu_face()
    g = U.gen(11)
    query_type = torch.float16
    scale_value = 0.041666666666666664
    sparse_block_size = 1
    sparse_block_count = 64                                       # 2048 upstream
    b, s1, s2, n1, n2, dn, dr = 4, 1, 256, 8, 1, 512, 64          # s2 8192, n1 128 upstream
    s2_act = 160                                                  # 4096 upstream
    attention_mode = 2
    return_softmax_lse = False
    query = U.uniform(g, -10, 10, b, s1, n1, dn, dtype=query_type)
    key = U.uniform(g, -5, 10, b, s2, n2, dn, dtype=query_type)
    value = key.clone()
    idxs = torch.randperm(s2_act - s1 + 1, generator=g)[:sparse_block_count].tolist()
    sparse_indices = torch.tensor([idxs for _ in range(b * s1 * n2)]).reshape(
        b, s1, n2, sparse_block_count).to(torch.int32)
    query_rope = U.uniform(g, -10, 10, b, s1, n1, dr, dtype=query_type)
    key_rope = U.uniform(g, -10, 10, b, s2, n2, dr, dtype=query_type)
    act_seq_q = torch.tensor([s1] * b).to(torch.int32)
    act_seq_kv = torch.tensor([s2_act] * b).to(torch.int32)

    attention_out, softmax_max, softmax_sum = torch_npu.npu_sparse_flash_attention(
        query, key, value, sparse_indices, scale_value, block_table=None,
        actual_seq_lengths_query=act_seq_q, actual_seq_lengths_kv=act_seq_kv,
        query_rope=query_rope, key_rope=key_rope, sparse_block_size=sparse_block_size,
        layout_query='BSND', layout_kv='BSND', sparse_mode=3, pre_tokens=(1 << 63) - 1,
        next_tokens=(1 << 63) - 1, attention_mode=attention_mode,
        return_softmax_lse=return_softmax_lse)
    check_sfa_out(attention_out, (query, key, value, sparse_indices, scale_value), dict(
        actual_seq_lengths_query=act_seq_q, actual_seq_lengths_kv=act_seq_kv,
        query_rope=query_rope, key_rope=key_rope, sparse_block_size=sparse_block_size,
        layout_query='BSND', layout_kv='BSND', sparse_mode=3, attention_mode=2),
        "torch_npu doc example")
    assert isinstance(softmax_max, torch.Tensor) and isinstance(softmax_sum, torch.Tensor)


# Ascend/op-plugin docs/zh/custom_APIs/torch_npu/torch_npu-npu_lightning_indexer.md
# (单算子模式调用, real sizes): BSND query, PA_BSND key, block_size 256, two outputs unpacked.
def test_torch_npu_doc_lightning_indexer_example():
    torch_npu = torch_npu_face()
    g = U.gen(12)
    b, s1, s2, n1, n2, d, block_size = 1, 1, 8192, 64, 1, 128, 256
    query = U.uniform(g, -10, 10, b, s1, n1, d, dtype=torch.bfloat16)
    key = U.uniform(g, -10, 10, b * (s2 // block_size), block_size, n2, d, dtype=torch.bfloat16)
    weights = U.uniform(g, -1, 1, b, s1, n1, dtype=torch.bfloat16)
    actual_seq_lengths_query = torch.full((b,), float(s1)).to(torch.int32)
    actual_seq_lengths_key = torch.full((b,), float(s2)).to(torch.int32)
    block_table = torch.tensor([range(b * s2 // block_size)], dtype=torch.int32).reshape(b, -1)
    layout_query = 'BSND'
    layout_key = 'PA_BSND'
    sparse_count = 2048
    sparse_mode = 3

    sparse_indices, sparse_values = torch_npu.npu_lightning_indexer(
        query, key, weights, actual_seq_lengths_query=actual_seq_lengths_query,
        actual_seq_lengths_key=actual_seq_lengths_key, block_table=block_table,
        layout_query=layout_query, layout_key=layout_key, sparse_count=sparse_count,
        sparse_mode=sparse_mode)
    check_indexer(sparse_indices, (query, key, weights), dict(
        actual_seq_lengths_query=actual_seq_lengths_query,
        actual_seq_lengths_key=actual_seq_lengths_key, block_table=block_table,
        layout_query=layout_query, layout_key=layout_key, sparse_count=sparse_count,
        sparse_mode=sparse_mode), "torch_npu doc example")
    assert sparse_indices.shape == (1, 1, 1, 2048)
    assert isinstance(sparse_values, torch.Tensor)


# Ascend/op-plugin docs/zh/custom_APIs/torch_npu/torch_npu-npu_incre_flash_attention.md (both
# examples): BSH, 40 heads of 128; the graph example's atten_mask is
# torch.randn(2, 1, 1, S).bool(), i.e. every key masked.
def test_torch_npu_doc_incre_flash_attention_examples():
    torch_npu = torch_npu_face()
    g = U.gen(13)
    q = U.randn(g, 2, 1, 40 * 128, dtype=torch.float16)
    k = U.randn(g, 2, 1, 40 * 128, dtype=torch.float16)
    v = U.randn(g, 2, 1, 40 * 128, dtype=torch.float16)
    scale = 1 / math.sqrt(128.0)
    out = torch_npu.npu_incre_flash_attention(q, k, v, num_heads=40, input_layout="BSH",
                                              scale_value=scale)
    check_ifa_out(out, (2, 1, 5120), (q, k, v),
                  dict(num_heads=40, input_layout="BSH", scale_value=scale), "single-op example")
    torch.testing.assert_close(out, v)          # one key: softmax is 1, the output is V

    q = U.randn(g, 2, 1, 40 * 128, dtype=torch.float16)
    k = U.randn(g, 2, 256, 40 * 128, dtype=torch.float16)        # S 2048 upstream
    v = U.randn(g, 2, 256, 40 * 128, dtype=torch.float16)
    atten = torch.randn(2, 1, 1, 256, generator=g).bool()
    scale_value = 1 / math.sqrt(128.0)
    out = torch_npu.npu_incre_flash_attention(q, k, v, num_heads=40, input_layout="BSH",
                                              scale_value=scale_value, atten_mask=atten)
    check_ifa_out(out, (2, 1, 5120), (q, k, v),
                  dict(num_heads=40, input_layout="BSH", scale_value=scale_value,
                       attn_mask=atten), "graph example with atten_mask")


# Ascend/op-plugin docs/zh/custom_APIs/torch_npu/torch_npu-npu_nsa_compress_attention.md
# (调用示例): TND, G = 16, D 192 / 128, (l, d, l', K) = (32, 16, 64, 16), no masks.
def test_torch_npu_doc_nsa_compress_attention_example():
    torch_npu = torch_npu_face()
    g = U.gen(14)
    query = U.randn(g, 16, 32, 192)                # (65536, 64, 192) upstream
    key = U.randn(g, 128, 2, 192)                  # (4096, 4, 192) upstream
    value = U.randn(g, 128, 2, 128)
    scale_value = 1 / (192 ** 0.5)
    head_num = 32
    compress_block_size = 32
    compress_stride = 16
    select_block_size = 64
    select_block_count = 16
    actual_seq_qlen = [16]
    actual_cmp_seq_kvlen = [128]
    actual_sel_seq_kvlen = [32]                                  # 1024 = 4096 / 4 upstream
    out = torch_npu.npu_nsa_compress_attention(
        query, key, value, scale_value, head_num, compress_block_size, compress_stride,
        select_block_size, select_block_count, actual_seq_qlen=actual_seq_qlen,
        actual_cmp_seq_kvlen=actual_cmp_seq_kvlen, actual_sel_seq_kvlen=actual_sel_seq_kvlen)
    check_nsa(out, (query, key, value, scale_value, head_num, compress_block_size,
                    compress_stride, select_block_size, select_block_count),
              dict(actual_seq_qlen=actual_seq_qlen, actual_cmp_seq_kvlen=actual_cmp_seq_kvlen,
                   actual_sel_seq_kvlen=actual_sel_seq_kvlen), "torch_npu doc example")


def check_nsa(out, args, kwargs, what):
    assert isinstance(out, tuple) and len(out) == 4, f"{what}: {type(out).__name__}"
    attention_out, topk_indices, softmax_max, softmax_sum = out
    query, value = args[0], args[2]
    want = nsa_ref.nsa_compress_attention(*args, **kwargs, output_fp32=True)
    low = nsa_ref.nsa_compress_attention(*args, **kwargs, compute_dtype=query.dtype)
    assert attention_out.dtype == query.dtype
    assert attention_out.shape == (query.shape[0], query.shape[1], value.shape[2])
    assert_close(attention_out, want[0], low[0].float(), f"{what} attention_out")
    assert topk_indices.dtype == torch.int32
    assert topk_indices.shape == (query.shape[0], value.shape[1], args[8])
    assert torch.equal(topk_indices, want[1]), f"{what}: topk_indices_out differ"
    assert softmax_max.shape == softmax_sum.shape == (query.shape[0], query.shape[1], 8)
    assert_stats_close(softmax_max, want[2], what=f"{what} softmax_max_out")
    assert_stats_close(softmax_sum, want[3], what=f"{what} softmax_sum_out")
    return want


# ---------------------------------------------------------------------------------------------
# MindSpore documentation (mindspore.ops.*; /work/shared/seeds/000, 002, 004)
# ---------------------------------------------------------------------------------------------

# MindSpore docs mindspore.ops.sparse_flash_attention (Examples; seed 000): BSND / BSND,
# no lengths, indices drawn with repetition over the whole S2, attention_mode 2,
# return_softmax_lse True.
def test_mindspore_doc_sparse_flash_attention_example():
    ops = mindspore_face()
    g = U.gen(15)
    b, s1, s2, n1, n2, d, d_rope = 2, 1, 256, 16, 1, 512, 64     # 4, 1, 8192, 128 upstream
    sparse_block_count = 64                                       # 2048 upstream
    query = U.randn(g, b, s1, n1, d, dtype=torch.float16)
    key = U.randn(g, b, s2, n2, d, dtype=torch.float16)
    value = key.clone()
    query_rope = U.randn(g, b, s1, n1, d_rope, dtype=torch.float16)
    key_rope = U.randn(g, b, s2, n2, d_rope, dtype=torch.float16)
    sparse_indices = torch.randint(0, s2, (b, s1, n2, sparse_block_count), generator=g,
                                   dtype=torch.int32)
    scale_value = 1.0 / (d ** 0.5)
    attention_out, softmax_max, softmax_sum = ops.sparse_flash_attention(
        query, key, value, sparse_indices, scale_value,
        query_rope=query_rope, key_rope=key_rope, attention_mode=2, return_softmax_lse=True)
    want = check_sfa_out(attention_out, (query, key, value, sparse_indices, scale_value), dict(
        query_rope=query_rope, key_rope=key_rope, attention_mode=2, return_softmax_lse=True),
        "mindspore doc example")
    assert attention_out.shape == (b, s1, n1, d)
    assert softmax_max.dtype == softmax_sum.dtype == torch.float32
    assert softmax_max.shape == softmax_sum.shape == (b, n2, s1, n1 // n2)
    assert_stats_close(softmax_max, want[1], what="softmax_max")
    assert_stats_close(softmax_sum, want[2], what="softmax_sum")


# MindSpore tests/st/ops/.../test_nsa_compress_attention.py (test_nsa_compress_attention_
# functional_general, the call MindSpore's CI runs): two batches, N 7, D1 8 / D2 7, scale 0.3,
# topk_mask eye + first column (max Sq, max Sel), atten_mask triu(k=1) (max Sq, max C).
def test_mindspore_st_nsa_compress_attention_call():
    ops = mindspore_face()
    g = U.gen(17)
    q_lens, c_lens = [40, 35], [70, 80]                        # [1384, 1249], [2266, 1806] upstream
    T1, T2, N1, N2, D1, D2 = sum(q_lens), sum(c_lens), 7, 7, 8, 7
    query = U.randn(g, T1, N1, D1, dtype=torch.float16)
    key = U.randn(g, T2, N2, D1, dtype=torch.float16)
    value = U.randn(g, T2, N2, D2, dtype=torch.float16)
    scale_value, head_num = 0.3, 7
    compress_block_size, compress_stride, select_block_size, select_block_count = 32, 16, 64, 16
    S1, S2 = max(q_lens), math.ceil(max(c_lens) / 4)
    topk_mask = torch.eye(S1, S2, dtype=torch.bool)
    topk_mask[:, 0] = True
    atten_mask = torch.triu(torch.ones((S1, max(c_lens)), dtype=torch.bool), diagonal=1)
    actual_seq_qlen = U.prefix_sums(q_lens)
    actual_cmp_seq_kvlen = U.prefix_sums(c_lens)
    actual_sel_seq_kvlen = U.prefix_sums(math.ceil(c / 4) for c in c_lens)
    out = ops.nsa_compress_attention(query, key, value, scale_value, head_num,
                                     compress_block_size, compress_stride, select_block_size,
                                     select_block_count, topk_mask=topk_mask,
                                     atten_mask=atten_mask, actual_seq_qlen=actual_seq_qlen,
                                     actual_cmp_seq_kvlen=actual_cmp_seq_kvlen,
                                     actual_sel_seq_kvlen=actual_sel_seq_kvlen)
    check_nsa(tuple(out), (query, key, value, scale_value, head_num, compress_block_size,
                           compress_stride, select_block_size, select_block_count),
              dict(topk_mask=topk_mask, atten_mask=atten_mask, actual_seq_qlen=actual_seq_qlen,
                   actual_cmp_seq_kvlen=actual_cmp_seq_kvlen,
                   actual_sel_seq_kvlen=actual_sel_seq_kvlen), "mindspore ST call")


# MindSpore docs mindspore.ops.incre_flash_attention (seed 004): key / value as lists of one
# tensor, BSH, GQA, attn_mask (B, 1, S) bool hiding the padding, actual_seq_lengths list,
# kv_padding_size an int64 Tensor (KV left padding: valid keys [S - pad - len, S - pad)).
def test_mindspore_doc_incre_flash_attention_left_padding():
    ops = mindspore_face()
    g = U.gen(18)
    B, N, kvN, S, D_ = 2, 8, 2, 64, 128
    actual_seq_lengths = [20, 41]
    pad = 3
    kv_padding_size = torch.tensor([pad], dtype=torch.int64)
    query = U.randn(g, B, 1, N * D_, dtype=torch.float16)
    key = torch.full((B, S, kvN * D_), float("nan"), dtype=torch.float16)
    value = torch.full((B, S, kvN * D_), float("nan"), dtype=torch.float16)
    attn_mask = torch.ones(B, 1, S, dtype=torch.bool)
    for b, n in enumerate(actual_seq_lengths):
        lo, hi = S - pad - n, S - pad
        key[b, lo:hi] = U.randn(g, n, kvN * D_, dtype=torch.float16)
        value[b, lo:hi] = U.randn(g, n, kvN * D_, dtype=torch.float16)
        attn_mask[b, 0, lo:hi] = False
    scale_value = 1 / math.sqrt(D_)
    out = ops.incre_flash_attention(query, [key], [value], attn_mask=attn_mask,
                                    actual_seq_lengths=actual_seq_lengths, num_heads=N,
                                    input_layout='BSH', scale_value=scale_value,
                                    num_key_value_heads=kvN, kv_padding_size=kv_padding_size)
    check_ifa_out(out, (B, 1, N * D_), (query, key, value),
                  dict(attn_mask=attn_mask, actual_seq_lengths=actual_seq_lengths, num_heads=N,
                       input_layout='BSH', scale_value=scale_value, num_key_value_heads=kvN,
                       kv_padding_size=[pad]), "mindspore incre_flash_attention")
