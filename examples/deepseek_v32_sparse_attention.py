"""One DeepSeek-V3.2-like sparse attention step through torch.ops.custom, checked densely.

The calls are written as cann-recipes-infer's DeepSeek-V3.2 model makes them: each op returns
one Tensor.

A DeepSeek-V3.2 layer runs, for every query token:

  1. the lightning indexer: index query q_I [N1_idx, 128], index key k_I [128] per cached token,
     per-head weights w -> score[j] = sum_h w[h] * ReLU(q_I[h] . k_I[j]) and the indices of the
     top-K cached tokens (``torch.ops.custom.npu_lightning_indexer``);
  2. sparse MLA attention over just those tokens: query [N1, 512 + 64] against the compressed
     latent cache [512] + rope key [64], the latent also serving as value
     (``torch.ops.custom.npu_sparse_flash_attention`` with ``sparse_block_size=1``).

This script runs both steps in two situations of an inference server -

  - decode: B sequences, one new token each, paged caches (PA_BSND) with shuffled page tables;
  - prefill chunk: a chunk of new tokens per sequence (TND, right-down causal), paged caches -

and checks the attention output against a dense fp32 attention masked to the selected keys.
Runs on CPU in a few seconds: ``python examples/deepseek_v32_sparse_attention.py``.

With a CUDA device it also captures a decode step (indexer -> sparse attention, as a server's
decode graph holds it) in one CUDA graph and replays it with new lengths, page tables, caches
and queries, each replay checked against eager calls on the same inputs (``captured_decode``).
"""
from __future__ import annotations

import math

import torch

import cann_attention  # registers torch.ops.custom.*

D_IDX = 128        # indexer head dim
D_LATENT = 512     # MLA compressed KV (nope) dim, also the value
D_ROPE = 64
BLOCK_SIZE = 64    # page size of both caches
N1_IDX = 16        # indexer heads (64 in DeepSeek-V3.2; fewer to keep the CPU run short)
N1 = 16            # attention heads (128 in DeepSeek-V3.2)
TOP_K = 128        # index_topk (2048 in DeepSeek-V3.2)


def paged_caches(k_lens, gen):
    """Index-key cache, latent cache and rope cache sharing one shuffled page table."""
    pages = max(-(-n // BLOCK_SIZE) for n in k_lens)
    num_blocks = len(k_lens) * pages + 2
    table = torch.randperm(num_blocks, generator=gen)[: len(k_lens) * pages]
    table = table.reshape(len(k_lens), pages).to(torch.int32)
    rnd = lambda *s: torch.randn(*s, generator=gen).bfloat16()  # noqa: E731
    return (rnd(num_blocks, BLOCK_SIZE, 1, D_IDX), rnd(num_blocks, BLOCK_SIZE, 1, D_LATENT),
            rnd(num_blocks, BLOCK_SIZE, 1, D_ROPE), table)


def attention_step(rows, q_prefix, k_lens, layout_query, gen):
    """Indexer -> sparse attention for query ``rows``: (T1,) with prefix sums ``q_prefix`` (TND)
    or (B, S1) (BSND, ``q_prefix`` None)."""
    rnd = lambda *s: torch.randn(*s, generator=gen).bfloat16()  # noqa: E731
    idx_cache, latent, rope, table = paged_caches(k_lens, gen)
    q_idx, weights = rnd(*rows, N1_IDX, D_IDX), rnd(*rows, N1_IDX)
    q_nope, q_rope = rnd(*rows, N1, D_LATENT), rnd(*rows, N1, D_ROPE)
    aq = None if q_prefix is None else torch.tensor(q_prefix, dtype=torch.int32)
    ak = torch.tensor(k_lens, dtype=torch.int32)
    indices = torch.ops.custom.npu_lightning_indexer(      # cann-recipes: one Tensor
        q_idx, idx_cache, weights, actual_seq_lengths_query=aq, actual_seq_lengths_key=ak,
        block_table=table, layout_query=layout_query, layout_key="PA_BSND",
        sparse_count=TOP_K, sparse_mode=3)
    scale = 1.0 / math.sqrt(D_LATENT + D_ROPE)
    out = torch.ops.custom.npu_sparse_flash_attention(
        q_nope, latent, latent, indices, scale, 1, block_table=table,
        actual_seq_lengths_query=aq,
        actual_seq_lengths_kv=ak, query_rope=q_rope, key_rope=rope,
        layout_query=layout_query, layout_kv="PA_BSND", sparse_mode=3)
    return dense_check(q_nope, q_rope, latent, rope, table, indices, out, q_prefix, scale)


def dense_check(q_nope, q_rope, latent, rope, table, indices, out, q_prefix, scale):
    """Max |out - dense attention restricted to the selected keys| over all valid rows."""
    q = torch.cat([q_nope, q_rope], -1).float().reshape(-1, N1, D_LATENT + D_ROPE)
    idx = indices.reshape(q.shape[0], TOP_K)
    out = out.float().reshape(q.shape[0], N1, D_LATENT)
    if q_prefix is not None:
        ends = list(q_prefix)
        row_batch = [b for b, (s, e) in enumerate(zip([0] + ends[:-1], ends)) for _ in range(s, e)]
    else:
        s1 = q_nope.shape[1]
        row_batch = [r // s1 for r in range(q.shape[0])]
    worst = 0.0
    for row, b in enumerate(row_batch):
        sel = idx[row][idx[row] >= 0].long()
        if sel.numel() == 0:
            continue
        pages, offs = table[b, sel // BLOCK_SIZE].long(), sel % BLOCK_SIZE
        kv = torch.cat([latent[pages, offs, 0], rope[pages, offs, 0]], -1).float()
        p = torch.softmax(q[row] @ kv.T * scale, dim=-1)          # dense over selected keys
        want = p @ kv[:, :D_LATENT]
        worst = max(worst, float((out[row] - want).abs().max()))
    return worst, int((idx >= 0).sum(-1).min()), int((idx >= 0).sum(-1).max())


def decode_inputs(batch, pages, gen, device, s1=1, n1_idx=N1_IDX, n1=N1, lens=None):
    """One decode step's tensors (fixed shapes, new values per call: what a replay gets): ``s1``
    new tokens per sequence, caches of ``pages`` pages per sequence in one shuffled page table,
    ``lens`` (default: random, at least s1) cached tokens per sequence."""
    rnd = lambda *s: torch.randn(*s, generator=gen).bfloat16()  # noqa: E731
    blocks = batch * pages + 2
    table = torch.randperm(blocks, generator=gen)[: batch * pages].reshape(batch, pages)
    if lens is None:
        lens = torch.randint(s1, pages * BLOCK_SIZE + 1, (batch,), generator=gen)
    t = dict(q_idx=rnd(batch, s1, n1_idx, D_IDX), weights=rnd(batch, s1, n1_idx),
             idx_cache=rnd(blocks, BLOCK_SIZE, 1, D_IDX),
             latent=rnd(blocks, BLOCK_SIZE, 1, D_LATENT),
             rope=rnd(blocks, BLOCK_SIZE, 1, D_ROPE), q_nope=rnd(batch, s1, n1, D_LATENT),
             q_rope=rnd(batch, s1, n1, D_ROPE), table=table.to(torch.int32),
             lens=torch.as_tensor(lens).to(torch.int32))
    return {k: v.to(device) for k, v in t.items()}


def decode_indexer(t, top_k=TOP_K):
    """The indexer call of a decode step on the tensors of decode_inputs."""
    return torch.ops.custom.npu_lightning_indexer(
        t["q_idx"], t["idx_cache"], t["weights"], actual_seq_lengths_key=t["lens"],
        block_table=t["table"], layout_query="BSND", layout_key="PA_BSND",
        sparse_count=top_k, sparse_mode=3)


def decode_attention(t, indices):
    """The sparse attention call of a decode step over the indexer's ``indices``."""
    return torch.ops.custom.npu_sparse_flash_attention(
        t["q_nope"], t["latent"], t["latent"], indices, 1.0 / math.sqrt(D_LATENT + D_ROPE), 1,
        block_table=t["table"], actual_seq_lengths_kv=t["lens"], query_rope=t["q_rope"],
        key_rope=t["rope"], layout_query="BSND", layout_kv="PA_BSND", sparse_mode=3)


def decode_step(t, top_k=TOP_K):
    """indexer -> sparse attention on the tensors of decode_inputs (no host reads)."""
    indices = decode_indexer(t, top_k)
    return indices, decode_attention(t, indices)


def captured_decode(batch=8, pages=16, replays=3):
    """A decode step captured once in a CUDA graph, replayed on new inputs copied into its
    buffers; returns the largest |replay - eager| of the attention output over the replays.
    The indexer runs our Triton kernel, named: on CUDA tensors ``auto`` still picks the
    emulator, which reads lengths on the host and so cannot be captured
    (docs/lightning_indexer.md)."""
    with cann_attention.use(backend="triton"):
        return _captured_decode(batch, pages, replays)


def _captured_decode(batch, pages, replays):
    gen = torch.Generator().manual_seed(1)
    static = decode_inputs(batch, pages, gen, "cuda")
    decode_step(static)                          # compile and warm up outside the capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = decode_step(static)
    worst = 0.0
    for _ in range(replays):
        new = decode_inputs(batch, pages, gen, "cuda")
        for name, buf in static.items():
            buf.copy_(new[name])
        graph.replay()
        indices, out = decode_step(new)
        assert torch.equal(captured[0], indices), "replayed indices differ from eager ones"
        worst = max(worst, float((captured[1].float() - out.float()).abs().max()))
    return worst


def main():
    gen = torch.Generator().manual_seed(0)
    tol = 2e-2   # bf16 output of a softmax-weighted average of O(1) values
    err, lo, hi = attention_step((2, 1), None, [300, 517], "BSND", gen)
    print(f"decode  B2 S1=1 Lk=[300, 517] K={TOP_K}: max |out - dense| = {err:.2e} "
          f"(selected keys per row {lo}..{hi})")
    assert err < tol
    err, lo, hi = attention_step((10,), [6, 10], [70, 200], "TND", gen)
    print(f"prefill chunk T1=10 (6 + 4 new tokens) Lk=[70, 200] K={TOP_K}: "
          f"max |out - dense| = {err:.2e} (selected keys per row {lo}..{hi})")
    assert err < tol
    print("ok: indexer -> sparse_flash_attention matches dense attention on the selected keys")
    if torch.cuda.is_available():
        err = captured_decode()
        print(f"captured decode step (CUDA graph, B8, 3 replays on new lengths, page tables, "
              f"caches and queries): max |replay - eager| = {err:.1e}")
        assert err == 0.0
    else:
        print("captured decode step: skipped (a CUDA graph needs a CUDA device)")


if __name__ == "__main__":
    main()
