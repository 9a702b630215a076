"""The generated parts of the documents match their sources: the support matrices of README.md
and docs/<op>.md (the back-end registries) and docs/performance.md (the results files)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import cann_attention
from cann_attention import support

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("update_docs", ROOT / "scripts" / "update_docs.py")
update_docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(update_docs)


def test_support_matrices_are_up_to_date():
    stale = [str(path.relative_to(ROOT)) for path, text in update_docs.matrix_documents().items()
             if path.read_text() != text]
    assert not stale, f"run `python scripts/update_docs.py`: stale {stale}"


def test_every_op_document_carries_its_matrix():
    docs = update_docs.matrix_documents()
    for op in cann_attention.OPS:
        doc = ROOT / "docs" / (op.removeprefix("npu_") + ".md")
        assert doc in docs, f"{doc} has no {support.BEGIN} block"
        for backend in cann_attention.OPS[op].backends:
            assert f"| `{op}` | `{backend.name}` |" in docs[doc]


def test_every_registered_backend_is_loadable():
    """A registry entry with a runner names a module and function that exist (importing them
    needs Triton for the GPU back ends, which CI installs)."""
    for op in cann_attention.OPS.values():
        for backend in op.backends:
            if backend.runner is not None:
                assert callable(backend.load()), f"{op.name}: {backend.name}"


def test_ci_runs_exactly_the_readme_commands():
    """.ci/run evaluates README's two marked commands and installs nothing of its own."""
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    for marker in ("install-command", "test-command"):
        assert f"<!-- {marker} -->" in readme
        assert f"command_after {marker}" in ci
    assert "pip install" not in ci and "pip " not in ci
    install = readme.split("<!-- install-command -->")[1].split("```")[1]
    assert '-e ".[test,gpu]"' in install and "examples/" in install


def test_readme_lists_every_environment_variable():
    from cann_attention.config import ENVIRONMENT
    readme = (ROOT / "README.md").read_text()
    assert [name for name in ENVIRONMENT if f"`{name}" not in readme] == []
