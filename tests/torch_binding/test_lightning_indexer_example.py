"""The DeepSeek-V3.2 example (indexer -> sparse_flash_attention, decode and prefill chunk) runs
and matches dense attention on the selected keys (its own assertions)."""
import runpy
from pathlib import Path


def test_lightning_indexer_example_deepseek_v32():
    path = Path(__file__).resolve().parents[2] / "examples" / "deepseek_v32_sparse_attention.py"
    runpy.run_path(str(path), run_name="__main__")
