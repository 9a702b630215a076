"""plan(params, platform) -> NsaCompressAttentionTiling: who computes what, in which tiles.

Work decomposition. A *task* is one KV head n2 of one batch b and a tile of ``block_s1``
consecutive query rows, together with all G query heads of the group (the op_api's
(N2, T1, G, D1) view): its matmul rows are the G x block_s1 (head, row) pairs, g-major. The
G heads travel together because the importance of step 5 is summed over them before the top-k.

A task walks the batch's C[b] compressed tokens in *chunks* of ``block_c`` tokens;
``block_c`` is a multiple of M (= blocks_per_chunk selection blocks), so every chunk owns whole
selection blocks [s * blocks_per_chunk, (s + 1) * blocks_per_chunk). Two passes over the chunks:

1. Attention pass: scores, mask (-FLT_MAX replacement), fp32 online softmax, P (rounded to the
   input dtype) times V. At the end: attention_out and the final row statistics (max, sum).
2. Importance pass, with the carried final statistics: per chunk the scores are recomputed over
   the chunk's *importance window*, P = exp(S - max) / sum is exact (no rescaling), the importance
   of the chunk's selection blocks is formed from P with the trapezoidal taps, summed over the G
   heads (pairwise tree), forced by topk_mask, and merged into a running stable top-k (the
   select_block_count best so far, ties to the smaller block index). Block j reads compressed
   tokens M(j+1) - t for t in [0, M + Nw - 1), so the window of chunk s is
   [s * block_c - (Nw - 2), (s + 1) * block_c + 1): ``importance_width = block_c + Nw - 1``
   tokens (a halo of Nw - 2 tokens before the chunk and one token after it).
   The importance and the top-k run on the vector units (Ascend UB; GPU shared memory).

No task is split across cores (the top-k needs the final statistics of the whole row), so the
schedule is a balanced contiguous cut of the task line by cost (2 x chunks + 1 per task), one
run per core; the emulator processes round r = the r-th task of every core together.

Tile choice: the query tile block_s1 is the largest power of two with G x block_s1 <= 128
(the matrix unit's row budget) that fits; then the largest chunk (blocks_per_chunk a power of two,
block_c <= 512 on Ascend / CPU, <= 64 on GPU). Tiles hold D1 and D2 rounded up to 16 (as
CANN's tiling pads them; the padding is zeros and changes no result): D1, D2 below are those.
What must fit (e = bytes per input element, a = bytes per accumulator element: 4, or 8 for fp64
inputs on CPU, W = importance_width >= block_c, R = G x block_s1, K = select_block_count,
Bc = blocks_per_chunk):

- Ascend: L1 holds the query tile and the key/value window, (R*D1 + W*(D1+D2))*e; L0A/L0B a
  64-wide slice of each matmul operand; L0C the score tile R*W and the output tile in D2
  slices of at most 256 columns, a bytes each; each of the 2 vector cores' UB holds half of the
  rows' scores, rounded P and output accumulator, the per-head importance R*Bc, and the top-k
  candidates (K + Bc) x (value, index) of its query rows.
- GPU (one CTA per SM): shared memory holds the query tile (rows padded to 16), two stages of the
  key/value window, the P tile and the top-k candidates; registers the accumulator (D2
  slices of <= 256) and the score tile.
- CPU: the emulator's working set of one task (a bytes per element) must fit the lane's cache
  budget.

A plan that fits nowhere is refused with an error naming the platform and the smallest tile.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..common.errors import CannAttentionError
from ..common.platform import PlatformInfo, PlatformKind
from ..common.tiling_data import TilingLayout
from .params import CHECK, OP, NsaCompressAttentionParams

ASCEND_SOCS = ("Ascend910B", "Ascend910_93")
MAX_ROWS = 128                   # G x block_s1: rows of one matmul tile
MAX_BLOCK_C = {PlatformKind.ASCEND: 512, PlatformKind.GPU: 64, PlatformKind.CPU: 512}
ACC_SLICE = 256                  # output accumulator columns held at once (D2 slices)
TASK_OVERHEAD = 1                # loading the query tile, writing outputs and indices


@dataclass(frozen=True)
class TileShape:
    """The sizes one task step works on (all that ``tile_usage`` needs)."""
    rows: int            # G x block_s1
    block_s1: int
    width: int           # compressed tokens loaded per step (the importance window, >= block_c)
    blocks_per_chunk: int
    d1: int
    d2: int
    topk: int
    itemsize: int


@dataclass(frozen=True)
class NsaCompressAttentionTiling:
    platform: PlatformInfo
    block_s1: int                   # query rows per task
    block_c: int                    # compressed tokens per chunk (multiple of M)
    blocks_per_chunk: int           # selection blocks per chunk = block_c / M
    importance_halo: int            # Nw - 2: window tokens before the chunk (may be -1)
    importance_width: int           # block_c + Nw - 1
    task_batch: torch.Tensor        # int64 [T]
    task_kv_head: torch.Tensor      # int64 [T] n2
    task_row0: torch.Tensor         # int64 [T] first query row of the tile within its batch
    task_rows: torch.Tensor         # int64 [T] rows in the tile (<= block_s1)
    task_chunks: torch.Tensor       # int64 [T] ceil(C[b] / block_c)
    task_core: torch.Tensor         # int64 [T] core that runs the task (non-decreasing)
    task_rank: torch.Tensor         # int64 [T] position of the task in its core's list
    tile_bytes: tuple[tuple[str, int], ...]
    workspace_bytes: int            # 0: no task is split, nothing is combined

    @property
    def num_tasks(self) -> int:
        return int(self.task_batch.numel())

    @property
    def num_rounds(self) -> int:
        return int(self.task_rank.max()) + 1 if self.num_tasks else 0


def tile_usage(kind: PlatformKind, t: TileShape) -> dict:
    """Bytes each on-chip buffer needs for one step of a task (see module doc)."""
    r, w, e, bc = t.rows, t.width, t.itemsize, t.blocks_per_chunk
    a = max(4, e)                                  # fp32 accumulators, fp64 for fp64 inputs
    cand = (t.topk + bc) * (a + 4)
    if kind is PlatformKind.ASCEND:
        half_rows, half_s1 = -(-r // 2), -(-t.block_s1 // 2)
        return {"L1": (r * t.d1 + w * (t.d1 + t.d2)) * e, "L0A": r * 64 * e, "L0B": w * 64 * e,
                "L0C": max(r * w, r * min(t.d2, ACC_SLICE)) * a,
                "UB": half_rows * (w * a + w * e + t.d2 * a + bc * a) + half_s1 * cand}
    if kind is PlatformKind.GPU:
        rows = max(16, r)
        return {"SMEM": rows * t.d1 * e + 2 * w * (t.d1 + t.d2) * e + rows * w * e
                + t.block_s1 * cand,
                "REGISTERS": rows * min(t.d2, ACC_SLICE) * a + rows * w * a}
    return {"CACHE": (r * t.d1 + w * (t.d1 + t.d2) + 2 * r * w + r * t.d2 + r * bc) * a
            + t.block_s1 * cand}


def _powers_of_two_down(hi: int):
    v = 1 << (max(hi, 1).bit_length() - 1)
    while v >= 1:
        yield v
        v //= 2


def _next_pow2(x: int) -> int:
    return 1 << max(x - 1, 0).bit_length()


def tile_shape(p: NsaCompressAttentionParams, block_s1: int, blocks_per_chunk: int) -> TileShape:
    itemsize = torch.empty((), dtype=p.query.dtype).element_size()
    return TileShape(rows=p.g * block_s1, block_s1=block_s1,
                     width=p.m_blocks * blocks_per_chunk + p.nw - 1,
                     blocks_per_chunk=blocks_per_chunk, d1=p.d1_align, d2=p.d2_align,
                     topk=p.select_block_count, itemsize=itemsize)


def choose_tiles(p: NsaCompressAttentionParams, platform: PlatformInfo) -> tuple[int, int]:
    """(block_s1, blocks_per_chunk): the largest query tile first, then the largest chunk."""
    kind = platform.kind
    s1_cap = min(max(MAX_ROWS // p.g, 1), _next_pow2(max(p.max_sq, 1)))
    bpc_cap = min(max(MAX_BLOCK_C[kind] // p.m_blocks, 1), _next_pow2(p.max_sel))
    for block_s1 in _powers_of_two_down(s1_cap):
        for bpc in _powers_of_two_down(bpc_cap):
            if platform.fits(tile_usage(kind, tile_shape(p, block_s1, bpc))):
                return block_s1, bpc
    need = tile_usage(kind, tile_shape(p, 1, 1))
    raise CannAttentionError(OP, "platform", f"expected buffers that hold the smallest tile "
                             f"({p.g} heads x 1 row x {p.m_blocks + p.nw - 1} tokens: {need} B), "
                             f"{platform.name} has {dict(platform.buffers)}")


def _assign_cores(cost: torch.Tensor, num_cores: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Contiguous balanced cut of whole tasks: core of each task and its rank on that core."""
    if cost.numel() == 0:
        empty = torch.zeros(0, dtype=torch.int64)
        return empty, empty
    total = int(cost.sum())
    per_core = max(1, -(-total // num_cores))
    start = torch.cumsum(cost, 0) - cost
    core = torch.clamp(start // per_core, max=num_cores - 1)
    first = torch.full((num_cores,), cost.numel(), dtype=torch.int64)
    first.scatter_reduce_(0, core, torch.arange(cost.numel()), "amin")
    return core, torch.arange(cost.numel()) - first[core]


def plan(p: NsaCompressAttentionParams, platform: PlatformInfo) -> NsaCompressAttentionTiling:
    """The tiling of a checked call on ``platform`` (pure function of its arguments)."""
    if platform.kind is PlatformKind.ASCEND:
        CHECK.require(platform.name in ASCEND_SOCS, "platform",
                      f"an Ascend A2/A3 SoC {ASCEND_SOCS}", platform.name)
    block_s1, bpc = choose_tiles(p, platform)
    block_c = bpc * p.m_blocks
    q_lens = torch.tensor(p.q_lens, dtype=torch.int64)
    c_lens = torch.tensor(p.cmp_lens, dtype=torch.int64)
    tiles = -(-q_lens // block_s1)                                             # [B]
    tile_batch = torch.repeat_interleave(torch.arange(p.batch), tiles)        # [B tiles]
    tile_k = torch.arange(tile_batch.numel()) - (torch.cumsum(tiles, 0) - tiles)[tile_batch]
    row0 = tile_k * block_s1
    rows = torch.clamp(q_lens[tile_batch] - row0, max=block_s1)
    n_tiles = tile_batch.numel()
    kv_head = torch.arange(p.n2).repeat_interleave(n_tiles)                   # n2 outer
    task_batch = tile_batch.repeat(p.n2)
    chunks = -(-c_lens[task_batch] // block_c)
    core, rank = _assign_cores(2 * chunks + TASK_OVERHEAD, platform.num_cores)
    usage = tile_usage(platform.kind, tile_shape(p, block_s1, bpc))
    return NsaCompressAttentionTiling(
        platform=platform, block_s1=block_s1, block_c=block_c, blocks_per_chunk=bpc,
        importance_halo=p.nw - 2, importance_width=block_c + p.nw - 1,
        task_batch=task_batch, task_kv_head=kv_head, task_row0=row0.repeat(p.n2),
        task_rows=rows.repeat(p.n2), task_chunks=chunks, task_core=core, task_rank=rank,
        tile_bytes=tuple(usage.items()), workspace_bytes=0)


TILING_KEYS = {"cpu": 1, "ascend": 2, "gpu": 3}   # by platform kind (one kernel per kind)
TILING_DATA = TilingLayout("NsaCompressAttentionTilingData", version=2, fields=(
    ("num_rows", "i64"), ("workspace_bytes", "i64"),
    ("num_cores", "u32"), ("batch", "u32"), ("n1", "u32"), ("n2", "u32"), ("d1", "u32"),
    ("d2", "u32"), ("d1_align", "u32"), ("d2_align", "u32"), ("block_s1", "u32"),
    ("block_c", "u32"), ("blocks_per_chunk", "u32"),
    ("importance_halo", "i32"), ("importance_width", "u32"), ("num_tasks", "u32"),
    ("compress_block_size", "u32"), ("compress_stride", "u32"), ("select_block_size", "u32"),
    ("select_block_count", "u32"), ("scale_value", "f32"),
))


def tiling_data(tiling: NsaCompressAttentionTiling, p: NsaCompressAttentionParams) -> bytes:
    """The plan's scalars as the AscendC kernel and the C++ tiling core read them (TILING_DATA;
    the task tables, from the host length lists, travel beside it). d1 / d2 are the tensors'
    head dims (their row strides); d1_align / d2_align the padded widths the tiles hold."""
    return TILING_DATA.pack(
        TILING_KEYS[tiling.platform.kind.value], num_rows=p.query.shape[0],
        workspace_bytes=tiling.workspace_bytes, num_cores=tiling.platform.num_cores,
        batch=p.batch, n1=p.head_num, n2=p.key.shape[1], d1=p.query.shape[-1],
        d2=p.value.shape[-1], d1_align=p.d1_align, d2_align=p.d2_align,
        block_s1=tiling.block_s1, block_c=tiling.block_c,
        blocks_per_chunk=tiling.blocks_per_chunk, importance_halo=tiling.importance_halo,
        importance_width=tiling.importance_width, num_tasks=int(tiling.task_batch.numel()),
        compress_block_size=p.compress_block_size, compress_stride=p.compress_stride,
        select_block_size=p.select_block_size, select_block_count=p.select_block_count,
        scale_value=p.scale_value)
