"""The lightning indexer's test matrix (shared by its emulator and Triton kernel tests): each
case's lengths, heads, sparse_count, layouts and inputs drawn from a generator."""
from __future__ import annotations

from dataclasses import dataclass

import torch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Case:
    q_lens: tuple[int, ...]
    k_lens: tuple[int, ...]
    n1: int
    k: int
    dtype: str = "bf16"
    layout_q: str = "BSND"
    layout_k: str = "BSND"
    mode: int = 3
    s1: int = 0            # BSND query slots (>= max q_lens); 0: max(q_lens)
    s2: int = 0            # BSND key slots; 0: max(k_lens)
    block_size: int = 16   # PA_BSND page size
    weights_fp32: bool = False
    distinct_keys: int = 0  # > 0: keys drawn from this many rows (exact ties)
    pass_lengths: bool = True

    @property
    def id(self) -> str:
        b = len(self.q_lens)
        s1 = f"S1_{max(self.q_lens)}" if self.layout_q == "BSND" else f"T1_{sum(self.q_lens)}"
        parts = [f"B{b}", s1, f"S2_{max(self.k_lens)}", f"N1_{self.n1}", f"K{self.k}",
                 self.dtype, f"{self.layout_q}-{self.layout_k}", f"M{self.mode}"]
        if self.layout_k == "PA_BSND":
            parts.append(f"BS{self.block_size}")
        if self.weights_fp32:
            parts.append("Wfp32")
        if self.distinct_keys:
            parts.append(f"TIES{self.distinct_keys}")
        return "-".join(parts)


def build(case: Case, gen: torch.Generator) -> dict:
    """Keyword arguments of one call (tensors built on CPU from ``gen``)."""
    dt = DTYPES[case.dtype]
    b = len(case.q_lens)

    def randn(*shape, dtype=dt):
        return torch.randn(*shape, generator=gen).to(dtype)

    i32 = lambda xs: torch.tensor(xs, dtype=torch.int32)  # noqa: E731
    prefix = lambda xs: i32(torch.cumsum(torch.tensor(xs), 0).tolist())  # noqa: E731
    args = dict(layout_query=case.layout_q, layout_key=case.layout_k, sparse_count=case.k,
                sparse_mode=case.mode)
    wdt = torch.float32 if case.weights_fp32 else dt
    if case.layout_q == "BSND":
        s1 = case.s1 or max(case.q_lens)
        args["query"], args["weights"] = randn(b, s1, case.n1, 128), randn(b, s1, case.n1,
                                                                          dtype=wdt)
        if case.pass_lengths:
            args["actual_seq_lengths_query"] = i32(case.q_lens)
    else:
        t1 = sum(case.q_lens) + 1                       # one row past aq[-1]
        args["query"], args["weights"] = randn(t1, case.n1, 128), randn(t1, case.n1, dtype=wdt)
        args["actual_seq_lengths_query"] = prefix(case.q_lens)
    if case.layout_k == "BSND":
        s2 = case.s2 or max(case.k_lens)
        key = randn(b, s2, 1, 128)
        if case.pass_lengths:
            args["actual_seq_lengths_key"] = i32(case.k_lens)
    elif case.layout_k == "TND":
        key = randn(sum(case.k_lens), 1, 128)
        args["actual_seq_lengths_key"] = prefix(case.k_lens)
    else:
        bs = case.block_size
        pages = max(1, -(-max(case.k_lens) // bs))
        num_blocks = b * pages + 3
        perm = torch.randperm(num_blocks, generator=gen)[: b * pages].reshape(b, pages)
        for bi, n in enumerate(case.k_lens):
            perm[bi, -(-n // bs):] = -1                  # unused entries: never read
        key = randn(num_blocks, bs, 1, 128)
        args["block_table"] = perm.to(torch.int32)
        args["actual_seq_lengths_key"] = i32(case.k_lens)
    if case.distinct_keys:
        flat = key.reshape(-1, 128)
        pick = torch.randint(case.distinct_keys, (flat.shape[0],), generator=gen)
        key = flat[pick].reshape(key.shape)
    args["key"] = key
    return args


CASES = [
    Case((5, 3), (300, 40), n1=8, k=64),
    Case((1,), (700,), n1=64, k=128, layout_k="PA_BSND", block_size=64),
    Case((1, 1, 1), (37, 0, 129), n1=32, k=48, layout_k="PA_BSND", dtype="fp16"),
    Case((4, 6), (90, 200), n1=32, k=200, layout_q="TND", layout_k="TND", dtype="fp16"),
    Case((6, 2), (4, 9), n1=1, k=8, s1=7),                                  # Lq > Lk
    Case((5, 0, 3), (2, 50, 3), n1=8, k=16, layout_q="TND", layout_k="PA_BSND", mode=0),
    Case((7,), (5,), n1=8, k=4, layout_q="TND", layout_k="PA_BSND", mode=3),  # Lq > Lk
    Case((3, 2), (150, 60), n1=8, k=32, mode=0, weights_fp32=True),
    Case((4, 4), (120, 77), n1=8, k=40, distinct_keys=6),                    # ties
    Case((4,), (96,), n1=64, k=100, layout_k="PA_BSND", distinct_keys=3, block_size=32),
    Case((2,), (2100,), n1=8, k=2048, pass_lengths=False),
    Case((2,), (4500,), n1=1, k=4096, layout_q="TND", layout_k="TND"),
    Case((3, 2), (40, 33), n1=8, k=2048, s2=50, mode=0),                     # K >> visible
]
