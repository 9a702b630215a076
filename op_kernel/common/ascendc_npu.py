"""The ``ascendc`` back end on NPU tensors: our op package's aclnn entries, called through the C++
NPU binding.

The binding (``torch_binding/npu_extension/``, built by setup.py as
``cann_attention._npu_extension`` only where torch_npu and CANN are installed) implements, for
NPU tensors, one torch op per OpType of the op package (``op_package/``, vendor
``cann_attention``): ``cann_attention::_aclnn_<op>``, whose schema is ``AclnnOp.schema`` below
(the OpDef's inputs, then its attributes, in ``op_host/<op>/op_def.cpp``'s order; returning its
outputs). The schemas are written here once; the C++ kernels only implement them, and the
dispatcher refuses a C++ signature that differs when the binding loads.

NEVER RUN: no machine this was written on has an NPU, CANN or torch_npu. What is verified (CPU,
tests/torch_binding/test_npu_extension_compile.py): the binding compiles against the torch-npu
2.13.0 wheel's headers and links only against what its libtorch_npu.so exports; its output
shapes equal params.py's; the argument lists of the schemas, the C++ kernels and their aclnn
calls equal the OpDefs'; ``run`` passes a checked call's arguments in that order; the detection
rule on fake vendor folders.

Detection (``op_package_missing``): torch_npu resolves ``aclnn<OpType>`` in the first custom
vendor whose ``op_api/lib/libcust_opapi.so`` has it, searching each ``ASCEND_CUSTOM_OPP_PATH``
entry (a vendor folder), then ``$ASCEND_OPP_PATH/vendors/<name>`` for the names of
``load_priority`` in ``vendors/config.ini``, in that order, and only then CANN's own
``libopapi.so``. Our OpTypes carry the prefix ``CannAttention`` so that their entries never
shadow CANN's built-in ``aclnnSparseFlashAttention`` / ``aclnnLightningIndexer``, which
torch_npu's own ops call (for SFA with another argument list: no sinks). So the op package
counts as installed for an op when the first of those vendor folders that holds both
``op_api/lib/libcust_opapi.so`` and the op's generated header ``op_api/include/aclnn_<op>.h`` is
our vendor, ``cann_attention``. Otherwise the back end is unavailable, with the reason, and
dispatch goes on to torch_npu's built-in op (the ``torch_npu`` back end) or refuses.
"""
from __future__ import annotations

import functools
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

VENDOR = "cann_attention"                  # op_package/build.sh's default vendor name
NAMESPACE = "cann_attention"
EXTENSION = "cann_attention._npu_extension"


@dataclass(frozen=True)
class AclnnOp:
    op_type: str          # the OpDef's OpType: the entries are aclnn<OpType>[GetWorkspaceSize]
    header: str           # the header CANN generates for it in <vendor>/op_api/include/
    schema: str           # the torch op the binding implements (names: the params' fields)

    @property
    def name(self) -> str:
        return self.schema.split("(")[0]

    @property
    def aclnn(self) -> str:
        return "aclnn" + self.op_type


OPS = {
    "npu_sparse_flash_attention": AclnnOp(
        "CannAttentionSparseFlashAttention", "aclnn_cann_attention_sparse_flash_attention.h",
        "_aclnn_sparse_flash_attention(Tensor query, Tensor key, Tensor value, "
        "Tensor sparse_indices, Tensor? block_table, Tensor? actual_seq_lengths_query, "
        "Tensor? actual_seq_lengths_kv, Tensor? query_rope, Tensor? key_rope, Tensor? sinks, "
        "float scale_value, int sparse_block_size, str layout_query, str layout_kv, "
        "int sparse_mode, int pre_tokens, int next_tokens, int attention_mode, "
        "bool return_softmax_lse) -> (Tensor, Tensor, Tensor)"),
    "npu_lightning_indexer": AclnnOp(
        "CannAttentionLightningIndexer", "aclnn_cann_attention_lightning_indexer.h",
        "_aclnn_lightning_indexer(Tensor query, Tensor key, Tensor weights, "
        "Tensor? actual_seq_lengths_query, Tensor? actual_seq_lengths_key, "
        "Tensor? block_table, str layout_query, str layout_key, int sparse_count, "
        "int sparse_mode, int pre_tokens, int next_tokens, bool return_value) "
        "-> (Tensor, Tensor)"),
}


# ---- detection ---------------------------------------------------------------------------------
def vendor_folders(custom_opp_path: str | None, opp_path: str | None) -> list[Path]:
    """The custom vendor folders in the order torch_npu searches them for an aclnn entry: each
    entry of ``ASCEND_CUSTOM_OPP_PATH`` (``custom_opp_path``), then
    ``<opp_path>/vendors/<name>`` for each name of ``load_priority`` in
    ``<opp_path>/vendors/config.ini``."""
    folders = [Path(p) for p in (custom_opp_path or "").split(":") if p]
    if opp_path:
        vendors = Path(opp_path) / "vendors"
        try:
            lines = (vendors / "config.ini").read_text().splitlines()
        except OSError:
            lines = []
        for line in lines:
            if line.startswith("load_priority="):
                names = line[len("load_priority="):].split(",")
                folders += [vendors / n.strip() for n in names if n.strip()]
                break
    return folders


def op_package_missing(op: str, custom_opp_path: str | None,
                       opp_path: str | None) -> str | None:
    """None when torch_npu would call our op package's entry of ``op`` (module doc, Detection),
    else why not."""
    spec = OPS[op]
    for folder in vendor_folders(custom_opp_path, opp_path):
        api = folder / "op_api"
        if (api / "lib" / "libcust_opapi.so").is_file() and \
                (api / "include" / spec.header).is_file():
            if folder.name == VENDOR:
                return None
            return (f"not available: the custom vendor {folder} comes before {VENDOR} in "
                    f"torch_npu's search order and provides {spec.aclnn} too (its kernel would "
                    f"run)")
    return (f"not available: our op package (vendor {VENDOR}, with {spec.op_type}) is not "
            f"installed: no {VENDOR}/op_api/include/{spec.header} with op_api/lib/"
            f"libcust_opapi.so among ASCEND_CUSTOM_OPP_PATH's entries or the vendors "
            f"$ASCEND_OPP_PATH/vendors/config.ini loads (op_package/build.sh --install)")


def _ascend_paths() -> tuple[str | None, str | None]:
    """(ASCEND_CUSTOM_OPP_PATH, ASCEND_OPP_PATH), as config.py reads them."""
    from cann_attention.config import ascend_opp_paths
    return ascend_opp_paths()


@functools.lru_cache(maxsize=16)
def _package_missing(op: str, custom_opp_path, opp_path) -> str | None:
    return op_package_missing(op, custom_opp_path, opp_path)


# ---- the binding -------------------------------------------------------------------------------
_LIBRARY: list = []        # the torch.library fragment holding the schemas, once defined


@functools.lru_cache(maxsize=1)
def _load() -> str | None:
    """Import the binding and define the schemas it implements: None, or why it cannot serve.
    Imported only once torch_npu is loaded (the binding links libtorch_npu)."""
    try:
        module = importlib.import_module(EXTENSION)
    except ImportError as e:
        return (f"not available: the NPU binding {EXTENSION} is not built (pip install -e . "
                f"--no-build-isolation where torch_npu and CANN are installed): {e}")
    built = dict(getattr(module, "OPS", {}))
    ours = {spec.name: spec.aclnn for spec in OPS.values()}
    if built != ours:
        return f"not available: the NPU binding implements {built}, this package expects {ours}"
    try:
        define_schemas()
    except RuntimeError as e:     # the dispatcher compares each C++ signature with its schema
        return f"not available: the NPU binding does not match its schemas: {e}"
    return None


def define_schemas() -> torch.library.Library:
    """Define the ``cann_attention::_aclnn_*`` schemas (once per process; tests call it to
    run ``run`` against a stand-in kernel)."""
    if not _LIBRARY:
        library = torch.library.Library(NAMESPACE, "FRAGMENT")
        for spec in OPS.values():
            library.define(spec.schema)
        _LIBRARY.append(library)
    return _LIBRARY[0]


def unavailable(op: str) -> str | None:
    """The registry's availability of the back end on NPU tensors: None when torch_npu is
    loaded, our op package provides the op's aclnn entry (module doc, Detection) and the
    binding is built and loads; else why not."""
    if "torch_npu" not in sys.modules:
        return "not available: torch_npu is not loaded"
    reason = _package_missing(op, *_ascend_paths())
    if reason:
        return reason
    reason = _load()
    if reason:
        return reason
    qualname = f"{NAMESPACE}::{OPS[op].name}"
    if not torch._C._dispatch_has_kernel_for_dispatch_key(qualname, "PrivateUse1"):
        return f"not available: the NPU binding registered no NPU kernel for {qualname}"
    return None


def clear_cache() -> None:
    """Forget the detection results (library.clear_caches calls it); a loaded binding stays."""
    _package_missing.cache_clear()


# ---- the back end's run ------------------------------------------------------------------------
def target(op: str):
    """The binding's torch op for ``op`` (a test may replace this to record the call)."""
    return getattr(getattr(torch.ops, NAMESPACE), OPS[op].name).default


def arguments(op_overload, params, tensors) -> list:
    """The call's arguments in the schema's order: tensors from ``tensors``, the rest from
    ``params`` (the schemas use the params' names)."""
    return [getattr(tensors, a.name) if hasattr(tensors, a.name) else getattr(params, a.name)
            for a in op_overload._schema.arguments]


def run(params, op: str, tensors):
    """The back end's run: ``op`` is its plan (the op whose aclnn entry runs; the tiling is the
    op package's, in its tiling adapter over the same C++ tiling core)."""
    overload = target(op)
    return overload(*arguments(overload, params, tensors))
