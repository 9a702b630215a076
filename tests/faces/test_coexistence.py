"""A CANN op package that defines ``custom::npu_*`` itself (cann-recipes' custom_ops library) and
this package, in both import orders: identical schemas share the op (our kernel serves CPU
tensors), a different schema is named in one warning and one error, and nothing crashes."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from test_schemas import CANN_RECIPES

CANN_PACKAGE = """
import torch
cann_lib = torch.library.Library("custom", "FRAGMENT")   # stands in for TORCH_LIBRARY(custom)
cann_lib.define({schema!r})
"""
CALL = """
from testing.sparse_flash_attention_cases import make_case
case = make_case(B=1, S1=2, S2=32, N1=2, K=4)
kw = {k: v for k, v in case.kwargs.items()
      if k not in ("attention_mode", "return_softmax_lse", "sinks")}
out = torch.ops.custom.npu_sparse_flash_attention(*case.args, **kw)
want = torch.ops.cann_attention.npu_sparse_flash_attention(*case.args, **case.kwargs)[0]
assert torch.equal(out, want), "the shared op did not run our kernel"
print("OK")
"""
SFA = CANN_RECIPES["npu_sparse_flash_attention"].replace("custom::", "")
OTHER = SFA.replace("int sparse_mode=3) -> Tensor", "int sparse_mode=3, int extra=0) -> Tensor")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-W", "always", "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=300,
                          cwd=__file__.rsplit("/faces/", 1)[0])


def test_cann_package_first_same_schema():
    r = _run(CANN_PACKAGE.format(schema=SFA) + "import cann_attention\n" + CALL)
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr
    assert "SchemaConflictWarning" not in r.stderr


def test_cann_package_first_other_schema_is_named_not_crashed():
    code = CANN_PACKAGE.format(schema=OTHER) + """
import cann_attention
from cann_attention.library import CONFLICTS
print(CONFLICTS["custom::npu_sparse_flash_attention"])
from testing.sparse_flash_attention_cases import make_case
case = make_case(B=1, S1=2, S2=32, N1=2, K=4)
try:
    torch.ops.custom.npu_sparse_flash_attention(*case.args[:6])
except RuntimeError as e:
    print("REFUSED", e)
print("OTHERS", torch.ops.custom.npu_lightning_indexer.default._schema.name)
"""
    r = _run(code)
    assert r.returncode == 0, r.stderr
    assert "SchemaConflictWarning" in r.stderr and "theirs has the extra arguments ['extra']" \
        in r.stderr
    assert "REFUSED npu_sparse_flash_attention: schema: custom::npu_sparse_flash_attention is " \
        "already registered" in r.stdout
    assert "OTHERS custom::npu_lightning_indexer" in r.stdout      # the other faces are ours


def test_cann_package_after_us_through_make_way():
    code = """
import torch
import cann_attention
with cann_attention.make_way("custom"):
""" + textwrap.indent(CANN_PACKAGE.format(schema=SFA), "    ") + CALL
    r = _run(code)
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr


def test_cann_package_after_us_without_make_way_is_refused_by_torch():
    """What make_way is for: an op can be defined once (a CANN library loaded this way fails)."""
    r = _run("import torch\nimport cann_attention\n" + CANN_PACKAGE.format(schema=SFA))
    assert r.returncode != 0 and "multiple times" in r.stderr
