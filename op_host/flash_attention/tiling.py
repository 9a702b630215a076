"""plan(params, platform) -> FlashAttentionTiling: query tiles x key tiles, split-K by cores.

``plan`` is the static part (the tiles: shapes, dtypes, attributes and the platform; the
pipeline caches it); ``schedule(params_with_values, tiling)`` is the part that depends on the
lengths (which tiles are visited, the tasks and their cut across cores), which the emulator
builds on the host.

Work decomposition. A *task* is one query tile of batch b: ``block_s1`` consecutive query rows
of all G = N1/N2 query heads that share one KV head n2 (GQA packing: the G heads reuse every
key/value tile, so a tile has ``G * block_s1`` score rows). A task walks its key range in
*steps* of ``block_s2`` keys. Before scheduling, every (query tile, key tile) rectangle is
classified with the mask's geometry (``common.mask_spec``): EMPTY tiles are dropped from the
task's step list (causal upper triangles, keys outside a window or chunk, keys past L_k), FULL
tiles are marked so a kernel can skip the predicate, PARTIAL tiles evaluate it. A task with no
step is never scheduled: its rows are invalid (zeros, (-2e38, 0)).

The tasks are cut into balanced per-core runs by ``common.schedule.partition`` with the
platform's core count. A task cut across cores is a split-K task: each piece
writes (m, l, acc) to a workspace slot and a log-sum-exp combine merges them. Decode (S1 = 1,
few tasks, long key ranges) is thereby split over all cores; long prefills are balanced
between light (early causal) and heavy tiles without a second mechanism.

Tile choice. ``block_s1`` is the largest power of two <= the platform cap that does not exceed
the query capacity (S1, or T1 for TND; decode gets 1); then the largest ``block_s2`` (a power
of two within the platform's range, not beyond the key capacity) whose buffers fit. What must
fit (rows = G * block_s1, e = bytes per input element):

- Ascend: L1 holds the query tile and one key and one value tile, (rows + 2 bs2) D e;
  L0A/L0B a 64-deep slice of each matmul operand; L0C the fp32 score tile and output tile;
  each of the 2 vector cores' UB holds half of the rows' fp32 scores, rounded probabilities
  and fp32 output accumulator.
- GPU: shared memory holds the query tile, two pipeline stages of the key and value tiles and
  the probability tile (rows padded to 16, the MMA's M); registers the fp32 accumulator and
  score tile.
- CPU: one lane's fp32 working set (query, key, value, scores, accumulator) fits its cache.

A plan that fits nowhere is refused with an error naming the platform and the smallest tile.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..common.errors import CannAttentionError
from ..common.mask_spec import TileStatus
from ..common.platform import PlatformInfo, PlatformKind
from ..common.schedule import Schedule, partition
from ..common.tiling_data import LAYOUT_CODES, TilingLayout
from .params import CHECK, OP, FlashAttentionParams

ASCEND_SOCS = ("Ascend910B", "Ascend910_93")
TASK_OVERHEAD_STEPS = 1      # cost of loading a query tile and writing its output, in steps
MAX_BLOCK_S1 = {PlatformKind.ASCEND: 128, PlatformKind.GPU: 128, PlatformKind.CPU: 64}
MAX_BLOCK_S2 = {PlatformKind.ASCEND: 512, PlatformKind.GPU: 128, PlatformKind.CPU: 256}
MIN_BLOCK_S2 = 16


@dataclass(frozen=True)
class FlashAttentionTiling:
    platform: PlatformInfo
    block_s1: int                   # query positions per tile
    block_s2: int                   # keys per step
    tile_bytes: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class FlashAttentionWork:
    """The data-dependent part of a plan: the visited tiles, the tasks and their schedule."""
    task_batch: torch.Tensor        # int64 [T]
    task_kv_head: torch.Tensor      # int64 [T] n2; query heads n2*G .. n2*G+G-1
    task_q_begin: torch.Tensor      # int64 [T] first local query row i of the tile
    task_step_offset: torch.Tensor  # int64 [T] index of the task's first step in step_*
    step_k_begin: torch.Tensor      # int64 [S] first key of each step (absolute key index)
    step_status: torch.Tensor       # int8  [S] TileStatus.PARTIAL or FULL (EMPTY is skipped)
    num_skipped_tiles: int          # EMPTY tiles inside [0, L_q) x [0, L_k), never visited
    schedule: Schedule
    workspace_bytes: int            # partial outputs and statistics of split tasks

    @property
    def num_tasks(self) -> int:
        return int(self.task_batch.numel())


def tile_usage(kind: PlatformKind, rows: int, block_s2: int, d: int, itemsize: int) -> dict:
    """Bytes each on-chip buffer needs for a [rows x block_s2] step (see module doc)."""
    r, bs, e = rows, block_s2, itemsize
    if kind is PlatformKind.ASCEND:
        half = -(-r // 2)
        return {"L1": (r + 2 * bs) * d * e, "L0A": r * 64 * e, "L0B": max(bs, d) * 64 * e,
                "L0C": max(r * bs, r * d) * 4, "UB": half * (bs * 4 + bs * e + d * 4)}
    if kind is PlatformKind.GPU:
        r = max(16, r)
        return {"SMEM": r * d * e + 2 * 2 * bs * d * e + r * bs * e,
                "REGISTERS": r * d * 4 + r * bs * 4}
    return {"CACHE": (2 * r * d + 2 * bs * d + r * bs) * 4}


def _pow2_floor(n: int) -> int:
    return 1 << (max(1, n).bit_length() - 1)


def _pow2_ceil(n: int) -> int:
    return 1 << (max(1, n) - 1).bit_length()


def choose_tiles(p: FlashAttentionParams, platform: PlatformInfo) -> tuple[int, int]:
    kind = platform.kind
    itemsize = torch.empty((), dtype=p.query.dtype).element_size()
    top_s1 = min(MAX_BLOCK_S1[kind], _pow2_floor(p.s1))
    top_s2 = max(MIN_BLOCK_S2, min(MAX_BLOCK_S2[kind], _pow2_ceil(p.s2)))
    bs1 = top_s1
    while bs1 >= 1:
        bs2 = top_s2
        while bs2 >= MIN_BLOCK_S2:
            if platform.fits(tile_usage(kind, p.group * bs1, bs2, p.d, itemsize)):
                return bs1, bs2
            bs2 //= 2
        bs1 //= 2
    need = tile_usage(kind, p.group, MIN_BLOCK_S2, p.d, itemsize)
    raise CannAttentionError(OP, "platform", f"expected buffers that hold the smallest tile "
                             f"({p.group} rows x {MIN_BLOCK_S2} keys x D={p.d}: {need} B), "
                             f"{platform.name} has {dict(platform.buffers)}")


def _ceil_div(a: torch.Tensor, b: int) -> torch.Tensor:
    return torch.div(a + b - 1, b, rounding_mode="floor")


def _offsets(counts: torch.Tensor) -> torch.Tensor:
    return torch.cumsum(counts, 0) - counts


def plan(p: FlashAttentionParams, platform: PlatformInfo) -> FlashAttentionTiling:
    """The static plan of a checked call on ``platform`` (pure function of its arguments)."""
    if platform.kind is PlatformKind.ASCEND:
        CHECK.require(platform.name in ASCEND_SOCS, "platform",
                      f"an Ascend A2/A3 SoC {ASCEND_SOCS}", platform.name)
    bs1, bs2 = choose_tiles(p, platform)
    itemsize = torch.empty((), dtype=p.query.dtype).element_size()
    usage = tile_usage(platform.kind, p.group * bs1, bs2, p.d, itemsize)
    return FlashAttentionTiling(platform=platform, block_s1=bs1, block_s2=bs2,
                                tile_bytes=tuple(usage.items()))


def schedule(p: FlashAttentionParams, tiling: FlashAttentionTiling) -> FlashAttentionWork:
    """The visited tiles, tasks and schedule of a call (``p`` carries the lengths' values)."""
    bs1, bs2 = tiling.block_s1, tiling.block_s2
    q_lens = torch.tensor(p.q_lens, dtype=torch.int64)
    kv_lens = torch.tensor(p.kv_lens, dtype=torch.int64)
    delta = kv_lens - q_lens

    # every (query tile, key tile) of every batch: [Q] query tiles, [P] pairs
    nq = _ceil_div(q_lens, bs1)
    nk = _ceil_div(kv_lens, bs2)
    qt_batch = torch.repeat_interleave(torch.arange(p.batch), nq)
    qt_begin = (torch.arange(qt_batch.numel()) - _offsets(nq)[qt_batch]) * bs1
    nk_of_qt = nk[qt_batch]
    pair_qt = torch.repeat_interleave(torch.arange(qt_batch.numel()), nk_of_qt)
    pair_k = (torch.arange(pair_qt.numel()) - _offsets(nk_of_qt)[pair_qt]) * bs2
    pb = qt_batch[pair_qt]
    q_lo = qt_begin[pair_qt] + delta[pb]
    q_hi = torch.minimum(qt_begin[pair_qt] + bs1, q_lens[pb]) + delta[pb]
    k_hi = torch.minimum(pair_k + bs2, kv_lens[pb])
    status = p.mask_spec.tile_status(q_lo, q_hi, pair_k, k_hi, delta[pb], kv_lens[pb])
    keep = status != TileStatus.EMPTY

    steps_of_qt = torch.zeros(qt_batch.numel(), dtype=torch.int64).index_add_(
        0, pair_qt[keep], torch.ones_like(pair_qt[keep]))
    live = torch.nonzero(steps_of_qt > 0).flatten()
    n2 = p.n2
    task_qt = torch.repeat_interleave(live, n2)
    task_kv_head = torch.arange(n2).repeat(live.numel())
    sched = partition(steps_of_qt[task_qt], tiling.platform.num_cores, TASK_OVERHEAD_STEPS)
    return FlashAttentionWork(
        task_batch=qt_batch[task_qt], task_kv_head=task_kv_head,
        task_q_begin=qt_begin[task_qt], task_step_offset=_offsets(steps_of_qt)[task_qt],
        step_k_begin=pair_k[keep], step_status=status[keep],
        num_skipped_tiles=int((~keep).sum()) * n2, schedule=sched,
        workspace_bytes=sched.num_slots * p.group * bs1 * (p.d + 2) * 4)


TILING_KEYS = {"cpu": 1, "ascend": 2, "gpu": 3}   # by platform kind (one kernel per kind)
TILING_DATA = TilingLayout("FlashAttentionTilingData", version=1, fields=(
    ("num_rows", "i64"), ("key_capacity", "i64"), ("pre_tokens", "i64"),
    ("next_tokens", "i64"),
    ("num_cores", "u32"), ("batch", "u32"), ("n1", "u32"), ("n2", "u32"), ("head_dim", "u32"),
    ("block_s1", "u32"), ("block_s2", "u32"), ("sparse_mode", "u32"), ("chunk_size", "u32"),
    ("layout_query", "u32"), ("layout_kv", "u32"), ("has_atten_mask", "u32"),
    ("has_pse_shift", "u32"), ("has_sink", "u32"), ("scale_value", "f32"),
))


def tiling_data(tiling: FlashAttentionTiling, p: FlashAttentionParams) -> bytes:
    """The static plan as the AscendC kernel and the C++ tiling core read it (TILING_DATA)."""
    return TILING_DATA.pack(
        TILING_KEYS[tiling.platform.kind.value], num_rows=p.num_rows, key_capacity=p.s2,
        pre_tokens=p.pre_tokens, next_tokens=p.next_tokens,
        num_cores=tiling.platform.num_cores, batch=p.batch, n1=p.n1, n2=p.n2, head_dim=p.d,
        block_s1=tiling.block_s1, block_s2=tiling.block_s2, sparse_mode=p.sparse_mode,
        chunk_size=p.chunk_size or 0, layout_query=LAYOUT_CODES[p.q_layout],
        layout_kv=LAYOUT_CODES[p.kv_layout], has_atten_mask=int(p.atten_mask is not None),
        has_pse_shift=int(p.pse_shift is not None),
        has_sink=int(p.learnable_sink is not None), scale_value=p.scale_value)
