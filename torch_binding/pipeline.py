"""The one call path of every op: bind -> params -> check -> back end -> its plan -> run.

An op declares itself once, as an ``OpDef``: its schema (the one place its argument list is
written), its params and tensors dataclasses (whose fields are schema argument names), its
checks, its fake function and its back-end registry. ``call`` runs any of them:

1. **bind** the arguments to the schema's names (defaults filled in);
2. **static part, cached**: the call's static signature (every tensor's shape, dtype, device and
   contiguity, every other argument's value, and the configuration in force) keys a bounded
   cache of (params, back end, plan, runner). On a miss: parse the params (shapes and dtypes,
   no values), run the op's checks (shapes, dtypes, attributes), check that every tensor is on
   the query's device, select the back end from the registry (``config.backend``: ``"auto"``
   takes the highest priority whose verifier accepts the call; a named back end never falls
   back) and let it plan the call on its platform. Failures are never cached, so a bad call
   raises the same error every time;
3. **value checks** (lengths against shapes, prefix sums, page-table entries) read values inside
   tensors: they always run on CPU tensors and for back ends that run from host values (the
   emulator), and on device tensors only when ``config.value_checks`` is on;
4. **run**: the back end's ``run(params, plan, tensors)``, which launches the device work and
   returns the outputs without reading any device value back.

So a call on CUDA tensors with a cached plan does no device-to-host copy, no synchronisation
and no planning: it can be captured in a CUDA graph.
"""
from __future__ import annotations

import inspect
import threading
from operator import itemgetter
from dataclasses import dataclass, field, fields
from typing import Callable

import torch

from .config import current as current_config
from .op_host.common.errors import CannAttentionError
from .op_host.common.tensor_meta import TensorMeta, with_values

STATIC_CACHE_SIZE = 256       # static signatures kept per op (a model has a few per layer kind)


@dataclass(frozen=True)
class Argument:
    name: str
    kind: str                 # "tensor", "tensor?", "float", "int", "bool", "str", "ints?"...
    default: object
    kwarg_only: bool
    has_default: bool = True


def schema_arguments(schema: str) -> tuple[Argument, ...]:
    """The arguments of a schema string, as torch parses it."""
    parsed = torch._C.parse_schema(f"custom::{schema}")
    out = []
    for a in parsed.arguments:
        kind = {"Tensor": "tensor", "Optional[Tensor]": "tensor?", "float": "float",
                "int": "int", "bool": "bool", "str": "str", "Optional[int]": "int?",
                "List[int]": "ints", "Optional[List[int]]": "ints?",
                "List[SymInt]": "ints", "Optional[List[SymInt]]": "ints?",
                "SymInt": "int"}.get(str(a.type))
        if kind is None:
            raise ValueError(f"{schema.split('(')[0]}: argument {a.name} has a type the "
                             f"pipeline does not parse: {a.type}")
        out.append(Argument(a.name, kind, a.default_value if a.has_default_value() else None,
                            a.kwarg_only, a.has_default_value()))
    return tuple(out)


class Signature:
    """A schema's arguments and how a Python call binds to them (what the dispatcher does for
    a registered op, and what the Python functions of the faces do without it)."""

    def __init__(self, schema: str):
        self.schema = schema
        self.name = schema.split("(")[0]
        self.arguments = schema_arguments(schema)
        self.names = tuple(a.name for a in self.arguments)
        self.positional = tuple(a.name for a in self.arguments if not a.kwarg_only)
        self.defaults = {a.name: a.default for a in self.arguments}

    def bind(self, args: tuple, kwargs: dict) -> dict:
        if len(args) > len(self.positional):
            raise TypeError(f"{self.name}() takes {len(self.positional)} positional "
                            f"arguments but {len(args)} were given")
        bound = dict(self.defaults)
        bound.update(zip(self.positional, args))
        bound.update(kwargs)
        if len(bound) != len(self.names):
            unknown = sorted(set(kwargs) - set(self.names))
            raise TypeError(f"{self.name}() got unexpected keyword arguments {unknown}")
        return bound

    def bind_dispatched(self, args: tuple, kwargs: dict) -> dict:
        """The arguments as the dispatcher hands them to a Python kernel: in schema order, any
        of them positional (keyword-only ones too), trailing defaults possibly dropped."""
        bound = dict(self.defaults)
        bound.update(zip(self.names, args))
        bound.update(kwargs)
        return bound

    def python_signature(self) -> inspect.Signature:
        """The signature ``help()`` and ``inspect`` show for the Python function of a face."""
        params = []
        for a in self.arguments:
            kind = (inspect.Parameter.KEYWORD_ONLY if a.kwarg_only
                    else inspect.Parameter.POSITIONAL_OR_KEYWORD)
            default = a.default if a.has_default else inspect.Parameter.empty
            params.append(inspect.Parameter(a.name, kind, default=default))
        return inspect.Signature(params)


def _convert(arg: Argument, value, check):
    """The params form of one argument: a TensorMeta for tensors, a Python scalar otherwise."""
    if arg.kind == "tensor":
        return TensorMeta.required(value, check, arg.name)
    if arg.kind == "tensor?":
        return TensorMeta.of(value, check, arg.name)
    if value is None:
        return None
    if arg.kind in ("float",):
        return float(value)
    if arg.kind in ("int", "int?"):
        return int(value)
    if arg.kind == "bool":
        return bool(value)
    if arg.kind in ("ints", "ints?"):
        return tuple(int(v) for v in value)
    return value


def _getter(names):
    """A function giving ``bound``'s values of ``names`` as a tuple."""
    if not names:
        return lambda bound: ()
    if len(names) == 1:
        name = names[0]
        return lambda bound: (bound[name],)
    return itemgetter(*names)


def _int_list_signature(value):
    """An ``int[]`` argument is host data: its values are part of the static signature (the
    Python functions also accept an integer tensor there, read on the host like a list)."""
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.reshape(-1).tolist()))
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return value


@dataclass(eq=False)
class OpDef:
    name: str
    schema: str
    params: type                  # frozen dataclass: fields are schema names (TensorMeta / scalars)
    tensors: type                 # dataclass of the tensors a back end reads (schema names)
    check: Callable               # (params) -> None: shape / dtype / attribute rules
    check_values: Callable        # (params with host values, tensors) -> None
    fake: Callable                # (bound arguments) -> outputs with the real path's shapes
    backends: tuple               # the registry, highest priority first
    converters: dict = field(default_factory=dict)   # name -> (value, check) -> params form
    before_parse: Callable | None = None             # (bound) -> None: Python type rules
    checker: object = None        # the op's Checker (its errors name the op)
    gradient: Callable | None = None  # (bound, outputs, grad_outputs) -> {argument: grad}
    non_differentiable_outputs: tuple = ()   # output positions that never carry a gradient

    def __post_init__(self):
        self.signature = Signature(self.schema)
        self.arguments = self.signature.arguments
        names = list(self.signature.names)
        for cls in (self.params, self.tensors):
            unknown = [f.name for f in fields(cls) if f.name not in names]
            if unknown:
                raise ValueError(f"{self.name}: {cls.__name__} fields {unknown} are not "
                                 f"arguments of the schema")
        self._names = tuple(names)
        self.first = names[0]
        self.ordered = _getter(names)   # bound arguments -> their values in schema order
        # the static key's three parts, read off the bound arguments by C-level getters
        kinds = {a.name: a.kind for a in self.arguments}
        self._key_tensors = _getter([n for n in names if kinds[n] in ("tensor", "tensor?")])
        self._key_lists = _getter([n for n in names if kinds[n] in ("ints", "ints?")])
        self._key_scalars = _getter([n for n in names if kinds[n] not in
                                     ("tensor", "tensor?", "ints", "ints?")])
        self._by_name = {a.name: a for a in self.arguments}
        self._params_fields = tuple(f.name for f in fields(self.params))
        self._tensor_fields = tuple(f.name for f in fields(self.tensors))
        self._cache: dict = {}
        self._lock = threading.Lock()

    # ---- the steps ----------------------------------------------------------------------
    def bind(self, args: tuple, kwargs: dict) -> dict:
        return self.signature.bind(args, kwargs)

    def parse(self, bound: dict):
        """The params of a call: shapes, dtypes, devices and scalars; no value is read."""
        if self.before_parse is not None:
            self.before_parse(bound)
        values = {}
        for name in self._params_fields:
            conv = self.converters.get(name)
            value = bound[name]
            values[name] = (conv(value, self.checker) if conv is not None
                            else _convert(self._by_name[name], value, self.checker))
        return self.params(**values)

    def check_devices(self, bound: dict, device: torch.device) -> None:
        """Every tensor argument on ``device`` (the query's), else an error naming it."""
        for name in self._names:
            value = bound[name]
            if isinstance(value, torch.Tensor) and value.device != device:
                raise CannAttentionError(self.name, name, f"expected a tensor on {device} "
                                         f"(the query's device), got {value.device}")

    def select(self, params, device_type: str, dtype, cfg) -> "object":
        """The back end that runs the call (module doc, step 2)."""
        names = [b.name for b in self.backends]
        if cfg.backend != "auto":
            if cfg.backend not in names:
                raise CannAttentionError(self.name, "backend", f"expected one of {names} or "
                                         f"'auto', got {cfg.backend!r}")
            backend = self.backends[names.index(cfg.backend)]
            reason = backend.verify(params, device_type, dtype)
            if reason:
                raise CannAttentionError(self.name, "backend", f"'{backend.name}' was "
                                         f"requested but cannot run this call: {reason}")
            return backend
        reasons = []
        for backend in self.backends:
            if not backend.auto:
                continue
            if device_type in backend.named_only_on:
                reasons.append(f"{backend.name}: runs {device_type} tensors only when asked for "
                               f"by name (cann_attention.use(backend={backend.name!r}))")
                continue
            reason = backend.verify(params, device_type, dtype)
            if reason is None:
                return backend
            reasons.append(f"{backend.name}: {reason}")
        raise CannAttentionError(self.name, "device", f"a back end for {device_type} tensors; "
                                 f"none applies ({'; '.join(reasons)})")

    def static(self, bound: dict, cfg):
        """(params, back end, plan, runner) of the call's static signature (cached)."""
        try:
            key = (cfg.backend, cfg.platform,    # (type() before isinstance: 3x cheaper)
                   tuple([v if v is None else (v.shape, v.dtype, v.device, v.is_contiguous())
                          if type(v) is torch.Tensor or isinstance(v, torch.Tensor) else v
                          for v in self._key_tensors(bound)]),
                   self._key_scalars(bound),
                   tuple([_int_list_signature(v) for v in self._key_lists(bound)]))
            hit = self._cache.get(key)    # a dict read is atomic: no lock on the hot path
        except TypeError:                 # an unhashable argument (a list for a tensor...):
            key = hit = None              # never valid; parse or check names it below
        if hit is not None:
            return hit
        params = self.parse(bound)
        self.check(params)
        query = bound[self._names[0]]
        self.check_devices(bound, query.device)
        backend = self.select(params, query.device.type, query.dtype, cfg).for_device(
            query.device.type)
        platform = backend.platform_for(query.device, cfg.platform)
        entry = (params, backend, backend.plan(params, platform), backend.load())
        if key is None:
            return entry
        with self._lock:                  # bounded: the oldest signature goes first
            self._cache[key] = entry
            while len(self._cache) > STATIC_CACHE_SIZE:
                del self._cache[next(iter(self._cache))]
        return entry

    def tensors_of(self, bound: dict):
        return self.tensors(**{name: bound[name] for name in self._tensor_fields})

    def call(self, args: tuple, kwargs: dict):
        return self.call_bound(self.bind(args, kwargs))

    def call_bound(self, bound: dict):
        cfg = current_config()
        params, backend, plan, run = self.static(bound, cfg)
        tensors = self.tensors_of(bound)
        if backend.emulates:                  # it runs from host values: read them once
            params = with_values(params, tensors)
            self.check_values(params, tensors)
        elif cfg.value_checks or bound[self._names[0]].device.type == "cpu":
            self.check_values(with_values(params, tensors), tensors)
        return run(params, plan, tensors)

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()
