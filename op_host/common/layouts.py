"""Tensor layouts, spelled as CANN spells them."""
from __future__ import annotations

import enum


class Layout(enum.Enum):
    BSND = "BSND"        # (B, S, N, D)
    TND = "TND"          # (T, N, D), batches packed along T, lengths as prefix sums
    PA_BSND = "PA_BSND"  # paged cache (block_num, block_size, N, D) + block_table
    BNSD = "BNSD"        # (B, N, S, D)
    BSH = "BSH"          # (B, S, N * D)

    @classmethod
    def parse(cls, value: str, allowed: tuple["Layout", ...], check, arg: str) -> "Layout":
        """The layout named by ``value``; an error naming ``arg`` if it is not one of ``allowed``."""
        names = "/".join(layout.value for layout in allowed)
        if isinstance(value, str):
            for layout in allowed:
                if layout.value == value:
                    return layout
        check.fail(arg, f"one of {names}", repr(value))
        raise AssertionError("unreachable")
