"""TilingData: the plain-data record a plan serialises to, with its layout defined once.

A CANN kernel reads its tiling as a flat struct of fixed-width fields written by the host. Each
op defines its record here in Python, once (``TilingLayout``): the Python plan packs it, the C++
tiling core and the AscendC kernel read the C struct generated from the same definition
(``c_struct``). Every record starts with its layout ``version`` and the plan's ``tiling_key``
(the kernel variant, as CANN's ``GenTilingKey``); fields are little-endian and naturally aligned
(64-bit fields first, then 32-bit ones), so the Python bytes and the C struct agree byte for
byte.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from .layouts import Layout

# how a layout is written in a TilingData field
LAYOUT_CODES = {Layout.BSND: 0, Layout.TND: 1, Layout.PA_BSND: 2, Layout.BNSD: 3, Layout.BSH: 4}
# field type -> (struct format, C type)
TYPES = {"i64": ("q", "int64_t"), "u64": ("Q", "uint64_t"), "i32": ("i", "int32_t"),
         "u32": ("I", "uint32_t"), "f32": ("f", "float")}
HEADER = (("version", "u32"), ("tiling_key", "u32"))


@dataclass(frozen=True)
class TilingLayout:
    name: str                               # C struct name, e.g. SparseFlashAttentionTilingData
    version: int                            # bumped on every change of ``fields``
    fields: tuple[tuple[str, str], ...]     # (name, type) after the header

    def __post_init__(self):
        names = [n for n, _ in HEADER + self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate field names")
        if any(t not in TYPES for _, t in self.fields):
            raise ValueError(f"{self.name}: field types must be among {sorted(TYPES)}")

    @property
    def ordered(self) -> tuple[tuple[str, str], ...]:
        """Header, then 64-bit fields, then 32-bit fields: no padding anywhere."""
        wide = tuple(f for f in self.fields if f[1] in ("i64", "u64"))
        narrow = tuple(f for f in self.fields if f[1] not in ("i64", "u64"))
        if wide:      # the header is 8 bytes, so 64-bit fields start aligned
            return HEADER + wide + narrow
        return HEADER + narrow

    @property
    def format(self) -> str:
        return "<" + "".join(TYPES[t][0] for _, t in self.ordered)

    @property
    def size(self) -> int:
        return struct.calcsize(self.format)

    def pack(self, tiling_key: int, **values) -> bytes:
        """The record's bytes; ``values`` must name every field (a missing one is an error)."""
        missing = [n for n, _ in self.fields if n not in values]
        extra = [n for n in values if n not in dict(self.fields)]
        if missing or extra:
            raise ValueError(f"{self.name}: missing fields {missing}, unknown fields {extra}")
        full = {"version": self.version, "tiling_key": tiling_key, **values}
        return struct.pack(self.format, *(full[n] for n, _ in self.ordered))

    def unpack(self, data: bytes) -> dict:
        values = dict(zip((n for n, _ in self.ordered), struct.unpack(self.format, data)))
        if values["version"] != self.version:
            raise ValueError(f"{self.name}: version {values['version']}, expected {self.version}")
        return values

    def c_struct(self) -> str:
        """The C definition the C++ tiling core and the AscendC kernel include. A record with
        64-bit fields whose size is not a multiple of 8 is packed to 4 bytes: C would otherwise
        pad its tail (the fields keep their natural offsets either way)."""
        packed = self.size % 8 != 0 and any(t in ("i64", "u64") for _, t in self.fields)
        lines = [f"// generated from the Python definition; layout version {self.version}"]
        lines += ["#pragma pack(push, 4)"] if packed else []
        lines += [f"struct {self.name} {{"]
        lines += [f"    {TYPES[t][1]} {n};" for n, t in self.ordered]
        lines += ["};"] + (["#pragma pack(pop)"] if packed else [])
        lines += [f"static_assert(sizeof({self.name}) == {self.size}, \"{self.name} layout\");"]
        return "\n".join(lines) + "\n"
