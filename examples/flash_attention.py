"""npu_flash_attention on CPU: a causal prefill, a gpt-oss style sliding-window layer with
sinks, and one paged decode step against a KV cache with a shuffled page table.

Run: python examples/flash_attention.py
"""
import torch

import cann_attention  # noqa: F401  (registers torch.ops.custom.npu_flash_attention)

OP = torch.ops.custom.npu_flash_attention


def causal_prefill():
    """Llama-style prefill: 2 sequences x 256 tokens, 16 query heads over 4 KV heads."""
    q = torch.randn(2, 256, 16, 128, dtype=torch.bfloat16)
    k = torch.randn(2, 256, 4, 128, dtype=torch.bfloat16)
    v = torch.randn(2, 256, 4, 128, dtype=torch.bfloat16)
    out, smax, ssum = OP(q, k, v, 128 ** -0.5, sparse_mode=3, return_softmax_lse=True)
    lse = smax + ssum.log()                          # (B, N2, S1, G); every row is valid here
    print("causal prefill:", tuple(out.shape), "lse", tuple(lse.shape))


def sliding_window_with_sinks():
    """gpt-oss: 128-token sliding window (sparse_mode=4, pre=W-1, next=0) and one learnable
    sink logit per query head; ragged TND batch of two prompts."""
    lens = [100, 300]
    q = torch.randn(sum(lens), 8, 64, dtype=torch.bfloat16)
    k = torch.randn(sum(lens), 1, 64, dtype=torch.bfloat16)
    v = torch.randn(sum(lens), 1, 64, dtype=torch.bfloat16)
    cum = torch.tensor(lens).cumsum(0).to(torch.int32)
    sinks = torch.randn(8)                           # float32, unscaled (docs/flash_attention.md)
    out, _, _ = OP(q, k, v, 64 ** -0.5, layout_query="TND", layout_kv="TND",
                   actual_seq_lengths_query=cum, actual_seq_lengths_kv=cum,
                   sparse_mode=4, pre_tokens=127, next_tokens=0, learnable_sink=sinks)
    print("sliding window + sinks:", tuple(out.shape))


def paged_decode_step():
    """One decode token per sequence; the caches hold 1000 and 37 tokens (the new one included)
    in 64-token pages scattered over a shared pool."""
    block_size, kv_lens = 64, [1000, 37]
    pages = [-(-n // block_size) for n in kv_lens]
    pool = torch.randperm(sum(pages) + 4)
    table = torch.full((2, max(pages)), -1, dtype=torch.int32)
    table[0, :pages[0]] = pool[:pages[0]].int()
    table[1, :pages[1]] = pool[pages[0]:pages[0] + pages[1]].int()
    key_cache = torch.randn(len(pool), block_size, 2, 128, dtype=torch.float16)
    value_cache = torch.randn(len(pool), block_size, 2, 128, dtype=torch.float16)
    q = torch.randn(2, 1, 16, 128, dtype=torch.float16)
    out, _, _ = OP(q, key_cache, value_cache, 128 ** -0.5, layout_kv="PA_BSND",
                   block_table=table, actual_seq_lengths_kv=torch.tensor(kv_lens, dtype=torch.int32),
                   sparse_mode=3)
    print("paged decode:", tuple(out.shape))


if __name__ == "__main__":
    torch.manual_seed(0)
    causal_prefill()
    sliding_window_with_sinks()
    paged_decode_step()
