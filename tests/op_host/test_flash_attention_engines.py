"""plan_engine: which library engine serves each class of npu_flash_attention call on CUDA, what
is refused and why, and the block mask's tiles (pure planning from shapes and attributes)."""
import pytest
import torch

from cann_attention.op_host.common.mask_spec import INT64_MAX, TileStatus
from cann_attention.op_host.common.platform import CPU, H100
from cann_attention.op_host.flash_attention.capabilities import BACKENDS
from cann_attention.op_host.flash_attention.engines import flex_blocks, plan_engine
from testing.calls import assert_same, checked

OP = "npu_flash_attention"
ALL = ("FLASH_ATTENTION", "CUDNN_ATTENTION", "EFFICIENT_ATTENTION")


def params(b=2, s1=16, s2=16, n1=4, n2=2, d=64, dtype=torch.bfloat16, **kw):
    q = torch.zeros(b, s1, n1, d, dtype=dtype)
    k = torch.zeros(b, s2, n2, d, dtype=dtype)
    p, _ = checked(OP, q, k, k.clone(), 0.125, **kw)
    return p


def tnd_params(q_lens=(3, 5), kv_lens=(4, 9), **kw):
    q = torch.zeros(sum(q_lens), 4, 32, dtype=torch.float16)
    k = torch.zeros(sum(kv_lens), 2, 32, dtype=torch.float16)
    cum = lambda x: torch.tensor(x).cumsum(0).to(torch.int32)
    p, _ = checked(OP, q, k, k.clone(), 0.1, layout_query="TND", layout_kv="TND",
                   actual_seq_lengths_query=cum(q_lens), actual_seq_lengths_kv=cum(kv_lens), **kw)
    return p


SDPA_CASES = {
    "no_mask": (dict(), "none"),
    "mode2_causal": (dict(sparse_mode=2, s1=8), "causal"),
    "mode3_square_causal": (dict(sparse_mode=3), "causal"),
    "mode3_lower_right": (dict(sparse_mode=3, s1=8, s2=40), "causal_lower_right"),
    "mode3_decode": (dict(sparse_mode=3, s1=1, s2=40), "none"),
    "mode1_mask": (dict(sparse_mode=1, atten_mask=torch.zeros(16, 16, dtype=torch.bool)),
                   "tensor"),
    "mode0_mask_no_band": (dict(atten_mask=torch.zeros(16, 16, dtype=torch.bool)), "tensor"),
    "pse_same_dtype": (dict(pse_shift=torch.zeros(1, 4, 16, 16, dtype=torch.bfloat16),
                            sparse_mode=3), "tensor"),
}


@pytest.mark.parametrize("case", list(SDPA_CASES))
def test_dense_calls_sdpa_expresses_get_sdpa(case):
    kw, mask = SDPA_CASES[case]
    plan = plan_engine(params(**kw), H100)
    assert plan.engine == "sdpa" and plan.sdpa_mask == mask, plan.reason
    assert plan.blocks is None
    if mask == "tensor":       # flash takes no tensor mask; the efficient kernel needs K/V expanded
        assert plan.sdpa_backends == ALL[1:] and plan.expand_kv
    else:
        assert plan.sdpa_backends == ALL
        # GQA native (enable_gqa) only where flash surely serves: no mask, square causal
        square = kw.get("s1", 16) == kw.get("s2", 16)
        assert plan.expand_kv == (not (mask == "none" or (mask == "causal" and square)))


def test_sdpa_backends_follow_dtype_and_head_dim():
    assert plan_engine(params(dtype=torch.float32), H100).sdpa_backends == (
        "EFFICIENT_ATTENTION",)
    assert plan_engine(params(dtype=torch.float32), H100).expand_kv     # G = 2, no flash
    assert plan_engine(params(dtype=torch.float32, n2=4), H100).expand_kv is False
    assert plan_engine(params(d=256), H100).sdpa_backends == ("FLASH_ATTENTION",
                                                              "EFFICIENT_ATTENTION")
    assert plan_engine(params(d=512), H100).sdpa_backends == ("EFFICIENT_ATTENTION",)


FLEX_CASES = {
    "lse": dict(return_softmax_lse=True),
    "sink": dict(learnable_sink=torch.zeros(4)),
    "chunk": dict(chunk_size=4),
    "mode4_band": dict(sparse_mode=4, pre_tokens=3, next_tokens=0),
    "mode0_mask_band": dict(atten_mask=torch.zeros(16, 16, dtype=torch.bool), pre_tokens=2,
                            next_tokens=INT64_MAX),
    "mode3_rows_see_nothing": dict(sparse_mode=3, s1=20, s2=8),
    "pse_fp32_on_bf16": dict(pse_shift=torch.zeros(2, 4, 16, 16)),
    "lengths_kv": dict(actual_seq_lengths_kv=torch.tensor([16, 3])),
    "lengths_query": dict(actual_seq_lengths_query=torch.tensor([1, 16])),
}


@pytest.mark.parametrize("case", list(FLEX_CASES))
def test_other_dense_calls_get_flex(case):
    p = params(**FLEX_CASES[case])
    plan = plan_engine(p, H100)
    assert plan.engine == "flex", plan.reason
    assert plan.compiled and plan.sdpa_backends == ()
    assert plan.lengths == ("counts" if case.startswith("lengths") else "static")
    assert plan.row_max == ("flex" if case == "lse" else "none")


def test_flex_on_a_cpu_platform_runs_eagerly_and_takes_the_max_densely():
    plan = plan_engine(params(return_softmax_lse=True), CPU)
    assert plan.engine == "flex" and not plan.compiled and plan.row_max == "dense"


def test_tnd_gets_flex_with_prefix_sums():
    plan = plan_engine(tnd_params(sparse_mode=3), H100)
    assert plan.engine == "flex" and plan.lengths == "prefix_sums"
    assert "prefix_sums" in plan.reason


def test_paged_keys_go_to_flex_through_a_gather():
    q = torch.zeros(2, 4, 4, 64, dtype=torch.float16)
    k = torch.zeros(6, 16, 2, 64, dtype=torch.float16)
    p, _ = checked(OP, q, k, k.clone(), 0.1, layout_kv="PA_BSND",
                   block_table=torch.tensor([[0, 1], [2, 3]], dtype=torch.int32),
                   actual_seq_lengths_kv=torch.tensor([20, 5]))
    plan = plan_engine(p, H100)
    assert plan.engine == "flex" and plan.gather_pages and "gathered" in plan.reason
    assert plan.blocks.kv_len == 32                          # each batch's key capacity
    library = next(b for b in BACKENDS if b.name == "library")
    assert library.verify(p, "cuda", torch.float16) is None


def test_head_dim_above_flex_limit_refused_unless_sdpa_serves():
    assert plan_engine(params(d=512, sparse_mode=2), H100).engine == "sdpa"
    plan = plan_engine(params(d=512, return_softmax_lse=True), H100)
    assert plan.engine is None and "D=512" in plan.reason


def test_registry_entry():
    names = [b.name for b in BACKENDS]
    library = BACKENDS[names.index("library")]
    emulate = BACKENDS[names.index("emulate")]
    assert library.priority > emulate.priority
    assert library.device_types == ("cuda",) and library.named_only_on == ()
    assert "H100" in library.status
    assert library.plan is plan_engine
    assert "runs on cuda" in library.verify(params(), "cpu", torch.bfloat16)
    assert library.verify(params(), "cuda", torch.bfloat16) is None
    assert library.load().__module__.endswith("flash_attention.library")


def test_plan_is_pure():
    p = params(sparse_mode=4, pre_tokens=5, next_tokens=1, return_softmax_lse=True)
    assert_same(plan_engine(p, H100), plan_engine(p, H100))


# ---- the block mask's tiles -----------------------------------------------------------------
def _brute_visible(s1, s2, lo, hi):
    """Visibility of a band qpos + lo <= k <= qpos + hi (qpos = i + s2 - s1), own code."""
    i = torch.arange(s1)[:, None] + (s2 - s1)
    k = torch.arange(s2)[None, :]
    return (k >= i + lo) & (k <= i + hi)


@pytest.mark.parametrize("kw,lo,hi", [
    (dict(sparse_mode=3, s1=200, s2=300), -10**9, 0),
    (dict(sparse_mode=4, pre_tokens=40, next_tokens=-5, s1=300, s2=290), -40, -5),
    (dict(sparse_mode=2, s1=300, s2=200), -10**9, 100),
], ids=["mode3", "mode4", "mode2"])
def test_exact_tiles_match_the_predicate(kw, lo, hi):
    p = params(b=1, **kw)
    blocks = flex_blocks(p, block=64)
    assert blocks.exact
    vis = _brute_visible(p.s1, p.s2, lo, hi)
    for qb in range(blocks.status.shape[0]):
        for kb in range(blocks.status.shape[1]):
            tile = vis[qb * 64:(qb + 1) * 64, kb * 64:(kb + 1) * 64]
            status = TileStatus(int(blocks.status[qb, kb]))
            assert status is not TileStatus.EMPTY or not tile.any()
            assert status is not TileStatus.FULL or tile.all()
    assert (blocks.status == TileStatus.EMPTY).any()
    assert (blocks.status == TileStatus.FULL).any() == (p.sparse_mode != 4)  # band < a tile


def test_atten_mask_makes_no_tile_full():
    p = params(b=1, s1=200, s2=200, sparse_mode=1,
               atten_mask=torch.zeros(200, 200, dtype=torch.bool), chunk_size=64)
    status = flex_blocks(p, block=64).status
    assert not (status == TileStatus.FULL).any() and (status == TileStatus.EMPTY).any()


def test_length_tensors_make_every_tile_partial_but_local_bands_still_skip():
    p = params(b=2, s1=200, s2=300, sparse_mode=3, actual_seq_lengths_kv=torch.tensor([5, 9]))
    blocks = flex_blocks(p, block=64)
    assert not blocks.exact and (blocks.status == TileStatus.PARTIAL).all()
    p = params(b=2, s1=200, s2=300, sparse_mode=2, actual_seq_lengths_kv=torch.tensor([5, 9]))
    status = flex_blocks(p, block=64).status
    assert status[0, 1] == TileStatus.EMPTY and status[0, 0] == TileStatus.PARTIAL
    assert not (status == TileStatus.FULL).any()


def test_tnd_tiles_cover_the_packed_grid():
    blocks = flex_blocks(tnd_params(q_lens=(100, 60), kv_lens=(90, 200)), block=64)
    assert (blocks.q_len, blocks.kv_len) == (160, 290)
    assert blocks.status.shape == (3, 5) and (blocks.status == TileStatus.PARTIAL).all()
