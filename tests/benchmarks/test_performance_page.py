"""docs/performance.md is generated from benchmarks/results/ (CPU; standard library only)."""
import importlib.util
import json
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "performance_page.py"
_spec = importlib.util.spec_from_file_location("performance_page", _PATH)
page = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = page
_spec.loader.exec_module(page)


def test_committed_page_is_what_the_generator_writes():
    assert page.PAGE.exists(), "docs/performance.md is missing: run benchmarks/performance_page.py"
    assert page.check(), "docs/performance.md is out of date: run benchmarks/performance_page.py"
    assert page.main(["--check"]) == 0


def test_every_results_file_the_page_uses_and_the_notes_exist():
    text = page.PAGE.read_text()
    for run in page.current(page.load(page.RESULTS)):
        assert f"(../benchmarks/results/{run['path'].name})" in text
    notes = (page.RESULTS / "notes.md").read_text().strip()
    assert "## What limits the kernels (measured)\n\n" + notes in text
    assert len(notes.splitlines()) <= 80


def _meta(date, commit, device="NVIDIA H100 80GB HBM3", **kw):
    return dict(device=device, matmul_tflops=800.0, copy_gbps=3000.0, peak_tflops=1000.0,
                torch="2.11.0+cu130", triton="3.6.0", commit=commit, date=date, **kw)


def _row(name, S2, impl, ms, **extra):
    shape = dict(name=name, B=1, S1=4096 if name == "prefill" else 1, S2=S2, N1=128, K=2048)
    return dict(shape=shape, impl=impl, ms=ms, tflops=100.0 / ms, gbps=50.0 / ms,
                floor_ms=0.5, variant="gluon-ws", **extra)


def _write(directory, name, meta, rows):
    data = {"results": rows} if meta is None else {"meta": meta, "results": rows}
    (directory / name).write_text(json.dumps(data, indent=2))


def _sections(text):
    """[(heading, body)] of the page's sweep sections ("### ..."), in page order."""
    out = []
    for line in text.splitlines():
        if line.startswith("### "):
            out.append((line, []))
        elif line.startswith("## "):
            out.append((None, []))
        elif out:
            out[-1][1].append(line)
    return [(head, "\n".join(body)) for head, body in out if head]


def test_newest_full_sweep_per_op_and_gpu_with_peers_and_ratios(tmp_path):
    old = [_row("prefill", 8192, "triton", 9.0), _row("decode", 4096, "triton", 0.9)]
    _write(tmp_path, "sfa_h100_2026-01-01_full.json", _meta("2026-01-01", "aaaaaaa"), old)
    new = [_row("prefill", 8192, "triton", 2.0), _row("prefill", 8192, "torch", 20.0),
           _row("prefill", 8192, "triton-gluon", 3.0), _row("prefill", 32768, "triton", 4.0),
           _row("prefill", 32768, "torch", 10.0), _row("decode", 4096, "triton", 0.25),
           _row("decode", 4096, "triton-op", 1.0)]
    _write(tmp_path, "sfa_h100_2026-02-01_s1_full.json", _meta("2026-02-01", "bbbbbbb"), new)
    # same day, a tag that sorts later: newer still; but on another GPU
    _write(tmp_path, "sfa_h200_2026-02-01_s2_full.json",
           _meta("2026-02-01", "ccccccc", device="NVIDIA H200"),
           [_row("decode", 4096, "triton", 0.2)])
    # newer, but not full sweeps / no meta / cut short: no table
    late = [_row("prefill", 8192, "triton", 1.0)]
    _write(tmp_path, "sfa_h100_2026-03-01_headline.json", _meta("2026-03-01", "ddddddd"), late)
    _write(tmp_path, "sfa_h100_2026-03-01_variants_full.json", None, late)
    _write(tmp_path, "sfa_h100_2026-03-02_full.json",
           dict(device="NVIDIA H100 80GB HBM3", partial=True), late)
    # another op by its prefix, and an anchor sweep
    _write(tmp_path, "li_h100_2026-01-15_full.json", _meta("2026-01-15", "eeeeeee"),
           [dict(shape=dict(name="prefill", S1=2048, S2=8192), impl="triton", ms=1.5)])
    _write(tmp_path, "sfa_h100_2026-02-01_anchor.json", _meta("2026-02-01", "fffffff"),
           [_row("prefill", 8192, "triton", 2.2)])

    text = page.render(tmp_path)
    assert text == page.render(tmp_path)                         # deterministic
    secs = _sections(text)
    assert [head for head, _ in secs] == ["### NVIDIA H100 80GB HBM3: full sweep",
                                          "### NVIDIA H100 80GB HBM3: anchor sweep",
                                          "### NVIDIA H200: full sweep",
                                          "### NVIDIA H100 80GB HBM3: full sweep"]
    assert text.index("## npu_sparse_flash_attention") < text.index("## npu_lightning_indexer")
    (_, h100), (_, anchor), (_, h200), (_, li) = secs
    assert "sfa_h100_2026-02-01_s1_full.json" in h100 and "bbbbbbb" in h100
    assert "aaaaaaa" not in text and "ddddddd" not in text
    assert "Ceilings measured in this run: bf16 matmul 800 TFLOPS, copy 3000 GB/s." in h100
    assert "torch 2.11.0+cu130, Triton 3.6.0" in h100
    # prefill: ours, % peak, % roof, peers with peer/ours; a peer missing on a shape is blank
    assert ("| S2 | ours ms | TFLOPS | GB/s | % peak | % roof | torch ms (x) "
            "| triton-gluon ms (x) |") in h100
    assert "| 8192 | 2.000 | 50 | 25 | 5.0 | 25.0 | 20.00 (10.00x) | 3.000 (1.50x) |" in h100
    assert "| 32768 | 4.000 | 25 | 12 | 2.5 | 12.5 | 10.00 (2.50x) |  |" in h100
    assert "All rows: B=1, S1=4096, N1=128, K=2048, kernel=gluon-ws." in h100
    assert "| 0.2500 | 400 | 200 | 40.0 | 200.0 | 1.000 (4.00x) |" in h100     # decode
    assert not any(f"| {c} |" in text for c in ("call ms", "host us", "graph ms"))
    assert "sfa_h100_2026-02-01_anchor.json" in anchor and "| 2.200 |" in anchor
    assert "sfa_h200_2026-02-01_s2_full.json" in h200 and "| 0.2000 |" in h200
    assert "li_h100_2026-01-15_full.json" in li and "| 1.500 |" in li
    assert "`triton-op`: the whole op call" in text and "`torch`: a plain PyTorch" in text


def test_call_host_and_graph_columns_when_present(tmp_path):
    rows = [_row("decode", 4096, "triton", 0.25, call_ms=0.9, host_us=650.0, graph_ms=0.26),
            _row("decode", 32768, "triton", 0.5, call_ms=1.1),
            _row("decode", 32768, "plain-pytorch", 2.0)]
    _write(tmp_path, "sfa_h100_2026-02-01_full.json", _meta("2026-02-01", "abc1234"), rows)
    text = page.render(tmp_path)
    assert ("| S2 | ours ms | TFLOPS | GB/s | % peak | % roof | call ms | host us | graph ms "
            "| plain-pytorch ms (x) |") in text
    assert "| 4096 | 0.2500 | 400 | 200 | 40.0 | 200.0 | 0.9000 | 650 | 0.2600 |  |" in text
    assert "| 32768 | 0.5000 | 200 | 100 | 20.0 | 100.0 | 1.100 |  |  | 2.000 (4.00x) |" in text


def test_check_fails_on_a_stale_page(tmp_path):
    _write(tmp_path, "sfa_h100_2026-02-01_full.json", _meta("2026-02-01", "abc1234"),
           [_row("decode", 4096, "triton", 0.25)])
    out = tmp_path / "performance.md"
    assert page.main(["--results", str(tmp_path), "--page", str(out)]) == 0
    assert page.check(tmp_path, out)
    out.write_text(out.read_text().replace("0.2500", "0.2400"))
    assert not page.check(tmp_path, out)
    assert page.main(["--check", "--results", str(tmp_path), "--page", str(out)]) == 1


def test_a_headline_sweep_named_in_its_meta_gets_its_own_table(tmp_path):
    meta = dict(_meta("2026-03-01", "ddddddd"), sweep="headline")
    row = dict(_row("decode", 4096, "triton", 0.3), call_ms=0.31, host_us=55.0, graph_ms=0.3)
    _write(tmp_path, "sfa_h100_2026-03-01_s1_headline.json", meta, [row])
    _write(tmp_path, "sfa_h100_2026-01-01_full.json", _meta("2026-01-01", "aaaaaaa"),
           [_row("decode", 4096, "triton", 0.9)])
    heads = [head for head, _ in _sections(page.render(tmp_path))]
    assert heads == ["### NVIDIA H100 80GB HBM3: full sweep",
                     "### NVIDIA H100 80GB HBM3: headline sweep"]
    assert "ddddddd" in page.render(tmp_path)
