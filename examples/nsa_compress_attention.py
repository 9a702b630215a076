"""NSA compressed attention on CPU: compress a raw sequence, attend, pick the blocks to read.

Builds compressed keys/values from raw per-token keys/values with mean pooling (window l =
compress_block_size, stride d = compress_stride: compressed token i averages raw tokens
[i*d, i*d + l), as CANN's nsa_compress defines windows), runs
``torch.ops.custom.npu_nsa_compress_attention`` with a causal compressed mask and the NSA paper's
forced blocks (the first block and the query's own block), and prints the selected blocks.
Queries before the first complete window see no compressed token: as in the CANN kernel, such a
fully masked row attends uniformly to all compressed tokens of its batch
(docs/nsa_compress_attention.md, Semantics).

Run: python examples/nsa_compress_attention.py
"""
from __future__ import annotations

import torch

import cann_attention  # noqa: F401  (registers torch.ops.custom.*)

L, D_STRIDE, L_SEL, K = 32, 16, 64, 4          # l, d, l', select_block_count
N1, N2, D1, D2 = 8, 2, 64, 64
SEQ = [512, 384]                               # raw lengths of two sequences (varlen batch)


def mean_pool(x: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """[S, N, D] raw tokens -> [C, N, D], C = 1 + (S - window) // stride (0 if S < window)."""
    if x.shape[0] < window:
        return x.new_zeros((0,) + x.shape[1:])
    return x.unfold(0, window, stride).mean(-1)              # [C, N, D]


def main():
    torch.manual_seed(0)
    m_blocks = L_SEL // D_STRIDE
    q_parts, k_parts, v_parts, c_lens = [], [], [], []
    for s in SEQ:
        raw_k, raw_v = torch.randn(s, N2, D1), torch.randn(s, N2, D2)
        k_parts.append(mean_pool(raw_k, L, D_STRIDE))
        v_parts.append(mean_pool(raw_v, L, D_STRIDE))
        c_lens.append(k_parts[-1].shape[0])
        q_parts.append(torch.randn(s, N1, D1))
    query = torch.cat(q_parts).half()
    key, value = torch.cat(k_parts).half(), torch.cat(v_parts).half()

    # causal on compressed tokens: raw query t sees compressed token c when its window ended
    max_sq, max_c = max(SEQ), max(c_lens)
    max_sel = -(-max_c // m_blocks)
    t = torch.arange(max_sq)[:, None]
    atten_mask = (torch.arange(max_c)[None, :] * D_STRIDE + L) > t + 1       # True = masked
    topk_mask = torch.zeros(max_sq, max_sel, dtype=torch.bool)               # True = forced
    topk_mask[:, 0] = True                                                  # initial block
    own = torch.clamp(torch.arange(max_sq) // L_SEL, max=max_sel - 1)
    topk_mask[torch.arange(max_sq), own] = True                              # local block

    prefix = lambda xs: [sum(xs[:i + 1]) for i in range(len(xs))]           # noqa: E731
    out, idx, smax, ssum = torch.ops.custom.npu_nsa_compress_attention(
        query, key, value, D1 ** -0.5, N1, L, D_STRIDE, L_SEL, K,
        topk_mask=topk_mask, atten_mask=atten_mask,
        actual_seq_qlen=prefix(SEQ), actual_cmp_seq_kvlen=prefix(c_lens),
        actual_sel_seq_kvlen=prefix([-(-c // m_blocks) for c in c_lens]))
    print(f"compressed lengths C = {c_lens}, selection blocks Sel = "
          f"{[-(-c // m_blocks) for c in c_lens]}")
    print(f"attention_out {tuple(out.shape)}, topk_indices_out {tuple(idx.shape)}")
    for b, start in enumerate([0, SEQ[0]]):
        for i in (SEQ[b] // 2, SEQ[b] - 1):
            print(f"batch {b} query {i:3d} KV head 0 -> blocks {idx[start + i, 0].tolist()} "
                  f"(raw tokens of block j: [j*{L_SEL}, (j+1)*{L_SEL}))")


if __name__ == "__main__":
    main()
