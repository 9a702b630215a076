"""Paged KV caches (PA_BSND): the project's page-table rule shared by every op."""
from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=32)
def _used_pages(lens: tuple[int, ...], block_size: int, width: int, device: str) -> torch.Tensor:
    """[B, width] bool: the entries of a page table that hold the first ``lens[b]`` tokens
    (kept for repeated calls: the layers of a model check tables of the same lengths)."""
    pages = torch.tensor([-(-n // block_size) for n in lens], device=device)
    return torch.arange(width, device=device)[None, :] < pages[:, None]


def check_used_pages(check, block_table: torch.Tensor, lens: tuple[int, ...], block_size: int,
                     block_num: int, lens_arg: str, block_num_name: str = "block_num") -> None:
    """(P) The pages that hold each batch's first ``lens[b]`` tokens must lie in [0, block_num).

    Entries past ceil(lens[b] / block_size) are never read and may hold anything (often -1).
    One device-to-host transfer (the least and greatest entry in use); the message names the
    first bad entry.
    """
    used = _used_pages(tuple(lens), block_size, block_table.shape[1], str(block_table.device))
    low, high = torch.stack(torch.aminmax(torch.where(used, block_table, 0))).tolist()
    if low < 0 or high >= block_num:
        bad = used & ((block_table < 0) | (block_table >= block_num))
        b, j = (int(x) for x in bad.nonzero()[0].tolist())
        check.fail("block_table", f"entries in [0, {block_num_name}={block_num}) for the pages that "
                   f"hold the first {lens_arg} tokens",
                   f"block_table[{b}, {j}] = {int(block_table[b, j])}")


def clear_cache() -> None:
    _used_pages.cache_clear()
