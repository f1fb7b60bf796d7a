"""The BTF half of the static linker: merging objects' ``.BTF`` and ``.BTF.ext``.

Each object's types are appended to one growing type list, except the VAR or FUNC of a
global symbol another object already described: one BTF type per global, pointed at the
defining object's type once the definition is known (libbpf's rules). Every object's
DATASEC is dropped; one DATASEC per output section is rebuilt from their variables at
the end, then the whole is deduplicated (``btf.dedup``) and ``.BTF.ext`` records follow
their instructions and types to the new places.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..btf import Btf, Kind, Type, VarSecinfo
from ..btf.dedup import dedup, remap_type_ids
from ..btf.encode import StringTable, encode, encode_type
from ..btf.ext import BtfExt
from ..btf.types import LINKAGE_GLOBAL, LINKAGE_STATIC
from ..errors import ObjectError
from .mapdefs import map_from_btf
from .objspec import MapSpec

EXT_HEADER = struct.Struct("<HBBIIIIIII")  # magic, version, flags, hdr_len, 3 x (off, len)


def is_non_static(t: Type) -> bool:
    """A VAR or FUNC a symbol of another object can refer to (global, weak or extern)."""
    return t.kind in (Kind.VAR, Kind.FUNC) and t.linkage != LINKAGE_STATIC


@dataclass(eq=False)
class VarEntry:
    """One variable of an output DATASEC (mutable while objects are added)."""

    type_id: int
    offset: int
    size: int
    symbol: GlobalSymbol | None = None


@dataclass(eq=False)
class SectionBtf:
    """What an output section has in BTF: its variables and its ``.BTF.ext`` records."""

    name: str
    has_btf: bool = False
    vars: list[VarEntry] = field(default_factory=list)
    func_info: list[tuple[int, int]] = field(default_factory=list)  # insn_off, type
    line_info: list[tuple[int, str, str, int]] = field(default_factory=list)  # off, file, line
    core_relos: list[tuple[int, int, str, int]] = field(default_factory=list)  # off, type, access


@dataclass(eq=False)
class GlobalSymbol:
    """A global, weak or extern symbol as resolved so far across the objects."""

    name: str
    symbol: int  # its index in the output symbol table
    section: SectionBtf | None  # None: an extern the linker resolves (.extern), or a FUNC
    is_extern: bool
    is_weak: bool
    origin: str  # the object whose definition (or first declaration) stands
    owner: tuple[Btf, int]  # that object's BTF and the symbol's VAR/FUNC there
    btf_id: int = 0  # its VAR/FUNC in the merged BTF
    wants_type: bool = True  # point the VAR/FUNC at the next object's type
    entry: VarEntry | None = None
    entry_section: SectionBtf | None = None


def find_symbol_btf(
    obj: str, btf: Btf, name: str, datasec_of: dict[int, Type]
) -> tuple[Type | None, int]:
    """The VAR/FUNC describing global symbol ``name`` and the DATASEC listing it, if any."""
    candidates = sorted({t.id for t in btf.find_all(name) if is_non_static(t)})
    if not candidates:
        raise ObjectError(f"{obj}: global symbol {name!r} has no BTF VAR or FUNC")
    if len(candidates) > 1:
        raise ObjectError(
            f"{obj}: global symbol {name!r} is ambiguous in BTF: types #{candidates[0]} and "
            f"#{candidates[1]} both describe it"
        )
    return datasec_of.get(candidates[0]), candidates[0]


def types_mismatch(exact: bool, btf1: Btf, id1: int, btf2: Btf, id2: int) -> str | None:
    """Why two declarations of one global are incompatible (libbpf's rules), or None.

    Modifiers and typedefs do not matter, nor integer encodings or array lengths; behind a
    pointer only the shape counts (a forward declaration matches its struct/union).
    """
    for _ in range(4096):
        t1, t2 = btf1.resolve(id1), btf2.resolve(id2)
        if not exact and (t1.kind == Kind.FWD) != (t2.kind == Kind.FWD):
            if t1.name != t2.name:
                return f"incompatible forward declaration names {t1.name!r} and {t2.name!r}"
            fwd, real = (t1, t2) if t1.kind == Kind.FWD else (t2, t1)
            if real.kind == (Kind.UNION if fwd.kind_flag else Kind.STRUCT):
                return None
            flavour = "union" if fwd.kind_flag else "struct"
            return f"{flavour} forward declaration {fwd.name!r} is a {real.kind.name} elsewhere"
        if t1.kind != t2.kind:
            return f"incompatible BTF kinds {t1.kind.name} and {t2.kind.name}"
        kind = t1.kind
        named = (Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.FWD, Kind.FUNC, Kind.VAR)
        if kind in named and t1.name != t2.name:
            return f"incompatible {kind.name} names {t1.name!r} and {t2.name!r}"
        if kind in (Kind.UNKN, Kind.FWD):
            return None
        if kind in (Kind.INT, Kind.FLOAT, Kind.ENUM, Kind.ENUM64):
            if t1.size != t2.size:
                return f"{kind.name} {t1.name!r} has size {t1.size} vs {t2.size}"
            return None
        if kind in (Kind.FUNC, Kind.VAR):
            if (t1.linkage == LINKAGE_STATIC) != (t2.linkage == LINKAGE_STATIC):
                return f"{kind.name} {t1.name!r} is static in one object only"
            id1, id2 = t1.type, t2.type
        elif kind in (Kind.PTR, Kind.ARRAY):
            exact = exact and kind == Kind.ARRAY
            id1, id2 = t1.type, t2.type
        elif kind in (Kind.STRUCT, Kind.UNION):
            return _members_mismatch(exact, btf1, t1, btf2, t2)
        elif kind == Kind.FUNC_PROTO:
            if len(t1.params) != len(t2.params):
                return f"functions take {len(t1.params)} vs {len(t2.params)} parameters"
            for index, (p1, p2) in enumerate(zip(t1.params, t2.params, strict=True)):
                why = types_mismatch(exact, btf1, p1.type, btf2, p2.type)
                if why is not None:
                    return f"parameter #{index}: {why}"
            id1, id2 = t1.type, t2.type
        else:
            return f"unsupported BTF kind {kind.name}"
    return f"type loop at ids {id1} and {id2}"


def _members_mismatch(exact: bool, btf1: Btf, t1: Type, btf2: Btf, t2: Type) -> str | None:
    if not exact:
        return None
    if len(t1.members) != len(t2.members):
        return f"{t1.describe()} has {len(t1.members)} vs {len(t2.members)} fields"
    for index, (m1, m2) in enumerate(zip(t1.members, t2.members, strict=True)):
        if m1.name != m2.name:
            return f"{t1.describe()} field #{index} is {m1.name!r} vs {m2.name!r}"
        if (m1.bit_offset, m1.bitfield_size) != (m2.bit_offset, m2.bitfield_size):
            return f"{t1.describe()} field {m1.name!r} has different offsets"
        why = types_mismatch(exact, btf1, m1.type, btf2, m2.type)
        if why is not None:
            return f"{t1.describe()} field {m1.name!r}: {why}"
    return None


def map_defs_mismatch(name: str, first: tuple[Btf, int], second: tuple[Btf, int]) -> str | None:
    """Why two ``.maps`` declarations of map ``name`` differ (libbpf's checks), or None.

    An extern map must repeat the full definition: type, key and value (sizes and types),
    max_entries, flags, NUMA node, pinning and the inner map's.
    """
    defs = []
    for btf, var_id in (first, second):
        var = btf[var_id]
        if var.kind != Kind.VAR:
            raise ObjectError(f"{btf.name}: map {name!r}: type #{var_id} is not a VAR")
        defs.append(map_from_btf(btf.name, btf, name, var.type))
    return _map_specs_mismatch(first[0], defs[0], second[0], defs[1])


def _map_specs_mismatch(btf1: Btf, a: MapSpec, btf2: Btf, b: MapSpec) -> str | None:
    checks = (("type", a.map_type, b.map_type), ("key_size", a.key_size, b.key_size))
    for label, one, two in checks:
        if one != two:
            return f"{label} {one} vs {two}"
    for part in ("key", "value"):
        size1, size2 = getattr(a, f"{part}_size"), getattr(b, f"{part}_size")
        type1, type2 = getattr(a, f"{part}_type_id"), getattr(b, f"{part}_type_id")
        if size1 != size2:
            return f"{part}_size {size1} vs {size2}"
        if bool(type1) != bool(type2):
            return f"{part} type given in one declaration only"
        if type1:
            why = types_mismatch(True, btf1, type1, btf2, type2)
            if why is not None:
                return f"{part} type: {why}"
    for label in ("max_entries", "flags", "numa_node", "pinning"):
        one, two = getattr(a, label), getattr(b, label)
        if one != two:
            return f"{'map_flags' if label == 'flags' else label} {one} vs {two}"
    if (a.inner is None) != (b.inner is None):
        return "inner map given in one declaration only"
    if a.inner is not None and b.inner is not None:
        why = _map_specs_mismatch(btf1, a.inner, btf2, b.inner)
        return None if why is None else f"inner map: {why}"
    return None


class BtfMerger:
    """The merged type list (ids 1..N) and the per-section BTF of the output."""

    def __init__(self) -> None:
        self.types: list[Type] = []

    def complete_extern(self, glob: GlobalSymbol, btf: Btf, type_id: int) -> None:
        """A definition replaces an extern (or weak) one: its VAR/FUNC becomes global and a
        FUNC's prototype gets the definition's parameter names (dedup compares them)."""
        if not glob.btf_id:
            return
        index = glob.btf_id - 1
        current = self.types[index]
        self.types[index] = dataclasses.replace(current, linkage=LINKAGE_GLOBAL)
        if current.kind != Kind.FUNC:
            return
        source = btf[btf[type_id].type]
        proto_index = current.type - 1
        proto = self.types[proto_index]
        if proto.kind != Kind.FUNC_PROTO or source.kind != Kind.FUNC_PROTO:
            return
        params = (
            tuple(
                dataclasses.replace(mine, name=theirs.name) if theirs.name else mine
                for mine, theirs in zip(proto.params, source.params, strict=False)
            )
            + proto.params[len(source.params) :]
        )
        self.types[proto_index] = dataclasses.replace(proto, params=params)

    def append(
        self,
        obj: str,
        btf: Btf,
        globals_: dict[str, GlobalSymbol],
        datasecs: Sequence[tuple[SectionBtf, Type, int]],
    ) -> list[int]:
        """Append an object's types; returns its map from old to new type ids.

        ``datasecs``: for each of its sections with a DATASEC, the output section's BTF,
        the DATASEC (variable offsets already those of the ELF symbols) and where the
        section's bytes start in the output section.
        """
        source = list(btf)
        mapping = [0] * (len(source) + 1)
        start = len(self.types)
        pending: list[tuple[GlobalSymbol, int]] = []
        for t in source:
            if t.kind == Kind.DATASEC:
                continue
            glob = None
            if is_non_static(t):
                glob = globals_.get(t.name)
                if glob is None:
                    continue  # a variable of a section dropped as a duplicate (license)
                if glob.wants_type:
                    pending.append((glob, t.type))
                    glob.wants_type = False
                if glob.btf_id:
                    mapping[t.id] = glob.btf_id
                    continue
            self.types.append(t)
            mapping[t.id] = len(self.types)
            if glob is not None:
                glob.btf_id = len(self.types)

        def new_id(type_id: int) -> int:
            if type_id == 0:
                return 0
            if not 0 < type_id < len(mapping) or not mapping[type_id]:
                raise ObjectError(f"{obj}: BTF refers to type id {type_id}, which is not kept")
            return mapping[type_id]

        for index in range(start, len(self.types)):
            moved = remap_type_ids(self.types[index], new_id)
            self.types[index] = dataclasses.replace(moved, id=index + 1)
        for glob, type_id in pending:
            current = self.types[glob.btf_id - 1]
            self.types[glob.btf_id - 1] = dataclasses.replace(current, type=new_id(type_id))
        for section, datasec, offset in datasecs:
            section.has_btf = True
            for var in datasec.vars:
                self._add_var(obj, globals_, section, new_id(var.type), var, offset)
        return mapping

    def _add_var(
        self,
        obj: str,
        globals_: dict[str, GlobalSymbol],
        section: SectionBtf,
        type_id: int,
        var: VarSecinfo,
        offset: int,
    ) -> None:
        t = self.types[type_id - 1] if type_id else None
        glob = globals_.get(t.name) if t is not None and is_non_static(t) else None
        if t is not None and is_non_static(t) and glob is None:
            raise ObjectError(f"{obj}: {section.name!r} lists {t.name!r}, which has no symbol")
        if glob is not None and glob.section is not section:
            where = glob.section.name if glob.section is not None else "no section"
            raise ObjectError(
                f"{obj}: global {glob.name!r} is in {section.name!r} here but in {where!r} "
                f"in {glob.origin}"
            )
        if glob is not None and glob.entry is not None:
            owner_btf, owner_id = glob.owner
            owner = owner_btf[owner_id]
            # The definition's size (a FUNC, or a typeless ksym, keeps the size it had:
            # libbpf 1.5 fails to link two objects that declare one of those).
            if owner.kind == Kind.VAR and owner_btf.resolve(owner.type).kind != Kind.UNKN:
                glob.entry.size = owner_btf.sizeof(owner.type)
            if glob.entry_section is not section and glob.entry_section is not None:
                glob.entry_section.vars.remove(glob.entry)
                section.vars.append(glob.entry)
                glob.entry_section = section
            return
        entry = VarEntry(type_id, offset + var.offset, var.size, glob)
        section.vars.append(entry)
        if glob is not None:
            glob.entry, glob.entry_section = entry, section

    def finalize(
        self,
        sections: Sequence[tuple[SectionBtf, int]],
        symbol_value: Callable[[GlobalSymbol], int | None],
    ) -> tuple[bytes, bytes | None]:
        """The merged ``.BTF`` and ``.BTF.ext`` (None without records); b"" without BTF.

        ``sections``: every output section's BTF and size, in section order;
        ``symbol_value``: where a defined global ended up (its DATASEC offset).
        """
        if not self.types:
            return b"", None
        types = list(self.types)
        for section, size in sections:
            if not section.has_btf:
                continue
            for entry in section.vars:
                value = symbol_value(entry.symbol) if entry.symbol is not None else None
                if value is not None:
                    entry.offset = value
            entries = sorted(section.vars, key=lambda e: e.offset)
            infos = tuple(VarSecinfo(e.type_id, e.offset, e.size) for e in entries)
            types.append(Type(len(types) + 1, Kind.DATASEC, section.name, size=size, vars=infos))
        kept, mapping = dedup(types)
        strings = StringTable()
        for t in kept:
            encode_type(t, strings)
        ext = _encode_ext([s for s, _ in sections], mapping, strings)
        return encode(kept, strings_base=bytes(strings)), ext


def ext_records(
    obj: str,
    ext: BtfExt,
    place: Callable[[str], tuple[SectionBtf, int] | None],
    mapping: list[int],
) -> None:
    """Add an object's ``.BTF.ext`` records to its sections' output, re-based: instruction
    offsets by where the section landed, type ids by ``mapping``."""

    def new_id(type_id: int) -> int:
        if not 0 <= type_id < len(mapping):
            raise ObjectError(f"{obj}: .BTF.ext refers to type id {type_id}, out of range")
        return mapping[type_id]

    def target(section: str) -> tuple[SectionBtf, int]:
        found = place(section)
        if found is None:
            raise ObjectError(f"{obj}: .BTF.ext describes section {section!r}, which it lacks")
        return found

    for section, funcs in ext.func_info.items():
        out, offset = target(section)
        out.func_info += [(f.insn_off + offset, new_id(f.type_id)) for f in funcs]
    for section, lines in ext.line_info.items():
        out, offset = target(section)
        out.line_info += [(x.insn_off + offset, x.file, x.source, x.line_col) for x in lines]
    for section, relos in ext.core_relos.items():
        out, offset = target(section)
        out.core_relos += [
            (r.insn_off + offset, new_id(r.type_id), r.access, int(r.kind)) for r in relos
        ]


def _encode_ext(
    sections: Sequence[SectionBtf], mapping: list[int], strings: StringTable
) -> bytes | None:
    """``.BTF.ext`` for the sections' records, type ids through the dedup ``mapping``."""
    blocks = []
    for label, size in (("func_info", 8), ("line_info", 16), ("core_relos", 16)):
        body = bytearray()
        for section in sections:
            records: list[tuple[int, ...]] = []
            if label == "func_info":
                records = [(off, mapping[t]) for off, t in section.func_info]
            elif label == "line_info":
                records = [
                    (off, strings.add(file), strings.add(line), col)
                    for off, file, line, col in section.line_info
                ]
            else:
                records = [
                    (off, mapping[t], strings.add(access), kind)
                    for off, t, access, kind in section.core_relos
                ]
            if records:
                body += struct.pack("<II", strings.add(section.name), len(records))
                layout = "<II" if size == 8 else "<IIII"
                body += b"".join(struct.pack(layout, *r) for r in records)
        blocks.append(struct.pack("<I", size) + body if body else b"")
    if not any(blocks):
        return None
    funcs, lines, relos = blocks
    header = EXT_HEADER.pack(
        0xEB9F,
        1,
        0,
        EXT_HEADER.size,
        0,
        len(funcs),
        len(funcs),
        len(lines),
        len(funcs) + len(lines),
        len(relos),
    )
    return header + funcs + lines + relos
