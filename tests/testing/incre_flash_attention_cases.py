"""Cases of npu_incre_flash_attention for the tests: a ``Case`` (dimension letters in its id)
and the call arguments it builds (fixed seed), plus the reference of those arguments."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from cann_attention.op_kernel.incre_flash_attention import reference as ref

DT = {"fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Case:
    b: int = 2
    n1: int = 8
    n2: int = 2
    d: int = 64
    s: int = 96
    layout: str = "BSH"
    dtype: str = "bf16"
    lens: tuple | None = None          # actual_seq_lengths
    paged: str | None = None           # "PA3" (blocks, bs, kvH), "PA4" (blocks, kvN, bs, D) or
    #                                    "PA4S" (blocks, bs, kvN, D): vLLM's cache, BSH / BSND
    block_size: int = 0
    int8: str | None = None            # "channel" / "tensor" antiquant
    aq_offset: bool = True
    mask: str | None = None            # "<rank>-<dtype>", e.g. "2-bool"
    mask_all_b0: bool = False          # batch 0 fully masked
    pse: str | None = None             # "1" or "B"
    pad: int | None = None             # kv_padding_size
    postquant: str | None = None       # "tensor" / "channel"
    emulate_npu: bool = False
    inner_precise: int = 1

    @property
    def id(self) -> str:
        parts = [f"B{self.b}", "S1_1", f"S2_{self.s}", f"N1_{self.n1}", f"N2_{self.n2}",
                 f"D{self.d}", self.dtype, self.layout]
        for name in ("paged", "int8", "mask", "pse", "postquant"):
            if getattr(self, name):
                parts.append(f"{name}_{getattr(self, name)}")
        if self.paged:
            parts.append(f"bs{self.block_size}")
        if self.lens is not None:
            parts.append("L" + "_".join(map(str, self.lens)))
        if self.pad is not None:
            parts.append(f"pad{self.pad}")
        if self.emulate_npu:
            parts.append("npu")
        return "-".join(parts)


def _kv_layout(x, layout, n2, d):
    """[B, S, kvN, D] -> the layout's contiguous key shape."""
    if layout == "BSH":
        return x.flatten(2).contiguous()
    if layout == "BNSD":
        return x.permute(0, 2, 1, 3).contiguous()
    return x.contiguous()


def build(c: Case) -> dict:
    dt = DT[c.dtype]
    g = torch.Generator().manual_seed(1234)
    q = torch.randn(c.b, c.n1, c.d, generator=g).to(dt)
    query = {"BSH": q.reshape(c.b, 1, c.n1 * c.d), "BNSD": q.reshape(c.b, c.n1, 1, c.d),
             "BSND": q.reshape(c.b, 1, c.n1, c.d)}[c.layout]
    if c.int8:
        kv = [torch.randint(-128, 128, (c.b, c.s, c.n2, c.d), generator=g, dtype=torch.int8)
              for _ in range(2)]
    else:
        kv = [torch.randn(c.b, c.s, c.n2, c.d, generator=g).to(dt) for _ in range(2)]
    kw = dict(num_heads=c.n1, input_layout=c.layout, scale_value=c.d ** -0.5,
              num_key_value_heads=c.n2 if c.n2 != c.n1 else 0, inner_precise=c.inner_precise)
    if c.lens is not None:
        kw["actual_seq_lengths"] = list(c.lens)
    s_cap = c.s
    if c.paged:
        bs = c.block_size
        lens = list(c.lens) if len(c.lens) == c.b else list(c.lens) * c.b
        max_blocks = -(-c.s // bs)
        s_cap = max_blocks * bs
        pages = [-(-n // bs) for n in lens]
        total = sum(pages) + 2                                    # two spare blocks
        perm = torch.randperm(total, generator=g)
        table = torch.full((c.b, max_blocks), -1, dtype=torch.int32)
        shape = {"PA3": (total, bs, c.n2 * c.d), "PA4": (total, c.n2, bs, c.d),
                 "PA4S": (total, bs, c.n2, c.d)}[c.paged]
        caches = []
        for x in kv:
            cache = (torch.randint(-128, 128, shape, generator=g, dtype=torch.int8) if c.int8
                     else torch.randn(shape, generator=g).to(dt))
            caches.append(cache)
        used = 0
        for b, n in enumerate(pages):
            for j in range(n):
                blk = int(perm[used])
                used += 1
                table[b, j] = blk
                for cache, x in zip(caches, kv):
                    rows = x[b, j * bs:(j + 1) * bs]                    # [<=bs, kvN, D]
                    r = rows.shape[0]
                    if c.paged == "PA4":
                        cache[blk, :, :r] = rows.permute(1, 0, 2)
                    else:
                        cache[blk, :r] = rows.reshape(cache[blk, :r].shape)
        key, value = caches
        kw.update(block_table=table, block_size=bs)
    else:
        key, value = (_kv_layout(x, c.layout, c.n2, c.d) for x in kv)
    if c.int8:
        shape = {"BNSD": (2, c.n2, 1, c.d), "BSND": (2, c.n2, c.d), "BSH": (2, c.n2 * c.d)}
        shape = (2,) if c.int8 == "tensor" else shape[c.layout]
        kw["antiquant_scale"] = (torch.rand(shape, generator=g) * 0.02 + 0.005).to(dt)
        if c.aq_offset:
            kw["antiquant_offset"] = (torch.rand(shape, generator=g) * 8 - 4).round().to(dt)
    if c.mask:
        rank, mdt = c.mask.split("-")
        mdt = {"bool": torch.bool, "int8": torch.int8, "uint8": torch.uint8}[mdt]
        sp = s_cap + 3
        m = torch.rand(c.b, sp, generator=g) < 0.3
        if c.mask_all_b0:
            m[0] = True
        kw["attn_mask"] = m.to(mdt).reshape((c.b,) + (1,) * (int(rank) - 2) + (sp,))
    if c.pse:
        pb = 1 if c.pse == "1" else c.b
        kw["pse_shift"] = torch.randn(pb, c.n1, 1, s_cap + 5, generator=g).to(dt)
    if c.pad is not None:
        kw["kv_padding_size"] = [c.pad]
    if c.postquant:
        numel = 1 if c.postquant == "tensor" else c.n1 * c.d
        kw["quant_scale2"] = torch.rand(numel, generator=g) * 20 + 30
        kw["quant_offset2"] = torch.randn(numel, generator=g).round()
        if c.emulate_npu:
            kw["emulate_npu"] = True
    return dict(query=query, key=key, value=value, **kw)


def reference(args: dict, **extra):
    args = {k: v for k, v in args.items() if k != "inner_precise"}
    return ref.incre_flash_attention(**args, **extra)
