"""The backward of npu_nsa_compress_attention's attention output (vectorised PyTorch per batch).

Standard flash-attention backward over the batch's compressed keys, from the forward's saved
statistics (softmax_max m, softmax_sum l, in the op's flat order: docs/nsa_compress_attention.md,
Statistics), per batch b and KV head n2 with its G query heads:

    S  = scale * Q K^T, masked scores replaced by -FLT_MAX     P  = exp(S - m) / l
    dV = sum_g P^T dO                                          dP = dO V^T
    D  = rowsum(dO * O)                                        dS = P * (dP - D), 0 where masked
    dQ = scale * dS K                                          dK = scale * sum_g dS^T Q

A masked score is a constant, so it passes no gradient to Q or K; a fully masked row still
spreads its output gradient uniformly over the batch's values (its P is 1/C[b]). Only
attention_out is differentiable: topk_indices_out is integer and the statistics are treated as
non-differentiable outputs. Rows outside the batches (beyond sum(Sq), sum(C)) get zero gradient.
Computes in fp32 (fp64 for fp64 inputs) and returns the gradients in the inputs' dtypes.
"""
from __future__ import annotations

import torch

from cann_attention.op_host.common.seqlens import counts_from_prefix_sums, starts_from_counts
from cann_attention.op_host.nsa_compress_attention.params import (
    FLT_MAX, STAT_REPLICAS, compute_dtype)


def backward(grad_out: torch.Tensor, query: torch.Tensor, key: torch.Tensor,
             value: torch.Tensor, attention_out: torch.Tensor, softmax_max: torch.Tensor,
             softmax_sum: torch.Tensor, *, scale_value: float, head_num: int,
             actual_seq_qlen, actual_cmp_seq_kvlen,
             atten_mask: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(grad_query, grad_key, grad_value) of a checked forward call.

    ``grad_out`` (T1, N1, D2) is the gradient of attention_out; ``softmax_max`` /
    ``softmax_sum`` are the forward's outputs as returned (declared (T1, N1, 8), flat order);
    the prefix sums are the forward's host int lists; ``head_num`` = N1.
    """
    cd = compute_dtype(query.dtype)
    n1, n2 = head_num, key.shape[1]
    g = n1 // n2
    grads = [torch.zeros(x.shape, dtype=cd, device=x.device) for x in (query, key, value)]
    dq, dk, dv = grads
    smax, ssum = (x.reshape(-1, STAT_REPLICAS)[:, 0].to(cd) for x in (softmax_max, softmax_sum))
    q_lens = counts_from_prefix_sums(tuple(int(x) for x in actual_seq_qlen))
    c_lens = counts_from_prefix_sums(tuple(int(x) for x in actual_cmp_seq_kvlen))
    for q0, sq, c0, c in zip(starts_from_counts(q_lens), q_lens,
                             starts_from_counts(c_lens), c_lens):
        if sq == 0 or c == 0:
            continue

        def by_head(x):                    # (T, N1, D) rows of the batch -> [N2, G, Sq, D]
            return x[q0:q0 + sq].to(cd).unflatten(1, (n2, g)).permute(1, 2, 0, 3)

        def stat(x):                       # flat order: the batch's (N1, Sq) block
            return x[n1 * q0:n1 * (q0 + sq)].view(n2, g, sq, 1)

        q, o, do = by_head(query), by_head(attention_out), by_head(grad_out)
        k = key[c0:c0 + c].to(cd).transpose(0, 1).unsqueeze(1)              # [N2, 1, C, D1]
        v = value[c0:c0 + c].to(cd).transpose(0, 1).unsqueeze(1)            # [N2, 1, C, D2]
        s = torch.matmul(q, k.transpose(-1, -2)) * scale_value              # [N2, G, Sq, C]
        masked = None if atten_mask is None else atten_mask[:sq, :c].bool()
        if masked is not None:
            s = s.masked_fill(masked, -FLT_MAX)
        p = torch.exp(s - stat(smax)) / stat(ssum)
        dp = torch.matmul(do, v.transpose(-1, -2))
        ds = p * (dp - (do * o).sum(-1, keepdim=True))
        if masked is not None:
            ds = ds.masked_fill(masked, 0.0)
        dq[q0:q0 + sq] = (torch.matmul(ds, k) * scale_value).permute(2, 0, 1, 3).flatten(1, 2)
        dk[c0:c0 + c] = torch.einsum("ngsc,ngsd->cnd", ds, q) * scale_value
        dv[c0:c0 + c] = torch.einsum("ngsc,ngsd->cnd", p, do)
    return tuple(grad.to(x.dtype) for grad, x in zip(grads, (query, key, value)))
