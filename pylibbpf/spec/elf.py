"""Reading a clang-built BPF ELF object into an ``ObjectSpec``: pure, no syscalls.

The spec is everything the object says — programs and sub-programs with their
relocations, BTF-defined maps, global data sections, externs, license, BTF — and nothing
that depends on the kernel it will be loaded into. It is the same on every machine.
"""

from __future__ import annotations

import errno
import functools
import struct

from ..btf import Btf, Kind
from ..btf.ext import BtfExt
from ..errors import ObjectError
from ..uapi_values import MapType
from .insn import INSN_SIZE
from .mapdefs import read_maps
from .objspec import (
    ARENA_SECTION,
    DataSectionSpec,
    ExternSpec,
    MapSpec,
    ObjectSpec,
    ProgramSpec,
    Relocation,
    StructOpsSpec,
    Symbol,
    readonly_section,
)
from .sections import find_section_def

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any

EM_BPF = 247
R_BPF_64_64 = 1
R_BPF_64_ABS64 = 2
R_BPF_64_ABS32 = 3
R_BPF_64_NODYLD32 = 4
R_BPF_64_32 = 10

# A NOBITS section (.bss) becomes one array map value: KMALLOC_MAX_SIZE bounds it, 4 MiB
# with 4 KiB pages and 512 MiB at most (64 KiB pages). Checked before allocating it.
MAX_NOBITS_SIZE = 512 << 20
SHF_EXECINSTR = 0x4
SHF_WRITE = 0x1

DATA_PREFIXES = (".data", ".rodata", ".bss")


_SHT_NAMES = {1: "SHT_PROGBITS", 2: "SHT_SYMTAB", 3: "SHT_STRTAB", 8: "SHT_NOBITS", 9: "SHT_REL"}
_ET_NAMES = {0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}
_EM_NAMES = {
    0: "EM_NONE",
    3: "EM_386",
    8: "EM_MIPS",
    20: "EM_PPC",
    21: "EM_PPC64",
    22: "EM_S390",
    40: "EM_ARM",
    62: "EM_X86_64",
    183: "EM_AARCH64",
    243: "EM_RISCV",
    EM_BPF: "EM_BPF",
    258: "EM_LOONGARCH",
}
_ELF_MAGIC = b"\x7fELF"
# e_ident, then type, machine, version, entry, phoff, shoff, flags, ehsize, phentsize,
# phnum, shentsize, shnum, shstrndx: the ELF64 header, precompiled for each byte order.
_ELF64_HEADER = {order: struct.Struct(order + "16sHHIQQQIHHHHHH") for order in "<>"}
_HEADER_KEYS = (
    "e_ident",
    "e_type",
    "e_machine",
    "e_version",
    "e_entry",
    "e_phoff",
    "e_shoff",
    "e_flags",
    "e_ehsize",
    "e_phentsize",
    "e_phnum",
    "e_shentsize",
    "e_shnum",
    "e_shstrndx",
)
_SECTION_HEADER = {order: struct.Struct(order + "IIQQQQIIQQ") for order in "<>"}
_SECTION_KEYS = (
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
SHN_XINDEX = 0xFFFF


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


class ElfHeader:
    """The ELF header's fields (``header["e_type"]`` is "ET_REL" for an object file)."""

    __slots__ = ("elfclass", "header", "little_endian")

    def __init__(self, header: dict[str, Any], little_endian: bool) -> None:
        self.header = header
        self.little_endian = little_endian
        self.elfclass = 64

    def __getitem__(self, key: str) -> Any:
        return self.header[key]


def read_elf_header(data: bytes, name: str) -> ElfHeader:
    """The header of a 64-bit BPF ELF object, checked: magic, class, byte order, machine,
    size. Anything else is an ``ObjectError`` naming ``name``."""

    def invalid(why: str) -> ObjectError:
        return ObjectError(f"{name}: not a valid ELF file: {why}")

    if len(data) < 20 or data[:4] != _ELF_MAGIC:
        raise invalid("no ELF magic number" if data[:4] != _ELF_MAGIC else "truncated header")
    elfclass, encoding = data[4], data[5]
    if elfclass not in (1, 2):
        raise invalid(f"unknown ELF class {elfclass}")
    if encoding not in (1, 2):
        raise invalid(f"unknown data encoding {encoding}")
    order = "<" if encoding == 1 else ">"
    machine = struct.unpack_from(order + "H", data, 18)[0]
    if machine != EM_BPF:
        raise ObjectError(
            f"{name}: ELF machine is {_EM_NAMES.get(machine, machine)}, not BPF "
            "(compile with clang -target bpf)"
        )
    if elfclass != 2:
        raise ObjectError(f"{name}: 32-bit ELF objects are not BPF objects")
    layout = _ELF64_HEADER[order]
    if len(data) < layout.size:
        raise invalid(f"{len(data)} bytes is too short for an ELF header")
    header = dict(zip(_HEADER_KEYS, layout.unpack_from(data), strict=True))
    header["e_type"] = _ET_NAMES.get(header["e_type"], header["e_type"])
    header["e_machine"] = "EM_BPF"
    return ElfHeader(header, encoding == 1)


class ElfReader:
    """The headers, sections, symbols and relocations of one BPF ELF object, read with
    precompiled ``struct`` records (the object parser and the static linker share it)."""

    def __init__(self, data: bytes, name: str) -> None:
        self.name = name
        self.header = read_elf_header(data, name)
        self.elf = self.header  # the name the linker reads ``elf.header`` through
        self.order = "<" if self.header.little_endian else ">"
        self.sections = self._section_table(data)

    def _section_table(self, data: bytes) -> list[_Section]:
        header = self.header
        offset, size, count, names = (
            header["e_shoff"],
            header["e_shentsize"],
            header["e_shnum"],
            header["e_shstrndx"],
        )
        record = _SECTION_HEADER[self.order]

        def bad(why: str = "bad section header table") -> ObjectError:
            return ObjectError(f"{self.name}: not a valid ELF file: {why}")

        if offset and (count == 0 or names == SHN_XINDEX):
            # More sections than the header fields hold: section 0 has the real values.
            if size != record.size or offset + size > len(data):
                raise bad()
            first = dict(zip(_SECTION_KEYS, record.unpack_from(data, offset), strict=True))
            count = count or first["sh_size"]
            names = first["sh_link"] if names == SHN_XINDEX else names
        if not offset or not count:
            raise bad("no section header table")
        if size != record.size or offset + count * size > len(data) or names >= count:
            raise bad()
        table = [
            dict(zip(_SECTION_KEYS, values, strict=True))
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
                raise bad("bad section name")
            fields["sh_type"] = _SHT_NAMES.get(fields["sh_type"], fields["sh_type"])
            sections.append(_Section(strings[start:end].decode(errors="replace"), fields, data))
        return sections

    def section_data(self, section: Any) -> bytes:
        try:
            if section["sh_type"] == "SHT_NOBITS":
                size = section["sh_size"]
                if size > MAX_NOBITS_SIZE:
                    raise ObjectError(
                        f"{self.name}: section {section.name!r} claims {size} bytes of zeros; "
                        f"no kernel takes a map value over {MAX_NOBITS_SIZE >> 20} MiB"
                    )
                try:
                    return bytes(size)
                except MemoryError:  # under the limit, but more than this process may take
                    raise ObjectError(
                        f"{self.name}: section {section.name!r} claims {size} bytes of zeros, "
                        "more memory than this process can allocate"
                    ) from None
            return bytes(section.data())
        except (struct.error, ValueError) as error:
            raise ObjectError(
                f"{self.name}: section {section.name!r} is unreadable: {error}"
            ) from error

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


# An object's BTF and .BTF.ext, parsed once per content: opening the same object again
# (a daemon reloading its programs) finds them parsed, with the types it decoded the first
# time. They are read-only after parsing, so two objects can share them.
@functools.lru_cache(maxsize=32)
def _parse_btf(data: bytes, name: str) -> Btf:
    return Btf(data, name=name)


@functools.lru_cache(maxsize=32)
def _parse_btf_ext(data: bytes, btf: Btf, name: str) -> BtfExt:
    return BtfExt(data, btf, name=name)


def parse_object(data: bytes, name: str = "object") -> ObjectSpec:
    """Parse a BPF ELF object. Raises ``ObjectError`` naming the section or symbol at fault."""
    parser = ElfReader(data, name)
    elf, sections = parser.header, parser.sections
    byteorder = "little" if elf.little_endian else "big"
    license_ = ""
    kern_version = 0
    btf: Btf | None = None
    btf_ext_data: bytes | None = None
    exec_sections: dict[int, bytes] = {}
    relocations: dict[int, list[tuple[int, int, int]]] = {}  # target -> (offset, sym, type)
    datasecs: dict[str, DataSectionSpec] = {}
    struct_ops_sections: dict[int, bytes] = {}
    arena: DataSectionSpec | None = None
    maps_index = -1
    rel_sections: list[Any] = []

    section: Any
    for index, section in enumerate(sections):
        sec_name, sec_type = section.name, section["sh_type"]
        if sec_name == "license":  # none: "" as libbpf (non-GPL; type-only objects)
            license_ = parser.section_data(section).split(b"\0", 1)[0].decode(errors="replace")
        elif sec_name == "version":
            raw = parser.section_data(section)
            if len(raw) != 4:
                raise ObjectError(f"{name}: 'version' section must be 4 bytes, is {len(raw)}")
            kern_version = struct.unpack("<I" if elf.little_endian else ">I", raw)[0]
        elif sec_name == "maps":
            raise ObjectError(
                f"{name}: legacy 'maps' section (struct bpf_map_def) is not supported, as in "
                'libbpf 1.x: declare maps with BTF in SEC(".maps")',
                errno.EOPNOTSUPP,
            )
        elif sec_name == ".maps":
            maps_index = index
        elif sec_name == ".BTF":
            btf = _parse_btf(parser.section_data(section), f"{name} .BTF")
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
        elif sec_name == ARENA_SECTION and sec_type == "SHT_PROGBITS" and section["sh_size"]:
            arena = DataSectionSpec(sec_name, index, parser.section_data(section), False)
        elif sec_name.startswith(DATA_PREFIXES) and sec_type in ("SHT_PROGBITS", "SHT_NOBITS"):
            datasecs[sec_name] = DataSectionSpec(
                sec_name, index, parser.section_data(section), readonly_section(sec_name)
            )

    symbols = parser.symbols()
    for section in rel_sections:
        # Only code and .maps relocations matter; DWARF's thousands are skipped unread.
        target = section["sh_info"]
        if target in exec_sections or target == maps_index or target in struct_ops_sections:
            relocations.setdefault(target, []).extend(parser.relocations(section))
    btf_ext = None
    if btf_ext_data is not None and btf is not None:
        btf_ext = _parse_btf_ext(btf_ext_data, btf, f"{name} .BTF.ext")
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
        maps = read_maps(name, btf, symbols, maps_index, relocations.get(maps_index, []))

    _check_arena(name, maps, arena)
    if arena is not None and btf is not None:
        arena.btf_id = btf.find_id(ARENA_SECTION, Kind.DATASEC) or 0
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
            if sym.type == "STT_OBJECT"
            and sym.section
            and sym.name
            and sym.bind in ("STB_GLOBAL", "STB_WEAK")
        },
        struct_ops=struct_ops,
        hidden_symbols=frozenset(
            sym.name for sym in symbols if sym.hidden and sym.bind != "STB_LOCAL" and sym.name
        ),
        arena=arena,
    )


def _check_arena(name: str, maps: dict[str, MapSpec], arena: DataSectionSpec | None) -> None:
    """libbpf's rules: one ARENA map at most, and __arena globals need it."""
    arenas = [m.name for m in maps.values() if m.map_type == MapType.ARENA]
    if len(arenas) > 1:
        raise ObjectError(
            f"{name}: map {arenas[1]!r}: only one ARENA map is supported "
            f"(map {arenas[0]!r} is one too)"
        )
    if arena is not None and not arenas:
        raise ObjectError(
            f"{name}: section {ARENA_SECTION!r} holds __arena globals, but the object declares "
            'no ARENA map in SEC(".maps") for them',
            errno.ENOENT,
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

_EXTERN_HOMES = (".kconfig", ".ksyms")


def _externs(name: str, btf: Btf | None, symbols: list[Symbol]) -> dict[str, ExternSpec]:
    externs: dict[str, ExternSpec] = {}
    undefined = [
        s
        for s in symbols
        if s.section_index == 0 and s.name and s.bind in ("STB_GLOBAL", "STB_WEAK")
    ]
    if not undefined:
        return externs
    # errnos as libbpf's bpf_object__collect_externs: ESRCH without BTF, ENOENT for an
    # extern BTF does not describe or place in a section (objects meant for static
    # linking), EOPNOTSUPP for one in another section than .kconfig/.ksyms.
    if btf is None:
        raise ObjectError(
            f"{name}: extern {undefined[0].name!r} needs BTF (compile with -g)", errno.ESRCH
        )
    homes: dict[int, str] = {}
    for type_id in range(btf.first_id, btf.type_count):
        if btf.kind_of(type_id) == Kind.DATASEC:
            datasec = btf[type_id]
            for entry in datasec.vars:
                homes.setdefault(entry.type, datasec.name)
    for sym in undefined:
        candidates = [t for t in btf.find_all(sym.name) if t.kind in (Kind.VAR, Kind.FUNC)]
        if not candidates:
            raise ObjectError(f"{name}: extern {sym.name!r} has no BTF description", errno.ENOENT)
        decl = next((t for t in candidates if homes.get(t.id) in _EXTERN_HOMES), candidates[0])
        home = homes.get(decl.id, "")
        if home not in _EXTERN_HOMES:
            raise ObjectError(
                f"{name}: extern {sym.name!r} is neither __kconfig nor __ksym (only those "
                "externs can be resolved at load time; link objects that define it first)",
                errno.EOPNOTSUPP if home else errno.ENOENT,
            )
        externs[sym.name] = ExternSpec(sym.name, home, decl.id, decl.kind == Kind.FUNC, sym.weak)
    return externs
