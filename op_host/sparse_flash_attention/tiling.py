"""plan(params, platform) -> SparseFlashAttentionTiling: who computes what, in which tiles.

Work decomposition. A *task* is one query row (b, s) and one group of ``head_group`` query
heads. All N1 heads of a row share the row's gathered keys (N2 = 1), so a task loads its query
tile [head_group, 576] once and streams the gathered keys through it in *steps* of
``block_s2`` positions (``entries_per_step`` index entries of ``sparse_block_size`` positions).
A task scans only the kernel's window W(s) = min(K, ceil(tau(s) / sparse_block_size)) entries
(spec section 6.3), so it has ceil(W / entries_per_step) steps; rows with tau <= 0 have none and
are never scheduled (their output is zero). The tasks are cut into balanced per-core runs by
``common.schedule.partition``: a task split across cores is merged by a log-sum-exp combine. On a
GPU, where that merge is a second pass over fp32 partial outputs, tasks stay whole when cutting
only between tasks lengthens the longest core by at most ``SPLIT_COST_STEPS_64_HEADS`` steps
(scaled to the head group): many equal decode tasks then run with no workspace and no merge.

Tile choice. The largest head group (a power of two dividing N1) is chosen first, since every
extra head reuses the same gathered keys; then the largest step that fits. What must fit, per
platform kind (e = bytes per input element; the 576 contraction is nope 512 + rope 64):

- Ascend (cube + 2 vector cores): L1 holds the query tile and the gathered key tile,
  (hg + bs2) * 576 * e; L0A/L0B a 64-wide slice of each matmul operand; L0C the fp32 score tile
  hg * bs2 and the output tile hg * 512; each vector core's UB holds half of the rows of the
  fp32 scores, their rounded probabilities and the fp32 output accumulator. At most 512 gathered
  positions per step, as in the CANN kernel.
- GPU (one CTA per SM): shared memory holds the query tile, two stages of the key tile and the
  probability tile; the register file holds the fp32 accumulator and score tile. Rows are
  padded to 16 (the MMA's M) inside the tile, never in memory; at most 64 positions per step
  unless sparse_block_size is larger; two key stages when they fit, else one.
- CPU: the emulator computes in fp32; one lane's working set (query, keys, scores, accumulator)
  must fit the lane's cache budget.

A plan that fits nowhere is refused with an error naming the platform and the smallest tile.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from ..common.errors import CannAttentionError
from ..common.platform import PlatformInfo, PlatformKind
from ..common.schedule import Schedule, partition
from .params import CHECK, D, DR, OP, SparseFlashAttentionParams

DK = D + DR                       # 576: contraction length of the score matmul
ASCEND_SOCS = ("Ascend910B", "Ascend910_93")   # A2 and A3 class (spec rule 19)
TASK_OVERHEAD_STEPS = 1           # cost of loading a query tile and writing its output
# GPU: a split task's pieces write fp32 partial outputs [head_group, 512] and a second kernel
# merges them; on the H100 decode shapes that cost as much as ~6 steps of a core for a 64-head
# group (BENCHMARKS.md, 2026-11-21, sixth session), so the schedule keeps tasks whole when that
# lengthens the longest core by less (common/schedule.py). Scaled by the group's share of 64
# heads: the partial outputs shrink with it.
SPLIT_COST_STEPS_64_HEADS = 6
MAX_BLOCK_S2 = {PlatformKind.ASCEND: 512, PlatformKind.GPU: 64, PlatformKind.CPU: 512}
MIN_BLOCK_S2 = {PlatformKind.ASCEND: 1, PlatformKind.GPU: 16, PlatformKind.CPU: 1}
STAGES = {PlatformKind.ASCEND: (1,), PlatformKind.GPU: (2, 1), PlatformKind.CPU: (1,)}
# plans kept for reuse: a model calls the op once a layer with the same shapes and lengths, so
# every layer of a step after the first finds its plan here (module doc of ``plan``)
PLAN_CACHE_SIZE = 32


@dataclass(frozen=True)
class SparseFlashAttentionTiling:
    platform: PlatformInfo
    head_group: int                 # query heads per task
    block_s2: int                   # gathered key positions per step
    entries_per_step: int           # sparse_indices entries per step
    stages: int                     # key tiles in flight (GPU pipelining; 1 elsewhere)
    num_warps: int                  # GPU: warps per CTA (two warpgroups share the 512-wide
                                    # accumulator from 64 heads up); 1 elsewhere
    task_row: torch.Tensor          # int64 [T] query row in the flattened (rows, N1, D) view
    task_batch: torch.Tensor        # int64 [T]
    task_head: torch.Tensor         # int64 [T] first query head of the task
    task_tau: torch.Tensor          # int64 [T] exclusive bound on visible key positions
    task_window: torch.Tensor       # int64 [T] index entries the kernel scans (W)
    schedule: Schedule
    tile_bytes: tuple[tuple[str, int], ...]
    workspace_bytes: int            # partial outputs and statistics of split tasks

    @property
    def num_tasks(self) -> int:
        return int(self.task_row.numel())


def tile_usage(kind: PlatformKind, head_group: int, block_s2: int, itemsize: int,
               stages: int = 1) -> dict:
    """Bytes each on-chip buffer needs for a [head_group x block_s2] step (see module doc);
    ``stages``: key tiles in flight (GPU software pipelining)."""
    hg, bs, e = head_group, block_s2, itemsize
    if kind is PlatformKind.ASCEND:
        rows_per_vector_core = -(-hg // 2)
        return {"L1": (hg + bs) * DK * e, "L0A": hg * 64 * e, "L0B": bs * 64 * e,
                "L0C": max(hg * bs, hg * D) * 4,
                "UB": rows_per_vector_core * (bs * 4 + bs * e + D * 4)}
    if kind is PlatformKind.GPU:
        rows = max(16, hg)
        return {"SMEM": rows * DK * e + stages * bs * DK * e + rows * bs * e,
                "REGISTERS": rows * D * 4 + rows * bs * 4}
    return {"CACHE": (hg * DK + bs * DK + hg * bs + hg * D) * 4}


def gpu_warps(head_group: int) -> int:
    """Warps per CTA: the fp32 accumulator [rows, 512] over 128 threads needs 256 registers a
    thread at 64 rows, so from 64 rows up two warpgroups split it (128 registers each)."""
    return 8 if head_group >= 64 else 4


def _powers_of_two_down(hi: int, lo: int):
    v = 1 << (hi.bit_length() - 1)
    while v >= lo:
        yield v
        v //= 2


def choose_tiles(p: SparseFlashAttentionParams, platform: PlatformInfo) -> tuple[int, int, int]:
    """(head_group, block_s2, stages): most heads first, then the longest step, then stages."""
    kind = platform.kind
    itemsize = torch.empty((), dtype=p.query.dtype).element_size()
    sbs = p.sparse_block_size
    max_bs2 = max(MAX_BLOCK_S2[kind], sbs)
    min_bs2 = max(MIN_BLOCK_S2[kind], sbs)
    for hg in _powers_of_two_down(p.n1, 1):
        for bs2 in _powers_of_two_down(max_bs2, min_bs2):
            for stages in STAGES[kind]:
                if platform.fits(tile_usage(kind, hg, bs2, itemsize, stages)):
                    return hg, bs2, stages
    need = tile_usage(kind, 1, min_bs2, itemsize)
    raise CannAttentionError(OP, "platform", f"expected buffers that hold the smallest tile "
                             f"(1 head x {min_bs2} keys: {need} B), {platform.name} has "
                             f"{dict(platform.buffers)}")


@functools.lru_cache(maxsize=PLAN_CACHE_SIZE)
def plan(p: SparseFlashAttentionParams, platform: PlatformInfo) -> SparseFlashAttentionTiling:
    """The tiling of a checked call on ``platform``: a pure function of its arguments (shapes,
    dtypes, scalars and the length values read on the host), so it is memoised; equal arguments
    give the same tiling object, which back ends may key their own caches on. Its tensors are
    shared by those calls: back ends read them and never write them."""
    if platform.kind is PlatformKind.ASCEND:
        CHECK.require(platform.name in ASCEND_SOCS, "platform",
                      f"an Ascend A2/A3 SoC {ASCEND_SOCS}", platform.name)
    head_group, block_s2, stages = choose_tiles(p, platform)
    sbs = p.sparse_block_size
    entries_per_step = block_s2 // sbs

    q_lens = torch.tensor(p.q_lens, dtype=torch.int64)
    kv_lens = torch.tensor(p.kv_lens, dtype=torch.int64)
    row_batch = torch.repeat_interleave(torch.arange(p.batch), q_lens)          # [R]
    first = torch.cumsum(q_lens, 0) - q_lens
    row_s = torch.arange(row_batch.numel()) - first[row_batch]                   # s in batch
    row = torch.tensor(p.q_row_starts, dtype=torch.int64)[row_batch] + row_s
    if p.sparse_mode == 3:   # bottom-right aligned causal boundary (spec section 5)
        tau = kv_lens[row_batch] - q_lens[row_batch] + row_s + 1
    else:
        tau = kv_lens[row_batch]
    window = torch.clamp(torch.minimum(torch.full_like(tau, p.k), -(-tau // sbs)), min=0)
    steps = -(-window // entries_per_step)
    keep = steps > 0

    # Tasks are ordered head-group major: all rows of group 0, then of group 1, ... The
    # schedule hands each core a contiguous run, so the cores running group 1 run the same rows
    # at about the same time as those running group 0, and the second gather of a row's keys
    # finds them in L2 (row-major order would gather them twice from memory when L2 cannot
    # hold every core's keys between the two visits, as in decode).
    groups = p.n1 // head_group
    def per_task(x):
        return x[keep].repeat(groups)
    task_head = torch.repeat_interleave(torch.arange(groups) * head_group, int(keep.sum()))
    split_cost = (SPLIT_COST_STEPS_64_HEADS * head_group // 64
                  if platform.kind is PlatformKind.GPU else None)
    schedule = partition(per_task(steps), platform.num_cores, TASK_OVERHEAD_STEPS, split_cost)
    itemsize = torch.empty((), dtype=p.query.dtype).element_size()
    usage = tile_usage(platform.kind, head_group, block_s2, itemsize, stages)
    return SparseFlashAttentionTiling(
        platform=platform, head_group=head_group, block_s2=block_s2,
        entries_per_step=entries_per_step, stages=stages,
        num_warps=gpu_warps(head_group) if platform.kind is PlatformKind.GPU else 1,
        task_row=per_task(row),
        task_batch=per_task(row_batch), task_head=task_head, task_tau=per_task(tau),
        task_window=per_task(window), schedule=schedule, tile_bytes=tuple(usage.items()),
        workspace_bytes=schedule.num_slots * head_group * (D + 2) * 4)
