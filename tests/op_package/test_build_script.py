"""The op package's build (op_package/build.sh) where there is no CANN: one line naming the
missing CANN and a non-zero exit. And, where the public CANN headers are at hand, the CANN side of
op_host (OpDefs, tiling adapters) compiles against them (scripts/check_op_host_headers.py)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD_SH = ROOT / "op_package" / "build.sh"
CHECK = ROOT / "scripts" / "check_op_host_headers.py"


def run_build(env_update: dict, drop=()) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(env_update)
    return subprocess.run(["bash", str(BUILD_SH)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


def assert_one_line_refusal(result: subprocess.CompletedProcess, *words: str) -> None:
    lines = (result.stdout + result.stderr).splitlines()
    assert result.returncode != 0
    assert len(lines) == 1, lines
    for word in ("CANN", "ASCEND_HOME_PATH", *words):
        assert word in lines[0], lines[0]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash on this machine")
@pytest.mark.parametrize("how", ["unset", "empty"])
def test_build_without_ascend_home_path_says_so_in_one_line(how):
    env = {"ASCEND_HOME_PATH": ""} if how == "empty" else {}
    assert_one_line_refusal(run_build(env, drop=("ASCEND_HOME_PATH",)), "not set")


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash on this machine")
def test_build_with_ascend_home_path_not_a_cann_install_says_so_in_one_line(tmp_path):
    assert_one_line_refusal(run_build({"ASCEND_HOME_PATH": str(tmp_path)}), str(tmp_path))


def test_op_host_sources_compile_against_the_public_cann_headers():
    """CANN_METADEF, CANN_GE, CANN_SECUREC: checkouts of hicann/metadef, hicann/ge and
    openeuler-mirror/libboundscheck; CANN_ASC_DEVKIT (optional): hicann/asc-devkit, for the
    tiling adapters."""
    if not os.environ.get("CANN_METADEF"):
        pytest.skip("CI cannot download the public CANN metadef headers (set CANN_METADEF, "
                    "CANN_GE, CANN_SECUREC and optionally CANN_ASC_DEVKIT to checkouts)")
    if shutil.which("g++") is None:
        pytest.skip("no C++ compiler (g++) on this machine")
    missing = [name for name in ("CANN_GE", "CANN_SECUREC") if not os.environ.get(name)]
    if missing:
        pytest.fail(f"CANN_METADEF is set but {' and '.join(missing)} not: metadef's headers "
                    "include hicann/ge's graph headers and securec.h")
    args = [sys.executable, str(CHECK), "--metadef", os.environ["CANN_METADEF"],
            "--ge", os.environ["CANN_GE"], "--securec", os.environ["CANN_SECUREC"]]
    if os.environ.get("CANN_ASC_DEVKIT"):
        args += ["--asc-devkit", os.environ["CANN_ASC_DEVKIT"]]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
