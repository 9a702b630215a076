"""One install for the cann_attention operator package.

The repository keeps the shape of a CANN operator project (op_host/, op_kernel/, torch_binding/);
they install as one Python package:

    torch_binding/  ->  cann_attention             (the public face: torch.ops.custom.*)
    op_host/        ->  cann_attention.op_host     (parse -> check -> plan)
    op_kernel/      ->  cann_attention.op_kernel   (references, emulators, device kernels)

PyTorch is required but not pinned here: CPU-only machines install the CPU build first
(see README.md), so that pip never replaces it with a CUDA build. Triton and torch_npu are
optional and imported lazily.

The NPU binding (torch_binding/npu_extension/*.cpp -> cann_attention._npu_extension) is built
only where CANN is installed (ASCEND_HOME_PATH names a toolkit) and torch_npu imports; otherwise
it is skipped with one line on stderr (pip shows it with -v) and nothing else changes. CANN is
probed first and torch_npu is imported in a subprocess: without CANN, importing torch_npu breaks
``import torch``. Building it needs torch and torch_npu in the build environment:
``pip install -e . --no-build-isolation``.
"""
import os
import subprocess
import sys

from setuptools import find_packages, setup

ROOTS = {
    "cann_attention": "torch_binding",
    "cann_attention.op_host": "op_host",
    "cann_attention.op_kernel": "op_kernel",
}


NPU_SOURCES = ["torch_binding/npu_extension/module.cpp",
               "torch_binding/npu_extension/sparse_flash_attention.cpp",
               "torch_binding/npu_extension/lightning_indexer.cpp"]


def _note(message: str) -> None:
    sys.stderr.write(f"cann-attention setup: {message}\n")


def _cann_home() -> str | None:
    """The CANN toolkit named by ASCEND_HOME_PATH when it looks like one (its runtime library
    libascendcl.so, which torch_npu loads), else None (said on stderr)."""
    home = os.environ.get("ASCEND_HOME_PATH")
    if not home:
        _note("NPU binding skipped: ASCEND_HOME_PATH is not set (no CANN toolkit)")
        return None
    if not os.path.isfile(os.path.join(home, "lib64", "libascendcl.so")):
        _note(f"NPU binding skipped: ASCEND_HOME_PATH={home} has no lib64/libascendcl.so "
              "(not a CANN toolkit)")
        return None
    return home


def _torch_npu_dir() -> str | None:
    """torch_npu's package folder when ``import torch_npu`` works in this interpreter (tried in
    a subprocess), else None (said on stderr)."""
    probe = "import os, torch, torch_npu; print(os.path.dirname(torch_npu.__file__))"
    try:
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                              timeout=600)
    except (OSError, subprocess.SubprocessError) as e:
        _note(f"NPU binding skipped: could not probe torch_npu: {e}")
        return None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        _note(f"NPU binding skipped: import torch_npu failed ({last}); where torch_npu is "
              "installed, build isolation hides it: pip install -e . --no-build-isolation")
        return None
    return done.stdout.strip().splitlines()[-1]


def _npu_extension() -> tuple[list, dict]:
    """(ext_modules, cmdclass) of the NPU binding, or ([], {}) where it cannot be built."""
    if _cann_home() is None:
        return [], {}
    npu_dir = _torch_npu_dir()
    if npu_dir is None:
        return [], {}
    from torch.utils.cpp_extension import BuildExtension, CppExtension   # torch is here
    include = os.path.join(npu_dir, "include")
    extension = CppExtension(
        "cann_attention._npu_extension", NPU_SOURCES,
        include_dirs=[include, os.path.join(include, "third_party", "op-plugin"),
                      os.path.join(include, "third_party", "acl", "inc"),
                      os.path.join(include, "third_party", "hccl", "inc")],
        library_dirs=[os.path.join(npu_dir, "lib")], libraries=["torch_npu"],
        runtime_library_dirs=[os.path.join(npu_dir, "lib")])
    _note(f"building the NPU binding against torch_npu at {npu_dir}")
    return [extension], {"build_ext": BuildExtension}


def _packages():
    packages = []
    for name, folder in ROOTS.items():
        packages.append(name)
        packages.extend(f"{name}.{sub}" for sub in find_packages(folder))
    return packages


EXT_MODULES, CMDCLASS = _npu_extension()

setup(
    name="cann-attention",
    version="0.1.0",
    description="CANN attention operators (torch.ops.custom.*) with CPU emulation and GPU kernels",
    python_requires=">=3.10",
    packages=_packages(),
    package_dir=ROOTS,
    # the C++ tiling cores, compiled on first use (op_host/common/native.py)
    package_data={"cann_attention.op_host": ["*/*.h", "*/*.cpp", "common/cpp/*.h"],
                  "cann_attention.op_kernel": ["common/ascendc_twin/*.h",
                                               "common/ascendc_twin/twin/*.h",
                                               "*/ascendc/*.h", "*/ascendc/*.cpp"]},
    install_requires=["torch>=2.4"],
    # test: numpy is needed by Triton's interpreter, which runs the GPU kernel source on CPU
    extras_require={"test": ["pytest>=7", "numpy"], "gpu": ["triton>=3.0"]},
    ext_modules=EXT_MODULES,
    cmdclass=CMDCLASS,
)
