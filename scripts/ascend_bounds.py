"""Expected lower bounds on Ascend A2 / A3 for npu_sparse_flash_attention and npu_lightning_indexer.

No NPU has run these kernels. For each benchmark shape (taken from the benchmark scripts) and
each Ascend platform of ``op_host/common/platform.py`` this script computes, from the op's work
and the Ascend plan (``op_host/<op>/tiling.py``):

- **FLOPs**, counted as docs/performance.md counts them (so NPU and GPU TFLOPS compare), and the
  cube time at the chip's cube peak (with the plan's head group padded to the cube's 16 rows);
- **bytes** the kernel must move at least (each input element read once, each output written
  once: query, selected / visible key rows, indices, outputs, page table and lengths) and the
  time at the chip's HBM bandwidth;
- the **bound** max(memory, cube), which of the two binds, and the **load balance** of the
  plan's per-core split (the longest core's steps over the mean, ``common.schedule.partition``).

    python scripts/ascend_bounds.py            # print the two generated sections
    python scripts/ascend_bounds.py --write    # write them into docs/<op>.md
    python scripts/ascend_bounds.py --check    # exit 1 if the docs differ from the output

The chip figures and their sources are in ``CHIPS`` (and in the generated sections).
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- ascend-bounds:begin -->", "<!-- ascend-bounds:end -->"
HEADING = "## Expected bound on Ascend A2/A3 (not measured)"
SFA_DOC = ROOT / "docs" / "sparse_flash_attention.md"
LI_DOC = ROOT / "docs" / "lightning_indexer.md"

CUBE_ROWS = 16             # the cube multiplies 16 x 16 x 16 fractals: M is padded to 16
ELEM = 2                   # bytes of a bf16 / fp16 element (the benchmarks run bf16)
IDX = 4                    # bytes of an int32 index, page-table entry or length
SFA_D, SFA_DR = 512, 64    # nope and rope head dims (1152 B a selected key/value row)
LI_D = 128                 # index head dim
LI_PAGE = 64               # page size of the indexer's paged decode shapes (its benchmark's PAGE)
VEC_FP32_LANES = 64        # fp32 elements one vector core processes per cycle (256 B a repeat)
VEC_GHZ = 1.8              # vector clock assumed for the vector estimate (CANN's cube_freq)


@dataclass(frozen=True)
class Chip:
    """Public figures of one Ascend die (the unit one kernel launch runs on)."""
    label: str
    platform: str            # PlatformInfo name in op_host/common/platform.py
    soc: str
    cube_tflops: float       # bf16/fp16 dense cube peak of the die
    hbm_tbps: float          # HBM bandwidth of the die
    cube_note: str
    hbm_note: str


CHIPS = (
    Chip("A2", "Ascend910B", "Ascend910B2 / 910B2C (Atlas 800T/800I A2)",
         cube_tflops=24 * 16 ** 3 * 2 * 1.8e9 / 1e12,
         hbm_tbps=1.6,
         cube_note="24 cube cores x 16x16x16 MACs a cycle x 2 x 1.8 GHz (CANN's platform file "
                   "Ascend910B2C.ini: cube_core_cnt=24, vector_core_cnt=48, cube_m/n/k_size=16, "
                   "cube_freq=1800) [1]; published 910B figures disagree (256, 280, 320 TFLOPS "
                   "[2][3]) and do not name the variant; the derived figure is above all of them",
         hbm_note="no vendor figure found; published 910B figures disagree (0.4, 0.77, 1.2 "
                  "TB/s [2][3]); we take 1.6 TB/s, the per-die share of the two-die 910C's "
                  "3.2 TB/s [4], higher than all of them, so that the bound stays a lower bound"),
    Chip("A3", "Ascend910_93", "Ascend910_93 (one of the two dies of a 910C; Atlas A3)",
         cube_tflops=780 / 2,
         hbm_tbps=3.2 / 2,
         cube_note="half of the 910C package's 780 TFLOPS BF16 [4] (a 910C is two dies, each "
                   "one device [5]); 24 cube + 48 vector cores a die as platform.py records; at "
                   "A2's 1.8 GHz the die would give A2's 353.9",
         hbm_note="half of the 910C package's 3.2 TB/s (eight HBM2E stacks) [4]"),
)
SOURCES = (
    "[1] CANN platform config Ascend910B2C.ini, https://gitcode.com/W4termy/runtime/blob/"
    "master/src/platform/platform_config/Ascend910B2C.ini (also: 910B2 24 AI cores, 910B3 20, "
    "https://raw.githubusercontent.com/Project-HAMi/ascend-device-plugin/refs/heads/main/"
    "ascend-device-configmap.yaml)",
    "[2] https://ai.gitee.com/docs/compute/clusters_gpu/ascend_gpu (910B: FP16/BF16 280 TFLOPS, "
    "64 GB HBM2e); https://jishuzhan.net/article/1872432607539499010 (256 TFLOPS, 768 GB/s)",
    "[3] https://boardor.com/blog/huawei-ascend-910b-outperforms-h20-910c-approaches-h100 "
    "(~320 TFLOPS, 64 GB, \"400 GB/s\"); https://www.oryoy.com/news/910b-suan-li-shi-duo-shao-"
    "jie-mi-hua-wei-sheng-teng-910b-xin-pian-de-xing-neng-can-shu-yu-shi-ji-sua.html (1.2 TB/s)",
    "[4] https://techpowerup.com/335749/huawei-prepares-6-nm-ascend-920c-accelerator-900-"
    "teraflops-4000-gb-s-hbm3 (910C: 780 TFLOPS BF16, eight HBM2E stacks, 3,200 GB/s; after "
    "DigiTimes)",
    "[5] https://www.hiascend.com/document/detail/en/mindcluster/730/clustersched/"
    "schedulingug/dl_affinity_0040.html (A3: two Ascend AI processors joined by SIO form one "
    "module)",
)


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module            # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _platform(chip: Chip):
    from cann_attention.op_host.common.platform import KNOWN_PLATFORMS
    return KNOWN_PLATFORMS[chip.platform]


def _balance(costs: torch.Tensor) -> float:
    """Longest core over the mean of all cores (idle cores count: 1.0 is a perfect split)."""
    return float(costs.max()) / (float(costs.sum()) / costs.numel())


def _meta(*shape):
    return torch.empty(*shape, dtype=torch.bfloat16, device="meta")


def _params(op: str, args: tuple, kwargs: dict):
    """(params with the lengths' values, tensors) of a call with meta data tensors."""
    import cann_attention
    from cann_attention.op_host.common.tensor_meta import with_values
    op_def = cann_attention.OPS[op]
    bound = op_def.bind(args, kwargs)
    p = op_def.parse(bound)
    op_def.check(p)
    t = op_def.tensors_of(bound)
    return with_values(p, t), t


def _paged(B: int, S2: int, page: int):
    pages = -(-S2 // page)
    return pages, torch.arange(B * pages, dtype=torch.int32).reshape(B, pages)


# ---- sparse flash attention ----------------------------------------------------------------
def sfa_rows(S1: int, S2: int, K: int) -> tuple[list[int], list[int]]:
    """(visible keys, selected keys) of each query row of a batch: sparse_mode 3, full lengths,
    min(K, visible) distinct random visible positions a row (the benchmark's indices)."""
    vis = [min(S2, S2 - S1 + s + 1) for s in range(S1)]
    return vis, [min(K, v) for v in vis]


def expected_unique(vis: list[int], sel: list[int]) -> float:
    """Expected number of distinct positions the rows of one batch select, each row a uniformly
    random ``sel[s]``-subset of [0, vis[s]): the sum over positions j of 1 - prod over the rows
    that see j of (1 - sel/vis)."""
    order = sorted(range(len(vis)), key=lambda s: vis[s])
    v = torch.tensor([vis[s] for s in order], dtype=torch.float64)
    keep = 1 - torch.tensor([sel[s] for s in order], dtype=torch.float64) / v
    suffix = torch.cat([torch.flip(torch.cumprod(torch.flip(keep, [0]), 0), [0]),
                        torch.ones(1, dtype=torch.float64)])          # rows t.. of the order
    j = torch.arange(int(v.max()), dtype=torch.float64)
    seen_by_from = torch.searchsorted(v, j, right=True)                # rows with vis > j
    return float((1 - suffix[seen_by_from]).sum())


def sfa_work(shape) -> dict:
    """FLOPs and bytes of one benchmark shape (bench_sparse_flash_attention.Shape)."""
    if shape.indices != "causal":
        raise ValueError(f"{shape.label}: only the benchmark's causal index rule is modelled")
    B, S1, S2, N1, K = shape.B, shape.S1, shape.S2, shape.N1, shape.K
    vis, sel = sfa_rows(S1, S2, K)
    valid = B * sum(sel)
    unique = B * expected_unique(vis, sel)
    kv_row = (SFA_D + SFA_DR) * ELEM
    q = B * S1 * N1 * (SFA_D + SFA_DR) * ELEM
    o = B * S1 * N1 * SFA_D * ELEM
    idx = B * S1 * K * IDX
    meta = (B * -(-S2 // shape.page) * IDX + B * IDX) if shape.paged else 0
    return dict(flops=2 * N1 * (SFA_D + SFA_DR + SFA_D) * valid, valid=valid, unique=unique,
                perf_bytes=unique * kv_row + q + o,
                bytes=unique * kv_row + q + o + idx + meta,
                other_bytes=q + o + idx + meta, kv_row=kv_row)


def sfa_plan(shape, platform) -> dict:
    """The Ascend plan of the shape and its per-core balance."""
    from cann_attention.op_host.sparse_flash_attention import schedule, tiling
    B, S1, S2, N1, K = shape.B, shape.S1, shape.S2, shape.N1, shape.K
    kw = dict(query_rope=_meta(B, S1, N1, SFA_DR), sparse_mode=3)
    if shape.paged:
        pages, table = _paged(B, S2, shape.page)
        key = _meta(B * pages, shape.page, 1, SFA_D)
        kw.update(key_rope=_meta(B * pages, shape.page, 1, SFA_DR), layout_kv="PA_BSND",
                  block_table=table,
                  actual_seq_lengths_kv=torch.full((B,), S2, dtype=torch.int32))
    else:
        key = _meta(B, S2, 1, SFA_D)
        kw["key_rope"] = _meta(B, S2, 1, SFA_DR)
    idx = torch.zeros(B, S1, 1, K, dtype=torch.int32)      # values: only the window counts
    p, t = _params("npu_sparse_flash_attention",
                   (_meta(B, S1, N1, SFA_D), key, key, idx, (SFA_D + SFA_DR) ** -0.5, 1), kw)
    plan = tiling.plan(p, platform)
    work = schedule.device_schedule(p, plan, t)
    costs = work.schedule.core_costs(schedule.TASK_OVERHEAD_STEPS)
    return dict(head_group=plan.head_group, block_s2=plan.block_s2, tasks=plan.num_tasks,
                groups=plan.groups, balance=_balance(costs))


# ---- lightning indexer ---------------------------------------------------------------------
def li_nvis(S1: int, S2: int) -> list[int]:
    """Visible keys of each query row of a batch (sparse_mode 3, full lengths)."""
    return [min(S2, max(0, S2 - S1 + s + 1)) for s in range(S1)]


def li_work(shape) -> dict:
    """FLOPs and bytes of one benchmark shape (bench_lightning_indexer.Shape)."""
    B, S1, S2, N1, K = shape.batch, shape.s1, shape.s2, shape.n1, shape.k
    nvis = li_nvis(S1, S2)
    pairs = B * sum(nvis)
    q = B * S1 * N1 * LI_D * ELEM
    w = B * S1 * N1 * ELEM
    keys = B * max(nvis) * LI_D * ELEM
    out = B * S1 * K * IDX
    meta = (B * -(-S2 // LI_PAGE) * IDX + B * IDX) if shape.paged else 0
    # the AscendC kernel as written: each row reads its visible keys, the cube's fp32 scores go
    # to the GM workspace and back to the vector cores (docs/lightning_indexer.md, Back ends)
    written = q + w + pairs * LI_D * ELEM + 2 * N1 * pairs * 4 + out + meta
    return dict(flops=2 * N1 * LI_D * pairs, pairs=pairs, bytes=q + w + keys + out + meta,
                written=written, vector_ops=3 * N1 * pairs)


def li_plan(shape, platform) -> dict:
    """The Ascend plan and the balance of its schedule (which the AscendC kernel runs)."""
    from cann_attention.op_host.lightning_indexer import tiling
    B, S1, S2, N1 = shape.batch, shape.s1, shape.s2, shape.n1
    kw = dict(sparse_count=shape.k, sparse_mode=3)
    if shape.paged:
        pages, table = _paged(B, S2, LI_PAGE)
        key = _meta(B * pages, LI_PAGE, 1, LI_D)
        kw.update(layout_key="PA_BSND", block_table=table,
                  actual_seq_lengths_key=torch.full((B,), S2, dtype=torch.int32))
    else:
        key = _meta(B, S2, 1, LI_D)
    p, _ = _params("npu_lightning_indexer", (_meta(B, S1, N1, LI_D), key, _meta(B, S1, N1)), kw)
    plan = tiling.plan(p, platform)
    work = tiling.schedule(p, plan)
    costs = work.schedule.core_costs(tiling.TASK_OVERHEAD_STEPS)
    return dict(head_group=plan.head_group, block_s2=plan.block_s2, tasks=work.num_tasks,
                balance=_balance(costs))


# ---- rendering -----------------------------------------------------------------------------
def _num(x: float) -> str:
    """About three significant digits (more left of the point)."""
    return (f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}" if x >= 1
            else f"{x:.3f}")


def _us(seconds: float) -> str:
    return _num(seconds * 1e6)


def _bound(flops_executed: float, nbytes: float, chip: Chip) -> tuple[float, float, float, str]:
    t_mem = nbytes / (chip.hbm_tbps * 1e12)
    t_cube = flops_executed / (chip.cube_tflops * 1e12)
    return t_mem, t_cube, max(t_mem, t_cube), "memory" if t_mem >= t_cube else "cube"


def chips_table() -> list[str]:
    from cann_attention.op_host.common.platform import KNOWN_PLATFORMS
    lines = ["| chip | SoC | cores (platform.py) | cube peak bf16 | HBM | why these figures |",
             "|---|---|---|---|---|---|"]
    for c in CHIPS:
        p = KNOWN_PLATFORMS[c.platform]
        lines.append(f"| {c.label} | {c.soc} | {p.num_cores} cube + "
                     f"{p.num_cores * p.vector_cores_per_core} vector | {c.cube_tflops:.1f} TFLOPS "
                     f"| {c.hbm_tbps:.1f} TB/s | cube: {c.cube_note}; HBM: {c.hbm_note} |")
    return lines


def sfa_section(shapes) -> str:
    head = ("| shape | chip | GFLOP | MB moved | memory us | cube us | bound us | binds "
            "| TFLOPS at bound | plan: heads x keys, tasks | balance | MB, no L2 reuse |")
    lines = [head, "|" + "---|" * 12]
    for shape in shapes:
        w = sfa_work(shape)
        for chip in CHIPS:
            pl = sfa_plan(shape, _platform(chip))
            pad = CUBE_ROWS * -(-pl["head_group"] // CUBE_ROWS) / pl["head_group"]
            t_mem, t_cube, bound, binds = _bound(w["flops"] * pad, w["bytes"], chip)
            no_reuse = pl["groups"] * w["valid"] * w["kv_row"] + w["other_bytes"]
            plan = f"{pl['head_group']} x {pl['block_s2']}, {pl['tasks']}"
            if pad != 1:
                plan += f" (M padded x{pad:g})"
            lines.append(
                f"| {shape.label} | {chip.label} | {_num(w['flops'] / 1e9)} "
                f"| {_num(w['bytes'] / 1e6)} "
                f"| {_us(t_mem)} | {_us(t_cube)} | {_us(bound)} | {binds} "
                f"| {w['flops'] / bound / 1e12:.0f} | {plan} | {pl['balance']:.3f} "
                f"| {_num(no_reuse / 1e6)} |")
    return "\n".join([
        *_preamble("npu_sparse_flash_attention"),
        "Work counted as the benchmark counts it (docs/performance.md): FLOPs = 2 * N1 * "
        "(576 + 512) per valid selected key of a query row. The shapes are "
        "`bench_sparse_flash_attention.py --sweep headline` (bf16, sparse_mode 3, K = 2048, "
        "each row's indices min(K, visible) distinct random visible positions, "
        "sparse_block_size 1; decode PA_BSND with 64-token pages). **MB moved** = the distinct "
        "key/value rows the rows of a batch select (the expectation under that index rule) x "
        "1152 B + query (576 wide) + output (512 wide) + the int32 indices + page table and "
        "lengths; the benchmark's byte count is the same without the indices and the page "
        "table. **cube us** runs the counted FLOPs at the cube peak, times the plan's padding "
        "of its head group to the cube's 16 rows. **TFLOPS at bound**: the counted FLOPs over "
        "the bound, the figure an NPU run at the bound would report. **MB, no L2 reuse**: the "
        "bytes if every head group gathered its selected rows from HBM again (N1 / head group "
        "gathers of every valid selected row, repeats included): the plan orders tasks head "
        "group by head group so that the second gather finds the rows in L2 (192 MiB); where "
        "it does not, memory us grows by that ratio.",
        "",
        "\n".join(lines),
        "",
        "The bound is what the plan and the op's work allow. The AscendC kernel "
        "(op_kernel/sparse_flash_attention/ascendc, run only on CPU through the twin) runs the "
        "plan's balanced pieces (balance column), merging split tasks after a SyncAll; it "
        "passes scores, P and P.V through GM, which the bound does not count. The "
        "softmax, the output rescale and the split-task merge (vector cores) are not counted; "
        "for this op they are small next to the cube work (N1 x K fp32 scores a row against "
        "2 * N1 * 1088 * K cube FLOPs).",
    ])


def li_section(shapes) -> str:
    head = ("| shape | chip | GFLOP | MB moved | memory us | cube us | bound us | binds "
            "| plan: heads / keys, tasks | balance | vector us (est.) "
            "| GB via GM, kernel as written |")
    lines = [head, "|" + "---|" * 12]
    for shape in shapes:
        w = li_work(shape)
        for chip in CHIPS:
            platform = _platform(chip)
            pl = li_plan(shape, platform)
            # the kernel runs all N1 <= 64 heads in one Mmad: M = N1, padded to 16
            pad = CUBE_ROWS * -(-shape.n1 // CUBE_ROWS) / shape.n1
            t_mem, t_cube, bound, binds = _bound(w["flops"] * pad, w["bytes"], chip)
            lanes = platform.num_cores * platform.vector_cores_per_core * VEC_FP32_LANES
            t_vec = w["vector_ops"] / (lanes * VEC_GHZ * 1e9)
            lines.append(
                f"| {shape.name} | {chip.label} | {_num(w['flops'] / 1e9)} "
                f"| {_num(w['bytes'] / 1e6)} "
                f"| {_us(t_mem)} | {_us(t_cube)} | {_us(bound)} | {binds} "
                f"| {pl['head_group']} / {pl['block_s2']}, {pl['tasks']} "
                f"| {pl['balance']:.3f} | {_us(t_vec)} "
                f"| {_num(w['written'] / 1e9)} |")
    return "\n".join([
        *_preamble("npu_lightning_indexer"),
        "Work counted as the benchmark counts it (docs/performance.md): FLOPs = 2 * N1 * D per "
        "visible query-key pair (the scoring; the top-k is not counted). The shapes are "
        "`bench_lightning_indexer.py --set perf` (bf16 query, key and weights, N1 = 64, D = "
        "128, sparse_count 2048, sparse_mode 3, return_value False; decode PA_BSND with 64-token "
        "pages). **MB moved** = query + weights + each batch's visible keys once (256 B a key) "
        "+ the int32 indices + page table and lengths. **balance**: the plan's schedule (tasks "
        "cut across the cores, split rows merged after a SyncAll), which the AscendC kernel "
        "runs. **vector us (est.)**: the vector "
        "cores' ReLU, weight multiply and head sum (3 fp32 operations per head and visible "
        "pair), at 64 fp32 lanes a vector core and an assumed 1.8 GHz; not part of the bound, "
        "but of the same order as the cube time, so it can bind; the top-k merge (scalar in the "
        "kernel as written) is not modelled. **GB via GM, kernel as written**: every row reads "
        "its visible keys again and the fp32 score tile goes to the GM workspace and back "
        "(2 x N1 x 4 B per pair); most of it should be served by the 192 MiB L2, whose "
        "bandwidth is not public, so it is listed, not bounded.",
        "",
        "\n".join(lines),
    ])


def _preamble(op: str) -> list[str]:
    return [
        BEGIN,
        "<!-- Generated by scripts/ascend_bounds.py; edit the script, not this block. -->",
        "",
        f"Lower bounds on the time of one `{op}` call on one Ascend die, computed from the "
        "Ascend plan (`op_host/` tiling) and the op's work with public chip figures; **nothing "
        "here was measured** (no NPU has run the kernel). A first NPU run should be compared "
        "with the **bound** column: bound = max(bytes moved / HBM bandwidth, cube FLOPs / cube "
        "peak). **balance** is the plan's longest core over the mean of all cores (its steps, "
        "one overhead step per piece); at best a run takes about bound x balance (less where "
        "memory binds: a lone busy core draws more than its share of the bandwidth).",
        "",
        *chips_table(),
        "",
        "Sources:",
        "",
        *[f"- {s}" for s in SOURCES],
        "",
    ]


@functools.lru_cache(maxsize=1)
def blocks() -> tuple[str, str]:
    """The generated blocks of docs/sparse_flash_attention.md and docs/lightning_indexer.md
    (computed once a process)."""
    bench_sfa = _load("bench_sparse_flash_attention",
                      ROOT / "benchmarks" / "bench_sparse_flash_attention.py")
    bench_li = _load("bench_lightning_indexer", ROOT / "benchmarks" / "bench_lightning_indexer.py")
    return (sfa_section(bench_sfa.cuda_shapes("headline")) + "\n" + END,
            li_section(bench_li.PERF_SET) + "\n" + END)


def sections() -> dict[Path, str]:
    """Each doc and its generated block."""
    sfa, li = blocks()
    return {SFA_DOC: sfa, LI_DOC: li}


def with_section(text: str, block: str) -> str:
    """``text`` with its generated block replaced by ``block`` (the heading and the block
    appended at the end where there is none yet)."""
    if BEGIN in text and END in text:
        start, end = text.index(BEGIN), text.index(END) + len(END)
        return text[:start] + block + text[end:]
    return text.rstrip("\n") + f"\n\n{HEADING}\n\n{block}\n"


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="write the sections into the docs")
    group.add_argument("--check", action="store_true",
                       help="exit 1 if a doc's section differs from this script's output")
    a = ap.parse_args(argv)
    docs = sections()
    if a.check:
        stale = [_shown(p) for p, block in docs.items()
                 if with_section(p.read_text(), block) != p.read_text()]
        print("stale: " + ", ".join(stale) + "; run scripts/ascend_bounds.py --write"
              if stale else "ascend bounds: docs up to date")
        return 1 if stale else 0
    if a.write:
        for path, block in docs.items():
            path.write_text(with_section(path.read_text(), block))
            print(f"wrote {_shown(path)}")
        return 0
    print("\n\n".join(docs.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
