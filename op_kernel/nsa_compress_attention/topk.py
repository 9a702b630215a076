"""The vector-unit half of npu_nsa_compress_attention's importance pass.

Steps 4-7 of docs/nsa_compress_attention.md, Semantics (importance, group sum, top-k).

Pure tensor functions used by the emulator for one chunk of selection blocks:
``chunk_importance`` (trapezoidal taps over the chunk's importance window, in the kernel's
accumulation order), ``group_tree_sum`` (the pairwise GQA reduction) and ``merge_topk`` (the
streaming stable top-k: the running candidates come from smaller block indices than the chunk,
so a stable descending sort of [candidates, chunk] keeps ties ordered by block index).
"""
from __future__ import annotations

import torch


def tap_positions(m_blocks: int, nw: int, blocks_per_chunk: int, device) -> torch.Tensor:
    """[L, Bc] window position of token M(j+1) - t for the chunk's local blocks j.

    The window of chunk s starts at token s * block_c - (Nw - 2), so the offset is static.
    """
    taps = m_blocks + nw - 1
    j = torch.arange(blocks_per_chunk, device=device)
    t = torch.arange(taps, device=device)
    return m_blocks * (j[None, :] + 1) - t[:, None] + nw - 2


def chunk_importance(p: torch.Tensor, positions: torch.Tensor,
                     weights: tuple[int, ...]) -> torch.Tensor:
    """p [..., W] fp32 probabilities of the window -> [..., Bc] importance.

    Starts with w_0 * P[M(j+1)] and adds w_t * P[M(j+1) - t] for t = 1, 2, ... (kernel order).
    Window positions outside the batch's tokens hold P = 0.
    """
    acc = weights[0] * p[..., positions[0]]
    for t in range(1, len(weights)):
        acc = acc + weights[t] * p[..., positions[t]]
    return acc


def group_tree_sum(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Sum over ``dim`` (a power of two) by adjacent pairs, then pairs of pairs."""
    while x.shape[dim] > 1:
        x = x.unflatten(dim, (-1, 2))
        x = x.select(dim + 1, 0) + x.select(dim + 1, 1)
    return x.squeeze(dim)


def merge_topk(cand_val: torch.Tensor, cand_idx: torch.Tensor, val: torch.Tensor,
               idx: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Running top-k [..., k] merged with a chunk's [..., Bc] scores (all later blocks)."""
    v = torch.cat([cand_val, val], -1)
    i = torch.cat([cand_idx, idx], -1)
    order = torch.sort(v, dim=-1, descending=True, stable=True).indices[..., :k]
    return v.gather(-1, order), i.gather(-1, order)
