"""Input builders for the npu_nsa_compress_attention tests (one case = one frozen Case), and
``attention_out``, a plain differentiable formulation of the op's attention output (the
autograd oracle of the backward tests)."""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import accumulate

import torch

FLT_MAX = torch.finfo(torch.float32).max


@dataclass(frozen=True)
class Case:
    q_lens: tuple[int, ...]
    c_lens: tuple[int, ...]
    n1: int = 4
    n2: int = 2
    d1: int = 32
    d2: int = 16
    l: int = 32            # compress_block_size
    d: int = 16            # compress_stride
    ls: int = 64           # select_block_size
    k: int = 2             # select_block_count
    dtype: torch.dtype = torch.float16
    atten_mask: bool = True
    topk_mask: bool = True
    extra_rows: int = 1    # T1 - sum(Sq), T2 - sum(C)
    scale: float = field(default=0.0)

    @property
    def m_blocks(self) -> int:
        return self.ls // self.d

    @property
    def id(self) -> str:
        dt = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32",
              torch.float64: "fp64"}[self.dtype]
        masks = ("AM" if self.atten_mask else "") + ("TM" if self.topk_mask else "")
        return (f"B{len(self.q_lens)}-S1_{'_'.join(map(str, self.q_lens))}-"
                f"C_{'_'.join(map(str, self.c_lens))}-N1_{self.n1}-N2_{self.n2}-"
                f"D1_{self.d1}-D2_{self.d2}-l{self.l}-d{self.d}-ls{self.ls}-K{self.k}-{dt}"
                + (f"-{masks}" if masks else ""))


def make(case: Case, seed: int = 0) -> tuple[tuple, dict]:
    """(args, kwargs) of one call; random masks with some fully masked rows and forced blocks."""
    gen = torch.Generator().manual_seed(seed)
    t1 = sum(case.q_lens) + case.extra_rows
    t2 = sum(case.c_lens) + case.extra_rows
    q = torch.randn(t1, case.n1, case.d1, generator=gen).to(case.dtype)
    k = torch.randn(t2, case.n2, case.d1, generator=gen).to(case.dtype)
    v = torch.randn(t2, case.n2, case.d2, generator=gen).to(case.dtype)
    max_sq, max_c = max(case.q_lens), max(case.c_lens)
    max_sel = -(-max_c // case.m_blocks)
    am = tm = None
    if case.atten_mask:
        am = torch.rand(max_sq, max_c, generator=gen) < 0.4
        am[0] = True                                    # a fully masked row in every batch
    if case.topk_mask:
        tm = torch.rand(max_sq, max_sel, generator=gen) < 0.15
    kwargs = dict(topk_mask=tm, atten_mask=am,
                  actual_seq_qlen=list(accumulate(case.q_lens)),
                  actual_cmp_seq_kvlen=list(accumulate(case.c_lens)),
                  actual_sel_seq_kvlen=list(accumulate(-(-c // case.m_blocks)
                                                       for c in case.c_lens)))
    scale = case.scale or case.d1 ** -0.5
    args = (q, k, v, scale, case.n1, case.l, case.d, case.ls, case.k)
    return args, kwargs


def attention_out(query, key, value, scale_value, *, atten_mask=None, actual_seq_qlen,
                  actual_cmp_seq_kvlen, **_):
    """attention_out of docs/nsa_compress_attention.md (Equivalent PyTorch) in the inputs'
    dtype, one (batch, head) at a time with torch.softmax: differentiable by autograd. Masked
    scores are replaced by -FLT_MAX (a fully masked row attends uniformly); rows outside the
    batches are zero. Extra keyword arguments of a call (topk_mask, ...) are ignored."""
    t1, n1, _ = query.shape
    g = n1 // key.shape[1]
    out = query.new_zeros(t1, n1, value.shape[2])
    q0 = c0 = 0
    for qe, ce in zip(actual_seq_qlen, actual_cmp_seq_kvlen):
        for h in range(n1):
            s = scale_value * (query[q0:qe, h] @ key[c0:ce, h // g].T)
            if atten_mask is not None:
                s = s.masked_fill(atten_mask[:qe - q0, :ce - c0].bool(), -FLT_MAX)
            out[q0:qe, h] = torch.softmax(s, dim=-1) @ value[c0:ce, h // g]
        q0, c0 = qe, ce
    return out
