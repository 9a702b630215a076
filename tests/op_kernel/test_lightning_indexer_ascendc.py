"""The first AscendC kernel of npu_lightning_indexer (op_kernel/lightning_indexer/ascendc/),
built with g++ against the AscendC twin and run as a mixed launch (one AIC and two AIVs per
block) on small BSND calls, fp16 and bf16, sparse_mode 0 and 3, with the TilingData bytes of the
C++ tiling core (op_host/lightning_indexer/native.py); sparse_indices are compared with the
golden (op_kernel/lightning_indexer/reference.py).

Scope of the kernel: BSND query and key, no actual_seq_lengths, weights of the query dtype,
return_value False, sparse_count <= 2048 (see the kernel's header comment).

The kernel sums in float in its own order (Mmad in k order, the head sum left to right) where
the golden rounds exactly once, so two keys whose scores lie within a few ulp may swap: rows are
compared exactly where they match, else position by position on the golden's scores with a
relative tolerance (and the -1 padding exactly)."""
from __future__ import annotations

import ctypes
import threading
import pytest
import torch

from cann_attention.op_host.common import native as common_native
from cann_attention.op_host.common.platform import ASCEND_910B, ASCEND_A3
from cann_attention.op_host.lightning_indexer import native
from cann_attention.op_kernel.lightning_indexer import ascendc_twin, reference
from testing.calls import parse

OP = "npu_lightning_indexer"
DTYPE_CODES = ascendc_twin.DTYPE_CODES
P = ctypes.c_void_p


@pytest.fixture(scope="module")
def lib():
    if common_native.compiler() is None:
        pytest.skip("no C++ compiler (g++) on this machine: the kernel cannot be built")
    return ascendc_twin.library()


def _call_with_timeout(fn, *args, timeout=60):
    """fn(*args) on a daemon thread (ctypes releases the GIL): a hanging kernel fails the test."""
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("rc", fn(*args)), daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "the kernel did not return (hang)"
    return box["rc"]


def run_kernel(lib, query, key, weights, sparse_count, sparse_mode, platform, max_blocks=None):
    p = parse(OP, query, key, weights, sparse_count=sparse_count, sparse_mode=sparse_mode)
    tiling = native.tiling_data(p, platform)
    b, s1 = query.shape[:2]
    num_rows = b * s1
    blocks = min(platform.num_cores, num_rows, max_blocks or num_rows)
    tbuf = ctypes.create_string_buffer(tiling, len(tiling))
    ws = torch.zeros(lib.li_ascendc_workspace_bytes(tiling, blocks) // 4, dtype=torch.float32)
    out = torch.full((b, s1, 1, sparse_count), -7, dtype=torch.int32)
    q, k, w = query.contiguous(), key.contiguous(), weights.contiguous()
    err = ctypes.create_string_buffer(4096)
    bufs = []
    for t in (q, k, w, out, ws):
        bufs += [t.data_ptr(), t.numel() * t.element_size()]
    rc = _call_with_timeout(lib.li_ascendc_run, DTYPE_CODES[query.dtype], blocks, *bufs,
                            ctypes.cast(tbuf, P).value, len(tiling), err, 4096)
    assert rc == 0, err.value.decode()
    return out


def golden_scores(query, key, weights, b, s):
    """The golden's fp32 scores of row (b, s) over all S2 keys."""
    return reference._scores(query[b, s], weights[b, s], key[b, :, 0], torch.float32)


def compare(query, key, weights, got, sparse_count, sparse_mode):
    want, _ = reference.lightning_indexer(query, key, weights, sparse_count=sparse_count,
                                          sparse_mode=sparse_mode)
    B, S1 = query.shape[:2]
    exact = 0
    for b in range(B):
        for s in range(S1):
            g, w = got[b, s, 0], want[b, s, 0]
            if torch.equal(g, w):
                exact += 1
                continue
            assert torch.equal(g < 0, w < 0), (b, s, g, w)          # same padding
            n = int((w >= 0).sum())
            assert torch.all(g[n:] == -1)
            assert len(set(g[:n].tolist())) == n                   # distinct indices
            sc = golden_scores(query, key, weights, b, s)
            torch.testing.assert_close(sc[g[:n].long()], sc[w[:n].long()], rtol=1e-5,
                                       atol=1e-5)
    return exact


CASES = [
    # B, S1, S2, N1, sparse_count, sparse_mode, dtype
    (1, 1, 64, 2, 8, 3, torch.float16),
    (1, 4, 256, 8, 64, 3, torch.float16),
    (2, 3, 200, 4, 32, 3, torch.bfloat16),
    (2, 4, 100, 2, 64, 0, torch.bfloat16),
    (1, 2, 256, 8, 16, 0, torch.float16),
    (2, 4, 3, 4, 8, 3, torch.bfloat16),          # S2 < S1: rows that see nothing (all -1)
    (1, 4, 37, 6, 64, 0, torch.float16),         # n_vis < sparse_count: -1 padding
    (1, 3, 600, 2, 64, 3, torch.float16),        # S2 > block_s2 (256): several chunks per row
    (1, 2, 700, 4, 2048, 0, torch.bfloat16),     # several chunks, n_vis < sparse_count = 2048
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c[:6])) + "-" + str(c[6]).split(".")[-1])
def test_lightning_indexer_ascendc_matches_golden(lib, case):
    B, S1, S2, N1, K, mode, dtype = case
    g = torch.Generator().manual_seed(hash(case[:6]) % 2**31)
    query = torch.randn(B, S1, N1, 128, generator=g).to(dtype)
    key = torch.randn(B, S2, 1, 128, generator=g).to(dtype)
    weights = torch.randn(B, S1, N1, generator=g).to(dtype)
    got = run_kernel(lib, query, key, weights, K, mode, ASCEND_A3)
    exact = compare(query, key, weights, got, K, mode)
    assert exact >= (B * S1 + 1) // 2     # near-ties swap rarely: most rows are bit-identical


def test_lightning_indexer_ascendc_ties_and_blocks(lib):
    """Many exact ties (keys repeated, weights positive: equal scores go to the smaller index,
    and keys whose heads are all negative score 0), with fewer blocks than rows (a block loops
    over its rows) on the 910B plan."""
    g = torch.Generator().manual_seed(7)
    B, S1, S2, N1, K = 2, 4, 96, 4, 48
    query = torch.randn(B, S1, N1, 128, generator=g).to(torch.float16)
    base = torch.randn(B, S2 // 3, 1, 128, generator=g)
    key = base.repeat(1, 3, 1, 1).to(torch.float16)              # every key three times
    weights = torch.rand(B, S1, N1, generator=g).to(torch.float16) + 0.25
    for mode in (0, 3):
        got = run_kernel(lib, query, key, weights, K, mode, ASCEND_910B, max_blocks=3)
        want, _ = reference.lightning_indexer(query, key, weights, sparse_count=K,
                                              sparse_mode=mode)
        assert torch.equal(got, want)     # equal scores are bit-equal: smaller index first


# ---- the registered back end: torch.ops.custom.npu_lightning_indexer with backend="ascendc" ---

BACKEND_CASES = [
    (2, 3, 300, 8, 64, 3, torch.float16),
    (1, 4, 90, 16, 128, 0, torch.bfloat16),      # sparse_count > the keys: -1 padding
    (3, 2, 520, 64, 256, 3, torch.bfloat16),     # 64 heads, several key chunks a row
]


@pytest.mark.parametrize("case", BACKEND_CASES, ids=lambda c: "-".join(map(str, c[:6])))
def test_backend_runs_the_kernel_through_the_op(lib, case):
    """The op on CPU tensors with the ascendc back end named: the kernel's indices, as the
    golden's (up to near ties), in the op's output shape; the emulator stays auto's choice."""
    import cann_attention
    from cann_attention.lightning_indexer import OP_DEF
    from cann_attention.config import current
    B, S1, S2, N1, K, mode, dtype = case
    g = torch.Generator().manual_seed(sum(case[:6]))
    query = torch.randn(B, S1, N1, 128, generator=g).to(dtype)
    key = torch.randn(B, S2, 1, 128, generator=g).to(dtype)
    weights = torch.randn(B, S1, N1, generator=g).to(dtype)
    kwargs = dict(sparse_count=K, sparse_mode=mode)
    with cann_attention.use(backend="ascendc"):
        got = torch.ops.custom.npu_lightning_indexer(query, key, weights, **kwargs)
        bound = OP_DEF.bind((query, key, weights), kwargs)
        assert OP_DEF.static(bound, current())[1].name == "ascendc"
    assert got.shape == (B, S1, 1, K) and got.dtype == torch.int32
    assert compare(query, key, weights, got, K, mode) >= (B * S1 + 1) // 2
    bound = OP_DEF.bind((query, key, weights), kwargs)
    assert OP_DEF.static(bound, current())[1].name == "emulate"     # by name only on CPU


@pytest.mark.parametrize("change,reason", [
    (dict(layout_query="TND"), "BSND query and key only"),
    (dict(return_value=True), "does not write sparse_values"),
    (dict(weights_dtype=torch.float32), "weights of the query dtype"),
    (dict(sparse_count=3072), "sparse_count <= 2048"),
])
def test_backend_refuses_calls_outside_the_kernel_scope(change, reason):
    """Named outside its scope, the back end is refused with the kernel's reason (never a
    wrong answer); the check runs before any build."""
    import cann_attention
    from cann_attention.op_host.common.errors import CannAttentionError
    n1 = 4
    B, S1, S2 = 1, 2, 40
    query = torch.randn(B, S1, n1, 128).half()
    key = torch.randn(B, S2, 1, 128).half()
    weights = torch.randn(B, S1, n1).to(change.get("weights_dtype", torch.float16))
    kwargs = dict(sparse_count=change.get("sparse_count", 16), sparse_mode=3)
    if change.get("layout_query") == "TND":
        query = query.reshape(B * S1, n1, 128)
        weights = weights.reshape(B * S1, n1)
        kwargs.update(layout_query="TND", actual_seq_lengths_query=torch.tensor([S1], dtype=torch.int32),
                      layout_key="TND",
                      actual_seq_lengths_key=torch.tensor([S2], dtype=torch.int32))
        key = key.reshape(B * S2, 1, 128)
    if change.get("return_value"):
        kwargs["return_value"] = True
    with cann_attention.use(backend="ascendc"), pytest.raises(CannAttentionError,
                                                               match=reason):
        cann_attention.npu_lightning_indexer(query, key, weights, **kwargs)


def test_backend_on_npu_tensors_says_the_package_is_not_built():
    from cann_attention.lightning_indexer import OP_DEF
    backend = next(b for b in OP_DEF.backends if b.name == "ascendc")
    p = parse(OP, torch.randn(1, 1, 4, 128).half(), torch.randn(1, 8, 1, 128).half(),
              torch.randn(1, 1, 4).half(), sparse_count=4)
    assert "op package is not built" in backend.verify(p, "npu", torch.float16)
    assert backend.verify(p, "cpu", torch.float16) in (None, ascendc_twin.no_compiler())
