"""Small checked-shape calls of the indexer and of sparse_flash_attention (paged, lse, sinks) for
the tests of the NPU back ends' argument mapping."""
from __future__ import annotations

import torch

from testing.sparse_flash_attention_cases import make_case


def li_call():
    g = torch.Generator().manual_seed(2)
    q = torch.randn(2, 3, 4, 128, generator=g).bfloat16()
    k = torch.randn(2, 40, 1, 128, generator=g).bfloat16()
    w = torch.randn(2, 3, 4, generator=g).bfloat16()
    return (q, k, w), dict(sparse_count=16, sparse_mode=3, return_value=True,
                           actual_seq_lengths_key=torch.tensor([40, 25], dtype=torch.int32))


def sfa_call():
    case = make_case(B=2, S1=2, S2=64, N1=4, K=8, layout_kv="PA_BSND", page=16,
                     return_softmax_lse=True, sinks=True)
    return case.args, case.kwargs
