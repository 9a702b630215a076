"""plan(params, platform) -> LightningIndexerTiling: chunked scoring with a running top-k merge.

``plan`` is the static part (tiles and buffers: shapes, dtypes, attributes and the platform; the
pipeline caches it); ``schedule(params_with_values, tiling)`` is the part that depends on the
lengths (the tasks and their cut across cores), which the emulator builds on the host.

Work decomposition. A *task* is one query row (b, s) that sees at least one key; it needs all N1
heads (the score sums over heads), so it loads its query tile [N1, 128] and its weights once.
The row's visible keys [0, n_vis) (docs/lightning_indexer.md, Semantics) are streamed in *steps* of
``block_s2`` keys: per step the score chunk [block_s2] is computed head group by head group
(``head_group`` heads per matmul, the kernel's groupInner), ReLU'd, weighted and summed over heads,
and then merged with the row's running top-k list of ``sparse_count`` (value, index) pairs. A step
therefore holds at most ``block_s2 + sparse_count`` candidates, never the full score row. Rows that
see no key (n_vis <= 0, padded BSND rows, TND rows past the last prefix sum) are not scheduled:
their output is all -1 / -inf. ``common.schedule.partition`` cuts the tasks into balanced per-core
runs; a task split across cores leaves one top-k list per piece in a workspace slot, and a final
merge of those lists (top-k of their union, same tie rule) gives the row's result. Since the order
(score descending, index ascending) is a strict total order on distinct keys, merging top-k lists in
any grouping gives exactly the top-k of the whole row.

What must fit, per platform kind (e = bytes per input element, K = sparse_count, hg = head
group, bs = block_s2; a (value, index) pair is 8 bytes):

- Ascend (cube + 2 vector cores): L1 holds the query tile and the key chunk (N1 + bs) * 128 * e;
  L0A the head group's query rows hg * 128 * e; L0B the key chunk bs * 128 * e; L0C the fp32
  score tile hg * bs * 4. The vector core that owns the row's top-k list holds in UB half of the
  score tile's rows, the weights, the chunk's summed scores, and the merge buffers: candidates
  (K + bs) pairs plus the sort's scratch of the same size.
- GPU (one CTA per row piece): shared memory holds the query tile, two stages of the key chunk,
  the chunk scores, the running list (K pairs) and the candidate / sort buffer (K + bs pairs);
  registers hold the fp32 score tile (rows padded to 16, the MMA's M).
- CPU: the emulator's per-lane working set in fp64/fp32 (query, key chunk, score tile,
  accumulator and the K + bs candidates with their 8-byte sort keys) fits the lane's budget.

The largest head group (a divisor of N1) is chosen first, then the largest chunk that fits. A
plan that fits nowhere is refused with an error naming the platform and the smallest tile.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..common.errors import CannAttentionError
from ..common.platform import PlatformInfo, PlatformKind
from ..common.schedule import Schedule, partition
from ..common.layouts import Layout
from ..common.tiling_data import LAYOUT_CODES, TilingLayout
from .params import CHECK, D, OP, LightningIndexerParams

ASCEND_SOCS = ("Ascend910B", "Ascend910_93")   # A2 and A3 class
TASK_OVERHEAD_STEPS = 1       # cost of loading a row's query tile and writing its top-k list
MAX_BLOCK_S2 = {PlatformKind.ASCEND: 512, PlatformKind.GPU: 128, PlatformKind.CPU: 1024}
MIN_BLOCK_S2 = 16             # the matrix units' row alignment
PAIR_BYTES = 8                # one (fp32 value, int32 index) entry of a top-k list
GPU_MAX_SPARSE_COUNT = 8192   # the Triton kernel's largest K (the op's largest)
GPU_MIN_PIECE_KEYS = 4096     # the fewest keys of a piece of a split row (GPU)
GPU_MAX_ROW_SPLITS = 32


@dataclass(frozen=True)
class LightningIndexerTiling:
    platform: PlatformInfo
    head_group: int                 # query heads per score matmul (groupInner)
    block_s2: int                   # keys per step (chunk)
    sparse_count: int               # K: length of every running top-k list
    tile_bytes: tuple[tuple[str, int], ...]
    row_splits: int = 1             # GPU: pieces per query row (gpu_row_splits)


@dataclass(frozen=True)
class LightningIndexerWork:
    """The data-dependent part of a plan: the tasks of a call and their schedule."""
    task_row: torch.Tensor          # int64 [T] query row in the flattened (rows, N1, D) view
    task_batch: torch.Tensor        # int64 [T]
    task_nvis: torch.Tensor         # int64 [T] visible keys [0, n_vis) of the row (>= 1)
    schedule: Schedule
    workspace_bytes: int            # top-k lists of the pieces of split tasks

    @property
    def num_tasks(self) -> int:
        return int(self.task_row.numel())


def tile_usage(kind: PlatformKind, n1: int, head_group: int, block_s2: int, sparse_count: int,
               itemsize: int) -> dict:
    """Bytes each on-chip buffer needs for one step (see module doc)."""
    hg, bs, k, e = head_group, block_s2, sparse_count, itemsize
    merge = 2 * (k + bs) * PAIR_BYTES
    if kind is PlatformKind.ASCEND:
        return {"L1": (n1 + bs) * D * e, "L0A": hg * D * e, "L0B": bs * D * e,
                "L0C": hg * bs * 4,
                "UB": -(-hg // 2) * bs * 4 + n1 * 4 + bs * 4 + merge}
    if kind is PlatformKind.GPU:
        return {"SMEM": n1 * D * e + 2 * bs * D * e + bs * 4 + k * PAIR_BYTES
                + (k + bs) * PAIR_BYTES,
                "REGISTERS": max(16, hg) * bs * 4}
    return {"CACHE": (n1 * D + bs * D + hg * bs + bs) * 8 + (k + bs) * 16}


def _divisors_down(n: int):
    return [d for d in range(n, 0, -1) if n % d == 0]


def _powers_of_two_down(hi: int, lo: int):
    v = 1 << (hi.bit_length() - 1)
    while v >= lo:
        yield v
        v //= 2


def choose_tiles(p: LightningIndexerParams, platform: PlatformInfo) -> tuple[int, int]:
    kind = platform.kind
    itemsize = torch.empty((), dtype=p.query.dtype).element_size()
    for hg in _divisors_down(p.n1):
        for bs2 in _powers_of_two_down(MAX_BLOCK_S2[kind], MIN_BLOCK_S2):
            if platform.fits(tile_usage(kind, p.n1, hg, bs2, p.sparse_count, itemsize)):
                return hg, bs2
    need = tile_usage(kind, p.n1, 1, MIN_BLOCK_S2, p.sparse_count, itemsize)
    raise CannAttentionError(OP, "platform", f"expected buffers that hold the smallest tile "
                             f"(1 head x {MIN_BLOCK_S2} keys, sparse_count={p.sparse_count}: "
                             f"{need} B), {platform.name} has {dict(platform.buffers)}")


def visible_counts(p: LightningIndexerParams) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(row, batch, n_vis) of every valid query row s < Lq[b] (n_vis clamped into [0, Lk[b]])."""
    q_lens = torch.tensor(p.q_lens, dtype=torch.int64)
    k_lens = torch.tensor(p.kv_lens, dtype=torch.int64)
    row_batch = torch.repeat_interleave(torch.arange(p.batch), q_lens)            # [R]
    first = torch.cumsum(q_lens, 0) - q_lens
    row_s = torch.arange(row_batch.numel()) - first[row_batch]                     # s in batch
    row = torch.tensor(p.q_row_starts, dtype=torch.int64)[row_batch] + row_s
    lk = k_lens[row_batch]
    nvis = lk - q_lens[row_batch] + row_s + 1 if p.sparse_mode == 3 else lk
    return row, row_batch, torch.minimum(torch.clamp(nvis, min=0), lk)


def gpu_row_splits(rows: int, s2: int, num_cores: int) -> int:
    """Pieces per query row of the Triton kernel: a call of fewer rows than SMs cuts each row's
    keys into up to num_cores // rows pieces (one wave of programs), each of at least
    GPU_MIN_PIECE_KEYS of the key capacity s2 (a piece's scoring must outweigh its share of the
    merge, which reads sparse_count keys per piece), at most GPU_MAX_ROW_SPLITS."""
    if rows <= 0 or rows * 2 > num_cores:
        return 1
    return max(1, min(num_cores // rows, s2 // GPU_MIN_PIECE_KEYS, GPU_MAX_ROW_SPLITS))


def plan(p: LightningIndexerParams, platform: PlatformInfo) -> LightningIndexerTiling:
    """The static plan of a checked call on ``platform`` (pure function of its arguments)."""
    if platform.kind is PlatformKind.ASCEND:
        CHECK.require(platform.name in ASCEND_SOCS, "platform",
                      f"an Ascend A2/A3 SoC {ASCEND_SOCS}", platform.name)
    head_group, block_s2 = choose_tiles(p, platform)
    itemsize = torch.empty((), dtype=p.query.dtype).element_size()
    usage = tile_usage(platform.kind, p.n1, head_group, block_s2, p.sparse_count, itemsize)
    splits = (gpu_row_splits(p.num_rows, p.s2, platform.num_cores)
              if platform.kind is PlatformKind.GPU else 1)
    return LightningIndexerTiling(platform=platform, head_group=head_group, block_s2=block_s2,
                                  sparse_count=p.sparse_count, tile_bytes=tuple(usage.items()),
                                  row_splits=splits)


def schedule(p: LightningIndexerParams, tiling: LightningIndexerTiling) -> LightningIndexerWork:
    """The tasks of a call (``p`` carries the lengths' values) and their cut across cores."""
    row, batch, nvis = visible_counts(p)
    keep = nvis > 0
    steps = -(-nvis[keep] // tiling.block_s2)
    sched = partition(steps, tiling.platform.num_cores, TASK_OVERHEAD_STEPS)
    return LightningIndexerWork(
        task_row=row[keep], task_batch=batch[keep], task_nvis=nvis[keep], schedule=sched,
        workspace_bytes=sched.num_slots * p.sparse_count * PAIR_BYTES)


TILING_KEYS = {"cpu": 1, "ascend": 2, "gpu": 3}   # by platform kind (one kernel per kind)
TILING_DATA = TilingLayout("LightningIndexerTilingData", version=3, fields=(
    ("num_rows", "i64"), ("key_capacity", "i64"),
    ("num_cores", "u32"), ("batch", "u32"), ("n1", "u32"), ("head_group", "u32"),
    ("block_s2", "u32"), ("sparse_count", "u32"), ("sparse_mode", "u32"),
    ("layout_query", "u32"), ("layout_key", "u32"), ("page_size", "u32"),
    ("block_count", "u32"),     # v2: PA_BSND cache blocks (entries past it end a batch's keys)
    ("return_value", "u32"),    # v3: 1: write sparse_values (CANN passes its output's address
))                              # whether or not the op returns values)


def tiling_data(tiling: LightningIndexerTiling, p: LightningIndexerParams) -> bytes:
    """The static plan as the AscendC kernel and the C++ tiling core read it (TILING_DATA)."""
    paged = p.kv_layout is Layout.PA_BSND
    return TILING_DATA.pack(
        TILING_KEYS[tiling.platform.kind.value], num_rows=p.num_rows, key_capacity=p.s2,
        num_cores=tiling.platform.num_cores, batch=p.batch, n1=p.n1,
        head_group=tiling.head_group, block_s2=tiling.block_s2,
        sparse_count=tiling.sparse_count, sparse_mode=p.sparse_mode,
        layout_query=LAYOUT_CODES[p.q_layout], layout_key=LAYOUT_CODES[p.kv_layout],
        page_size=p.block_size if paged else 0, block_count=p.key.shape[0] if paged else 0,
        return_value=int(p.return_value))
