"""DeepSeek-V3.2 sparse MLA through torch_npu's npu_sparse_flash_attention (our stand-in), on CPU.

1. A decode step: TND query (one new token per sequence), paged latent KV cache (PA_BSND,
   page 64, shuffled page table), K = 2048 selected tokens per query, N1 = 128 heads.
2. A prefill chunk: BSND query and cache, causal (sparse_mode 3), returning softmax statistics.
Each prints shapes, the time, and the max error against the fp32 reference.

    python examples/sparse_flash_attention.py [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import math
import time

import torch

import cann_attention.torch_npu as torch_npu   # stands in for torch_npu
from cann_attention.op_kernel.sparse_flash_attention import reference

D, DR, K = 512, 64, 2048
SCALE = (128 + 64) ** -0.5        # DeepSeek-V3.2 qk_head_dim^-0.5 (nope 128 + rope 64)


def decode_step(device, batch=4, n1=128, context=(8192, 5000, 3100, 7777), page=64):
    dtype = torch.bfloat16
    pages = [math.ceil(c / page) for c in context]
    num_blocks = sum(pages) + 8
    cache = torch.randn(num_blocks, page, 1, D, dtype=dtype)            # latent c_KV
    cache_rope = torch.randn(num_blocks, page, 1, DR, dtype=dtype)      # decoupled RoPE key
    block_table = torch.full((batch, max(pages)), -1, dtype=torch.int32)
    perm = torch.randperm(num_blocks)
    start = 0
    for b, n in enumerate(pages):
        block_table[b, :n] = perm[start:start + n].to(torch.int32)
        start += n
    query = torch.randn(batch, n1, D, dtype=dtype)                      # TND, 1 token each
    query_rope = torch.randn(batch, n1, DR, dtype=dtype)
    # top-K token positions per query (what npu_lightning_indexer produces): -1 padded
    idx = torch.full((batch, 1, K), -1, dtype=torch.int32)
    for b, c in enumerate(context):
        take = min(K, c)
        idx[b, 0, :take] = torch.randperm(c)[:take].to(torch.int32)
    kwargs = dict(block_table=block_table,
                  actual_seq_lengths_query=torch.arange(1, batch + 1, dtype=torch.int32),
                  actual_seq_lengths_kv=torch.tensor(context, dtype=torch.int32),
                  query_rope=query_rope, key_rope=cache_rope, layout_query="TND",
                  layout_kv="PA_BSND", sparse_mode=3, attention_mode=2)
    return (query, cache, cache, idx, SCALE, 1), kwargs


def prefill_chunk(device, s1=64, s2=1024, n1=16):
    dtype = torch.bfloat16
    query = torch.randn(1, s1, n1, D, dtype=dtype)
    query_rope = torch.randn(1, s1, n1, DR, dtype=dtype)
    key = torch.randn(1, s2, 1, D, dtype=dtype)
    key_rope = torch.randn(1, s2, 1, DR, dtype=dtype)
    idx = torch.full((1, s1, 1, K), -1, dtype=torch.int32)
    for s in range(s1):
        visible = s2 - s1 + s + 1                                       # causal, bottom-right
        take = min(K, visible)
        idx[0, s, 0, :take] = torch.randperm(visible)[:take].to(torch.int32)
    kwargs = dict(query_rope=query_rope, key_rope=key_rope, sparse_mode=3,
                  return_softmax_lse=True)
    return (query, key, key, idx, SCALE, 1), kwargs


def run(name, build, device):
    args, kwargs = build(device)
    to = lambda x: x.to(device) if isinstance(x, torch.Tensor) else x   # noqa: E731
    dargs = tuple(to(a) for a in args)
    dkwargs = {k: to(v) for k, v in kwargs.items()}
    # torch_npu's signature: sparse_block_size keyword-only, attention_mode 2 (MLA-absorb) given
    call = lambda: torch_npu.npu_sparse_flash_attention(   # noqa: E731
        *dargs[:5], sparse_block_size=dargs[5], **{"attention_mode": 2, **dkwargs})
    call()                                                               # warm-up
    t0 = time.perf_counter()
    out, smax, ssum = call()
    if device == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - t0
    ref, _, _ = reference.sparse_flash_attention(*args, **kwargs)
    err = (out.cpu().float() - ref.float()).abs().max().item()
    print(f"{name}: query {tuple(args[0].shape)} cache {tuple(args[1].shape)} "
          f"indices {tuple(args[3].shape)} -> out {tuple(out.shape)} {out.dtype}, "
          f"softmax_max {tuple(smax.shape)}; {elapsed * 1e3:.1f} ms; "
          f"max |out - reference| = {err:.2e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    device = parser.parse_args().device
    torch.manual_seed(0)
    run("decode  (TND query, PA_BSND cache)", decode_step, device)
    run("prefill (BSND, causal, lse)       ", prefill_chunk, device)


if __name__ == "__main__":
    main()
