"""The library back end (SDPA / FlexAttention) == the emulator == the reference, on CPU tensors.

``library.run`` is called directly with CPU tensors (the registry entry runs on CUDA tensors
only): FlexAttention runs eagerly on CPU, SDPA with its CPU back ends. Calls that the planner
gives to SDPA are also run through a FlexAttention plan, so both engines are checked on them.
The GPU tests at the end run the back end by name on CUDA tensors, in bf16 and under CUDA-graph
capture (skipped without a CUDA device).
"""
import dataclasses
import random

import pytest
import torch
import torch._dynamo

import cann_attention
from cann_attention.op_host.common.mask_spec import INT64_MAX
from cann_attention.op_host.common.platform import ASCEND_A3, CPU
from cann_attention.op_host.flash_attention import tiling
from cann_attention.op_host.flash_attention.engines import flex_blocks, plan_engine
from cann_attention.op_kernel.common.score_mods import alibi_pse_shift
from cann_attention.op_kernel.flash_attention import emulate, library
from cann_attention.op_kernel.flash_attention.reference import flash_attention as reference
from testing.calls import checked, fields_of
from testing.oracle import assert_close, assert_stats_close

pytestmark = pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
OP_NAME = "npu_flash_attention"
OP = torch.ops.cann_attention.npu_flash_attention
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


@pytest.fixture
def gen():
    """Fresh inputs per test (its own seed, fixed by the test's node id)."""
    return torch.Generator().manual_seed(random.randrange(2**31))


def randn(gen, *shape, dtype=torch.float32):
    return torch.randn(*shape, generator=gen).to(dtype)


def as_flex(p, plan):
    """The FlexAttention plan of a call (for calls the planner gives to SDPA)."""
    return dataclasses.replace(plan, engine="flex", blocks=flex_blocks(p), lengths="static",
                               compiled=False, row_max="dense" if p.return_softmax_lse
                               else "none", sdpa_backends=())


def check(args, kwargs, engine=None):
    """library.run (the planned engine, and flex too for SDPA calls) == emulator == reference.
    Returns the planned engine's outputs."""
    p, t = checked(OP_NAME, *args, **kwargs)
    plan = plan_engine(p, CPU)
    if engine is not None:
        assert plan.engine == engine, plan.reason
    emu = emulate.run(p, tiling.plan(p, ASCEND_A3), t)
    lse = kwargs.get("return_softmax_lse", False)
    want = reference(*args, compute_dtype=torch.float64, **kwargs)
    base = reference(*args, compute_dtype=args[0].dtype, **kwargs)
    plans = [plan] + ([as_flex(p, plan)] if plan.engine == "sdpa" else [])
    results = []
    for pl in plans:
        got = library.run(p, pl, t)
        assert got[0].dtype == args[0].dtype and got[0].shape == emu[0].shape
        assert_close(got[0], want[0].to(args[0].dtype), base[0], what=f"{pl.engine} output")
        invalid = (emu[0] == 0).all(-1)                 # rows that see nothing: exact zeros
        assert (got[0][invalid] == 0).all(), f"{pl.engine}: rows that see nothing are not 0"
        if lse:
            for g, e, w, what in ((got[1], emu[1], want[1], "softmax_max"),
                                  (got[2], emu[2], want[2], "softmax_sum")):
                assert_stats_close(g, w, rtol=1e-3, what=f"{pl.engine} {what}")
                assert_stats_close(g, e, rtol=1e-3, what=f"{pl.engine} {what} vs emulator")
        else:
            assert got[1].shape == (0,) and got[2].shape == (0,)
        results.append(got)
    return results[0]


def dense(gen, b, s1, s2, n1, n2, d, dtype, layout="BSND"):
    q = randn(gen, b, s1, n1, d, dtype=dtype)
    k, v = randn(gen, b, s2, n2, d, dtype=dtype), randn(gen, b, s2, n2, d, dtype=dtype)
    if layout == "BNSD":
        q = q.transpose(1, 2).contiguous()
    return q, k, v


MODES = {
    "mode0": dict(),
    "mode0_mask": "mask0",
    "mode0_mask_band": "mask_band",
    "mode1": "mask",
    "mode2": dict(sparse_mode=2),
    "mode3": dict(sparse_mode=3),
    "mode4_swc": dict(sparse_mode=4, pre_tokens=20, next_tokens=0),
    "mode4_neg": dict(sparse_mode=4, pre_tokens=30, next_tokens=-5),
    "mode4_noncausal": dict(sparse_mode=4, pre_tokens=7, next_tokens=INT64_MAX),
    "chunk": dict(chunk_size=24),
    "chunk_causal": dict(sparse_mode=3, chunk_size=16),
}


def mode_kwargs(gen, name, b, s1, s2):
    spec = MODES[name]
    if spec == "mask":
        return dict(sparse_mode=1, atten_mask=torch.rand(b, 1, s1, s2, generator=gen) < 0.3)
    if spec == "mask0":                 # the default band covers every key: SDPA's tensor mask
        return dict(atten_mask=torch.rand(1, s1, s2, generator=gen) < 0.3)
    if spec == "mask_band":
        return dict(atten_mask=torch.rand(s1, s2, generator=gen) < 0.2, pre_tokens=10,
                    next_tokens=40)
    return dict(spec)


@pytest.mark.parametrize("layout", ["BSND", "BNSD"])
@pytest.mark.parametrize("mode", list(MODES))
def test_sparse_modes_and_layouts(gen, mode, layout):
    b, s1, s2, n1, n2, d = 2, 37, 70, 4, 2, 32
    q, k, v = dense(gen, b, s1, s2, n1, n2, d, torch.bfloat16, layout)
    kw = dict(mode_kwargs(gen, mode, b, s1, s2), layout_query=layout)
    check((q, k, v, d ** -0.5), kw)
    check((q, k, v, d ** -0.5), dict(kw, return_softmax_lse=True), engine="flex")


@pytest.mark.parametrize("dt", list(DTYPES))
@pytest.mark.parametrize("g", [1, 4], ids=lambda g: f"G{g}")
def test_gqa_and_dtypes(gen, g, dt):
    q, k, v = dense(gen, 2, 24, 24, 2 * g, 2, 64, DTYPES[dt])
    check((q, k, v, 0.125), dict(sparse_mode=3), engine="sdpa")
    check((q, k, v, 0.125), dict(sparse_mode=3, return_softmax_lse=True), engine="flex")


def test_lower_right_causal_through_sdpa(gen):
    q, k, v = dense(gen, 2, 9, 50, 4, 1, 32, torch.float16)
    p, _ = checked(OP_NAME, q, k, v, 0.2, sparse_mode=3)
    assert plan_engine(p, CPU).sdpa_mask == "causal_lower_right"
    check((q, k, v, 0.2), dict(sparse_mode=3), engine="sdpa")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=["bf16", "fp32"])
def test_pse_shift(gen, dtype):
    q, k, v = dense(gen, 2, 12, 30, 4, 2, 32, torch.bfloat16)
    pse = (randn(gen, 2, 4, 12, 30) * 2).to(dtype)
    engine = "sdpa" if dtype == torch.bfloat16 else "flex"
    check((q, k, v, 0.3), dict(pse_shift=pse, sparse_mode=3), engine=engine)
    check((q, k, v, 0.3), dict(pse_shift=pse, sparse_mode=4, pre_tokens=9, next_tokens=0,
                               return_softmax_lse=True), engine="flex")


def test_alibi(gen):
    q, k, v = dense(gen, 1, 16, 40, 4, 2, 32, torch.float16)
    alibi = alibi_pse_shift(4, 16, 40, dtype=torch.float16)
    check((q, k, v, 0.3), dict(pse_shift=alibi, sparse_mode=3), engine="sdpa")
    check((q, k, v, 0.3), dict(pse_shift=alibi.float(), sparse_mode=3, return_softmax_lse=True,
                               learnable_sink=randn(gen, 4)), engine="flex")


@pytest.mark.parametrize("lse", [False, True], ids=["out", "lse"])
def test_sinks(gen, lse):
    q, k, v = dense(gen, 2, 20, 33, 4, 2, 32, torch.bfloat16)
    sink = randn(gen, 4) * 3
    check((q, k, v, 0.2), dict(learnable_sink=sink, sparse_mode=3, return_softmax_lse=lse),
          engine="flex")
    check((q, k, v, 0.2), dict(learnable_sink=sink.bfloat16(), sparse_mode=4, pre_tokens=3,
                               next_tokens=0, chunk_size=8, return_softmax_lse=lse))


def test_sink_counted_once(gen):
    q, k, v = dense(gen, 1, 1, 300, 2, 1, 32, torch.float32)
    sink = torch.tensor([1.0, 3.0])
    out, smax, ssum = check((q, k, v, 0.2), dict(learnable_sink=sink, return_softmax_lse=True))
    out0, m0, l0 = check((q, k, v, 0.2), dict(return_softmax_lse=True))
    lse0 = (m0 + l0.log()).flatten()
    factor = 1.0 / (1.0 + torch.exp(sink - lse0))
    torch.testing.assert_close(out[0, 0], out0[0, 0] * factor[:, None], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close((smax + ssum.log()).flatten(), torch.logaddexp(lse0, sink))


@pytest.mark.parametrize("lse", [False, True], ids=["out", "lse"])
def test_varlen_tnd(gen, lse):
    q_lens, kv_lens = [3, 0, 17, 1], [10, 4, 17, 33]
    q = randn(gen, sum(q_lens), 8, 64, dtype=torch.float16)
    k = randn(gen, sum(kv_lens), 2, 64, dtype=torch.float16)
    v = randn(gen, sum(kv_lens), 2, 64, dtype=torch.float16)
    cum = lambda x: torch.tensor(x).cumsum(0).to(torch.int32)
    base = dict(layout_query="TND", layout_kv="TND", actual_seq_lengths_query=cum(q_lens),
                actual_seq_lengths_kv=cum(kv_lens), return_softmax_lse=lse)
    check((q, k, v, 0.125), dict(base, sparse_mode=3, learnable_sink=randn(gen, 8)),
          engine="flex")
    check((q, k, v, 0.125), dict(base, sparse_mode=4, pre_tokens=4, next_tokens=2,
                                 chunk_size=5), engine="flex")
    check((q, k, v, 0.125), dict(base), engine="flex")


def test_lengths_with_padding_rows_and_rows_that_see_nothing(gen):
    q, k, v = dense(gen, 3, 16, 50, 4, 4, 32, torch.bfloat16, layout="BNSD")
    kw = dict(layout_query="BNSD", sparse_mode=3, return_softmax_lse=True,
              actual_seq_lengths_query=torch.tensor([16, 5, 0], dtype=torch.int32),
              actual_seq_lengths_kv=torch.tensor([50, 3, 20], dtype=torch.int64))
    out, smax, ssum = check((q, k, v, 0.3), kw, engine="flex")
    assert (out[1, :, 5:] == 0).all() and (out[2] == 0).all()           # padded query rows
    assert (out[1, :, :2] == 0).all()               # Lq=5 > Lk=3: rows 0, 1 see no key
    assert (smax[2] == -2e38).all() and (ssum[2] == 0).all()


def test_fully_masked_rows(gen):
    q, k, v = dense(gen, 1, 6, 9, 2, 1, 16, torch.float16)
    am = torch.rand(6, 9, generator=gen) < 0.3
    am[3] = True
    out, _, _ = check((q, k, v, 1.0), dict(sparse_mode=1, atten_mask=am), engine="sdpa")
    assert (out[0, 3] == 0).all() and not torch.isnan(out).any()
    out, smax, ssum = check((q, k, v, 1.0), dict(sparse_mode=1, atten_mask=am,
                                                 learnable_sink=torch.ones(2),
                                                 return_softmax_lse=True), engine="flex")
    assert (out[0, 3] == 0).all() and (smax[0, 0, 3] == -2e38).all() and (ssum[0, 0, 3] == 0).all()
    check((q, k, v, 1.0), dict(sparse_mode=3), engine="sdpa")   # S1 < S2: every row sees keys
    q2, k2, v2 = dense(gen, 1, 9, 4, 2, 1, 16, torch.float16)
    out, _, _ = check((q2, k2, v2, 1.0), dict(sparse_mode=3), engine="flex")   # S1 > S2
    assert (out[0, :5] == 0).all() and (out[0, 5:] != 0).any()


@pytest.mark.parametrize("kw", [dict(sparse_mode=3), dict(sparse_mode=2),
                                dict(sparse_mode=4, pre_tokens=6, next_tokens=0),
                                dict(return_softmax_lse=True, learnable_sink="sink")],
                         ids=["mode3", "mode2", "window", "lse_sink"])
def test_decode_s1_is_1(gen, kw):
    q, k, v = dense(gen, 3, 1, 40, 8, 2, 64, torch.bfloat16)
    if kw.get("learnable_sink") == "sink":
        kw = dict(kw, learnable_sink=randn(gen, 8))
    check((q, k, v, 0.125), dict(kw))


def test_block_mask_is_cached_per_plan_and_clearable(gen):
    q, k, v = dense(gen, 1, 8, 8, 2, 2, 16, torch.float32)
    p, t = checked(OP_NAME, q, k, v, 0.25, sparse_mode=4, pre_tokens=2, next_tokens=0)
    plan = plan_engine(p, CPU)
    library.clear_cache()
    first = library.run(p, plan, t)[0]
    masks = library.BLOCK_MASKS.get(p, plan)
    assert len(library.BLOCK_MASKS) == 1 and library.BLOCK_MASKS.get(p, plan) is masks
    assert library.run(p, plan, t)[0].equal(first) and len(library.BLOCK_MASKS) == 1
    library.clear_cache()
    assert len(library.BLOCK_MASKS) == 0


def test_compiled_flex_on_cpu_honours_the_block_mask_without_recompiling(gen):
    """The one compiled test on CPU (about 15 s: inductor's CPU kernel, which returns no lse,
    so output only). Compiled FlexAttention skips EMPTY tiles and the mask_mod on FULL ones,
    so unlike eager runs it checks the block mask; new values must not recompile."""
    def call():
        q, k, v = dense(gen, 2, 200, 256, 4, 2, 32, torch.float32)
        pse = randn(gen, 1, 4, 200, 256)
        return checked(OP_NAME, q, k, v, 0.2, sparse_mode=4, pre_tokens=150,
                       next_tokens=INT64_MAX, chunk_size=128, pse_shift=pse)
    p, t = call()
    plan = dataclasses.replace(plan_engine(p, CPU), compiled=True)
    assert plan.engine == "flex" and plan.blocks.exact
    statuses = set(plan.blocks.status.flatten().tolist())
    assert statuses == {0, 1, 2}                      # EMPTY, PARTIAL and FULL tiles
    for attempt in range(2):
        if attempt:
            p, t = call()
        with torch._dynamo.config.patch(error_on_recompile=attempt > 0):
            got = library.run(p, plan, t)[0]
        want = emulate.run(p, tiling.plan(p, ASCEND_A3), t)[0]
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_malformed_lengths_are_clamped_on_the_device(gen):
    """With value checks off (CUDA), lengths outside the tensors are clamped, never read back:
    the result equals the call with the clamped lengths."""
    q, k, v = dense(gen, 2, 6, 20, 2, 1, 16, torch.float32)
    good = dict(sparse_mode=3, return_softmax_lse=True,
                actual_seq_lengths_kv=torch.tensor([20, 0]))
    p, t = checked(OP_NAME, q, k, v, 0.3, **good)
    plan = plan_engine(p, CPU)
    want = library.run(p, plan, t)
    t.actual_seq_lengths_kv = torch.tensor([999, -5])
    for got, exp in zip(library.run(p, plan, t), want):
        torch.testing.assert_close(got, exp)
    cum = lambda x: torch.tensor(x).cumsum(0).to(torch.int32)
    qt, kt, vt = (randn(gen, n, 2, 16) for n in (9, 12, 12))
    p, t = checked(OP_NAME, qt, kt, vt, 0.3, layout_query="TND", layout_kv="TND",
                   actual_seq_lengths_query=cum([4, 5]), actual_seq_lengths_kv=cum([2, 10]),
                   return_softmax_lse=True)
    plan = plan_engine(p, CPU)
    want = library.run(p, plan, t)
    t.actual_seq_lengths_query = torch.tensor([4, 90])
    got = library.run(p, plan, t)                      # [4, 90] reads as [4, 9]: the same
    for g, e in zip(got, want):
        torch.testing.assert_close(g, e)
    t.actual_seq_lengths_query = torch.tensor([7, 3])  # decreasing: made [7, 7], no crash
    out = library.run(p, plan, t)[0]
    assert torch.isfinite(out).all() and (out[7:] == 0).all()


def test_run_reads_no_device_value_back():
    """No ``.item()`` / ``.tolist()`` / ``.cpu()`` in the runner (CUDA-graph capture)."""
    import inspect
    import re
    source = inspect.getsource(library)
    assert not re.search(r"\.(item|tolist|cpu|numpy)\(|torch\.tensor\(", source)


def test_asked_for_by_name_on_cpu_tensors_it_refuses(gen):
    q, k, v = dense(gen, 1, 4, 4, 2, 1, 16, torch.float16)
    with cann_attention.use(backend="library"):
        with pytest.raises(cann_attention.op_host.common.errors.CannAttentionError,
                           match="backend.*library.*runs on cuda tensors"):
            OP(q, k, v, 0.25)


def test_no_engine_raises_naming_the_backend(gen):
    q, k, v = dense(gen, 1, 4, 4, 2, 1, 512, torch.float16)
    p, t = checked(OP_NAME, q, k, v, 0.2, return_softmax_lse=True)
    with pytest.raises(cann_attention.op_host.common.errors.CannAttentionError,
                       match="backend.*head dim"):
        library.run(p, plan_engine(p, CPU), t)


def paged(gen, kv_lens, q_lens, n1, n2, d, block_size, layout_query):
    """A shuffled page table with a spare column and spare blocks (-1 past each batch)."""
    pages = [-(-n // block_size) for n in kv_lens]
    blocks = sum(pages) + 3
    perm = torch.randperm(blocks, generator=gen)
    table = torch.full((len(kv_lens), max(pages) + 1), -1, dtype=torch.int32)
    used = 0
    for b, n in enumerate(pages):
        table[b, :n] = perm[used:used + n].to(torch.int32)
        used += n
    k = randn(gen, blocks, block_size, n2, d, dtype=torch.bfloat16)
    v = randn(gen, blocks, block_size, n2, d, dtype=torch.bfloat16)
    if layout_query == "TND":
        q = randn(gen, sum(q_lens), n1, d, dtype=torch.bfloat16)
        aq = torch.tensor(q_lens).cumsum(0).to(torch.int32)
    else:
        q = randn(gen, len(q_lens), max(q_lens), n1, d, dtype=torch.bfloat16)
        aq = torch.tensor(q_lens, dtype=torch.int32)
    return (q, k, v, d ** -0.5), dict(
        layout_query=layout_query, layout_kv="PA_BSND", block_table=table,
        actual_seq_lengths_query=aq, actual_seq_lengths_kv=torch.tensor(kv_lens))


PAGED_MODES = {
    "causal_cache": dict(sparse_mode=3),
    "window_lse_sink": dict(sparse_mode=4, pre_tokens=9, next_tokens=0,
                            return_softmax_lse=True),
    "full_lse": dict(return_softmax_lse=True),
}


@pytest.mark.parametrize("layout", ["BSND", "TND"])
@pytest.mark.parametrize("mode", list(PAGED_MODES))
def test_paged_keys_gathered(gen, layout, mode):
    """Prefill on top of a paged cache (and decode rows): the pages gathered per call."""
    args, kw = paged(gen, [19, 12, 41], [5, 12, 1], 4, 2, 32, 16, layout)
    kw.update(PAGED_MODES[mode])
    if mode == "window_lse_sink":
        kw["learnable_sink"] = randn(gen, 4)
    check(args, kw, engine="flex")


def test_paged_mask_and_pse_shorter_than_the_capacity(gen):
    """atten_mask / pse_shift end at the longest batch's keys, before the page capacity."""
    args, kw = paged(gen, [40, 13], [3, 3], 4, 1, 32, 16, "BSND")
    s_max = 40                                  # capacity: (3 + 1) pages x 16 = 64 keys
    kw.update(atten_mask=torch.rand(3, s_max, generator=gen) < 0.3,
              pse_shift=randn(gen, 2, 4, 3, s_max, dtype=torch.bfloat16))
    check(args, kw, engine="flex")


def test_malformed_page_entries_read_inside_the_cache(gen):
    """Entries outside the cache are clamped into it: no error, finite outputs."""
    args, kw = paged(gen, [30, 20], [2, 2], 4, 2, 32, 16, "BSND")
    p, t = checked(OP_NAME, *args, **kw)          # value checks run on the good table
    table = kw["block_table"].clone()
    table[0, 0] = 10 ** 6
    table[1, 1] = -9
    bad = type(t)(**dict(fields_of(t), block_table=table))
    out = library.run(p, plan_engine(p, CPU), bad)[0]
    assert torch.isfinite(out.float()).all()


# ---- on a GPU -------------------------------------------------------------------------------
GPU_CASES = {
    "sdpa_causal": dict(sparse_mode=3),
    "sdpa_mask": "mask",
    "flex_window_lse_sink": dict(sparse_mode=4, pre_tokens=30, next_tokens=0,
                                 return_softmax_lse=True, learnable_sink="sink"),
    "flex_lengths": dict(sparse_mode=3, return_softmax_lse=True,
                         actual_seq_lengths_kv=[200, 17]),
}


def _gpu_kwargs(name, gen, s1, s2, device):
    kw = GPU_CASES[name]
    if kw == "mask":
        return dict(sparse_mode=1, atten_mask=(torch.rand(s1, s2, generator=gen) < 0.3).to(device))
    kw = dict(kw)
    if kw.get("learnable_sink") == "sink":
        kw["learnable_sink"] = randn(gen, 8).to(device)
    if "actual_seq_lengths_kv" in kw:
        kw["actual_seq_lengths_kv"] = torch.tensor(kw["actual_seq_lengths_kv"], device=device)
    return kw


def _to_cpu(kw):
    return {n: x.cpu() if isinstance(x, torch.Tensor) else x for n, x in kw.items()}


@pytest.mark.gpu
@pytest.mark.parametrize("case", list(GPU_CASES))
def test_gpu_bf16_matches_the_reference(gen, case):
    q, k, v = (x.cuda() for x in dense(gen, 2, 64, 256, 8, 2, 128, torch.bfloat16))
    kw = _gpu_kwargs(case, gen, 64, 256, "cuda")
    with cann_attention.use(backend="library"):
        got = OP(q, k, v, 0.088, **kw)
    args = (q.cpu(), k.cpu(), v.cpu(), 0.088)
    want = reference(*args, compute_dtype=torch.float64, **_to_cpu(kw))
    base = reference(*args, compute_dtype=torch.bfloat16, **_to_cpu(kw))
    assert_close(got[0], want[0].to(torch.bfloat16), base[0])
    if kw.get("return_softmax_lse"):
        assert_stats_close(got[1], want[1], rtol=1e-3, what="softmax_max")
        assert_stats_close(got[2], want[2], rtol=1e-3, what="softmax_sum")


@pytest.mark.gpu
@pytest.mark.parametrize("case", ["sdpa_causal", "flex_lengths", "flex_window_lse_sink"])
def test_gpu_cuda_graph_capture(gen, case):
    """Warm up (plans, block masks, compilation), capture one call, replay on new values."""
    q, k, v = (x.cuda() for x in dense(gen, 2, 64, 256, 8, 2, 128, torch.bfloat16))
    kw = _gpu_kwargs(case, gen, 64, 256, "cuda")
    with cann_attention.use(backend="library"):
        for _ in range(2):
            OP(q, k, v, 0.088, **kw)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outs = OP(q, k, v, 0.088, **kw)
    for x in (q, k, v):
        x.copy_(torch.randn(x.shape, generator=gen).to(x.dtype))
    if "actual_seq_lengths_kv" in kw:
        kw["actual_seq_lengths_kv"].copy_(torch.tensor([31, 256]))
    graph.replay()
    torch.cuda.synchronize()
    with cann_attention.use(backend="emulate"):
        want = OP(q.cpu(), k.cpu(), v.cpu(), 0.088, **_to_cpu(kw))
    torch.testing.assert_close(outs[0].cpu().float(), want[0].float(), atol=2e-2, rtol=2e-2)
    for got, exp in zip(outs[1:], want[1:]):
        torch.testing.assert_close(got.cpu(), exp, atol=1e-3, rtol=1e-3)


@pytest.mark.gpu
@pytest.mark.parametrize("layout", ["BSND", "TND"])
def test_gpu_paged_keys_match_the_reference(gen, layout):
    """Paged keys on CUDA: the pages gathered per call, FlexAttention compiled."""
    args, kw = paged(gen, [300, 45, 129], [5, 12, 1], 8, 2, 64, 64, layout)
    kw.update(sparse_mode=3, return_softmax_lse=True)
    on = tuple(a.cuda() if isinstance(a, torch.Tensor) else a for a in args)
    kwon = {n: x.cuda() if isinstance(x, torch.Tensor) else x for n, x in kw.items()}
    with cann_attention.use(backend="library"):
        got = OP(*on, **kwon)
    want = reference(*args, compute_dtype=torch.float64, **kw)
    base = reference(*args, compute_dtype=torch.bfloat16, **kw)
    assert_close(got[0].cpu(), want[0].to(torch.bfloat16), base[0])
    assert_stats_close(got[1].cpu(), want[1], rtol=1e-3, what="softmax_max")
