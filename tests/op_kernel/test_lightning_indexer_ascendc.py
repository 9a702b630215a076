"""The first AscendC kernel of npu_lightning_indexer (op_kernel/lightning_indexer/ascendc/),
built with g++ against the AscendC twin and run as a mixed launch (one AIC and two AIVs per
block) on small BSND calls, fp16 and bf16, sparse_mode 0 and 3, with the TilingData bytes of the
C++ tiling core (op_host/lightning_indexer/native.py); sparse_indices are compared with the
golden (op_kernel/lightning_indexer/reference.py).

Scope of the kernel: BSND or TND query and key with their length lists, a paged key, weights
of the query dtype or float32, every sparse_count the op accepts (1..2048 and 3072..8192; see the
kernel's header comment).

The kernel sums in float in its own order (Mmad in k order, the head sum left to right) where
the golden rounds exactly once, so two keys whose scores lie within a few ulp may swap: rows are
compared exactly where they match, else position by position on the golden's scores with a
relative tolerance (and the -1 padding exactly).

The kernel runs the plan's schedule (tiling.schedule: rows cut across the cores, split rows
merged after a SyncAll): the last tests check, on calls with few rows and long contexts, that every
core runs exactly partition()'s pieces (the twin-only record of RunRecorded) and that split rows
come out as the same kernel on one block gives them (bit for bit) and as the emulator's."""
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
    blocks = min(platform.num_cores, max_blocks or platform.num_cores)
    tbuf = ctypes.create_string_buffer(tiling, len(tiling))
    ws = torch.zeros(lib.li_ascendc_workspace_bytes(tiling, blocks) // 4, dtype=torch.float32)
    out = torch.full((b, s1, 1, sparse_count), -7, dtype=torch.int32)
    q, k, w = query.contiguous(), key.contiguous(), weights.contiguous()
    err = ctypes.create_string_buffer(4096)
    bufs = []
    for t in (q, k, w, None, None, None, out, None, ws, None):
        bufs += [None, 0] if t is None else [t.data_ptr(), t.numel() * t.element_size()]
    rc = _call_with_timeout(lib.li_ascendc_run, DTYPE_CODES[query.dtype],
                            int(weights.dtype == torch.float32), blocks, *bufs,
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
    (1, 2, 9000, 4, 4096, 0, torch.bfloat16),    # sparse_count > 2048: lists merged through GM
    (1, 3, 3500, 2, 3072, 3, torch.float16),     # ... with -1 padding (n_vis < 3072 in rows 0-1)
]


@pytest.mark.parametrize("case", CASES,
                         ids=lambda c: "-".join(map(str, c[:6])) + "-" + str(c[6]).split(".")[-1])
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
    and keys whose heads are all negative score 0), on 3 blocks on the 910B plan (the schedule cut
    over 3 cores: a core runs several whole rows)."""
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


@pytest.mark.parametrize("K", [3072, 4096, 5120, 6144, 7168, 8192])
def test_backend_covers_the_large_sparse_counts(K):
    """sparse_count 3072..8192 (the op's larger values) are in the kernel's scope: the registry
    rule refuses none of them (the runs are the split-schedule tests' K >= 3072 cases)."""
    import cann_attention
    B, S1, S2, N1 = 1, 2, 64, 4
    query = torch.randn(B, S1, N1, 128).half()
    key = torch.randn(B, S2, 1, 128).half()
    weights = torch.randn(B, S1, N1).half()
    op = cann_attention.OPS[OP]
    p = op.parse(op.bind((query, key, weights), dict(sparse_count=K, sparse_mode=3)))
    op.check(p)
    assert ascendc_twin.unsupported(p) is None


LENGTH_CASES = [
    # layout_query, layout_key, q_lens, kv_lens, sparse_mode, return_value, dtype
    ("BSND", "BSND", [3, 0, 5], [70, 9, 200], 3, True, torch.float16),
    ("BSND", "BSND", None, [0, 33, 120], 0, False, torch.bfloat16),
    ("TND", "TND", [2, 0, 4], [40, 0, 300], 3, True, torch.bfloat16),
    ("TND", "TND", [1, 3, 1], [17, 64, 250], 0, True, torch.float16),
    ("TND", "TND", [4, 4, 2], [100, 5, 260], 3, False, torch.float16),
    ("BSND", "PA_BSND", [5, 2, 0], [300, 47, 128], 3, False, torch.bfloat16),
    ("TND", "PA_BSND", [2, 5, 1], [0, 290, 100], 0, False, torch.float16),
    ("BSND", "BSND", [5, 1, 4], [300, 20, 77], 3, True, "float32 weights"),
    ("TND", "PA_BSND", [3, 2, 2], [64, 300, 150], 3, False, "float32 weights"),
]
PAGE = 16       # PA_BSND page: a 256-key chunk spans 16 pages; pages are shuffled in the cache


def _inputs(q_layout, k_layout, q_lens, kv_lens, s1, s2, mode, K, values, dtype, seed, page):
    """(query, key, weights, kwargs) of an indexer call with N1 = 8: BSND counts or TND prefix
    sums for the lengths, PA_BSND keys in shuffled pages (a few spare ones); dtype "float32
    weights" given as ("float32 weights", dt) gives float32 weights and a query / key of dt."""
    w_dtype = torch.float32 if isinstance(dtype, tuple) else None
    dtype = dtype[1] if w_dtype else dtype
    g = torch.Generator().manual_seed(seed)
    B, N1 = len(kv_lens), 8
    lens = lambda xs: torch.tensor(xs, dtype=torch.int32)                    # noqa: E731
    kwargs = dict(sparse_count=K, sparse_mode=mode, return_value=values,
                  layout_query=q_layout, layout_key=k_layout)
    if q_layout == "TND":
        query = torch.randn(sum(q_lens), N1, 128, generator=g).to(dtype)
        weights = torch.randn(sum(q_lens), N1, generator=g).to(w_dtype or dtype)
        kwargs["actual_seq_lengths_query"] = lens(torch.tensor(q_lens).cumsum(0).tolist())
    else:
        query = torch.randn(B, s1, N1, 128, generator=g).to(dtype)
        weights = torch.randn(B, s1, N1, generator=g).to(w_dtype or dtype)
        if q_lens is not None:
            kwargs["actual_seq_lengths_query"] = lens(q_lens)
    if k_layout == "TND":
        key = torch.randn(sum(kv_lens), 1, 128, generator=g).to(dtype)
        kwargs["actual_seq_lengths_key"] = lens(torch.tensor(kv_lens).cumsum(0).tolist())
    elif k_layout == "PA_BSND":
        max_blocks = -(-s2 // page)
        blocks = B * max_blocks + 3
        key = torch.randn(blocks, page, 1, 128, generator=g).to(dtype)
        table = torch.randperm(blocks, generator=g)[:B * max_blocks].reshape(B, max_blocks)
        kwargs.update(block_table=table.to(torch.int32), actual_seq_lengths_key=lens(kv_lens))
    else:
        key = torch.randn(B, s2, 1, 128, generator=g).to(dtype)
        kwargs["actual_seq_lengths_key"] = lens(kv_lens)
    return query, key, weights, kwargs


@pytest.mark.parametrize("case", LENGTH_CASES,
                         ids=lambda c: (f"{c[0]}-{c[1]}-m{c[4]}-v{int(c[5])}-"
                                        f"{str(c[6]).split('.')[-1]}"))
def test_backend_with_lengths_layouts_and_values(lib, case):
    """Actual lengths (BSND counts, TND prefix sums), rows past their batch's length, empty
    batches and return_value through the op: indices as the golden's up to near ties, values
    the golden's scores at those indices rounded to the query dtype, -1 / -inf padding."""
    import cann_attention
    q_layout, k_layout, q_lens, kv_lens, mode, values, dtype = case
    K = 64
    query, key, weights, kwargs = _inputs(
        q_layout, k_layout, q_lens, kv_lens, 5, 300, mode, K, values,
        ("float32 weights", torch.bfloat16) if dtype == "float32 weights" else dtype,
        seed=len(str(case)), page=PAGE)
    dtype = query.dtype
    want = cann_attention.npu_lightning_indexer(query, key, weights, **kwargs)
    with cann_attention.use(backend="ascendc"):
        got = cann_attention.npu_lightning_indexer(query, key, weights, **kwargs)
    (gi, gv), (wi, wv) = got, want            # the package's function: (indices, values)
    assert gi.shape == wi.shape and gi.dtype == torch.int32
    gi, wi = gi.reshape(-1, K), wi.reshape(-1, K)
    assert torch.equal(gi < 0, wi < 0)                                      # same padding
    assert torch.equal(gi[gi < 0], wi[wi < 0])
    near = 0
    for r in range(gi.shape[0]):
        if not torch.equal(gi[r], wi[r]):
            near += 1
            n = int((wi[r] >= 0).sum())
            assert sorted(gi[r, :n].tolist()) != [] and len(set(gi[r, :n].tolist())) == n
    assert near <= gi.shape[0] // 4                      # near ties swap rarely
    if values:
        gv, wv = gv.reshape(-1, K), wv.reshape(-1, K)
        assert gv.dtype == dtype
        pad = wi < 0
        assert torch.all(gv[pad] == float("-inf"))
        same = (gi == wi).all(1)
        torch.testing.assert_close(gv[same].float(), wv[same].float(), rtol=1e-2, atol=1e-2)


def test_backend_on_npu_tensors_goes_to_the_op_package():
    from cann_attention.lightning_indexer import OP_DEF
    backend = next(b for b in OP_DEF.backends if b.name == "ascendc")
    p = parse(OP, torch.randn(1, 1, 4, 128).half(), torch.randn(1, 8, 1, 128).half(),
              torch.randn(1, 1, 4).half(), sparse_count=4)
    # NPU tensors go to the op package through the C++ binding (ascendc_npu), which needs
    # torch_npu loaded and our package installed: neither is here
    assert backend.verify(p, "npu", torch.float16) == "not available: torch_npu is not loaded"
    assert backend.verify(p, "cpu", torch.float16) in (None, ascendc_twin.no_compiler())


def test_kernel_ends_a_batchs_keys_at_a_page_outside_the_cache(lib):
    """Without value checks (a device call), a page-table entry outside [0, block_count) among
    a batch's pages ends its keys there: the kernel reads no key past it and returns the top-k
    of the keys before it (the op's documented rule), as for a key of that length."""
    import cann_attention
    from cann_attention.op_host.lightning_indexer import tiling
    OP_DEF = cann_attention.OPS[OP]
    g = torch.Generator().manual_seed(11)
    B, S1, N1, K, page = 2, 2, 4, 48, 16
    query = torch.randn(B, S1, N1, 128, generator=g).half()
    weights = torch.randn(B, S1, N1, generator=g).half()
    key = torch.randn(8, page, 1, 128, generator=g).half()
    table = torch.tensor([[0, 1, 99, 2], [3, 4, 5, -1]], dtype=torch.int32)   # 99, -1: bad
    kwargs = dict(sparse_count=K, sparse_mode=0, layout_key="PA_BSND", block_table=table,
                  actual_seq_lengths_key=torch.tensor([64, 64], dtype=torch.int32))
    bound = OP_DEF.bind((query, key, weights), kwargs)
    p = OP_DEF.parse(bound)
    OP_DEF.check(p)
    got, _ = ascendc_twin.run(p, tiling.plan(p, ASCEND_A3), OP_DEF.tensors_of(bound))
    for b, ends in ((0, 32), (1, 48)):                 # keys end at the first bad page
        rows = key[table[b, :ends // page].long()].reshape(1, ends, 1, 128)
        want, _ = reference.lightning_indexer(query[b:b + 1], rows, weights[b:b + 1],
                                              sparse_count=K, sparse_mode=0)
        assert torch.equal(got[b:b + 1], want), b


# ---- the plan's schedule: per-core pieces, split rows, the SyncAll merge ---------------------

SPLIT_CASES = [
    # layout_query, layout_key, q_lens, kv_lens, S1 (BSND), sparse_mode, K, return_value, dtype
    ("BSND", "BSND", None, [16384], 1, 0, 2048, True, torch.float16),       # B=1 decode
    ("BSND", "PA_BSND", None, [6000, 700], 1, 3, 512, False, torch.bfloat16),  # paged decode
    ("TND", "TND", [1, 3, 2], [5000, 300, 2600], None, 3, 256, True, torch.float16),  # ragged
    ("BSND", "BSND", [2, 0], [9000, 40], 2, 3, 1024, False, torch.bfloat16),
    ("TND", "PA_BSND", [2, 1], [3000, 4100], None, 0, 128, False, "float32 weights"),
    # sparse_count > 2048 (lists streamed through GM in the merges): AIV lists that fill
    ("BSND", "BSND", None, [20000], 1, 0, 8192, True, torch.float16),       # B=1 decode
    ("BSND", "PA_BSND", None, [9000, 2000], 1, 3, 4096, False, torch.bfloat16),  # paged
    ("TND", "TND", [1, 2], [7000, 2500], None, 3, 3072, True, torch.float16),  # ragged, padded
]


def _split_call(case, seed):
    import cann_attention
    q_layout, k_layout, q_lens, kv_lens, s1, mode, K, values, dtype = case
    query, key, weights, kwargs = _inputs(
        q_layout, k_layout, q_lens, kv_lens, s1, max(kv_lens), mode, K, values,
        ("float32 weights", torch.float16) if dtype == "float32 weights" else dtype,
        seed=seed, page=64)
    op = cann_attention.OPS[OP]
    bound = op.bind((query, key, weights), kwargs)
    from cann_attention.op_host.common.tensor_meta import with_values
    p = op.parse(bound)
    op.check(p)
    t = op.tensors_of(bound)
    return with_values(p, t), t


@pytest.mark.parametrize("case", SPLIT_CASES,
                         ids=lambda c: f"{c[0]}-{c[1]}-B{len(c[3])}-m{c[5]}-K{c[6]}")
def test_kernel_runs_the_plans_schedule(lib, case):
    """Few rows, long contexts: the plan cuts rows across the 24 cores. Every core (AIC and both
    AIVs) runs exactly partition()'s pieces (task, step range, workspace slot); the split rows,
    merged after SyncAll, equal the same kernel on one block (no split: bit for bit, indices and
    values) and the emulator's (up to near ties)."""
    import dataclasses
    from cann_attention.op_host.lightning_indexer import tiling
    from cann_attention.op_kernel.lightning_indexer import emulate
    p, t = _split_call(case, seed=len(str(case)))
    plan = tiling.plan(p, ASCEND_A3)
    work = tiling.schedule(p, plan)
    sched = work.schedule
    assert sched.num_slots > 0                      # the case does split rows
    record = torch.full(ascendc_twin.record_shape(p, plan), -9, dtype=torch.int32)
    gi, gv = ascendc_twin.run(p, plan, t, record=record)
    first = sched.core_first.tolist()
    for c in range(sched.num_cores):
        want = [[int(sched.piece_task[i]), int(sched.piece_step_begin[i]),
                 int(sched.piece_step_end[i]), int(sched.piece_slot[i])]
                for i in range(first[c], first[c + 1])]
        for side in range(3):
            n = int(record[3 * c + side, 0])
            got = record[3 * c + side, 1:1 + 4 * n].reshape(n, 4).tolist()
            assert got == want, (c, side)
    # one block: the same scores per key, no split, no merge
    one = dataclasses.replace(plan, platform=dataclasses.replace(ASCEND_A3, num_cores=1))
    oi, ov = ascendc_twin.run(p, one, t)
    assert torch.equal(gi, oi)
    if p.return_value:
        assert torch.equal(gv.view(torch.int16), ov.view(torch.int16))
    # the emulator (exact fp32 scores): indices up to near ties, same padding
    wi, wv = emulate.run(p, plan, t)
    K = p.sparse_count
    gi2, wi2 = gi.reshape(-1, K), wi.reshape(-1, K)
    assert torch.equal(gi2 < 0, wi2 < 0)
    for r in range(gi2.shape[0]):
        n = int((wi2[r] >= 0).sum())
        assert len(set(gi2[r, :n].tolist())) == n
        agree = (gi2[r, :n] == wi2[r, :n]).float().mean() if n else 1.0
        assert agree >= 0.9, (r, agree)
    if p.return_value:
        same = gi2 == wi2
        torch.testing.assert_close(gv.reshape(-1, K)[same].float(),
                                   wv.reshape(-1, K)[same].float(), rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("K", [510, 3072])
def test_split_row_keeps_the_tie_rule(lib, K):
    """B=1 decode over 24 cores with every key three times, 2048 keys apart (so the copies lie in
    different pieces of the split row): the merged top-k holds each chosen key's three copies
    next to each other, smaller index first, as the golden does (K = 3072: the merges stream
    their lists through GM)."""
    import cann_attention
    from cann_attention.op_host.common.tensor_meta import with_values
    from cann_attention.op_host.lightning_indexer import tiling
    g = torch.Generator().manual_seed(5)
    N1, S = 4, 2048
    query = torch.randn(1, 1, N1, 128, generator=g).half()
    key = torch.randn(1, S, 1, 128, generator=g).repeat(1, 3, 1, 1).half()
    weights = (torch.rand(1, 1, N1, generator=g) + 0.25).half()
    op = cann_attention.OPS[OP]
    bound = op.bind((query, key, weights), dict(sparse_count=K, sparse_mode=0))
    p = op.parse(bound)
    op.check(p)
    t = op.tensors_of(bound)
    p = with_values(p, t)
    plan = tiling.plan(p, ASCEND_A3)
    assert tiling.schedule(p, plan).schedule.task_num_pieces.tolist()[0] > 3
    got, _ = ascendc_twin.run(p, plan, t)
    triples = got.reshape(-1, 3)
    assert torch.equal(triples[:, 1] - triples[:, 0], torch.full((K // 3,), S, dtype=torch.int32))
    assert torch.equal(triples[:, 2] - triples[:, 1], torch.full((K // 3,), S, dtype=torch.int32))
    assert int(triples[:, 0].max()) < S
    want, _ = reference.lightning_indexer(query, key, weights, sparse_count=K, sparse_mode=0)
    assert (got == want).float().mean() >= 0.9          # the golden's, up to near ties
