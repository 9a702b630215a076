"""One install for the cann_attention operator package.

The repository keeps the shape of a CANN operator project (op_host/, op_kernel/, torch_binding/);
they install as one Python package:

    torch_binding/  ->  cann_attention             (the public face: torch.ops.custom.*)
    op_host/        ->  cann_attention.op_host     (parse -> check -> plan)
    op_kernel/      ->  cann_attention.op_kernel   (references, emulators, device kernels)

PyTorch is required but not pinned here: CPU-only machines install the CPU build first
(see README.md), so that pip never replaces it with a CUDA build. Triton and torch_npu are
optional and imported lazily.
"""
from setuptools import find_packages, setup

ROOTS = {
    "cann_attention": "torch_binding",
    "cann_attention.op_host": "op_host",
    "cann_attention.op_kernel": "op_kernel",
}


def _packages():
    packages = []
    for name, folder in ROOTS.items():
        packages.append(name)
        packages.extend(f"{name}.{sub}" for sub in find_packages(folder))
    return packages


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
)
