"""scripts/ascend_bounds.py: the generated sections of docs/<op>.md are current, and its counting
of FLOPs and bytes matches cases worked out by hand (CPU; no NPU)."""
import importlib.util
import math
import sys
from pathlib import Path

import pytest

import cann_attention  # noqa: F401  (registers the ops the script plans)

_PATH = Path(__file__).resolve().parents[2] / "scripts" / "ascend_bounds.py"
_spec = importlib.util.spec_from_file_location("ascend_bounds", _PATH)
bounds = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bounds
_spec.loader.exec_module(bounds)


def _shape(module: str, **kw):
    bounds.blocks()                       # loads the benchmark modules
    return sys.modules[module].Shape(**kw)


def test_docs_hold_what_the_script_writes():
    assert bounds.main(["--check"]) == 0, "run scripts/ascend_bounds.py --write"
    for path in (bounds.SFA_DOC, bounds.LI_DOC):
        text = path.read_text()
        assert text.count(bounds.BEGIN) == 1 and text.count(bounds.END) == 1
        assert text.index(bounds.HEADING) < text.index(bounds.BEGIN)


def test_check_fails_on_a_stale_or_missing_section(tmp_path, monkeypatch):
    sfa, li = tmp_path / "sfa.md", tmp_path / "li.md"
    sfa.write_text("# sfa\n\nintro\n")
    li.write_text("# li\n")
    monkeypatch.setattr(bounds, "SFA_DOC", sfa)
    monkeypatch.setattr(bounds, "LI_DOC", li)
    assert bounds.main(["--check"]) == 1                  # no section yet
    assert bounds.main(["--write"]) == 0
    assert bounds.main(["--check"]) == 0
    text = sfa.read_text()
    assert text.startswith("# sfa\n\nintro\n\n" + bounds.HEADING + "\n\n" + bounds.BEGIN)
    sfa.write_text(text.replace("| cube |", "| memory |", 1) + "\nlater text\n")
    assert bounds.main(["--check"]) == 1
    assert bounds.main(["--write"]) == 0                  # the block only is rewritten
    assert sfa.read_text() == text + "\nlater text\n"


def test_sfa_decode_b1_counted_by_hand():
    """B=1, S1=1, S2=32768, N1=128, K=2048, PA_BSND pages of 64: the row sees 32768 keys and
    selects 2048 distinct ones, so exactly 2048 key/value rows are read."""
    s = _shape("bench_sparse_flash_attention", name="decode", B=1, S1=1, S2=32768, N1=128,
               paged=True)
    w = bounds.sfa_work(s)
    assert w["flops"] == 2 * 128 * (576 + 512) * 2048 == 570_425_344
    kv = 2048 * 1152                      # selected rows, 576 bf16 each
    q = 128 * 576 * 2                     # query nope + rope
    o = 128 * 512 * 2
    idx = 2048 * 4
    meta = 512 * 4 + 4                    # page table (32768 / 64 pages) + one length
    assert w["unique"] == 2048
    assert w["perf_bytes"] == kv + q + o == 2_637_824
    assert w["bytes"] == kv + q + o + idx + meta == 2_648_068


def test_sfa_decode_headline_unique_rows_in_closed_form():
    """S1=2: row 0 sees v0 = S2 - 1 keys, row 1 all S2; each picks K uniformly. A position
    below v0 is missed by both with probability (1 - K/v0)(1 - K/S2); the last one only row 1
    can pick."""
    S2, K, B = 32768, 2048, 128
    v0 = S2 - 1
    per_batch = v0 * (1 - (1 - K / v0) * (1 - K / S2)) + K / S2
    s = _shape("bench_sparse_flash_attention", name="decode", B=B, S1=2, S2=S2, N1=128,
               paged=True)
    w = bounds.sfa_work(s)
    assert math.isclose(w["unique"], B * per_batch, rel_tol=1e-12)
    assert w["valid"] == B * 2 * K
    assert w["flops"] == 2 * 128 * 1088 * B * 2 * K


def test_li_prefill_and_decode_counted_by_hand():
    li = "bench_lightning_indexer"
    # prefill S1=2048, S2=8192: query row s sees 8192 - 2048 + s + 1 keys
    w = bounds.li_work(_shape(li, name="p", batch=1, s1=2048, s2=8192))
    pairs = sum(6145 + s for s in range(2048))
    assert pairs == w["pairs"] == 14_681_088
    assert w["flops"] == 2 * 64 * 128 * pairs == 240_534_945_792
    q, weights, keys, out = 2048 * 64 * 128 * 2, 2048 * 64 * 2, 8192 * 128 * 2, 2048 * 2048 * 4
    assert w["bytes"] == q + weights + keys + out == 52_690_944
    # paged decode B=32, context 8192: each row sees its whole context once
    w = bounds.li_work(_shape(li, name="d", batch=32, s1=1, s2=8192, paged=True))
    assert w["flops"] == 2 * 64 * 128 * 32 * 8192
    meta = 32 * 128 * 4 + 32 * 4          # page tables (8192 / 64 pages) + lengths
    assert w["bytes"] == (32 * 64 * 128 * 2 + 32 * 64 * 2 + 32 * 8192 * 256 + 32 * 2048 * 4
                          + meta) == 67_915_904


def test_bound_and_balance_come_from_the_chip_figures_and_the_plan():
    a2, a3 = bounds.CHIPS
    assert a2.cube_tflops == pytest.approx(353.8944) and a2.hbm_tbps == 1.6
    assert (a3.cube_tflops, a3.hbm_tbps) == (390.0, 1.6)
    s = _shape("bench_sparse_flash_attention", name="decode", B=128, S1=2, S2=32768, N1=128,
               paged=True)
    plan = bounds.sfa_plan(s, bounds._platform(a2))
    assert (plan["head_group"], plan["block_s2"], plan["tasks"]) == (64, 256, 512)
    assert 1.0 <= plan["balance"] < 1.01
    # one query row on 24 cores: the plan splits it over them (and the kernel runs that plan)
    li = _shape("bench_lightning_indexer", name="d", batch=1, s1=1, s2=65536, paged=True)
    plan = bounds.li_plan(li, bounds._platform(a3))
    assert plan["balance"] < 1.1
    w = bounds.sfa_work(s)
    t_mem, t_cube, bound, binds = bounds._bound(w["flops"], w["bytes"], a2)
    assert bound == max(t_mem, t_cube) and binds == ("memory" if t_mem >= t_cube else "cube")
    assert t_cube == pytest.approx(w["flops"] / 353.8944e12)
