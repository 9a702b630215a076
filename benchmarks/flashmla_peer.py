"""FlashMLA's sm90 sparse prefill as a same-run peer of npu_sparse_flash_attention.

FlashMLA (deepseek-ai/FlashMLA, MIT) has no wheel for the GPU machines' torch, so the SFA
benchmark builds its Hopper sparse prefill from a copy of its public source that the user gives
(``--flashmla DIR``: a checkout with its ``csrc/cutlass`` submodule, or ``--cutlass DIR`` beside
it). Only the sparse prefill is built: FlashMLA's host launcher and its four kernel
instantiations (d_qk 512 / 576, with or without per-row top-k lengths) and our own entry point
(``flashmla_sparse_prefill.cu``), not FlashMLA's whole extension. The build is just in time
with the CUDA toolkit (torch.utils.cpp_extension.load, nvcc, sm_90a) and cached by torch in
``build_dir``; nothing of FlashMLA is committed here.

``inputs_of(args, kwargs)`` turns the op's arguments of a B = 1 call into
FlashMLA's (q [s_q, h_q, 576], kv [s_kv, 1, 576], indices [s_q, 1, topk]): the same tensors,
concatenated nope + rope, as FlashMLA's own benchmark lays them out.
"""
from __future__ import annotations

from pathlib import Path

import torch

ENTRY = Path(__file__).resolve().parent / "flashmla_sparse_prefill.cu"
SOURCES = ("csrc/sm90/prefill/sparse/fwd.cu",
           "csrc/sm90/prefill/sparse/instantiations/phase1_k512.cu",
           "csrc/sm90/prefill/sparse/instantiations/phase1_k512_topklen.cu",
           "csrc/sm90/prefill/sparse/instantiations/phase1_k576.cu",
           "csrc/sm90/prefill/sparse/instantiations/phase1_k576_topklen.cu")
NVCC_FLAGS = ["-O3", "-std=c++20", "-DNDEBUG", "-D_USE_MATH_DEFINES",
              "-Wno-deprecated-declarations", "-U__CUDA_NO_HALF_OPERATORS__",
              "-U__CUDA_NO_HALF_CONVERSIONS__", "-U__CUDA_NO_HALF2_OPERATORS__",
              "-U__CUDA_NO_BFLOAT16_CONVERSIONS__", "--expt-relaxed-constexpr",
              "--expt-extended-lambda", "--use_fast_math",
              "--ptxas-options=--register-usage-level=10", "-lineinfo",
              "-gencode", "arch=compute_90a,code=sm_90a"]     # FlashMLA's own flags for sm90


def include_dirs(src: Path, cutlass: Path | None = None) -> list[str]:
    """FlashMLA's include directories (its setup.py's), CUTLASS from its submodule or
    ``cutlass``."""
    cutlass = cutlass or src / "csrc" / "cutlass"
    return [str(p) for p in (src / "csrc", src / "csrc" / "kerutils" / "include",
                             src / "csrc" / "sm90", cutlass / "include",
                             cutlass / "tools" / "util" / "include")]


def sources(src: Path) -> list[str]:
    """Our entry point and FlashMLA's sm90 sparse prefill sources, checked to exist."""
    paths = [src / s for s in SOURCES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"not a FlashMLA checkout with the sm90 sparse prefill (commit "
                                f"9241ae3 layout): missing {missing}")
    return [str(ENTRY)] + [str(p) for p in paths]


def build(src, cutlass=None, build_dir=None, verbose=False):
    """The module (``sparse_prefill(q, kv, indices, sm_scale, d_v=512, topk_length=None) ->
    (out, max_logits, lse)``) built from the FlashMLA checkout ``src`` (minutes the first time,
    then torch's cache)."""
    from torch.utils.cpp_extension import load
    src = Path(src)
    cutlass = Path(cutlass) if cutlass else None
    if not (cutlass or src / "csrc" / "cutlass").joinpath("include", "cute").is_dir():
        raise FileNotFoundError("CUTLASS not found: init FlashMLA's csrc/cutlass submodule or "
                                "pass --cutlass DIR (a CUTLASS checkout)")
    if build_dir is not None:
        Path(build_dir).mkdir(parents=True, exist_ok=True)
    return load(name="cann_attention_flashmla_sm90_sparse_prefill", sources=sources(src),
                extra_include_paths=include_dirs(src, cutlass),
                extra_cflags=["-O3", "-std=c++20", "-DNDEBUG"], extra_cuda_cflags=NVCC_FLAGS,
                build_directory=str(build_dir) if build_dir else None, verbose=verbose)


def inputs_of(args, kwargs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """FlashMLA's (q, kv, indices) of the op's call ``(query, key, value, sparse_indices, ...)``
    with ``query_rope`` / ``key_rope`` in ``kwargs``: one batch, contiguous BSND keys."""
    query, key, _, idx = args[:4]
    if query.shape[0] != 1 or "block_table" in kwargs:
        raise ValueError("FlashMLA's sparse prefill takes one batch of contiguous keys")
    q = torch.cat([query[0], kwargs["query_rope"][0]], -1).contiguous()      # [s_q, h_q, 576]
    kv = torch.cat([key[0], kwargs["key_rope"][0]], -1).contiguous()        # [s_kv, 1, 576]
    return q, kv, idx[0].to(torch.int32).contiguous()                       # [s_q, 1, topk]
