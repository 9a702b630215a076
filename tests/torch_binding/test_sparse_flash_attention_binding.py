"""Registration of custom::npu_sparse_flash_attention through the one pipeline: both upstream
call styles, the 3-tuple, opcheck, fake shapes, torch.compile, back-end selection, the static
cache, value checks, devices and caches."""
from __future__ import annotations

import pytest
import torch

import cann_attention
from cann_attention.op_host.common.errors import CannAttentionError
from cann_attention.op_host.sparse_flash_attention.capabilities import BACKENDS
from testing.sparse_flash_attention_cases import make_case

OP = torch.ops.cann_attention.npu_sparse_flash_attention


def test_seed001_positional_sparse_block_size():
    """custom.npu_sparse_flash_attention(q, k, v, idx, scale, sparse_block_size, *, ...)."""
    case = make_case(B=1, S1=2, S2=64, N1=4, K=8, sbs=2, layout_kv="PA_BSND", page=16)
    q, k, v, idx, scale, sbs = case.args
    kw = case.kwargs
    out = OP(q, k, v, idx, scale, sbs, block_table=kw["block_table"],
             actual_seq_lengths_kv=kw["actual_seq_lengths_kv"], query_rope=kw["query_rope"],
             key_rope=kw["key_rope"], layout_query="BSND", layout_kv="PA_BSND", sparse_mode=3)[0]
    assert out.shape == q.shape and out.dtype == q.dtype


def test_seed000_keyword_style():
    """mindspore.ops.sparse_flash_attention(..., attention_mode=2, return_softmax_lse=True)."""
    case = make_case(B=2, S1=1, S2=128, N1=8, K=32)
    q, k, v, idx, scale, _ = case.args
    out, smax, ssum = OP(q, k, v, idx, scale, query_rope=case.kwargs["query_rope"],
                         key_rope=case.kwargs["key_rope"], sparse_block_size=1,
                         layout_query="BSND", layout_kv="BSND", sparse_mode=3,
                         pre_tokens=2**63 - 1, next_tokens=2**63 - 1, attention_mode=2,
                         return_softmax_lse=True)
    assert out.shape == (2, 1, 8, 512)
    assert smax.shape == ssum.shape == (2, 1, 1, 8) and smax.dtype == torch.float32


def test_lse_not_requested_gives_empty_tensors():
    case = make_case(B=1, S1=1, S2=32, N1=2, K=4)
    out, smax, ssum = case.call(OP)
    assert smax.shape == (0,) and ssum.shape == (0,) and smax.dtype == torch.float32


@pytest.mark.parametrize("layout_query,layout_kv,lse", [("BSND", "BSND", True),
                                                        ("TND", "TND", True),
                                                        ("TND", "PA_BSND", False)])
def test_opcheck(layout_query, layout_kv, lse):
    case = make_case(B=2, S1=2, S2=48, N1=4, K=8, layout_query=layout_query,
                     layout_kv=layout_kv, page=16, return_softmax_lse=lse)
    torch.library.opcheck(OP.default, case.args, case.kwargs)


def test_fake_shapes_match_real():
    from torch._subclasses.fake_tensor import FakeTensorMode
    case = make_case(B=2, S1=3, S2=32, N1=4, K=8, layout_query="TND", layout_kv="TND",
                     return_softmax_lse=True)
    real = case.call(OP)
    with FakeTensorMode() as mode:
        args = tuple(mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in case.args)
        kwargs = {k: mode.from_tensor(v) if isinstance(v, torch.Tensor) else v
                  for k, v in case.kwargs.items()}
        fake = OP(*args, **kwargs)
    assert [tuple(f.shape) for f in fake] == [tuple(r.shape) for r in real]
    assert [f.dtype for f in fake] == [r.dtype for r in real]


def test_torch_compile_fullgraph():
    case = make_case(B=1, S1=2, S2=64, N1=4, K=8, return_softmax_lse=True)
    q, k, v, idx, scale, sbs = case.args
    kw = case.kwargs

    @torch.compile(fullgraph=True, backend="aot_eager")
    def layer(q, k, idx, qr, kr):
        out, smax, _ = OP(q, k, k, idx, scale, sbs, query_rope=qr, key_rope=kr,
                          return_softmax_lse=True)
        return out.float() * 2, smax

    out, smax = layer(q, k, idx, kw["query_rope"], kw["key_rope"])
    eager = OP(q, k, k, idx, scale, sbs, query_rope=kw["query_rope"], key_rope=kw["key_rope"],
               return_softmax_lse=True)
    torch.testing.assert_close(out, eager[0].float() * 2)
    torch.testing.assert_close(smax, eager[1])


def test_explicit_backend_never_falls_back():
    case = make_case(B=1, S1=1, S2=32, N1=2, K=4)
    with cann_attention.use(backend="triton"):
        with pytest.raises(CannAttentionError, match="'triton' was requested but cannot run"):
            case.call(OP)
    with cann_attention.use(backend="nope"):
        with pytest.raises(CannAttentionError, match="backend: expected one of"):
            case.call(OP)
    with cann_attention.use(backend="emulate"):
        assert case.call(OP)[0].shape == case.args[0].shape


def test_auto_dispatch_takes_the_first_backend_that_applies():
    names = [c.name for c in BACKENDS]
    assert names[-1] == "emulate"
    assert [b.priority for b in BACKENDS] == sorted((b.priority for b in BACKENDS), reverse=True)
    case = make_case(B=1, S1=1, S2=32, N1=2, K=4)
    assert case.call(OP)[0].shape == case.args[0].shape


@pytest.mark.gpu
def test_cuda_tensors_run_through_the_emulator_when_asked(monkeypatch):
    """``use(backend="emulate")`` runs the emulator on CUDA tensors: the Triton runner must not
    be reached (it is made to fail), and the result matches the reference."""
    from testing.oracle import assert_close
    from cann_attention.op_kernel.sparse_flash_attention import reference
    from cann_attention.op_kernel.sparse_flash_attention import triton as sfa_triton

    def no_triton(*a, **k):
        raise AssertionError("the Triton back end ran")

    monkeypatch.setattr(sfa_triton, "run", no_triton)
    cann_attention.clear_caches()          # no cached runner from an earlier test
    case = make_case(B=2, S1=2, S2=96, N1=16, K=32, return_softmax_lse=True)
    args = tuple(a.cuda() if isinstance(a, torch.Tensor) else a for a in case.args)
    kwargs = {k: v.cuda() if isinstance(v, torch.Tensor) else v for k, v in case.kwargs.items()}
    with cann_attention.use(backend="emulate"):
        out = OP(*args, **kwargs)[0]
    assert out.is_cuda
    ref = case.call(reference.sparse_flash_attention)[0]
    low = case.call(reference.sparse_flash_attention, compute_dtype=torch.bfloat16)[0]
    assert_close(out.cpu(), ref, low)
    cann_attention.clear_caches()


def test_static_part_is_cached_by_signature_not_values():
    """Calls that differ only in values (lengths, indices) reuse one static entry (params, back
    end, plan); another shape gets its own; clear_caches empties it."""
    op = cann_attention.OPS["npu_sparse_flash_attention"]
    cann_attention.clear_caches()
    case = make_case(B=2, S1=2, S2=64, N1=4, K=8, layout_kv="PA_BSND", page=16,
                     q_lens=[2, 1], kv_lens=[64, 30], seed=1)
    case.call(OP)
    assert len(op._cache) == 1
    case.kwargs["actual_seq_lengths_query"] = torch.tensor([1, 2], dtype=torch.int32)
    case.kwargs["actual_seq_lengths_kv"] = torch.tensor([50, 20], dtype=torch.int32)
    case.call(OP)
    assert len(op._cache) == 1
    make_case(B=3, S1=2, S2=64, N1=4, K=8).call(OP)
    assert len(op._cache) == 2
    cann_attention.clear_caches()
    assert len(op._cache) == 0
    from cann_attention.op_host.common import paging
    from cann_attention.op_host.sparse_flash_attention import tiling
    assert tiling.plan.cache_info().currsize == 0
    assert paging._used_pages.cache_info().currsize == 0


def test_values_are_checked_on_cpu_every_call():
    """A cached static entry does not skip the value checks: bad lengths are refused on CPU."""
    case = make_case(B=2, S1=2, S2=64, N1=4, K=8, kv_lens=[64, 30])
    case.call(OP)
    case.kwargs["actual_seq_lengths_kv"] = torch.tensor([64, 65], dtype=torch.int32)
    with pytest.raises(CannAttentionError, match="actual_seq_lengths_kv: expected every length "
                       r"in \[0, S2=64\], got 65 at batch 1"):
        case.call(OP)


def test_tensors_on_another_device_are_refused():
    """(Called without the dispatcher, which would route a call with a meta tensor to the fake.)"""
    case = make_case(B=1, S1=2, S2=32, N1=2, K=4, sinks=True)
    case.kwargs["sinks"] = case.kwargs["sinks"].to("meta")
    with pytest.raises(CannAttentionError, match="sinks: expected a tensor on cpu "
                       r"\(the query's device\), got meta"):
        case.call(cann_attention.npu_sparse_flash_attention)


@pytest.mark.parametrize("arg", ["key", "key_rope"])
def test_a_non_contiguous_cache_is_refused(arg):
    """A cache is read in place; a strided one would be copied whole each call: refused."""
    case = make_case(B=1, S1=2, S2=32, N1=2, K=4)
    if arg == "key":
        wide = torch.cat([case.args[1], case.args[1]], -1)[..., :512]
        case.args = case.args[:1] + (wide, wide) + case.args[3:]
    else:
        kr = case.kwargs["key_rope"]
        case.kwargs["key_rope"] = torch.cat([kr, kr], -1)[..., :64]
    with pytest.raises(CannAttentionError, match=f"{arg}: expected a contiguous tensor"):
        case.call(OP)


def test_use_is_scoped_to_the_thread():
    """``use`` in one thread does not change the configuration another thread sees."""
    import threading
    seen = {}
    inside = threading.Event()
    release = threading.Event()

    def scoped():
        with cann_attention.use(backend="emulate", value_checks=True):
            seen["scoped"] = (cann_attention.config.backend, cann_attention.config.value_checks)
            inside.set()
            release.wait(5)

    worker = threading.Thread(target=scoped)
    worker.start()
    inside.wait(5)
    seen["other"] = (cann_attention.config.backend, cann_attention.config.value_checks)
    release.set()
    worker.join()
    assert seen["scoped"] == ("emulate", True)
    assert seen["other"] == ("auto", False)


def test_config_default_and_unknown_setting():
    before = cann_attention.config.value_checks
    cann_attention.config.value_checks = True
    try:
        assert cann_attention.config.value_checks is True
        with cann_attention.use(value_checks=False):
            assert cann_attention.config.value_checks is False
        assert cann_attention.config.value_checks is True
    finally:
        cann_attention.config.value_checks = before
    with pytest.raises(AttributeError, match="no setting 'nope'"):
        cann_attention.config.nope = 1
