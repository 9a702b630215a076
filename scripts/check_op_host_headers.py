"""Syntax-check the CANN side of op_host (the OpDefs and the tiling adapters) against CANN's public
headers, on a machine without CANN: ``g++ -fsyntax-only`` on each source, with our own code held
to -Wall -Wextra -Werror (CANN's headers are included as system headers).

    python scripts/check_op_host_headers.py --metadef DIR --ge DIR --securec DIR [--asc-devkit DIR]

Each option is the root of a checkout of a public repository (nothing is downloaded here):

  --metadef     hicann/metadef                   register/op_def_registry.h, op_impl_registry.h,
                                                 exe_graph/runtime/*.h, graph/types.h
  --ge          hicann/ge                        graph/operator_reg.h and the graph headers that
                                                 register/op_def.h includes (inc/graph_metadef)
  --securec     openeuler-mirror/libboundscheck  securec.h, which metadef's exe_graph includes
  --asc-devkit  hicann/asc-devkit                tiling/platform/platform_ascendc.h (the tiling
                                                 adapters only; without it they are not checked)

platform_ascendc.h includes platform/soc_spec.h, which CANN installs but no public repository
holds; where no given root has it, an empty stand-in is put in its place (platform_ascendc.h
declares the one type of it that it uses itself), and the output says so. Exit status: 0 when
every checked source compiles, 1 when one does not, 2 on a bad argument.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPS = ("lightning_indexer", "sparse_flash_attention")
OUR_INCLUDES = (ROOT / "op_host" / "common" / "cpp", ROOT / "op_package")
# as CANN's build compiles the host libraries (op_package/CMakeLists.txt raises C++11 to 17)
FLAGS = ("-std=c++17", "-D_GLIBCXX_USE_CXX11_ABI=0", "-fsyntax-only", "-Wall", "-Wextra",
         "-Werror")
CLOSED_HEADER = "platform/soc_spec.h"

# include directories inside each checkout
LAYOUT = {
    "metadef": ("inc", "inc/external", "inc/external/asc"),
    "ge": ("inc/graph_metadef", "inc/graph_metadef/external"),
    "securec": ("include",),
    "asc_devkit": ("include/utils",),
}


def include_dirs(args: argparse.Namespace, names) -> list[Path]:
    dirs = []
    for name in names:
        root = getattr(args, name)
        for sub in LAYOUT[name]:
            path = Path(root) / sub
            if not path.is_dir():
                raise ValueError(f"--{name.replace('_', '-')} {root}: no {sub}/ (expected a "
                                 "checkout of its repository)")
            dirs.append(path)
    return dirs


def compile_one(cxx: str, source: Path, system_dirs: list[Path]) -> subprocess.CompletedProcess:
    cmd = [cxx, *FLAGS, *(f"-isystem{d}" for d in system_dirs),
           *(f"-I{d}" for d in OUR_INCLUDES), str(source)]
    return subprocess.run(cmd, capture_output=True, text=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metadef", required=True, help="checkout of hicann/metadef")
    parser.add_argument("--ge", required=True, help="checkout of hicann/ge")
    parser.add_argument("--securec", required=True,
                        help="checkout of openeuler-mirror/libboundscheck")
    parser.add_argument("--asc-devkit", dest="asc_devkit",
                        help="checkout of hicann/asc-devkit (for the tiling adapters)")
    parser.add_argument("--cxx", default="g++", help="C++ compiler (default: g++)")
    args = parser.parse_args(argv)
    if shutil.which(args.cxx) is None:
        print(f"check_op_host_headers: no C++ compiler {args.cxx!r}", file=sys.stderr)
        return 2

    try:
        base = include_dirs(args, ("metadef", "ge", "securec"))
        adapter_dirs = base + include_dirs(args, ("asc_devkit",)) if args.asc_devkit else None
    except ValueError as e:
        parser.error(str(e))
    failed = 0
    with tempfile.TemporaryDirectory() as stand_ins:
        if adapter_dirs is not None:
            if not any((d / CLOSED_HEADER).is_file() for d in adapter_dirs):
                stand_in = Path(stand_ins) / CLOSED_HEADER
                stand_in.parent.mkdir(parents=True)
                stand_in.write_text("// empty stand-in for a closed CANN header\n")
                adapter_dirs.append(Path(stand_ins))
                print(f"stand-in: {CLOSED_HEADER} (installed by CANN, in no public repository) "
                      "is an empty file for the tiling adapters")
        for op in OPS:
            for name in ("op_def.cpp", "tiling_adapter.cpp"):
                source = ROOT / "op_host" / op / name
                label = source.relative_to(ROOT)
                dirs = base if name == "op_def.cpp" else adapter_dirs
                if dirs is None:
                    print(f"not checked: {label} (needs --asc-devkit for "
                          "tiling/platform/platform_ascendc.h)")
                    continue
                result = compile_one(args.cxx, source, dirs)
                if result.returncode == 0:
                    print(f"ok: {label}")
                else:
                    failed += 1
                    print(f"FAILED: {label}\n{result.stderr}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
