"""ELF for the static linker: reading an input object (sections, symbols, relocations,
BTF, checked as libbpf checks them) and writing the linked object.

The linker needs the raw symbol table (visibility, special section indices) and every
section header field, so it reads them itself on top of ``elf.ElfReader``'s header and
section-table checks; the output is a plain ELF64 relocatable object.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from ..btf import Btf, Kind, Type, VarSecinfo
from ..btf.encode import StringTable
from ..btf.ext import BtfExt
from ..btf.types import LINKAGE_GLOBAL
from ..errors import ObjectError
from .elf import ElfReader
from .linker_btf import SectionBtf

SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_NOBITS, SHT_REL = 1, 2, 3, 8, 9
SHT_LLVM_ADDRSIG = 0x6FFF4C03
SHF_STRINGS, SHF_EXECINSTR = 0x20, 0x4
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
STT_NOTYPE, STT_OBJECT, STT_SECTION = 0, 1, 3
STV_DEFAULT, STV_HIDDEN = 0, 2
SHN_LORESERVE = 0xFF00
RELOCATION_TYPES = {1: "R_BPF_64_64", 2: "R_BPF_64_ABS64", 3: "R_BPF_64_ABS32", 10: "R_BPF_64_32"}
BPF_CALL = 0x85  # BPF_JMP | BPF_CALL

_TYPE_NUMBERS = {
    "SHT_PROGBITS": SHT_PROGBITS,
    "SHT_SYMTAB": SHT_SYMTAB,
    "SHT_STRTAB": SHT_STRTAB,
    "SHT_NOBITS": SHT_NOBITS,
    "SHT_REL": SHT_REL,
}
SYMBOL = struct.Struct("<IBBHQQ")
_SECTION_HEADER = struct.Struct("<IIQQQQIIQQ")
_ELF_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")


@dataclass
class ElfSymbol:
    """A raw symbol table entry (the output's are edited while objects are added)."""

    name: str
    info: int
    other: int
    shndx: int
    value: int
    size: int

    @property
    def bind(self) -> int:
        return self.info >> 4

    @property
    def type(self) -> int:
        return self.info & 0xF

    @property
    def visibility(self) -> int:
        return self.other & 3


@dataclass(eq=False)
class OutSection:
    """A section of the output; ``ephemeral`` while only externs name it (``.kconfig``)."""

    name: str
    sh_type: int
    flags: int
    align: int
    entsize: int
    ephemeral: bool
    origin: str  # the first object that had it
    index: int = 0  # ELF index; 0 while ephemeral
    size: int = 0
    data: bytearray = field(default_factory=bytearray)
    section_symbol: int = 0
    target: OutSection | None = None  # a relocation section's section
    relocations: list[tuple[int, int, int]] = field(default_factory=list)  # off, sym, type
    btf: SectionBtf = field(init=False)

    def __post_init__(self) -> None:
        self.btf = SectionBtf(self.name)


@dataclass(eq=False)
class InSection:
    """A section of one input (or a BTF-only one: ``.kconfig``, ``.ksyms``, extern ``.maps``)."""

    index: int
    name: str
    sh_type: int
    flags: int
    align: int
    entsize: int
    link: int
    info: int
    data: bytes
    size: int
    skipped: bool = False
    ephemeral: bool = False
    out: OutSection | None = None
    out_offset: int = 0
    datasec: Type | None = None  # its DATASEC, variable offsets fixed up from the symbols

    @property
    def executable(self) -> bool:
        return bool(self.flags & SHF_EXECINSTR)


class Input:
    """One object to link: its sections, symbols and BTF, checked as libbpf checks them."""

    def __init__(self, data: bytes, name: str) -> None:
        self.name = name
        parser = ElfReader(data, name)
        if parser.order != "<":
            raise ObjectError(f"{name}: big-endian objects cannot be linked (little-endian only)")
        if parser.elf.header["e_type"] != "ET_REL":
            raise ObjectError(f"{name}: not a relocatable object (ET_REL), cannot be linked")
        self.sections: list[InSection] = []
        self.btf: Btf | None = None
        ext_data: bytes | None = None
        symtab: Any = None
        raw_sections: dict[int, Any] = {}
        for index, raw in enumerate(parser.sections):
            sh_type = raw["sh_type"]
            sh_type = _TYPE_NUMBERS.get(sh_type, sh_type) if isinstance(sh_type, str) else sh_type
            section = InSection(
                index,
                raw.name,
                sh_type,
                raw["sh_flags"],
                raw["sh_addralign"],
                raw["sh_entsize"],
                raw["sh_link"],
                raw["sh_info"],
                b"",
                raw["sh_size"],
            )
            self.sections.append(section)
            raw_sections[index] = raw
            if index == 0:
                section.skipped = True
                continue
            if not raw.name:
                raise ObjectError(f"{name}: section #{index} has no name")
            if sh_type == SHT_STRTAB:  # dropped (rebuilt), but symbol names are read from it
                section.data = parser.section_data(raw)
            if _ignored(section):
                section.skipped = True
                continue
            if sh_type not in (SHT_SYMTAB, SHT_PROGBITS, SHT_NOBITS, SHT_REL):
                raise ObjectError(f"{name}: section #{index} {raw.name!r} has type {sh_type:#x}")
            if sh_type != SHT_NOBITS:
                section.data = parser.section_data(raw)
            if sh_type == SHT_SYMTAB:
                if symtab is not None:
                    raise ObjectError(f"{name}: has more than one symbol table")
                symtab = section
            elif raw.name == ".BTF":
                self.btf = Btf(section.data, name=f"{name} .BTF")
                section.skipped = True
            elif raw.name == ".BTF.ext":
                ext_data = section.data
                section.skipped = True
        if symtab is None:
            raise ObjectError(f"{name}: has no symbol table (.symtab)")
        self.symbols = self._read_symbols(symtab)
        self.symbol_map = [0] * len(self.symbols)  # input symbol -> output symbol
        for section in self.sections:
            if not section.skipped and section.index:
                self._check_section(section)
        self.relocations = {
            s.index: parser.relocations(raw_sections[s.index])
            for s in self.sections
            if s.sh_type == SHT_REL and not s.skipped
        }
        for index, entries in self.relocations.items():
            self._check_relocations(self.sections[index], entries)
        self.ext: BtfExt | None = None
        if ext_data is not None:
            if self.btf is None:
                raise ObjectError(f"{name}: has .BTF.ext but no .BTF")
            self.ext = BtfExt(ext_data, self.btf, name=f"{name} .BTF.ext")
        self.datasec_of: dict[int, Type] = {}  # VAR/FUNC id -> the DATASEC listing it
        if self.btf is not None:
            self._fix_datasecs(self.btf)

    def _read_symbols(self, symtab: InSection) -> list[ElfSymbol]:
        if symtab.entsize != SYMBOL.size or len(symtab.data) % SYMBOL.size:
            raise ObjectError(f"{self.name}: .symtab entries are not 24-byte ELF64 symbols")
        if not 0 < symtab.link < len(self.sections):
            raise ObjectError(f"{self.name}: .symtab has no string table")
        strtab = self.sections[symtab.link]
        if strtab.sh_type != SHT_STRTAB:
            raise ObjectError(f"{self.name}: .symtab's string table is not a STRTAB")
        strings = strtab.data or b""
        symbols = []
        for number, (name_off, info, other, shndx, value, size) in enumerate(
            SYMBOL.iter_unpack(symtab.data)
        ):
            end = strings.find(b"\0", name_off)
            if name_off and (name_off >= len(strings) or end < 0):
                raise ObjectError(f"{self.name}: symbol #{number} has a bad name offset")
            name = strings[name_off:end].decode(errors="replace") if name_off else ""
            symbol = ElfSymbol(name, info, other, shndx, value, size)
            self._check_symbol(number, symbol)
            symbols.append(symbol)
        if not symbols:
            raise ObjectError(f"{self.name}: .symtab is empty (no null symbol)")
        return symbols

    def _check_symbol(self, number: int, sym: ElfSymbol) -> None:
        what = f"{self.name}: symbol #{number} {sym.name!r}"
        if number == 0:
            if sym != ElfSymbol("", 0, 0, 0, 0, 0):
                raise ObjectError(f"{self.name}: symbol #0 is not all zeroes")
            return
        if sym.bind not in (STB_LOCAL, STB_GLOBAL, STB_WEAK):
            raise ObjectError(f"{what} has unsupported binding {sym.bind}")
        if sym.visibility not in (STV_DEFAULT, STV_HIDDEN):
            raise ObjectError(f"{what} has unsupported visibility {sym.visibility}")
        if sym.bind != STB_LOCAL and not sym.name:
            raise ObjectError(f"{self.name}: global symbol #{number} has no name")
        if sym.shndx == 0:
            if sym.type != STT_NOTYPE or sym.bind == STB_LOCAL or sym.value or sym.size:
                raise ObjectError(f"{what} is an invalid extern (undefined) symbol")
        elif sym.shndx < SHN_LORESERVE:
            if sym.shndx >= len(self.sections):
                raise ObjectError(f"{what} is in section #{sym.shndx}, which does not exist")
            section = self.sections[sym.shndx]
            if sym.type == STT_SECTION and sym.value:
                raise ObjectError(f"{what} is a section symbol with a non-zero value")
            if sym.value + sym.size > section.size:
                raise ObjectError(
                    f"{what} ({sym.size} bytes at {sym.value}) lies outside {section.name!r} "
                    f"({section.size} bytes)"
                )
        elif sym.bind != STB_LOCAL:  # SHN_COMMON and the like: nothing the linker can place
            raise ObjectError(f"{what} is in special section {sym.shndx:#x}, not supported")

    def _check_section(self, section: InSection) -> None:
        what = f"{self.name}: section {section.name!r}"
        if section.align & (section.align - 1):
            raise ObjectError(f"{what} alignment {section.align} is not a power of 2")
        if section.sh_type == SHT_PROGBITS and section.executable and section.size % 8:
            raise ObjectError(f"{what} is {section.size} bytes, not whole instructions")
        if section.sh_type != SHT_REL:
            return
        if section.entsize != 16 or section.size % 16:
            raise ObjectError(f"{what}: relocations are not 16-byte ELF64 Rel entries")
        symtab = next(s for s in self.sections if s.sh_type == SHT_SYMTAB and not s.skipped)
        if section.link != symtab.index:
            raise ObjectError(f"{what} does not link to the symbol table")
        if not 0 < section.info < len(self.sections):
            raise ObjectError(f"{what} relocates section #{section.info}, which does not exist")
        target = self.sections[section.info]
        if section.name != ".rel" + target.name:
            raise ObjectError(f"{what} relocates {target.name!r}: expected '.rel{target.name}'")
        if not target.skipped and target.sh_type not in (SHT_PROGBITS, SHT_NOBITS):
            raise ObjectError(f"{what} relocates {target.name!r}, which is neither code nor data")

    def _check_relocations(self, section: InSection, entries: list[tuple[int, int, int]]) -> None:
        target = self.sections[section.info]
        if target.skipped:
            return
        for number, (offset, symbol, rel_type) in enumerate(entries):
            what = f"{self.name}: relocation #{number} in {section.name!r}"
            if rel_type not in RELOCATION_TYPES:
                raise ObjectError(f"{what} has unexpected type {rel_type}")
            if not 0 < symbol < len(self.symbols):
                raise ObjectError(f"{what} names symbol #{symbol}, which does not exist")
            end = offset + (8 if target.executable else 4)
            if offset < 0 or end > target.size:
                raise ObjectError(f"{what} at offset {offset} is outside {target.name!r}")
            if target.executable and offset % 8:
                raise ObjectError(f"{what} at offset {offset} is not on an instruction")

    def _fix_datasecs(self, btf: Btf) -> None:
        """Each DATASEC's section (an ephemeral one if the ELF has none, but for
        ``.extern``) and the offsets of its global variables, from their symbols."""
        by_name = {s.name: s for s in reversed(self.sections) if s.index}
        placed = {
            (sym.shndx, sym.name): sym.value for sym in self.symbols if sym.type == STT_OBJECT
        }
        for datasec in (t for t in btf if t.kind == Kind.DATASEC):
            section = by_name.get(datasec.name)
            if section is None:
                if datasec.name == ".extern":
                    continue
                section = InSection(0, datasec.name, 0, 0, 0, 0, 0, 0, b"", 0, ephemeral=True)
                self.sections.append(section)
                by_name[datasec.name] = section
            entries = []
            for entry in datasec.vars:
                var = btf[entry.type]
                self.datasec_of[entry.type] = datasec
                if var.kind == Kind.VAR and var.linkage == LINKAGE_GLOBAL:  # allocated here
                    value = placed.get((section.index, var.name))
                    if value is None:
                        raise ObjectError(
                            f"{self.name}: variable {var.name!r} of {section.name!r} has no symbol"
                        )
                    entry = VarSecinfo(entry.type, value, entry.size)
                entries.append(entry)
            section.datasec = Type(
                datasec.id, Kind.DATASEC, datasec.name, size=section.size, vars=tuple(entries)
            )

    def section_named(self, name: str) -> InSection | None:
        """The section (ELF or ephemeral) of that name; never the null section."""
        return next((s for s in self.sections[1:] if s.name == name), None)


def _ignored(section: InSection) -> bool:
    """Sections the linker drops: string tables (rebuilt), DWARF, address-significance
    tables, an empty .text, and relocations of DWARF and BTF."""
    name = section.name
    if section.sh_type in (SHT_STRTAB, SHT_LLVM_ADDRSIG) or name.startswith(".debug_"):
        return True
    if section.sh_type == SHT_PROGBITS and section.size == 0 and name == ".text":
        return True
    if name.startswith(".rel"):
        target = name[4:]
        return target.startswith(".debug_") or target in (".BTF", ".BTF.ext")
    return False


def write_elf(
    names: StringTable, rows: list[tuple[str, int, int, int, int, int, int, int, bytes]]
) -> bytes:
    """An ELF64 relocatable BPF object: .strtab (section and symbol names), the rows."""
    name_offsets = [names.add(row[0]) for row in rows]
    strtab_name = names.add(".strtab")
    strtab = bytes(names)
    out = bytearray(_ELF_HEADER.size)
    headers = [bytes(_SECTION_HEADER.size)]
    layout = [(strtab_name, SHT_STRTAB, SHF_STRINGS, 0, 0, 1, 0, len(strtab), strtab)]
    layout += [(off, *row[1:]) for off, row in zip(name_offsets, rows, strict=True)]
    for name, sh_type, flags, link, info, align, entsize, size, data in layout:
        offset = -(-len(out) // max(align, 1)) * max(align, 1)
        if sh_type != SHT_NOBITS:
            out += bytes(offset - len(out)) + data
        headers.append(
            _SECTION_HEADER.pack(name, sh_type, flags, 0, offset, size, link, info, align, entsize)
        )
    table = -(-len(out) // 8) * 8
    out += bytes(table - len(out))
    ident = b"\x7fELF\x02\x01\x01" + bytes(9)
    out[: _ELF_HEADER.size] = _ELF_HEADER.pack(
        ident, 1, 247, 1, 0, 0, table, 0, _ELF_HEADER.size, 0, 0, 64, len(headers), 1
    )
    return bytes(out + b"".join(headers))
