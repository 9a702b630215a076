"""Rewrite the generated parts of the documents: the support matrices of README.md and
docs/<op>.md (from the back-end registries), docs/performance.md (from
benchmarks/results/*.json) and the expected Ascend bounds of docs/<op>.md
(scripts/ascend_bounds.py). ``--check`` changes nothing and exits 1 if a document is stale.

    python scripts/update_docs.py [--check]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def matrix_documents() -> dict[Path, str]:
    """Each document with a support-matrix block, and the text it should have."""
    from cann_attention import support
    out = {}
    readme = ROOT / "README.md"
    out[readme] = support.replace_block(readme.read_text(), support.markdown())
    for doc in sorted((ROOT / "docs").glob("*.md")):
        op = "npu_" + doc.stem
        text = doc.read_text()
        if support.BEGIN in text and op in support.OPS:
            out[doc] = support.replace_block(text, support.markdown([op]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    stale = [str(p.relative_to(ROOT)) for p, text in matrix_documents().items()
             if p.read_text() != text]
    if not a.check:
        for path, text in matrix_documents().items():
            path.write_text(text)
    generators = {"docs/performance.md": [ROOT / "benchmarks" / "performance_page.py"],
                  "the Ascend bounds of docs/<op>.md": [ROOT / "scripts" / "ascend_bounds.py",
                                                        "--check" if a.check else "--write"]}
    failed = []
    for what, (script, *args) in generators.items():
        args = args or (["--check"] if a.check else [])
        if subprocess.run([sys.executable, str(script), *args]).returncode:
            failed.append(what)
    if a.check and (stale or failed):
        print("stale:", ", ".join(stale + failed))
    elif failed:
        print("failed to write:", ", ".join(failed))
    return 1 if failed or (a.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
