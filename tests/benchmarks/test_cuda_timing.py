"""The benchmarks' shared sweep (benchmarks/cuda_timing.py), on CPU."""
import json
from types import SimpleNamespace

from testing.benches import load_bench

cuda_timing = load_bench("cuda_timing")


def test_sweep_measures_in_order_writes_partial_results_and_keeps_the_budget(tmp_path,
                                                                             monkeypatch):
    clock = iter([0.0, 0.0, 5.0, 20.0, 20.0])           # start, then one read per shape
    monkeypatch.setattr(cuda_timing.time, "time", lambda: next(clock))
    shapes = [SimpleNamespace(name=n) for n in ("a", "b", "c", "d")]
    seen = []

    def measure(shape, rows, missing):
        seen.append(shape.name)
        rows.append(dict(shape=dict(name=shape.name), impl="ours", ms=1.0))
        return f"{shape.name} done"
    path = tmp_path / "r.json"
    rows, missing = cuda_timing.sweep(shapes, measure, budget_s=10, json_path=path, gpu="X")
    assert seen == ["a", "b"] and [r["shape"]["name"] for r in rows] == ["a", "b"]
    assert missing == {"ours": ["c: not run (--budget-s)", "d: not run (--budget-s)"]}
    written = json.loads(path.read_text())
    assert written["meta"] == {"device": "X", "partial": True} and len(written["results"]) == 2


def test_alternating_takes_turns_and_medians_each(monkeypatch):
    order, ms = [], iter([1.0, 5.0, 3.0, 6.0, 2.0, 7.0])
    monkeypatch.setattr(cuda_timing, "cuda_time",
                        lambda fn, reps, flush=None, **kw: (order.append((fn(), reps)),
                                                             next(ms))[1])
    got = cuda_timing.alternating({"ours": lambda: "o", "peer": lambda: "p"}, repeats=20,
                                  rounds=3)
    assert [o for o, _ in order] == ["o", "p"] * 3 and all(r == 6 for _, r in order)
    assert got == {"ours": 2.0, "peer": 6.0}


def test_print_rows_compares_each_row_with_ours_on_its_shape(capsys):
    rows = [dict(shape=dict(name="a"), impl="ours", ms=2.0, tflops=1.0, gbps=3.0, floor_ms=1.0),
            dict(shape=dict(name="a"), impl="peer", ms=3.0, tflops=0.5, gbps=2.0, floor_ms=1.0),
            dict(shape=dict(name="b"), impl="peer", ms=1.0, tflops=0.5, gbps=2.0)]
    cuda_timing.print_rows(rows, ours="ours", width=4)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[1].split()[-2:] == ["50.0", "1.00x"]
    assert lines[2].split()[-1] == "1.50x" and lines[3].split()[-2:] == ["nan", "-"]


def test_named_selects_shapes_by_name_in_their_order():
    shapes = [SimpleNamespace(name=n) for n in ("a", "b", "c")]
    assert cuda_timing.named(shapes, None) == shapes
    assert [s.name for s in cuda_timing.named(shapes, "c,a")] == ["a", "c"]
    assert cuda_timing.named(shapes, "x") == []
