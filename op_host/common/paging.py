"""Paged KV caches (PA_BSND): the project's page-table rule shared by every op."""
from __future__ import annotations

import torch


def check_used_pages(check, block_table: torch.Tensor, lens: tuple[int, ...], block_size: int,
                     block_num: int, lens_arg: str, block_num_name: str = "block_num") -> None:
    """(P) The pages that hold each batch's first ``lens[b]`` tokens must lie in [0, block_num).

    Entries past ceil(lens[b] / block_size) are never read and may hold anything (often -1).
    One device-to-host transfer of a boolean; the message names the first bad entry.
    """
    pages = torch.tensor([-(-n // block_size) for n in lens], device=block_table.device)
    used = torch.arange(block_table.shape[1], device=block_table.device)[None, :] < pages[:, None]
    bad = used & ((block_table < 0) | (block_table >= block_num))
    if bool(bad.any()):
        b, j = (int(x) for x in bad.nonzero()[0].tolist())
        check.fail("block_table", f"entries in [0, {block_num_name}={block_num}) for the pages that "
                   f"hold the first {lens_arg} tokens",
                   f"block_table[{b}, {j}] = {int(block_table[b, j])}")
