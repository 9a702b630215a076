"""Input builders for tests/faces/test_upstream_calls.py: the tensors upstream serving code hands
to the attention ops (paged caches with their page tables, prefix-sum lengths, DeepSeek-V3.2
index/latent/rope caches, int8 KV caches with per-channel antiquant scales), at small sizes.

Cache slots that no request owns hold NaN (float caches), so an op that reads past a request's
length shows it in its output; int8 caches hold random values there.
"""
from __future__ import annotations

import math

import torch

D_LATENT, D_ROPE, D_INDEX = 512, 64, 128      # DeepSeek-V3.2: kv_lora_rank, rope dim, index dim


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(g: torch.Generator, *shape, dtype=torch.bfloat16, scale: float = 1.0) -> torch.Tensor:
    return (torch.randn(*shape, generator=g) * scale).to(dtype)


def uniform(g: torch.Generator, lo: float, hi: float, *shape, dtype=torch.float16):
    """numpy.random.uniform(lo, hi, shape) as the upstream examples draw it."""
    return (torch.rand(*shape, generator=g, dtype=torch.float64) * (hi - lo) + lo).to(dtype)


def i32(values) -> torch.Tensor:
    return torch.tensor(list(values), dtype=torch.int32)


def prefix_sums(lengths) -> list[int]:
    out, total = [], 0
    for n in lengths:
        total += int(n)
        out.append(total)
    return out


def arange_block_table(batch: int, blocks_per_seq: int) -> torch.Tensor:
    """cann-recipes-infer's table: batch b owns blocks [b * n, (b + 1) * n) (int32, (B, n))."""
    return torch.arange(batch * blocks_per_seq, dtype=torch.int32).reshape(batch, blocks_per_seq)


def shuffled_block_table(lengths, block_size: int, g: torch.Generator, spare: int = 2,
                         width: int | None = None):
    """(table int32 (B, width), num_blocks): every request's pages drawn at random from one
    pool of ``sum(pages) + spare`` blocks (a serving engine's allocator); entries past a
    request's pages are 0 (SGLang / vLLM pad their tables with 0)."""
    pages = [math.ceil(n / block_size) for n in lengths]
    width = width or max(max(pages), 1)
    num_blocks = sum(pages) + spare
    perm = torch.randperm(num_blocks, generator=g)
    table = torch.zeros(len(lengths), width, dtype=torch.int32)
    used = 0
    for b, n in enumerate(pages):
        table[b, :n] = perm[used:used + n].to(torch.int32)
        used += n
    return table, num_blocks


def paged_cache(table: torch.Tensor, lengths, num_blocks: int, block_size: int, tail,
                g: torch.Generator, dtype=torch.bfloat16, scale: float = 1.0) -> torch.Tensor:
    """(num_blocks, block_size, *tail) cache: the first lengths[b] logical slots of request b
    (through ``table``) random, every other slot NaN (random int8 for int8 caches)."""
    tail = tuple(tail)
    if dtype == torch.int8:
        cache = torch.randint(-128, 128, (num_blocks, block_size) + tail, generator=g,
                              dtype=torch.int8)
    else:
        cache = torch.full((num_blocks, block_size) + tail, float("nan"), dtype=dtype)
    for b, n in enumerate(lengths):
        for j in range(math.ceil(n / block_size)):
            rows = min(block_size, n - j * block_size)
            blk = int(table[b, j])
            if dtype == torch.int8:
                cache[blk, :rows] = torch.randint(-127, 128, (rows,) + tail, generator=g,
                                                  dtype=torch.int8)
            else:
                cache[blk, :rows] = randn(g, rows, *tail, dtype=dtype, scale=scale)
    return cache


def gather_paged(cache: torch.Tensor, table: torch.Tensor, b: int, length: int) -> torch.Tensor:
    """The first ``length`` logical rows of request ``b`` of a paged cache: (length, *tail)."""
    bs = cache.shape[1]
    pos = torch.arange(length)
    return cache[table[b, pos // bs].long(), pos % bs]


def causal_topk_rows(q_lens, kv_lens, k: int, g: torch.Generator, *, keep=None) -> torch.Tensor:
    """(T, k) int32 index rows as an indexer writes them for right-down causal rows: distinct
    visible positions first (random order), then -1. ``keep(b, s, pos)`` filters the
    candidates of row (b, s)."""
    rows = []
    for b, (lq, lk) in enumerate(zip(q_lens, kv_lens)):
        for s in range(lq):
            tau = lk - lq + s + 1
            cand = torch.randperm(max(tau, 0), generator=g)
            if keep is not None:
                cand = cand[[keep(b, s, int(p)) for p in cand]] if cand.numel() else cand
            row = torch.full((k,), -1, dtype=torch.int32)
            take = cand[:k]
            row[:take.numel()] = take.to(torch.int32)
            rows.append(row)
    return torch.stack(rows)


def quantize_per_channel(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """torch_npu.npu_quantize(x, scale, None, qint8, -1, div_mode=True) as vLLM-Ascend's C8
    cache write uses it: int8 = clamp(round(x / scale))."""
    return torch.round(x.float() / scale.float()).clamp(-128, 127).to(torch.int8)
