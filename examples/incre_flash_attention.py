"""Decode one token for a Llama-style model from a paged int8 KV cache, on CPU.

Llama-3-8B attention shape: 32 query heads, 8 KV heads (GQA, G = 4), head dim 128. The KV
cache is paged (block_size 128, pages shuffled as a serving engine allocates them) and stored
as int8 with per-channel antiquant scales (index 0 = key, 1 = value). The script runs
``torch.ops.custom.npu_incre_flash_attention`` and compares it with plain fp32 attention over
the original (unquantised) cache.

    python examples/incre_flash_attention.py
"""
from __future__ import annotations

import torch

import cann_attention  # noqa: F401  (registers torch.ops.custom.*)

N1, N2, D, BLOCK = 32, 8, 128, 128
LENGTHS = [1000, 37, 513, 2048]          # tokens already in each sequence's cache


def main() -> None:
    torch.manual_seed(0)
    b = len(LENGTHS)
    keys = [torch.randn(n, N2, D) for n in LENGTHS]               # the fp32 cache contents
    values = [torch.randn(n, N2, D) for n in LENGTHS]
    # symmetric per-(head, channel) scales over the whole cache: [1, N2, D]
    k_scale = torch.stack([torch.cat(keys).abs().amax(0)]) / 127.0
    v_scale = torch.stack([torch.cat(values).abs().amax(0)]) / 127.0

    # page allocation: shuffled physical blocks, -1 for unused table entries
    pages = [-(-n // BLOCK) for n in LENGTHS]
    num_blocks = sum(pages)
    perm = torch.randperm(num_blocks)
    table = torch.full((b, max(pages)), -1, dtype=torch.int32)
    k_cache = torch.zeros(num_blocks, BLOCK, N2 * D, dtype=torch.int8)
    v_cache = torch.zeros_like(k_cache)
    used = 0
    for i, n in enumerate(LENGTHS):
        kq = torch.round(keys[i] / k_scale).clamp(-127, 127).to(torch.int8)
        vq = torch.round(values[i] / v_scale).clamp(-127, 127).to(torch.int8)
        for j in range(pages[i]):
            blk = int(perm[used])
            used += 1
            table[i, j] = blk
            rows = slice(j * BLOCK, min((j + 1) * BLOCK, n))
            k_cache[blk, : rows.stop - rows.start] = kq[rows].flatten(1)
            v_cache[blk, : rows.stop - rows.start] = vq[rows].flatten(1)

    query = torch.randn(b, 1, N1 * D).to(torch.bfloat16)
    antiquant_scale = torch.cat([k_scale, v_scale]).reshape(2, N2 * D).to(torch.bfloat16)
    out = torch.ops.custom.npu_incre_flash_attention(
        query, k_cache, v_cache, actual_seq_lengths=LENGTHS, antiquant_scale=antiquant_scale,
        block_table=table, num_heads=N1, input_layout="BSH", scale_value=D ** -0.5,
        num_key_value_heads=N2, block_size=BLOCK)

    # plain fp32 attention over the unquantised cache
    worst = 0.0
    q = query.float().reshape(b, N2, N1 // N2, D)
    for i in range(b):
        s = torch.einsum("ngd,snd->ngs", q[i], keys[i]) * D ** -0.5
        o = torch.einsum("ngs,snd->ngd", s.softmax(-1), values[i]).reshape(N1 * D)
        worst = max(worst, float((out[i, 0].float() - o).abs().max()))
    print(f"decode B={b} N1={N1} N2={N2} D={D} block_size={BLOCK} lengths={LENGTHS}")
    print(f"output {tuple(out.shape)} {out.dtype}; max |int8-cache - fp32-cache| = {worst:.4f}")


if __name__ == "__main__":
    main()
