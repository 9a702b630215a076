"""Input builders for npu_sparse_flash_attention tests: every layout pair, ragged lengths,
shuffled page tables, and key rows the op must never read poisoned with NaN."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

D, DR = 512, 64


@dataclass
class SfaCase:
    args: tuple
    kwargs: dict
    id: str
    q_lens: list = field(default_factory=list)
    kv_lens: list = field(default_factory=list)

    def call(self, fn, **extra):
        return fn(*self.args, **{**self.kwargs, **extra})


def case_id(B, S1, S2, N1, K, dtype, layout_query, layout_kv, sbs, mode, **extra) -> str:
    parts = [f"B{B}", f"S1_{S1}", f"S2_{S2}", f"N1_{N1}", f"K{K}", f"sbs{sbs}", f"mode{mode}",
             {torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype],
             f"{layout_query}-{layout_kv}"]
    parts += [f"{k}_{v}" for k, v in extra.items()]
    return "-".join(parts)


def random_indices(rows_tau, K, sbs, gen, malformed=False):
    """One index row per (tau) in rows_tau: visible blocks first (no repeats), then a few blocks
    past the boundary (skipped by the op), then -1 padding; ``malformed`` mixes them."""
    out = torch.full((len(rows_tau), K), -1, dtype=torch.int32)
    for r, tau in enumerate(rows_tau):
        n_vis = max(0, math.ceil(tau / sbs))
        take = min(K, n_vis, int(torch.randint(1, K + 1, (1,), generator=gen)))
        vals = torch.randperm(max(n_vis, 1), generator=gen)[:take] if n_vis else torch.empty(0)
        extra = min(K - take, 2)
        beyond = torch.randint(n_vis, n_vis + 50, (extra,), generator=gen)
        row = torch.cat([vals.to(torch.int64), beyond])
        if malformed:
            row = row[torch.randperm(row.numel(), generator=gen)]
        out[r, :row.numel()] = row.to(torch.int32)
        if malformed and row.numel() < K:   # entries after the first -1 must be ignored
            out[r, row.numel() + 1:] = 0
    return out


def make_case(B=2, S1=3, S2=64, N1=4, K=16, dtype=torch.bfloat16, layout_query="BSND",
              layout_kv="BSND", sbs=1, sparse_mode=3, q_lens=None, kv_lens=None, page=32,
              return_softmax_lse=False, sinks=False, malformed=False, scale=None, seed=0):
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=gen).to(dtype)

    q_lens = list(q_lens) if q_lens is not None else [S1] * B
    kv_lens = list(kv_lens) if kv_lens is not None else [S2] * B
    kw = dict(layout_query=layout_query, layout_kv=layout_kv, sparse_mode=sparse_mode,
              return_softmax_lse=return_softmax_lse)
    # query side
    if layout_query == "TND":
        T1 = sum(q_lens)
        query, query_rope = randn(T1, N1, D), randn(T1, N1, DR)
        kw["actual_seq_lengths_query"] = torch.tensor(
            [sum(q_lens[:b + 1]) for b in range(B)], dtype=torch.int32)
        row_lq = [(b, s) for b in range(B) for s in range(q_lens[b])]
    else:
        query, query_rope = randn(B, S1, N1, D), randn(B, S1, N1, DR)
        if q_lens != [S1] * B:
            kw["actual_seq_lengths_query"] = torch.tensor(q_lens, dtype=torch.int32)
        row_lq = [(b, s) for b in range(B) for s in range(S1)]
    # key side; positions the op must never read are NaN
    if layout_kv == "TND":
        T2 = max(sum(kv_lens), 1)
        key, key_rope = randn(T2, 1, D), randn(T2, 1, DR)
        kw["actual_seq_lengths_kv"] = torch.tensor(
            [sum(kv_lens[:b + 1]) for b in range(B)], dtype=torch.int32)
    elif layout_kv == "PA_BSND":
        pages = [math.ceil(n / page) for n in kv_lens]
        max_blocks = max(max(pages), 1) + 1
        num_blocks = sum(pages) + 3
        key = torch.full((num_blocks, page, 1, D), float("nan"), dtype=dtype)
        key_rope = torch.full((num_blocks, page, 1, DR), float("nan"), dtype=dtype)
        perm = torch.randperm(num_blocks, generator=gen)
        block_table = torch.full((B, max_blocks), -7, dtype=torch.int32)  # unused: garbage
        used = 0
        for b in range(B):
            for j in range(pages[b]):
                blk = int(perm[used])
                used += 1
                block_table[b, j] = blk
                n = min(page, kv_lens[b] - j * page)
                key[blk, :n] = randn(n, 1, D)
                key_rope[blk, :n] = randn(n, 1, DR)
        kw["block_table"] = block_table
        kw["actual_seq_lengths_kv"] = torch.tensor(kv_lens, dtype=torch.int32)
    else:
        key, key_rope = randn(B, S2, 1, D), randn(B, S2, 1, DR)
        for b in range(B):
            key[b, kv_lens[b]:] = float("nan")
            key_rope[b, kv_lens[b]:] = float("nan")
        if kv_lens != [S2] * B:
            kw["actual_seq_lengths_kv"] = torch.tensor(kv_lens, dtype=torch.int32)
    # indices per query row, aware of the row's boundary
    taus = []
    for b, s in row_lq:
        if s >= q_lens[b]:
            taus.append(S2)           # padded BSND row: never processed; any content
        elif sparse_mode == 3:
            taus.append(kv_lens[b] - q_lens[b] + s + 1)
        else:
            taus.append(kv_lens[b])
    idx = random_indices(taus, K, sbs, gen, malformed)
    if layout_query == "TND":
        sparse_indices = idx.reshape(len(row_lq), 1, K)
    else:
        sparse_indices = idx.reshape(B, S1, 1, K)
    kw.update(query_rope=query_rope, key_rope=key_rope)
    if sinks:
        kw["sinks"] = torch.randn(N1, generator=gen)
    scale = scale if scale is not None else 1.0 / math.sqrt(D + DR)
    args = (query, key, key, sparse_indices, scale, sbs)
    cid = case_id(B, S1, S2, N1, K, dtype, layout_query, layout_kv, sbs, sparse_mode)
    return SfaCase(args, kw, cid, q_lens, kv_lens)


def kernel_inputs(case: SfaCase, device):
    """(params, tensors) of ``case`` on ``device``, checked: what a back end's ``run`` takes."""
    from testing.calls import checked
    args = tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in case.args)
    kwargs = {k: v.to(device) if isinstance(v, torch.Tensor) else v
              for k, v in case.kwargs.items()}
    return checked("npu_sparse_flash_attention", *args, **kwargs)


def count_schedule_builds(monkeypatch) -> list:
    """A counter ([0]) of the triton back end's calls that launch the metadata kernel (the
    ones that do not share a captured step's schedule)."""
    from cann_attention.op_kernel.sparse_flash_attention import metadata
    count = [0]
    original = metadata._Launch.launch

    def counting(self, *args, **kwargs):
        count[0] += 1
        return original(self, *args, **kwargs)
    monkeypatch.setattr(metadata._Launch, "launch", counting)
    return count
