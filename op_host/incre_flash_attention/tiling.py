"""plan(params, platform) -> IncreFlashAttentionTiling: split-KV ("flash decoding") for decode.

Work decomposition. A *task* is one (batch b, KV head n) pair: its G = N1 / N2 query heads share
every key and value row of head n, so the task loads the query tile [G, D] once and streams
the batch's valid window W_b (docs/incre_flash_attention.md, Semantics) through it in *steps*
of ``block_s2`` positions. A task has ceil(|W_b| / block_s2) steps; batches with an empty window
(L_b = 0, or a left-padding start below 0) have no task and their output is zero. Decode has few
tasks (B * N2) and long windows, so the tasks are cut into balanced per-core runs by
``common.schedule.partition``: a task cut across c cores is computed as c *splits*, each writing
(m, l, acc) to a workspace slot, merged by the log-sum-exp combine. ``task_num_splits`` is how
many splits each task got: 1 when the tasks alone fill the cores, more when B * N2 is small. On a GPU, where a split costs a
workspace round trip, the tasks are kept whole when that makes the longest SM at most
``SPLIT_COST_STEPS`` steps longer than the balanced cut (common/schedule.py).

Tile choice. The largest step that fits the platform's buffers, with e_q = bytes of a query
element and e_kv = bytes of a cache element (1 for int8 caches, dequantised on the fly):

- Ascend (cube + 2 vector cores): L1 holds the query tile and one K and one V chunk,
  G*D*e_q + 2*bs2*D*e_kv; L0A/L0B a 128-wide slice of each matmul operand (G*128*e_q and
  bs2*128*e_q); L0C the fp32 score tile G*bs2 and output tile G*D; each vector core's UB holds
  half the rows of the fp32 scores, their rounded probabilities and the fp32 accumulator, plus,
  for an int8 cache, half a chunk dequantised to fp32 (bs2*D*4/2). At most 512 positions per
  step, as in the CANN kernel.
- GPU (one CTA per SM): shared memory holds the query tile, two pipeline stages of the K and V
  chunks and the probability tile; the register file holds the fp32 accumulator and scores.
  Rows are padded to 16 (the MMA's M) inside the tile. At most 128 positions per step, and 64
  for groups of more than 32 heads: compiled for sm_90 (Triton 3.9, 2026-12-08) the kernel's
  shared memory equals this model for 16 and 32 rows and stays under it for 64 rows up to
  64-position steps, but at 64 rows and 128 positions Triton stages more (214 KB against the
  model's 164 KB at D=128), so the model would pass tiles that do not launch. The sm_90 build
  test checks plans against the compiled kernels.
- CPU: the emulator computes in fp32; one lane's working set (query, dequantised K and V chunk,
  scores, accumulator) must fit the lane's cache budget.

Paged caches: a step is a whole number of pages or a divisor of the page, so that a chunk's
rows are one contiguous run per page (what a DMA reads). Every step is at least 16 positions.
A plan that fits nowhere is refused with an error naming the platform and the smallest tile.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..common.errors import CannAttentionError
from ..common.platform import PlatformInfo, PlatformKind
from ..common.schedule import Schedule, partition
from ..common.tiling_data import LAYOUT_CODES, TilingLayout
from .params import CHECK, OP, IncreFlashAttentionParams

ASCEND_SOCS = ("Ascend910B", "Ascend910_93")   # A2 and A3 class
TASK_OVERHEAD_STEPS = 1           # cost of loading a query tile and writing its output
MIN_BLOCK_S2 = 16
MAX_BLOCK_S2 = {PlatformKind.ASCEND: 512, PlatformKind.GPU: 128, PlatformKind.CPU: 512}
MMA_K_SLICE = 128
# GPU: a split costs its slot's store and the merge's reads (G x (D + 2) fp32), under one step
# of K and V; tasks stay whole where that lengthens the longest SM by at most this many steps
SPLIT_COST_STEPS = {PlatformKind.GPU: 1}
GPU_WIDE_GROUP = 33               # groups padded to 64 rows: the MMAs become warpgroup ones
GPU_WIDE_GROUP_BLOCK_S2 = 64      # their step cap (the GPU model below is exact only to there)


@dataclass(frozen=True)
class IncreFlashAttentionTiling:
    platform: PlatformInfo
    block_s2: int                   # KV positions per step
    task_batch: torch.Tensor        # int64 [T]
    task_kv_head: torch.Tensor      # int64 [T] KV head n (query heads n*G .. n*G+G-1)
    task_start: torch.Tensor        # int64 [T] first absolute KV position of the window
    task_len: torch.Tensor          # int64 [T] positions in the window (>= 1)
    schedule: Schedule
    tile_bytes: tuple[tuple[str, int], ...]
    workspace_bytes: int            # partial (acc, m, l) of split tasks

    @property
    def num_tasks(self) -> int:
        return int(self.task_batch.numel())

    @property
    def task_num_splits(self) -> torch.Tensor:
        """Splits of each task across cores (the split-KV count per (batch, KV head))."""
        return self.schedule.task_num_pieces


def tile_usage(kind: PlatformKind, group: int, block_s2: int, head_dim: int, q_itemsize: int,
               kv_itemsize: int) -> dict[str, int]:
    """Bytes each on-chip buffer needs for one [G x block_s2] step (see module doc)."""
    g, bs, d, eq, ekv = group, block_s2, head_dim, q_itemsize, kv_itemsize
    if kind is PlatformKind.ASCEND:
        half = -(-g // 2)
        dequant = bs * d * 4 // 2 if ekv == 1 else 0
        return {"L1": g * d * eq + 2 * bs * d * ekv,
                "L0A": g * min(d, MMA_K_SLICE) * eq, "L0B": bs * min(d, MMA_K_SLICE) * eq,
                "L0C": max(g * bs, g * d) * 4,
                "UB": half * (bs * 4 + bs * eq + d * 4) + dequant}
    if kind is PlatformKind.GPU:
        rows = max(16, g)
        return {"SMEM": rows * d * eq + 2 * 2 * bs * d * ekv + rows * bs * eq,
                "REGISTERS": rows * d * 4 + rows * bs * 4}
    return {"CACHE": (g * d + 2 * bs * d + g * bs + g * d) * 4 + 2 * bs * d * ekv}


def step_candidates(kind: PlatformKind, block_size: int | None, group: int = 1) -> list[int]:
    """Step sizes to try, largest first: powers of two, or page multiples / divisors (PA);
    on a GPU at most ``GPU_WIDE_GROUP_BLOCK_S2`` for groups of ``GPU_WIDE_GROUP`` or more
    heads (module doc)."""
    hi = MAX_BLOCK_S2[kind]
    if kind is PlatformKind.GPU and group >= GPU_WIDE_GROUP:
        hi = GPU_WIDE_GROUP_BLOCK_S2
    if block_size is None:
        out, v = [], hi
        while v >= MIN_BLOCK_S2:
            out.append(v)
            v //= 2
        return out
    multiples = [block_size * m for m in range(hi // block_size, 0, -1)]
    divisors = [v for v in range(min(block_size - 1, hi), MIN_BLOCK_S2 - 1, -1)
                if block_size % v == 0 and v % MIN_BLOCK_S2 == 0]
    return [v for v in multiples if (v & (v - 1)) == 0 or v == block_size] + divisors


def choose_block_s2(p: IncreFlashAttentionParams, platform: PlatformInfo) -> int:
    kind = platform.kind
    eq = torch.empty((), dtype=p.query.dtype).element_size()
    ekv = torch.empty((), dtype=p.key.dtype).element_size()
    cands = step_candidates(kind, p.block_size if p.paged else None, p.group)
    for bs2 in cands:
        if platform.fits(tile_usage(kind, p.group, bs2, p.head_dim, eq, ekv)):
            return bs2
    smallest = cands[-1] if cands else MIN_BLOCK_S2
    need = tile_usage(kind, p.group, smallest, p.head_dim, eq, ekv)
    raise CannAttentionError(OP, "platform", f"expected buffers that hold the smallest tile "
                             f"({p.group} heads x {smallest} positions x D={p.head_dim}: "
                             f"{need} B), {platform.name} has {dict(platform.buffers)}")


def plan(p: IncreFlashAttentionParams, platform: PlatformInfo) -> IncreFlashAttentionTiling:
    """The tiling of a checked call on ``platform`` (pure function of its arguments)."""
    if platform.kind is PlatformKind.ASCEND:
        CHECK.require(platform.name in ASCEND_SOCS, "platform",
                      f"an Ascend A2/A3 SoC {ASCEND_SOCS}", platform.name)
    block_s2 = choose_block_s2(p, platform)
    lens = torch.tensor(p.window_lens, dtype=torch.int64)
    starts = torch.tensor(p.kv_starts, dtype=torch.int64)
    keep = lens > 0
    n2 = p.n2
    batches = torch.arange(p.batch, dtype=torch.int64)[keep]
    task_batch = torch.repeat_interleave(batches, n2)
    task_kv_head = torch.arange(n2, dtype=torch.int64).repeat(int(keep.sum()))
    task_len = lens[task_batch]
    steps = -(-task_len // block_s2)
    schedule = partition(steps, platform.num_cores, TASK_OVERHEAD_STEPS,
                         SPLIT_COST_STEPS.get(platform.kind))
    eq = torch.empty((), dtype=p.query.dtype).element_size()
    ekv = torch.empty((), dtype=p.key.dtype).element_size()
    usage = tile_usage(platform.kind, p.group, block_s2, p.head_dim, eq, ekv)
    return IncreFlashAttentionTiling(
        platform=platform, block_s2=block_s2, task_batch=task_batch,
        task_kv_head=task_kv_head, task_start=starts[task_batch], task_len=task_len,
        schedule=schedule, tile_bytes=tuple(usage.items()),
        workspace_bytes=schedule.num_slots * p.group * (p.head_dim + 2) * 4)


TILING_KEYS = {"cpu": 1, "ascend": 2, "gpu": 3}   # by platform kind (one kernel per kind)
TILING_DATA = TilingLayout("IncreFlashAttentionTilingData", version=1, fields=(
    ("kv_capacity", "i64"), ("workspace_bytes", "i64"),
    ("num_cores", "u32"), ("batch", "u32"), ("n1", "u32"), ("n2", "u32"), ("head_dim", "u32"),
    ("block_s2", "u32"), ("num_tasks", "u32"), ("page_size", "u32"), ("layout", "u32"),
    ("antiquant", "u32"), ("post_quant", "u32"), ("has_mask", "u32"), ("has_pse", "u32"),
    ("scale_value", "f32"),
))


def tiling_data(tiling: IncreFlashAttentionTiling, p: IncreFlashAttentionParams) -> bytes:
    """The plan's scalars as the AscendC kernel and the C++ tiling core read them (TILING_DATA;
    the task tables, from the host length lists, travel beside it)."""
    return TILING_DATA.pack(
        TILING_KEYS[tiling.platform.kind.value], kv_capacity=p.s2,
        workspace_bytes=tiling.workspace_bytes, num_cores=tiling.platform.num_cores,
        batch=p.batch, n1=p.n1, n2=p.n2, head_dim=p.head_dim, block_s2=tiling.block_s2,
        num_tasks=tiling.num_tasks, page_size=p.block_size if p.paged else 0,
        layout=LAYOUT_CODES[p.layout], antiquant=int(p.antiquant),
        post_quant=int(p.post_quant), has_mask=int(p.attn_mask is not None),
        has_pse=int(p.pse_shift is not None), scale_value=p.scale_value)
