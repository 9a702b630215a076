"""Rewrite the generated parts of the documents: the support matrices of README.md and
docs/<op>.md (from the back-end registries) and docs/performance.md (from
benchmarks/results/*.json). ``--check`` changes nothing and exits 1 if a document is stale.

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
    page = [sys.executable, str(ROOT / "benchmarks" / "performance_page.py")]
    res = subprocess.run(page + (["--check"] if a.check else []))
    if a.check and (stale or res.returncode):
        print("stale:", ", ".join(stale + (["docs/performance.md"] if res.returncode else [])))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
