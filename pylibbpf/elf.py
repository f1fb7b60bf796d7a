"""Reading a clang-built BPF ELF object into an ``ObjectSpec``: pure, no syscalls.

The spec is everything the object says — programs and sub-programs with their
relocations, BTF-defined maps, global data sections, externs, license, BTF — and nothing
that depends on the kernel it will be loaded into. It is the same on every machine.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from elftools.common.exceptions import ELFError, ELFParseError
from elftools.elf.elffile import ELFFile

from .btf import Btf, Kind
from .btf.ext import BtfExt
from .errors import ObjectError
from .insn import INSN_SIZE
from .sections import SectionDef, find_section_def
from .uapi import MapType

EM_BPF = 247
R_BPF_64_64 = 1
R_BPF_64_ABS64 = 2
R_BPF_64_ABS32 = 3
R_BPF_64_NODYLD32 = 4
R_BPF_64_32 = 10

SHF_EXECINSTR = 0x4
SHF_WRITE = 0x1

PIN_NONE = 0
PIN_BY_NAME = 1

DATA_PREFIXES = (".data", ".rodata", ".bss")


@dataclass(frozen=True)
class Symbol:
    name: str
    value: int
    size: int
    section_index: int  # 0 for undefined (externs)
    section: str
    bind: str  # STB_GLOBAL, STB_LOCAL, STB_WEAK
    type: str  # STT_FUNC, STT_OBJECT, STT_SECTION, STT_NOTYPE
    hidden: bool = False  # STV_HIDDEN or STV_INTERNAL visibility

    @property
    def weak(self) -> bool:
        return self.bind == "STB_WEAK"


@dataclass(frozen=True)
class Relocation:
    offset: int  # byte offset in the section the relocation applies to
    symbol: Symbol
    type: int


@dataclass
class ProgramSpec:
    """A function in an executable section: an entry point, or a ``.text`` sub-program."""

    name: str
    section: str
    section_index: int
    insn_offset: int  # index of its first instruction within its section
    insns: bytes
    is_subprog: bool
    is_global: bool
    relocations: dict[int, Relocation] = field(default_factory=dict)  # by insn index
    section_def: SectionDef | None = None

    @property
    def insn_count(self) -> int:
        return len(self.insns) // INSN_SIZE


@dataclass
class DataSectionSpec:
    """A global-data section (``.data``, ``.rodata``, ``.bss``, custom ``.data.*``…)."""

    name: str
    index: int
    data: bytes
    readonly: bool
    btf_id: int = 0  # the DATASEC type, if the object has BTF for it

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class MapSpec:
    name: str
    map_type: int
    key_size: int = 0
    value_size: int = 0
    max_entries: int = 0
    flags: int = 0
    numa_node: int = 0
    map_extra: int = 0
    pinning: int = PIN_NONE
    key_type_id: int = 0
    value_type_id: int = 0
    inner: MapSpec | None = None
    init_values: dict[int, str] = field(default_factory=dict)  # slot -> symbol name
    offset: int = 0  # of its variable in .maps


@dataclass(frozen=True)
class ExternSpec:
    name: str
    section: str  # ".kconfig" or ".ksyms"
    type_id: int  # the VAR's or FUNC's BTF id in the object
    is_func: bool
    weak: bool


@dataclass
class StructOpsSpec:
    """A ``SEC(".struct_ops[.link]")`` variable: a kernel ops struct filled in by the object."""

    name: str  # the variable's name: the map's name
    section: str
    type_id: int  # its local struct type
    data: bytes  # the variable's bytes (plain members, e.g. .name)
    functions: dict[int, str]  # byte offset of a function-pointer member -> program name
    link: bool  # .struct_ops.link: registered through a bpf_link

    @property
    def autocreate(self) -> bool:
        return not self.section.startswith("?")


@dataclass
class ObjectSpec:
    name: str
    license: str
    kern_version: int
    byteorder: str
    btf: Btf | None
    btf_ext: BtfExt | None
    programs: dict[str, ProgramSpec]  # entry points, ELF order
    subprograms: dict[tuple[int, int], ProgramSpec]  # (section index, insn offset)
    maps: dict[str, MapSpec]
    datasecs: dict[str, DataSectionSpec]
    externs: dict[str, ExternSpec]
    sections: dict[int, str]
    section_sizes: dict[str, int] = field(default_factory=dict)
    # Variables: (section, name) -> offset, from the STT_OBJECT symbols.
    object_symbols: dict[tuple[str, str], int] = field(default_factory=dict)
    struct_ops: dict[str, StructOpsSpec] = field(default_factory=dict)
    # Global functions and variables with hidden visibility: static as far as BTF goes.
    hidden_symbols: frozenset[str] = frozenset()

    def subprogram_at(self, section_index: int, insn: int) -> ProgramSpec | None:
        return self.subprograms.get((section_index, insn))


def object_name(path: str) -> str:
    """libbpf's object name: the file name up to its first dot."""
    base = path.rsplit("/", 1)[-1]
    return base.split(".", 1)[0] or base


_SHT_NAMES = {1: "SHT_PROGBITS", 2: "SHT_SYMTAB", 3: "SHT_STRTAB", 8: "SHT_NOBITS", 9: "SHT_REL"}


class _Section:
    """One section header (read with ``struct``: pyelftools' per-section objects are slow)."""

    __slots__ = ("_data", "fields", "name")

    def __init__(self, name: str, fields: dict[str, Any], data: bytes) -> None:
        self.name = name
        self.fields = fields
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]

    def data(self) -> bytes:
        start, size = self.fields["sh_offset"], self.fields["sh_size"]
        if start + size > len(self._data):
            raise ValueError(f"{size} bytes at {start} run past the end of the file")
        return self._data[start : start + size]


class _Parser:
    def __init__(self, data: bytes, name: str) -> None:
        self.name = name
        try:
            self.elf = ELFFile(BytesIO(data))  # header checks (class, machine, byte order)
            machine = self.elf["e_machine"]
            elfclass = self.elf.elfclass
        except (ELFError, ELFParseError, struct.error, ValueError, IndexError) as error:
            raise ObjectError(f"{name}: not a valid ELF file: {error}") from None
        if machine not in ("EM_BPF", EM_BPF):
            raise ObjectError(
                f"{name}: ELF machine is {machine}, not BPF (compile with clang -target bpf)"
            )
        if elfclass != 64:
            raise ObjectError(f"{name}: 32-bit ELF objects are not BPF objects")
        self.order = "<" if self.elf.little_endian else ">"
        self.sections = self._section_table(data)

    def _section_table(self, data: bytes) -> list[_Section]:
        header = self.elf.header
        offset, size, count, names = (
            header["e_shoff"],
            header["e_shentsize"],
            header["e_shnum"],
            header["e_shstrndx"],
        )
        record = struct.Struct(self.order + "IIQQQQIIQQ")
        if size != record.size or offset + count * size > len(data) or names >= max(count, 1):
            raise ObjectError(f"{self.name}: not a valid ELF file: bad section header table")
        keys = (
            "sh_name",
            "sh_type",
            "sh_flags",
            "sh_addr",
            "sh_offset",
            "sh_size",
            "sh_link",
            "sh_info",
            "sh_addralign",
            "sh_entsize",
        )
        table = [
            dict(zip(keys, values, strict=True))
            for values in record.iter_unpack(data[offset : offset + count * size])
        ]
        string_header = table[names]
        strings = data[
            string_header["sh_offset"] : string_header["sh_offset"] + string_header["sh_size"]
        ]
        sections = []
        for fields in table:
            start = fields["sh_name"]
            end = strings.find(b"\0", start)
            if start > len(strings) or end < 0:
                raise ObjectError(f"{self.name}: not a valid ELF file: bad section name")
            fields["sh_type"] = _SHT_NAMES.get(fields["sh_type"], fields["sh_type"])
            sections.append(_Section(strings[start:end].decode(errors="replace"), fields, data))
        return sections

    def section_data(self, section: Any) -> bytes:
        try:
            if section["sh_type"] == "SHT_NOBITS":
                return bytes(section["sh_size"])
            return bytes(section.data())
        except (ELFError, ELFParseError, struct.error, ValueError) as error:
            raise ObjectError(
                f"{self.name}: section {section.name!r} is unreadable: {error}"
            ) from None

    def symbols(self) -> list[Symbol]:
        """The symbol table, decoded with ``struct`` (pyelftools is slow per record)."""
        symtab: Any = next((sec for sec in self.sections if sec.name == ".symtab"), None)
        if symtab is None:
            raise ObjectError(f"{self.name}: has no symbol table (.symtab)")
        raw = self.section_data(symtab)
        link = symtab["sh_link"]
        if not 0 < link < len(self.sections):
            raise ObjectError(f"{self.name}: .symtab has no string table")
        strings = self.section_data(self.sections[link])
        record = struct.Struct(self.order + "IBBHQQ")
        if len(raw) % record.size:
            raise ObjectError(f"{self.name}: .symtab size {len(raw)} is not a multiple of 24")
        out = []
        for name_off, info, other, index, value, size in record.iter_unpack(raw):
            if name_off >= len(strings) and name_off:
                raise ObjectError(f"{self.name}: symbol name offset {name_off} is out of range")
            end = strings.find(b"\0", name_off)
            name = strings[name_off : end if end >= 0 else len(strings)].decode(errors="replace")
            if index >= 0xFF00:  # SHN_ABS, SHN_COMMON, ...: not in a section
                index = 0
            section = self.sections[index].name if 0 < index < len(self.sections) else ""
            bind = _BINDS.get(info >> 4, f"STB_{info >> 4}")
            kind = _TYPES.get(info & 0xF, f"STT_{info & 0xF}")
            hidden = other & 3 in (1, 2)  # STV_INTERNAL, STV_HIDDEN
            out.append(Symbol(name, value, size, index, section, bind, kind, hidden))
        return out

    def relocations(self, section: Any) -> list[tuple[int, int, int]]:
        """(offset, symbol index, type) of an SHT_REL section, decoded with ``struct``."""
        raw = self.section_data(section)
        record = struct.Struct(self.order + "QQ")
        if len(raw) % record.size:
            raise ObjectError(
                f"{self.name}: relocation section {section.name!r} is {len(raw)} bytes, not "
                "a multiple of 16"
            )
        return [(offset, info >> 32, info & 0xFFFFFFFF) for offset, info in record.iter_unpack(raw)]


_BINDS = {0: "STB_LOCAL", 1: "STB_GLOBAL", 2: "STB_WEAK"}
_TYPES = {0: "STT_NOTYPE", 1: "STT_OBJECT", 2: "STT_FUNC", 3: "STT_SECTION", 4: "STT_FILE"}


def parse_object(data: bytes, name: str = "object") -> ObjectSpec:
    """Parse a BPF ELF object. Raises ``ObjectError`` naming the section or symbol at fault."""
    parser = _Parser(data, name)
    elf, sections = parser.elf, parser.sections
    byteorder = "little" if elf.little_endian else "big"
    license_ = ""
    kern_version = 0
    btf: Btf | None = None
    btf_ext_data: bytes | None = None
    exec_sections: dict[int, bytes] = {}
    relocations: dict[int, list[tuple[int, int, int]]] = {}  # target -> (offset, sym, type)
    datasecs: dict[str, DataSectionSpec] = {}
    struct_ops_sections: dict[int, bytes] = {}
    maps_index = -1
    rel_sections: list[Any] = []

    section: Any
    for index, section in enumerate(sections):
        sec_name, sec_type = section.name, section["sh_type"]
        if sec_name == "license":
            license_ = parser.section_data(section).split(b"\0", 1)[0].decode(errors="replace")
        elif sec_name == "version":
            raw = parser.section_data(section)
            if len(raw) != 4:
                raise ObjectError(f"{name}: 'version' section must be 4 bytes, is {len(raw)}")
            kern_version = struct.unpack("<I" if elf.little_endian else ">I", raw)[0]
        elif sec_name == "maps":
            raise ObjectError(
                f"{name}: legacy 'maps' section (struct bpf_map_def) is not supported, as in "
                'libbpf 1.x: declare maps with BTF in SEC(".maps")'
            )
        elif sec_name == ".maps":
            maps_index = index
        elif sec_name == ".BTF":
            btf = Btf(parser.section_data(section), name=f"{name} .BTF")
        elif sec_name == ".BTF.ext":
            btf_ext_data = parser.section_data(section)
        elif sec_type == "SHT_REL":
            rel_sections.append(section)
        elif sec_type == "SHT_PROGBITS" and section["sh_flags"] & SHF_EXECINSTR:
            code = parser.section_data(section)
            if len(code) % INSN_SIZE:
                raise ObjectError(
                    f"{name}: program section {sec_name!r} is {len(code)} bytes, not a "
                    "multiple of 8"
                )
            if code:
                exec_sections[index] = code
        elif sec_name.lstrip("?").startswith(".struct_ops"):
            struct_ops_sections[index] = parser.section_data(section)
        elif sec_name.startswith(DATA_PREFIXES) and sec_type in ("SHT_PROGBITS", "SHT_NOBITS"):
            readonly = sec_name.startswith(".rodata") or not section["sh_flags"] & SHF_WRITE
            datasecs[sec_name] = DataSectionSpec(
                sec_name, index, parser.section_data(section), readonly
            )

    if not license_:
        raise ObjectError(
            f"{name}: has no 'license' section; add char LICENSE[] SEC(\"license\") = "
            '"GPL"; (the kernel restricts helpers by license)'
        )
    symbols = parser.symbols()
    for section in rel_sections:
        # Only code and .maps relocations matter; DWARF's thousands are skipped unread.
        target = section["sh_info"]
        if target in exec_sections or target == maps_index or target in struct_ops_sections:
            relocations.setdefault(target, []).extend(parser.relocations(section))
    btf_ext = None
    if btf_ext_data is not None and btf is not None:
        btf_ext = BtfExt(btf_ext_data, btf, name=f"{name} .BTF.ext")
    if btf is not None:
        for data_section in datasecs.values():
            data_section.btf_id = btf.find_id(data_section.name, Kind.DATASEC) or 0

    programs, subprograms = _programs(name, exec_sections, sections, symbols)
    for target, entries in relocations.items():
        if target in exec_sections:
            _attach_relocations(
                name, sections[target].name, target, entries, symbols, programs, subprograms
            )

    maps: dict[str, MapSpec] = {}
    if maps_index >= 0:
        if btf is None:
            raise ObjectError(f"{name}: has a .maps section but no BTF (compile with clang -g)")
        maps = _maps(name, btf, symbols, maps_index, relocations.get(maps_index, []))

    externs = _externs(name, btf, symbols)
    struct_ops = _struct_ops(name, btf, symbols, sections, struct_ops_sections, relocations)
    return ObjectSpec(
        name=name,
        license=license_,
        kern_version=kern_version,
        byteorder=byteorder,
        btf=btf,
        btf_ext=btf_ext,
        programs={p.name: p for p in programs},
        subprograms=subprograms,
        maps=maps,
        datasecs=datasecs,
        externs=externs,
        sections={i: s.name for i, s in enumerate(sections)},
        section_sizes={s.name: s["sh_size"] for s in sections},
        object_symbols={
            (sym.section, sym.name): sym.value
            for sym in symbols
            if sym.type == "STT_OBJECT" and sym.section and sym.name
        },
        struct_ops=struct_ops,
        hidden_symbols=frozenset(
            sym.name for sym in symbols if sym.hidden and sym.bind != "STB_LOCAL" and sym.name
        ),
    )


def _programs(
    name: str, exec_sections: dict[int, bytes], sections: list[Any], symbols: list[Symbol]
) -> tuple[list[ProgramSpec], dict[tuple[int, int], ProgramSpec]]:
    programs: list[ProgramSpec] = []
    subprograms: dict[tuple[int, int], ProgramSpec] = {}
    for index, code in exec_sections.items():
        sec_name = sections[index].name
        funcs = sorted(
            (s for s in symbols if s.section_index == index and s.type == "STT_FUNC"),
            key=lambda s: s.value,
        )
        if not funcs:
            raise ObjectError(f"{name}: section {sec_name!r} has code but no function symbol")
        is_text = sec_name == ".text"
        section_def = None if is_text else find_section_def(sec_name)
        for sym in funcs:
            if sym.value % INSN_SIZE or sym.size % INSN_SIZE or sym.value + sym.size > len(code):
                raise ObjectError(
                    f"{name}: function {sym.name!r} in {sec_name!r} has a bad offset/size "
                    f"({sym.value}/{sym.size})"
                )
            spec = ProgramSpec(
                name=sym.name,
                section=sec_name,
                section_index=index,
                insn_offset=sym.value // INSN_SIZE,
                insns=code[sym.value : sym.value + sym.size],
                is_subprog=is_text,
                is_global=sym.bind == "STB_GLOBAL",
                section_def=section_def,
            )
            if is_text:
                subprograms[(index, spec.insn_offset)] = spec
            else:
                programs.append(spec)
                # Entry points can be called as sub-programs too (libbpf allows it).
                subprograms[(index, spec.insn_offset)] = spec
    return programs, subprograms


def _attach_relocations(
    name: str,
    sec_name: str,
    index: int,
    entries: list[tuple[int, int, int]],
    symbols: list[Symbol],
    programs: list[ProgramSpec],
    subprograms: dict[tuple[int, int], ProgramSpec],
) -> None:
    owners = sorted(
        (p for p in subprograms.values() if p.section_index == index),
        key=lambda p: p.insn_offset,
    )
    for offset, sym_index, rel_type in entries:
        if sym_index >= len(symbols):
            raise ObjectError(
                f"{name}: relocation in {sec_name!r} at {offset} names symbol "
                f"#{sym_index}, which does not exist"
            )
        if offset % INSN_SIZE:
            raise ObjectError(
                f"{name}: relocation in {sec_name!r} at offset {offset} is not "
                "on an instruction boundary"
            )
        insn = offset // INSN_SIZE
        owner = next(
            (p for p in owners if p.insn_offset <= insn < p.insn_offset + p.insn_count), None
        )
        if owner is None:
            # As libbpf: code no symbol covers is a weak function the static linker
            # overrode; nothing calls it, so its relocations do not matter.
            continue
        owner.relocations[insn - owner.insn_offset] = Relocation(
            offset, symbols[sym_index], rel_type
        )


# --------------------------------------------------------------------------- maps


def _maps(
    name: str,
    btf: Btf,
    symbols: list[Symbol],
    maps_index: int,
    relocations: list[tuple[int, int, int]],
) -> dict[str, MapSpec]:
    datasec = btf.find_all(".maps", Kind.DATASEC)
    if not datasec:
        raise ObjectError(f"{name}: .maps section has no DATASEC in BTF")
    by_name = {s.name: s for s in symbols if s.section_index == maps_index and s.name}
    maps: dict[str, MapSpec] = {}
    for entry in datasec[0].vars:
        var = btf[entry.type]
        if var.kind != Kind.VAR:
            raise ObjectError(f"{name}: .maps entry type {entry.type} is not a variable")
        symbol = by_name.get(var.name)
        spec = _map_from_btf(name, btf, var.name, var.type)
        spec.offset = symbol.value if symbol is not None else entry.offset
        maps[var.name] = spec
    ordered = sorted(maps.values(), key=lambda m: m.offset)
    for offset, sym_index, _type in relocations:
        if sym_index >= len(symbols):
            raise ObjectError(
                f"{name}: .maps relocation names symbol #{sym_index}, which does not exist"
            )
        owner = next((m for m in reversed(ordered) if m.offset <= offset), None)
        if owner is None:
            raise ObjectError(f"{name}: .maps relocation at {offset} is outside every map")
        slot_offset = _values_offset(btf, owner, name)
        slot = (offset - owner.offset - slot_offset) // 8
        if slot < 0:
            raise ObjectError(
                f"{name}: map {owner.name!r}: relocation at {offset} is not in its 'values' array"
            )
        owner.init_values[slot] = symbols[sym_index].name
    return maps


_MAP_INT_FIELDS = (
    "type",
    "max_entries",
    "map_flags",
    "numa_node",
    "pinning",
    "key_size",
    "value_size",
    "map_extra",
)


def _uint_field(btf: Btf, type_id: int, what: str) -> int:
    """``__uint(x, N)`` is ``int (*x)[N]``: a pointer to an array of N ints."""
    ptr = btf.resolve(type_id)
    if ptr.kind != Kind.PTR:
        raise ObjectError(f"{what}: expected __uint(...) (a pointer to an array)")
    array = btf.resolve(ptr.type)
    if array.kind != Kind.ARRAY:
        raise ObjectError(f"{what}: expected __uint(...) (a pointer to an array)")
    return array.nelems


def _map_from_btf(obj: str, btf: Btf, map_name: str, type_id: int) -> MapSpec:
    what = f"{obj}: map {map_name!r}"
    definition = btf.resolve(type_id)
    if definition.kind != Kind.STRUCT:
        raise ObjectError(f"{what}: its definition is a {definition.kind.name}, not a struct")
    spec = MapSpec(map_name, MapType.UNSPEC)
    for member in definition.members:
        field_what = f"{what} field {member.name!r}"
        if member.name in _MAP_INT_FIELDS:
            value = _uint_field(btf, member.type, field_what)
            attr = {"type": "map_type", "map_flags": "flags"}.get(member.name, member.name)
            setattr(spec, attr, value)
        elif member.name in ("key", "value"):
            ptr = btf.resolve(member.type)
            if ptr.kind != Kind.PTR:
                raise ObjectError(f"{field_what}: expected __type(...) (a pointer)")
            size = btf.sizeof(ptr.type)
            setattr(spec, f"{member.name}_size", size)
            setattr(spec, f"{member.name}_type_id", ptr.type)
        elif member.name == "values":
            array = btf.resolve(member.type)
            if array.kind != Kind.ARRAY:
                raise ObjectError(f"{field_what}: expected __array(values, ...)")
            target = btf.resolve(btf.resolve(array.type).type)
            if target.kind == Kind.STRUCT:
                spec.inner = _map_from_btf(obj, btf, f"{map_name}.inner", target.id)
        else:
            raise ObjectError(f"{field_what}: unknown map definition field")
    if spec.map_type == MapType.UNSPEC:
        raise ObjectError(f"{what}: has no 'type'")
    if spec.pinning not in (PIN_NONE, PIN_BY_NAME):
        raise ObjectError(
            f"{what}: pinning {spec.pinning} is invalid (0: none, 1: LIBBPF_PIN_BY_NAME)"
        )
    if spec.inner is not None and spec.map_type in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS):
        spec.value_size = spec.value_size or 4
    if spec.map_type == MapType.PROG_ARRAY:
        spec.value_size = spec.value_size or 4
    return spec


def _values_offset(btf: Btf, spec: MapSpec, obj: str) -> int:
    """Byte offset of the ``values`` member inside a map definition."""
    datasec = btf.find_all(".maps", Kind.DATASEC)[0]
    for entry in datasec.vars:
        var = btf[entry.type]
        if var.name == spec.name:
            for member in btf.resolve(var.type).members:
                if member.name == "values":
                    return member.bit_offset // 8
    raise ObjectError(f"{obj}: map {spec.name!r} has initial values but no 'values' field")


# --------------------------------------------------------------------------- struct_ops


def _struct_ops(
    name: str,
    btf: Btf | None,
    symbols: list[Symbol],
    sections: list[Any],
    datas: dict[int, bytes],
    relocations: dict[int, list[tuple[int, int, int]]],
) -> dict[str, StructOpsSpec]:
    out: dict[str, StructOpsSpec] = {}
    for index, data in datas.items():
        sec_name = sections[index].name
        if btf is None:
            raise ObjectError(f"{name}: {sec_name!r} needs BTF (compile with clang -g)")
        datasecs = btf.find_all(sec_name, Kind.DATASEC)
        if not datasecs:
            raise ObjectError(f"{name}: {sec_name!r} has no DATASEC in BTF")
        offsets = {s.name: s.value for s in symbols if s.section_index == index and s.name}
        variables = []
        for entry in datasecs[0].vars:
            var = btf[entry.type]
            start = offsets.get(var.name, entry.offset)
            size = btf.sizeof(var.type)
            if start + size > len(data):
                raise ObjectError(f"{name}: struct_ops {var.name!r} lies outside {sec_name!r}")
            variables.append((start, size, var))
        for start, size, var in variables:
            functions = {}
            for offset, sym_index, _type in relocations.get(index, []):
                if start <= offset < start + size:
                    if sym_index >= len(symbols):
                        raise ObjectError(
                            f"{name}: struct_ops {var.name!r}: relocation names "
                            f"symbol #{sym_index}, which does not exist"
                        )
                    functions[offset - start] = symbols[sym_index].name
            out[var.name] = StructOpsSpec(
                var.name,
                sec_name,
                var.type,
                data[start : start + size],
                functions,
                ".struct_ops.link" in sec_name,
            )
    return out


# --------------------------------------------------------------------------- externs


def _externs(name: str, btf: Btf | None, symbols: list[Symbol]) -> dict[str, ExternSpec]:
    externs: dict[str, ExternSpec] = {}
    undefined = [
        s
        for s in symbols
        if s.section_index == 0 and s.name and s.bind in ("STB_GLOBAL", "STB_WEAK")
    ]
    if not undefined:
        return externs
    if btf is None:
        raise ObjectError(f"{name}: extern {undefined[0].name!r} needs BTF (compile with -g)")
    homes: dict[int, str] = {}
    for section in (".kconfig", ".ksyms"):
        for datasec in btf.find_all(section, Kind.DATASEC):
            for entry in datasec.vars:
                homes[entry.type] = section
    for sym in undefined:
        candidates = [t for t in btf.find_all(sym.name) if t.kind in (Kind.VAR, Kind.FUNC)]
        if not candidates:
            raise ObjectError(f"{name}: extern {sym.name!r} has no BTF description")
        decl = next((t for t in candidates if t.id in homes), candidates[0])
        home = homes.get(decl.id, "")
        if not home:
            raise ObjectError(
                f"{name}: extern {sym.name!r} is neither __kconfig nor __ksym (only those "
                "externs can be resolved at load time)"
            )
        externs[sym.name] = ExternSpec(sym.name, home, decl.id, decl.kind == Kind.FUNC, sym.weak)
    return externs
