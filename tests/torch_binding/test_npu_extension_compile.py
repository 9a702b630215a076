"""The NPU binding (torch_binding/npu_extension/) without an NPU: it compiles against the headers
of the torch-npu 2.13.0 wheel (downloaded into a cache and read as a zip, never installed:
without CANN it breaks ``import torch``) and torch's, and needs only what the wheel's
libtorch_npu.so exports; its output shapes are params.py's; the argument lists of its kernels,
of their aclnn calls and of the Python schemas are the OpDefs'; the back end's ``run`` passes a
checked call in that order; the op package is detected from fake vendor folders; setup.py skips
the binding, without importing torch, where CANN is absent. Nothing here runs it on an NPU."""
from __future__ import annotations

import dataclasses
import inspect
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import types
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
import torch.utils.cpp_extension as cpp_extension

import cann_attention
from cann_attention.op_host.common import capabilities, native
from cann_attention.op_host.lightning_indexer import params as li_params
from cann_attention.op_host.sparse_flash_attention import params as sfa_params
from cann_attention.op_kernel.common import ascendc_npu
from testing import torch_npu_wheel
from testing.calls import checked
from testing.npu_calls import li_call, sfa_call
from testing.torch_npu_wheel import TORCH_NPU

ROOT = Path(__file__).resolve().parents[2]
BINDING = ROOT / "torch_binding" / "npu_extension"
SOURCES = ("module.cpp", "sparse_flash_attention.cpp", "lightning_indexer.cpp")
KERNELS = {"npu_sparse_flash_attention": ("sparse_flash_attention.cpp", "SparseFlashAttention"),
           "npu_lightning_indexer": ("lightning_indexer.cpp", "LightningIndexer")}
OP_DEFS = {op: ROOT / "op_host" / op[len("npu_"):] / "op_def.cpp" for op in KERNELS}
OUTPUTS = {"npu_sparse_flash_attention": ["attention_out", "softmax_max", "softmax_sum"],
           "npu_lightning_indexer": ["sparse_indices", "sparse_values"]}
RENAMED = {"return_values": "return_value"}   # OpDef (CANN) name -> schema (torch_npu) name

# the include folders setup.py gives the extension, under the wheel's torch_npu/include
NPU_INCLUDES = ("", "third_party/op-plugin", "third_party/acl/inc", "third_party/hccl/inc")


def _compiler() -> str:
    cxx = native.compiler()
    if cxx is None:
        pytest.skip("no C++ compiler (g++) on this machine")
    return cxx


@pytest.fixture(scope="module")
def wheel_tree(tmp_path_factory) -> Path:
    """The wheel's torch_npu/include tree and lib/libtorch_npu.so, extracted into a temporary
    folder (nothing downloaded is kept in the repository). The headers are complete for the
    binding: no stand-in is generated (the CANN headers they include, acl/*.h, are in the
    wheel)."""
    wheel = torch_npu_wheel.wheel()
    if wheel is None:
        pytest.skip(f"the {TORCH_NPU} wheel could not be downloaded (no network or no index)")
    out = tmp_path_factory.mktemp("torch_npu_wheel")
    with zipfile.ZipFile(wheel) as z:
        members = [n for n in z.namelist() if n.startswith("torch_npu/include/")
                   or n == "torch_npu/lib/libtorch_npu.so"]
        z.extractall(out, members)
    return out / "torch_npu"


def compile_command(cxx: str, source: Path, out: Path, wheel: Path) -> list[str]:
    """What torch's BuildExtension and setup.py give g++ (std, ABI, defines, include folders)."""
    python_include = sysconfig.get_paths()["include"]
    if not (Path(python_include) / "Python.h").is_file():
        pytest.skip(f"no Python.h in {python_include} (Python development headers)")
    includes = [*cpp_extension.include_paths(), python_include,
                *(str(wheel / "include" / sub) for sub in NPU_INCLUDES)]
    return [cxx, "-std=c++20", "-fPIC", "-O0", "-c", str(source), "-o", str(out),
            "-DTORCH_API_INCLUDE_EXTENSION_H", "-DTORCH_EXTENSION_NAME=_npu_extension",
            f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}",
            *(f"-I{p}" for p in includes)]


@pytest.fixture(scope="module")
def objects(wheel_tree, tmp_path_factory) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    """Each source compiled to an object file (``-c``: the checks of ``-fsyntax-only`` and code
    generation), two at a time."""
    cxx = _compiler()
    out = tmp_path_factory.mktemp("npu_binding_objects")

    def build(name):
        obj = out / name.replace(".cpp", ".o")
        done = subprocess.run(compile_command(cxx, BINDING / name, obj, wheel_tree),
                              capture_output=True, text=True, timeout=900)
        return name, (obj, done)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(build, SOURCES))


@pytest.mark.parametrize("source", SOURCES)
def test_source_compiles_against_the_wheel_headers(source, objects):
    obj, done = objects[source]
    assert done.returncode == 0, f"{source} does not compile:\n{done.stderr[-6000:]}"
    assert obj.is_file()
    ours = [line for line in done.stderr.splitlines()
            if "warning" in line and "npu_extension" in line.split(":")[0]]
    assert not ours, "\n".join(ours)


def _defined(library: Path) -> set[str]:
    done = subprocess.run(["nm", "-D", "--defined-only", str(library)], capture_output=True,
                          text=True, check=True)
    return {line.split()[-1].split("@")[0] for line in done.stdout.splitlines() if line.strip()}


def test_binding_needs_only_what_libtorch_npu_and_torch_export(objects, wheel_tree):
    """Every symbol the objects leave undefined is exported by the wheel's libtorch_npu.so,
    torch's libraries or the C/C++ runtime (Python's API comes from the interpreter): the
    extension links and its EXEC_NPU_CMD_EXT calls resolve (op_api_common.h's EXEC_NPU_CMD
    would need g_hash_buf and g_hash_offset, which libtorch_npu.so does not export)."""
    if shutil.which("nm") is None:
        pytest.skip("no nm (binutils) on this machine")
    if any(done.returncode for _, done in objects.values()):
        pytest.skip("a source does not compile (test_source_compiles_against_the_wheel_headers)")
    undefined = set()
    for obj, _ in objects.values():
        done = subprocess.run(["nm", "-u", str(obj)], capture_output=True, text=True, check=True)
        undefined |= {line.split()[-1] for line in done.stdout.splitlines() if line.strip()}
    torch_lib = Path(torch.__file__).parent / "lib"
    libraries = [wheel_tree / "lib" / "libtorch_npu.so", *sorted(torch_lib.glob("lib*.so"))]
    cxx = _compiler()
    for runtime in ("libstdc++.so.6", "libc.so.6", "libm.so.6", "libgcc_s.so.1"):
        path = subprocess.run([cxx, f"-print-file-name={runtime}"], capture_output=True,
                              text=True).stdout.strip()
        if os.path.isabs(path):
            libraries.append(Path(path))
    exported = set().union(*(_defined(lib) for lib in libraries))
    linker = {"_GLOBAL_OFFSET_TABLE_", "__dso_handle", "__tls_get_addr"}
    missing = sorted(s for s in undefined - exported - linker
                     if not s.startswith(("Py", "_Py")))
    assert not missing, f"undefined and exported by none of {[p.name for p in libraries]}: " \
                        f"{missing}"
    npu_exports = _defined(wheel_tree / "lib" / "libtorch_npu.so")
    assert "_Z10GetApiFuncPKcS0_RPvS2_" in undefined & npu_exports    # GetApiFunc: the lookup


# ---- output shapes -----------------------------------------------------------------------------
SHAPE_CASES = [  # (query shape, layout_query, sparse_count, flag)
    ((2, 3, 128, 576), "BSND", 2048, True), ((2, 3, 128, 576), "BSND", 2048, False),
    ((7, 64, 576), "TND", 16, True), ((7, 64, 576), "TND", 16, False),
    ((1, 1, 1, 512), "BSND", 1, True), ((0, 5, 128), "TND", 8, True),
    ((4, 0, 16, 128), "BSND", 3072, True), ((3, 2, 64, 128), "BSND", 7, False),
]


def test_output_shapes_are_params_output_shapes(tmp_path):
    """output_shapes.h (what the kernels allocate) against params.py, built with g++ alone."""
    cxx = _compiler()
    lines = []
    for shape, layout, count, flag in SHAPE_CASES:
        q = "{" + ", ".join(map(str, shape)) + "}"
        tnd = "true" if layout == "TND" else "false"
        b = "true" if flag else "false"
        lines += [f"Print(SoftmaxLseShape({q}, {tnd}, {b}));",
                  f"Print(SparseIndicesShape({q}, {tnd}, {count}));",
                  f"Print(SparseValuesShape({q}, {tnd}, {count}, {b}));"]
    driver = tmp_path / "shapes.cpp"
    driver.write_text(
        '#include <cstdio>\n#include "output_shapes.h"\nusing namespace cann_attention_npu;\n'
        'static void Print(const Shape& s) {\n  for (size_t i = 0; i < s.size(); ++i)\n'
        '    std::printf(i ? ",%lld" : "%lld", static_cast<long long>(s[i]));\n'
        '  std::printf("\\n");\n}\nint main() {\n' + "\n".join(lines) + "\n  return 0;\n}\n")
    exe = tmp_path / "shapes"
    subprocess.run([cxx, "-std=c++17", "-Wall", "-Werror", f"-I{BINDING}", str(driver), "-o",
                    str(exe)], check=True, capture_output=True, text=True)
    got = subprocess.run([str(exe)], check=True, capture_output=True,
                         text=True).stdout.splitlines()
    want = []
    for shape, layout, count, flag in SHAPE_CASES:
        indices, values = li_params.output_shapes(shape, layout, count, flag)
        want += [sfa_params.lse_shape(shape, layout, flag), indices, values]
    assert got == [",".join(map(str, s)) for s in want]


# ---- argument lists ----------------------------------------------------------------------------
def op_def_order(op: str) -> tuple[list[str], list[str], list[str], str]:
    """(inputs, attributes, outputs, OpType) of the op's OpDef, in op_def.cpp's order (an input
    list written as ``for (const char* x : {"a", "b"}) { Input(x)...`` included)."""
    text = re.sub(r"//[^\n]*", "", OP_DEFS[op].read_text())
    op_type = re.search(r"class (\w+) : public OpDef", text).group(1)
    found = []
    for m in re.finditer(r'\b(Input|Output|Attr)\("(\w+)"\)', text):
        found.append((m.start(), m.group(1), [m.group(2)]))
    for m in re.finditer(r'for \(const char\* (\w+) : \{([^}]*)\}\)\s*\{\s*(Input|Output)\(\1\)',
                         text):
        found.append((m.start(), m.group(3), re.findall(r'"(\w+)"', m.group(2))))
    found.sort()
    kinds = {"Input": [], "Attr": [], "Output": []}
    for _, kind, names in found:
        kinds[kind] += names
    return kinds["Input"], kinds["Attr"], kinds["Output"], op_type


def _schema(op: str):
    return torch._C.parse_schema(f"{ascendc_npu.NAMESPACE}::{ascendc_npu.OPS[op].schema}")


@pytest.mark.parametrize("op", sorted(KERNELS))
def test_schema_is_the_opdef_order(op):
    inputs, attrs, outputs, op_type = op_def_order(op)
    schema = _schema(op)
    assert [a.name for a in schema.arguments] == [RENAMED.get(n, n) for n in inputs + attrs]
    assert len(schema.returns) == len(outputs) and outputs == OUTPUTS[op]
    assert ascendc_npu.OPS[op].op_type == op_type
    # CANN names the generated header after the OpType in snake case
    assert ascendc_npu.OPS[op].header == "aclnn_" + re.sub(r"(?<!^)(?=[A-Z])", "_",
                                                           op_type).lower() + ".h"
    kinds = {a.name: str(a.type) for a in schema.arguments}
    assert all(kinds[n] == "Tensor" or kinds[n] == "Optional[Tensor]" for n in inputs)


CPP_TYPES = {"Tensor": "const at::Tensor&", "Optional[Tensor]": "const c10::optional<at::Tensor>&",
             "float": "double", "int": "int64_t", "str": "c10::string_view", "bool": "bool"}


def _kernel_source(op: str) -> str:
    return re.sub(r"//[^\n]*", "", (BINDING / KERNELS[op][0]).read_text())


@pytest.mark.parametrize("op", sorted(KERNELS))
def test_kernel_takes_the_schema_arguments(op):
    """The C++ kernel's parameters: the schema's names, in its order, of the C++ types the
    dispatcher maps its types to (it checks the types again when the binding loads)."""
    source, function = KERNELS[op]
    text = _kernel_source(op)
    m = re.search(rf"> {function}\((.*?)\)\s*\{{", text, re.S)
    params = [" ".join(p.split()) for p in m.group(1).split(",")]
    got = [(p.rsplit(" ", 1)[1], p.rsplit(" ", 1)[0]) for p in params]
    want = [(a.name, CPP_TYPES[str(a.type)]) for a in _schema(op).arguments]
    assert got == want
    assert f'm.impl("{ascendc_npu.OPS[op].name}", TORCH_FN(cann_attention_npu::{function}))' \
        in text


@pytest.mark.parametrize("op", sorted(KERNELS))
def test_aclnn_call_passes_inputs_attributes_outputs(op):
    """EXEC_NPU_CMD_EXT(aclnn<OpType>, ...): the OpDef's inputs, attributes (strings as their
    char* copies) and outputs, in order: the generated aclnn signature's order."""
    inputs, attrs, outputs, op_type = op_def_order(op)
    text = _kernel_source(op)
    m = re.search(r"EXEC_NPU_CMD_EXT\((\w+),(.*?)\);", text, re.S)
    assert m.group(1) == f"aclnn{op_type}" == ascendc_npu.OPS[op].aclnn
    args = [re.sub(r"_ptr$", "", a.strip()) for a in m.group(2).split(",")]
    assert args == [RENAMED.get(n, n) for n in inputs + attrs] + outputs
    strings = [a.name for a in _schema(op).arguments if str(a.type) == "str"]
    assert all(f"char* {s}_ptr = {s}_str.data();" in text for s in strings)


def test_module_lists_the_ops_the_python_side_expects():
    text = (BINDING / "module.cpp").read_text()
    listed = dict(re.findall(r'ops\["(\w+)"\] = "(\w+)";', text))
    assert listed == {spec.name: spec.aclnn for spec in ascendc_npu.OPS.values()}


# ---- the back end's run ------------------------------------------------------------------------
@pytest.fixture
def stand_in_kernels():
    """CPU kernels for the binding's schemas that call the package's own op by the schema's
    argument names: what a call's positional arguments mean to the binding, checked on CPU."""
    ascendc_npu.define_schemas()
    lib = torch.library.Library(ascendc_npu.NAMESPACE, "IMPL")
    for op, spec in ascendc_npu.OPS.items():
        names = [a.name for a in _schema(op).arguments]

        def kernel(*args, _op=op, _names=names):
            return getattr(torch.ops.cann_attention, _op)(**dict(zip(_names, args)))

        lib.impl(spec.name, kernel, "CPU")
    yield
    lib._destroy()


@pytest.mark.parametrize("op, call", [("npu_sparse_flash_attention", sfa_call),
                                      ("npu_lightning_indexer", li_call)])
def test_run_passes_a_checked_call_in_schema_order(op, call, stand_in_kernels):
    args, kwargs = call()
    p, tensors = checked(op, *args, **kwargs)
    got = ascendc_npu.run(p, op, tensors)
    want = getattr(torch.ops.cann_attention, op)(*args, **kwargs)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)


# ---- detection ---------------------------------------------------------------------------------
def vendor(root: Path, name: str, headers=("aclnn_cann_attention_lightning_indexer.h",
                                           "aclnn_cann_attention_sparse_flash_attention.h"), lib=True) -> Path:
    folder = root / name
    (folder / "op_api" / "include").mkdir(parents=True)
    (folder / "op_api" / "lib").mkdir(parents=True)
    for h in headers:
        (folder / "op_api" / "include" / h).write_text("// generated\n")
    if lib:
        (folder / "op_api" / "lib" / "libcust_opapi.so").write_bytes(b"")
    return folder


def opp(tmp_path: Path, load_priority: str | None) -> Path:
    root = tmp_path / "opp"
    (root / "vendors").mkdir(parents=True, exist_ok=True)
    if load_priority is not None:
        (root / "vendors" / "config.ini").write_text(f"load_priority={load_priority}\n")
    return root


LI, SFA = "npu_lightning_indexer", "npu_sparse_flash_attention"


def test_nothing_installed(tmp_path):
    for custom, path in ((None, None), ("", str(opp(tmp_path, "customize")))):
        reason = ascendc_npu.op_package_missing(LI, custom, path)
        assert "our op package (vendor cann_attention, with CannAttentionLightningIndexer) is not installed" \
            in reason


def test_installed_in_the_opp_vendors(tmp_path):
    root = opp(tmp_path, "customize,cann_attention")
    vendor(root / "vendors", "cann_attention")
    assert ascendc_npu.op_package_missing(LI, None, str(root)) is None
    assert ascendc_npu.op_package_missing(SFA, None, str(root)) is None


def test_installed_but_not_loaded_by_config_ini(tmp_path):
    """torch_npu searches only the vendors config.ini's load_priority names."""
    root = opp(tmp_path, "customize")
    vendor(root / "vendors", "cann_attention")
    assert "is not installed" in ascendc_npu.op_package_missing(LI, None, str(root))
    root2 = opp(tmp_path / "b", None)
    vendor(root2 / "vendors", "cann_attention")
    assert "is not installed" in ascendc_npu.op_package_missing(LI, None, str(root2))


def test_installed_with_install_path(tmp_path):
    """--install-path DIR: its set_env.bash puts DIR/vendors/cann_attention on
    ASCEND_CUSTOM_OPP_PATH, which comes before ASCEND_OPP_PATH's vendors."""
    ours = vendor(tmp_path / "mine" / "vendors", "cann_attention")
    custom = f"{tmp_path / 'nothing'}:{ours}"
    assert ascendc_npu.op_package_missing(SFA, custom, None) is None
    assert ascendc_npu.op_package_missing(SFA, custom, str(opp(tmp_path, "x"))) is None


def test_a_package_without_the_op(tmp_path):
    root = opp(tmp_path, "cann_attention")
    vendor(root / "vendors", "cann_attention", headers=("aclnn_cann_attention_lightning_indexer.h",))
    assert ascendc_npu.op_package_missing(LI, None, str(root)) is None
    reason = ascendc_npu.op_package_missing(SFA, None, str(root))
    assert "aclnn_cann_attention_sparse_flash_attention.h" in reason and "not installed" in reason


def test_another_vendor_first_with_the_same_op(tmp_path):
    """Another vendor before ours that provides the entry would run instead: refused, named."""
    root = opp(tmp_path, "other,cann_attention")
    vendor(root / "vendors", "other", headers=("aclnn_cann_attention_sparse_flash_attention.h",))
    vendor(root / "vendors", "cann_attention")
    reason = ascendc_npu.op_package_missing(SFA, None, str(root))
    assert "vendors/other comes before cann_attention" in reason
    assert "aclnnCannAttentionSparseFlashAttention" in reason
    assert ascendc_npu.op_package_missing(LI, None, str(root)) is None   # other lacks it
    custom = str(vendor(tmp_path / "c", "other2", headers=("aclnn_cann_attention_lightning_indexer.h",)))
    assert "other2 comes before" in ascendc_npu.op_package_missing(LI, custom, str(root))


def test_a_vendor_without_its_library_is_skipped(tmp_path):
    root = opp(tmp_path, "other,cann_attention")
    vendor(root / "vendors", "other", lib=False)
    vendor(root / "vendors", "cann_attention")
    assert ascendc_npu.op_package_missing(SFA, None, str(root)) is None


@pytest.fixture
def fresh_detection():
    ascendc_npu.clear_cache()
    ascendc_npu._load.cache_clear()
    yield
    ascendc_npu.clear_cache()
    ascendc_npu._load.cache_clear()


def test_unavailable_without_torch_npu(fresh_detection):
    if "torch_npu" in sys.modules:
        pytest.skip("torch_npu is loaded in this process")
    assert ascendc_npu.unavailable(LI) == "not available: torch_npu is not loaded"


def test_unavailable_reasons_in_order(tmp_path, monkeypatch, fresh_detection):
    """With torch_npu loaded (a stand-in module): the op package first, then the binding."""
    monkeypatch.setitem(sys.modules, "torch_npu", types.ModuleType("torch_npu"))
    root = opp(tmp_path, "cann_attention")
    monkeypatch.setenv("ASCEND_OPP_PATH", str(root))
    monkeypatch.delenv("ASCEND_CUSTOM_OPP_PATH", raising=False)
    assert "is not installed" in ascendc_npu.unavailable(LI)
    vendor(root / "vendors", "cann_attention")
    assert "is not installed" in ascendc_npu.unavailable(LI)      # detection is cached...
    ascendc_npu.clear_cache()                                      # ...until cleared
    reason = ascendc_npu.unavailable(LI)
    assert reason.startswith("not available: the NPU binding cann_attention._npu_extension is "
                             "not built")


# ---- the registry ------------------------------------------------------------------------------
def test_registry_entry_serves_npu_tensors_through_its_device_entry(tmp_path, monkeypatch,
                                                                    fresh_detection):
    """An ``ascendc`` entry with an ``on_device`` NPU entry (capabilities.ascendc_op_package):
    NPU calls are verified and planned by that entry; other devices by the entry itself."""
    twin = next(b for b in cann_attention.OPS[LI].backends if b.name == "ascendc")
    npu = capabilities.ascendc_op_package(LI, twin.dtypes, "our op package on NPU",
                                          rule=twin.rule)
    entry = dataclasses.replace(twin, on_device=(("npu", npu),))
    assert entry.for_device("npu") is npu and entry.for_device("cpu") is entry
    assert not npu.emulates and npu.runner == "common.ascendc_npu:run"
    assert npu.plan(None, None) == LI and npu.load() is ascendc_npu.run
    assert entry.verify(None, "npu", torch.bfloat16) == "not available: torch_npu is not loaded"
    monkeypatch.setitem(sys.modules, "torch_npu", types.ModuleType("torch_npu"))
    monkeypatch.delenv("ASCEND_CUSTOM_OPP_PATH", raising=False)
    monkeypatch.setenv("ASCEND_OPP_PATH", str(opp(tmp_path, "cann_attention")))
    assert "is not installed" in entry.verify(None, "npu", torch.bfloat16)
    args, kwargs = li_call()
    params, _ = checked(LI, *args, **kwargs)
    assert entry.verify(params, "cpu", torch.bfloat16) == twin.verify(params, "cpu",
                                                                      torch.bfloat16)


def test_device_entries_need_the_pipeline_to_take_them():
    """An entry with ``on_device`` entries verifies through them; the pipeline must then plan
    and run the device's entry too (``.for_device`` in OpDef.static), not the CPU one."""
    from cann_attention import pipeline
    wired = [(op.name, b.name) for op in cann_attention.OPS.values() for b in op.backends
             if b.on_device]
    if wired:
        assert ".for_device(" in inspect.getsource(pipeline.OpDef.static), wired


# ---- setup.py ----------------------------------------------------------------------------------
@pytest.mark.parametrize("home", [None, "no-cann"])
def test_setup_skips_the_binding_without_cann(home, tmp_path):
    """Without a CANN toolkit setup.py says so on stderr, builds no extension and never imports
    torch (CI's build-isolated install has no torch)."""
    env = {k: v for k, v in os.environ.items() if k != "ASCEND_HOME_PATH"}
    if home:
        env["ASCEND_HOME_PATH"] = str(tmp_path / home)
    probe = ("import runpy, sys; sys.argv = ['setup.py', '--name']; "
             "g = runpy.run_path('setup.py'); "
             "print('torch' in sys.modules, g['EXT_MODULES'], g['CMDCLASS'])")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "False [] {}"
    why = "ASCEND_HOME_PATH is not set" if home is None else "has no lib64/libascendcl.so"
    assert "cann-attention setup: NPU binding skipped: " in done.stderr and why in done.stderr
