"""plan(params, platform) -> SparseFlashAttentionTiling: the static plan of a call.

The plan depends only on the call's shapes, dtypes and attributes and the platform, so the
pipeline caches it by them. It says which kernel runs (``variant``, the tiling key), with which
tiles, warps and buffers, and how large the device schedule's tables are. The schedule itself
(which core runs which steps of which task) depends on the lengths and is computed from them on
the device, by ``schedule.device_schedule`` (the reference, run on the host by the emulator) and
the GPU back end's metadata kernel.

Work decomposition. A *task* is one query row and one group of ``head_group`` query heads. All
N1 heads of a row share the row's gathered keys (N2 = 1), so a task loads its query tile
[head_group, 576] once and streams the gathered keys through it in *steps* of ``block_s2``
positions (``entries_per_step`` index entries of ``sparse_block_size`` positions). There is a
task for every row of the query tensor and every head group (``num_rows * groups``), ordered
head-group major: all rows of group 0, then of group 1, so the cores running group 1 gather a
row's keys about when those running group 0 did, and find them in L2. A task scans only the
window W(s) = min(K, ceil(tau(s) / sparse_block_size)) of its row (docs/sparse_flash_attention.md);
a row that sees nothing (tau <= 0, padding rows, rows past the last TND prefix sum) has a task
of no step, which writes the empty result. ``common.schedule.partition`` cuts the tasks into
balanced per-core runs; a task split across cores is merged by a log-sum-exp combine. On a GPU,
where that merge is a second pass over fp32 partial outputs, tasks stay whole when cutting only
between tasks lengthens the longest core by at most ``SPLIT_COST_STEPS_64_HEADS`` steps (scaled
to the head group): many equal decode tasks then run with no workspace and no merge.

GPU variants (the tiling key), chosen from the platform's features: ``gluon-ws`` (the
warp-specialised Gluon kernel, Hopper with Gluon, steps of 64 keys, head groups up to 64: 12
warps, 225 KiB of shared memory) wherever it serves; otherwise the Triton kernel, ``scratch``
(8 warps, from 64 heads) or ``registers`` (4 warps). ``gluon`` (two warpgroups in step, 64 heads
x 64 keys, 8 warps) is planned only when asked for by name (tests, benchmarks).

Tile choice. The largest head group (a power of two dividing N1) is chosen first, since every
extra head reuses the same gathered keys; then the largest step that fits. What must fit, per
platform kind (e = bytes per input element; the 576 contraction is nope 512 + rope 64):

- Ascend (cube + 2 vector cores): L1 holds the query tile and the gathered key tile,
  (hg + bs2) * 576 * e; L0A/L0B a 64-wide slice of each matmul operand; L0C the fp32 score tile
  hg * bs2 and the output tile hg * 512; each vector core's UB holds half of the rows of the
  fp32 scores, their rounded probabilities and the fp32 output accumulator. At most 512 gathered
  positions per step, as in the CANN kernel.
- GPU, Triton kernel (one CTA per SM): shared memory holds the query tile, two stages of the
  key tile and the probability tile; the register file holds the fp32 accumulator and score
  tile. Rows are padded to 16 (the MMA's M) inside the tile, never in memory; at most 64
  positions per step unless sparse_block_size is larger; two key stages when they fit, else
  one. The Gluon kernels have fixed tiles; their footprints are ``gluon_usage``.
- CPU: the emulator computes in fp32; one lane's working set (query, keys, scores, accumulator)
  must fit the lane's cache budget.

A plan that fits nowhere is refused with an error naming the platform and the smallest tile.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from ..common import schedule as common_schedule
from ..common.errors import CannAttentionError
from ..common.layouts import Layout
from ..common.platform import PlatformInfo, PlatformKind
from ..common.tiling_data import LAYOUT_CODES, TilingLayout
from .params import CHECK, D, DR, OP, SparseFlashAttentionParams

DK = D + DR                       # 576: contraction length of the score matmul
ASCEND_SOCS = ("Ascend910B", "Ascend910_93")   # A2 and A3 class
# GPU: a split task's pieces write fp32 partial outputs [head_group, 512] and a second kernel
# merges them; on the H100 decode shapes that costs about as much as 6 steps of a core for a
# 64-head group (keeping equal decode tasks whole measured faster than splitting them), so the
# schedule keeps tasks whole when that lengthens the longest core by less (common/schedule.py).
# Scaled by the group's share of 64 heads: the partial outputs shrink with it.
SPLIT_COST_STEPS_64_HEADS = 6
MAX_BLOCK_S2 = {PlatformKind.ASCEND: 512, PlatformKind.GPU: 64, PlatformKind.CPU: 512}
MIN_BLOCK_S2 = {PlatformKind.ASCEND: 1, PlatformKind.GPU: 16, PlatformKind.CPU: 1}
STAGES = {PlatformKind.ASCEND: (1,), PlatformKind.GPU: (2, 1), PlatformKind.CPU: (1,)}
PLAN_CACHE_SIZE = 64          # plans kept by ``plan`` (it is a pure function of its arguments)
# the tiling keys: one per kernel that executes a plan
TILING_KEYS = {"cpu": 1, "ascend": 2, "registers": 10, "scratch": 11, "gluon": 12,
               "gluon-ws": 13}
GPU_VARIANTS = ("gluon-ws", "gluon", "scratch", "registers")
GLUON_TILE = 64                # rows and keys of a Gluon kernel's tiles (the wgmma M and N)
GLUON_WS_WARPS = 12            # a producer warpgroup and two consumer warpgroups
GLUON_WS_REGISTERS = (2 * 128 * 216 + 128 * 72) * 4   # consumers 216, producer 72 a thread

TILING_DATA = TilingLayout("SparseFlashAttentionTilingData", version=1, fields=(
    ("num_rows", "i64"), ("num_tasks", "i64"), ("max_pieces", "i64"),
    ("kv_capacity", "i64"), ("block_num", "i64"),
    ("num_cores", "u32"), ("head_group", "u32"), ("groups", "u32"), ("block_s2", "u32"),
    ("entries_per_step", "u32"), ("stages", "u32"), ("num_warps", "u32"),
    ("max_slots", "u32"), ("max_split_tasks", "u32"), ("split_cost", "i32"),
    ("batch", "u32"), ("rows_per_batch", "u32"), ("n1", "u32"), ("sparse_count", "u32"),
    ("sparse_block_size", "u32"), ("sparse_mode", "u32"), ("page_size", "u32"),
    ("max_blocks", "u32"), ("layout_query", "u32"), ("layout_kv", "u32"),
    ("return_softmax_lse", "u32"), ("has_sinks", "u32"), ("scale_value", "f32"),
))


@dataclass(frozen=True)
class SparseFlashAttentionTiling:
    platform: PlatformInfo
    variant: str                    # the kernel that runs it (TILING_KEYS)
    head_group: int                 # query heads per task
    block_s2: int                   # gathered key positions per step
    entries_per_step: int           # sparse_indices entries per step
    stages: int                     # key tiles in flight (GPU pipelining; 1 elsewhere)
    num_warps: int                  # GPU: warps per CTA; 1 elsewhere
    num_rows: int                   # query rows (B * S1 or T1)
    groups: int                     # head groups: N1 // head_group
    split_cost: int                 # steps a split costs (GPU), -1: tasks are always cut
    tile_bytes: tuple[tuple[str, int], ...]

    @property
    def num_cores(self) -> int:
        return self.platform.num_cores

    @property
    def num_tasks(self) -> int:
        return self.num_rows * self.groups

    @property
    def max_pieces(self) -> int:
        return common_schedule.max_pieces(self.num_tasks, self.num_cores)

    @property
    def max_slots(self) -> int:
        return common_schedule.max_slots(self.num_tasks, self.num_cores)

    @property
    def max_split_tasks(self) -> int:
        return common_schedule.max_split_tasks(self.num_tasks, self.num_cores)

    @property
    def workspace_bytes(self) -> int:
        """Partial outputs and statistics of split tasks, allocated for the most slots."""
        return self.max_slots * self.head_group * (D + 2) * 4

    @property
    def tiling_key(self) -> int:
        return TILING_KEYS[self.variant]


def tiling_data(tiling: SparseFlashAttentionTiling, p: SparseFlashAttentionParams) -> bytes:
    """The plan as the AscendC kernel and the C++ tiling core read it (TILING_DATA)."""
    paged = p.kv_layout is Layout.PA_BSND
    return TILING_DATA.pack(
        tiling.tiling_key, num_rows=tiling.num_rows, num_tasks=tiling.num_tasks,
        max_pieces=tiling.max_pieces, kv_capacity=p.s2,
        block_num=p.key.shape[0] if paged else 0, num_cores=tiling.num_cores,
        head_group=tiling.head_group, groups=tiling.groups, block_s2=tiling.block_s2,
        entries_per_step=tiling.entries_per_step, stages=tiling.stages,
        num_warps=tiling.num_warps, max_slots=tiling.max_slots,
        max_split_tasks=tiling.max_split_tasks, split_cost=tiling.split_cost, batch=p.batch,
        rows_per_batch=p.s1 if p.q_layout is Layout.BSND else p.num_rows, n1=p.n1,
        sparse_count=p.k, sparse_block_size=p.sparse_block_size,
        sparse_mode=p.sparse_mode, page_size=p.block_size if paged else 0,
        max_blocks=p.block_table.shape[1] if paged else 0,
        layout_query=LAYOUT_CODES[p.q_layout], layout_kv=LAYOUT_CODES[p.kv_layout],
        return_softmax_lse=int(p.return_softmax_lse), has_sinks=int(p.sinks is not None),
        scale_value=p.scale_value)


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


def gluon_usage(variant: str, itemsize: int) -> dict:
    """Bytes of shared memory and registers of a Gluon kernel (gluon.py, gluon_ws.py)."""
    tile, e = GLUON_TILE, itemsize
    query, stages = tile * DK * e, 2 * GLUON_TILE * DK * e
    if variant == "gluon-ws":
        # + P1 exchange tile, four row-statistics vectors, visible-key flags, 16 mbarriers
        return {"SMEM": query + stages + tile * tile * e + 4 * tile * 4 + 2 * tile + 16 * 8,
                "REGISTERS": GLUON_WS_REGISTERS}
    return {"SMEM": query + stages + 2 * tile * 4,       # + the row max exchanged by the halves
            "REGISTERS": tile * D * 4 + tile * tile * 4}


def step_usage(tiling: "SparseFlashAttentionTiling", rows: int, keys: int, itemsize: int) -> dict:
    """Bytes a step of ``rows`` heads x ``keys`` positions needs in the plan's kernel (the
    emulator asserts them against the platform for every step it runs)."""
    if tiling.variant in ("gluon", "gluon-ws"):
        if rows > GLUON_TILE or keys > GLUON_TILE:
            raise AssertionError(f"a {tiling.variant} step holds at most {GLUON_TILE} rows x "
                                 f"{GLUON_TILE} keys, got {rows} x {keys}")
        return gluon_usage(tiling.variant, itemsize)
    return tile_usage(tiling.platform.kind, rows, keys, itemsize, tiling.stages)


def gpu_warps(head_group: int) -> int:
    """Warps per CTA of the Triton kernel: the fp32 accumulator [rows, 512] over 128 threads
    needs 256 registers a thread at 64 rows, so from 64 rows up two warpgroups split it."""
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


def gluon_serves(p: SparseFlashAttentionParams, platform: PlatformInfo, variant: str) -> bool:
    """Whether a Gluon kernel can run the call on ``platform``: Gluon there, steps of 64 keys
    (sparse_block_size <= 64), and for ``gluon`` a head group of 64 (N1 >= 64)."""
    itemsize = torch.empty((), dtype=p.query.dtype).element_size()
    return ("gluon" in platform.features and p.sparse_block_size <= GLUON_TILE
            and (variant == "gluon-ws" or p.n1 >= GLUON_TILE)
            and platform.fits(gluon_usage(variant, itemsize)))


def _gpu_tiles(p: SparseFlashAttentionParams, platform: PlatformInfo,
               variant: str | None) -> tuple[str, int, int, int, int, dict]:
    """(variant, head_group, block_s2, stages, warps, usage) of a GPU plan."""
    itemsize = torch.empty((), dtype=p.query.dtype).element_size()
    if variant is None:
        variant = "gluon-ws" if gluon_serves(p, platform, "gluon-ws") else None
    if variant in ("gluon-ws", "gluon"):
        if not gluon_serves(p, platform, variant):
            CHECK.fail("variant", f"a kernel variant that serves this call on {platform.name}",
                       repr(variant))
        warps = GLUON_WS_WARPS if variant == "gluon-ws" else 8
        return (variant, min(p.n1, GLUON_TILE), GLUON_TILE, 2, warps,
                gluon_usage(variant, itemsize))
    hg, bs2, stages = choose_tiles(p, platform)
    warps = gpu_warps(hg)
    default = "scratch" if warps > 4 else "registers"
    if variant not in (None, "scratch", "registers"):
        CHECK.fail("variant", f"one of {GPU_VARIANTS}", repr(variant))
    return (variant or default, hg, bs2, stages, warps,
            tile_usage(PlatformKind.GPU, hg, bs2, itemsize, stages))


@functools.lru_cache(maxsize=PLAN_CACHE_SIZE)
def plan(p: SparseFlashAttentionParams, platform: PlatformInfo,
         variant: str | None = None) -> SparseFlashAttentionTiling:
    """The static plan of a checked call on ``platform`` (module doc); ``variant`` forces a GPU
    kernel variant (tests, benchmarks) and is refused where it cannot serve the call."""
    if platform.kind is PlatformKind.ASCEND:
        CHECK.require(platform.name in ASCEND_SOCS, "platform",
                      f"an Ascend A2/A3 SoC {ASCEND_SOCS}", platform.name)
    if platform.kind is PlatformKind.GPU:
        variant, head_group, block_s2, stages, warps, usage = _gpu_tiles(p, platform, variant)
        split_cost = SPLIT_COST_STEPS_64_HEADS * head_group // 64
    else:
        CHECK.require(variant is None, "variant", f"no variant on {platform.name}", variant)
        head_group, block_s2, stages = choose_tiles(p, platform)
        itemsize = torch.empty((), dtype=p.query.dtype).element_size()
        usage = tile_usage(platform.kind, head_group, block_s2, itemsize, stages)
        variant, warps, split_cost = platform.kind.value, 1, -1
    return SparseFlashAttentionTiling(
        platform=platform, variant=variant, head_group=head_group, block_s2=block_s2,
        entries_per_step=block_s2 // p.sparse_block_size, stages=stages, num_warps=warps,
        num_rows=p.num_rows, groups=p.n1 // head_group, split_cost=split_cost,
        tile_bytes=tuple(usage.items()))
