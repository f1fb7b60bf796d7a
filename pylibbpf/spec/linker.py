"""The BPF static linker: several clang-built objects into one, as libbpf's ``bpf_linker``.

Semantics are libbpf's (``bpftool gen object``): sections of the same name are appended
in input order, each input's part aligned to the largest alignment seen; ``license`` and
``version`` must agree and are kept once; a global symbol is resolved across objects (one
strong definition wins over weak ones, the first weak one wins over later weak ones, an
extern takes the definition from wherever it is, stricter visibility sticks, and two
strong definitions conflict), static symbols stay apart; relocations follow their
sections and symbols; ``.maps`` declarations of one name must agree as libbpf checks, and
so must the BTF of any global's declarations. ``.BTF`` and ``.BTF.ext`` are merged and
deduplicated (``linker_btf``). The result is an ordinary relocatable object that this
package, libbpf and bpftool load.

Pure: bytes in, bytes out. Differences from libbpf 1.5, all in what it writes: the
symbol table lists local symbols first (a valid ELF ``sh_info``), and each DATASEC lists
its variables sorted, at the offsets of their final symbols (libbpf leaves an extern's
placeholder offset once a later object defines it and leaves the loader to fix it).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..btf import Btf, Kind, Type, VarSecinfo
from ..btf.encode import StringTable
from ..btf.ext import BtfExt
from ..elf import _Parser
from ..errors import ObjectError
from .linker_btf import (
    BtfMerger,
    GlobalSymbol,
    SectionBtf,
    ext_records,
    find_symbol_btf,
    map_defs_mismatch,
    types_mismatch,
)

SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_NOBITS, SHT_REL = 1, 2, 3, 8, 9
SHT_LLVM_ADDRSIG = 0x6FFF4C03
SHF_STRINGS, SHF_EXECINSTR = 0x20, 0x4
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
STT_NOTYPE, STT_OBJECT, STT_SECTION, STT_FILE = 0, 1, 3, 4
STV_DEFAULT, STV_HIDDEN = 0, 2
SHN_LORESERVE, SHN_ABS = 0xFF00, 0xFFF1
RELOCATION_TYPES = {1: "R_BPF_64_64", 2: "R_BPF_64_ABS64", 3: "R_BPF_64_ABS32", 10: "R_BPF_64_32"}
BPF_CALL = 0x85  # BPF_JMP | BPF_CALL

_TYPE_NUMBERS = {
    "SHT_PROGBITS": SHT_PROGBITS,
    "SHT_SYMTAB": SHT_SYMTAB,
    "SHT_STRTAB": SHT_STRTAB,
    "SHT_NOBITS": SHT_NOBITS,
    "SHT_REL": SHT_REL,
}
_SYMBOL = struct.Struct("<IBBHQQ")
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
        parser = _Parser(data, name)
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
        if symtab.entsize != _SYMBOL.size or len(symtab.data) % _SYMBOL.size:
            raise ObjectError(f"{self.name}: .symtab entries are not 24-byte ELF64 symbols")
        if not 0 < symtab.link < len(self.sections):
            raise ObjectError(f"{self.name}: .symtab has no string table")
        strtab = self.sections[symtab.link]
        if strtab.sh_type != SHT_STRTAB:
            raise ObjectError(f"{self.name}: .symtab's string table is not a STRTAB")
        strings = strtab.data or b""
        symbols = []
        for number, (name_off, info, other, shndx, value, size) in enumerate(
            _SYMBOL.iter_unpack(symtab.data)
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
            if (sym.name, sym.info, sym.other, sym.shndx, sym.value, sym.size) != (
                "",
                0,
                0,
                0,
                0,
                0,
            ):
                raise ObjectError(f"{self.name}: symbol #0 is not all zeroes")
            return
        if sym.bind not in (STB_LOCAL, STB_GLOBAL, STB_WEAK):
            raise ObjectError(f"{what} has unsupported binding {sym.bind}")
        if sym.visibility not in (STV_DEFAULT, STV_HIDDEN):
            raise ObjectError(f"{what} has unsupported visibility {sym.visibility}")
        if sym.shndx == 0:
            if sym.type != STT_NOTYPE or sym.bind == STB_LOCAL or sym.value or sym.size:
                raise ObjectError(f"{what} is an invalid extern (undefined) symbol")
        elif sym.shndx < SHN_LORESERVE and sym.shndx >= len(self.sections):
            raise ObjectError(f"{what} is in section #{sym.shndx}, which does not exist")
        elif sym.type == STT_SECTION and sym.value:
            raise ObjectError(f"{what} is a section symbol with a non-zero value")

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
                if var.kind == Kind.VAR and var.linkage == 1:  # global, allocated here
                    entry = self._placed(section, var.name, entry)
                entries.append(entry)
            section.datasec = Type(
                datasec.id, Kind.DATASEC, datasec.name, size=section.size, vars=tuple(entries)
            )

    def _placed(self, section: InSection, name: str, entry: VarSecinfo) -> VarSecinfo:
        for sym in self.symbols:
            if sym.shndx == section.index and sym.type == STT_OBJECT and sym.name == name:
                return VarSecinfo(entry.type, sym.value, entry.size)
        raise ObjectError(f"{self.name}: variable {name!r} of {section.name!r} has no symbol")

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


class Linker:
    """Objects added one at a time (``add``), then written as one (``finalize``)."""

    def __init__(self) -> None:
        self.sections: list[OutSection] = []
        self.symbols = [ElfSymbol("", 0, 0, 0, 0, 0)]
        self.globals: dict[str, GlobalSymbol] = {}
        self.btf = BtfMerger()
        self.next_index = 3  # 1: .strtab, 2: .symtab

    def add(self, obj: Input) -> None:
        self._append_sections(obj)
        for number in range(1, len(obj.symbols)):
            self._append_symbol(obj, number)
        self._append_relocations(obj)
        if obj.btf is not None:
            datasecs = [
                (s.out.btf, s.datasec, s.out_offset)
                for s in obj.sections
                if s.datasec is not None and not s.skipped and s.out is not None
            ]
            mapping = self.btf.append(obj.name, obj.btf, self.globals, datasecs)
            if obj.ext is not None:
                ext_records(obj.name, obj.ext, lambda name: _place(obj, name), mapping)

    # ------------------------------------------------------------------ sections

    def _section(self, name: str) -> OutSection | None:
        return next((s for s in self.sections if s.name == name), None)

    def _new_section(self, obj: Input, source: InSection) -> OutSection:
        out = OutSection(
            source.name,
            source.sh_type,
            source.flags,
            source.align,
            source.entsize,
            source.ephemeral,
            obj.name,
        )
        if not source.ephemeral:
            out.index, self.next_index = self.next_index, self.next_index + 1
        self.sections.append(out)
        return out

    def _check_compatible(self, obj: Input, out: OutSection, source: InSection) -> None:
        if out.ephemeral or source.ephemeral:
            return
        for label, mine, theirs in (
            ("type", out.sh_type, source.sh_type),
            ("flags", out.flags, source.flags),
            ("entry size", out.entsize, source.entsize),
        ):
            if mine != theirs:
                raise ObjectError(
                    f"{obj.name}: section {source.name!r} has {label} {theirs:#x}, but "
                    f"{mine:#x} in {out.origin}"
                )

    def _extend(self, out: OutSection, source: InSection) -> None:
        """Append a section's bytes at the output section's alignment."""
        if source.ephemeral:
            return
        if out.ephemeral:  # an extern-only section (.maps) gets its first real part
            out.ephemeral = False
            out.sh_type, out.flags = source.sh_type, source.flags
            out.align, out.entsize = source.align, source.entsize
            out.index, self.next_index = self.next_index, self.next_index + 1
        align = max(out.align, source.align, 1)
        start = -(-out.size // align) * align
        if source.sh_type != SHT_NOBITS:
            out.data += bytes(start - len(out.data)) + source.data
        out.size = start + source.size
        out.align = align
        source.out_offset = start

    def _append_sections(self, obj: Input) -> None:
        for source in obj.sections:
            if source.skipped or not (
                source.ephemeral or source.sh_type in (SHT_PROGBITS, SHT_NOBITS)
            ):
                continue
            out = self._section(source.name)
            if out is None:
                out = self._new_section(obj, source)
            else:
                self._check_compatible(obj, out, source)
                if source.name in ("license", "version"):
                    if bytes(out.data) != source.data:
                        raise ObjectError(
                            f"{obj.name}: section {source.name!r} differs from the one in "
                            f"{out.origin} ({source.data!r} vs {bytes(out.data)!r})"
                        )
                    source.skipped = True
                    source.out = out
                    continue
            source.out = out
            self._extend(out, source)

    # ------------------------------------------------------------------ symbols

    def _add_symbol(self, symbol: ElfSymbol) -> int:
        self.symbols.append(symbol)
        return len(self.symbols) - 1

    def _append_symbol(self, obj: Input, number: int) -> None:
        sym = obj.symbols[number]
        source: InSection | None = None
        out: OutSection | None = None
        is_extern = sym.shndx == 0
        if is_extern and obj.btf is None:
            raise ObjectError(f"{obj.name}: extern {sym.name!r} needs BTF (compile with -g)")
        if not is_extern and sym.shndx < SHN_LORESERVE:
            source = obj.sections[sym.shndx]
            if source.skipped:
                return  # DWARF, BTF, or a duplicate license: the first object's stands
            out = source.out
            if sym.type == STT_SECTION and out is not None and out.section_symbol:
                obj.symbol_map[number] = out.section_symbol
                return
        if sym.bind == STB_LOCAL:
            self._add_new(obj, number, sym, source, out)
            return
        if obj.btf is None:
            raise ObjectError(f"{obj.name}: global symbol {sym.name!r} needs BTF (compile with -g)")
        datasec, btf_id = find_symbol_btf(obj.name, obj.btf, sym.name, obj.datasec_of)
        if is_extern and datasec is not None and datasec.name != ".extern":
            source = obj.section_named(datasec.name)
            if source is None or source.out is None:
                raise ObjectError(
                    f"{obj.name}: extern {sym.name!r} is in {datasec.name!r}, which it lacks"
                )
            out = source.out
        glob = self.globals.get(sym.name)
        if glob is None:
            index = self._add_new(obj, number, sym, source, out)
            self.globals[sym.name] = GlobalSymbol(
                sym.name,
                index,
                out.btf if out is not None else None,
                is_extern,
                sym.bind == STB_WEAK,
                obj.name,
                (obj.btf, btf_id),
            )
            return
        self._resolve(obj, number, sym, glob, btf_id, source, out)

    def _add_new(
        self,
        obj: Input,
        number: int,
        sym: ElfSymbol,
        source: InSection | None,
        out: OutSection | None,
    ) -> int:
        shndx = out.index if out is not None else sym.shndx
        value = (source.out_offset if source is not None else 0) + sym.value
        index = self._add_symbol(ElfSymbol(sym.name, sym.info, sym.other, shndx, value, sym.size))
        obj.symbol_map[number] = index
        if sym.type == STT_SECTION and out is not None:
            out.section_symbol = index
            self.symbols[index].value = 0
        return index

    def _resolve(
        self,
        obj: Input,
        number: int,
        sym: ElfSymbol,
        glob: GlobalSymbol,
        btf_id: int,
        source: InSection | None,
        out: OutSection | None,
    ) -> None:
        """A second declaration or definition of a global (libbpf's resolution rules)."""
        assert obj.btf is not None
        obj.symbol_map[number] = glob.symbol
        is_extern = sym.shndx == 0
        if not is_extern and not glob.is_extern and not glob.is_weak and sym.bind != STB_WEAK:
            raise ObjectError(
                f"strong symbol {sym.name!r} defined in both {glob.origin} and {obj.name}"
            )
        self._check_declarations(obj, glob, btf_id)
        target = self.symbols[glob.symbol]
        if sym.bind == STB_GLOBAL:
            target.info = (STB_GLOBAL << 4) | target.type
            glob.is_weak = False
        if sym.visibility > target.visibility:
            target.other = (target.other & ~3) | sym.visibility
        if is_extern or (not glob.is_extern and sym.bind == STB_WEAK):
            return  # nothing to add: a declaration, or a weak definition that lost
        assert source is not None and out is not None
        target.info = (target.bind << 4) | sym.type
        target.shndx = out.index
        target.value = source.out_offset + sym.value
        target.size = sym.size
        glob.section = out.btf
        glob.is_extern = False
        glob.origin = obj.name
        self.btf.complete_extern(glob, obj.btf, btf_id)
        glob.owner = (obj.btf, btf_id)
        glob.wants_type = True

    def _check_declarations(self, obj: Input, glob: GlobalSymbol, btf_id: int) -> None:
        assert obj.btf is not None
        owner_btf, owner_id = glob.owner
        if glob.section is not None and glob.section.name == ".maps":
            why = map_defs_mismatch(glob.name, glob.owner, (obj.btf, btf_id))
            if why is not None:
                raise ObjectError(
                    f"conflicting definitions of map {glob.name!r} in {glob.origin} and "
                    f"{obj.name}: {why}"
                )
            return
        why = types_mismatch(True, owner_btf, owner_id, obj.btf, btf_id)
        if why is not None:
            raise ObjectError(
                f"conflicting declarations of {glob.name!r} in {glob.origin} and {obj.name}: {why}"
            )

    # ------------------------------------------------------------------ relocations

    def _append_relocations(self, obj: Input) -> None:
        for number, entries in obj.relocations.items():
            rel = obj.sections[number]
            target = obj.sections[rel.info]
            if target.skipped or target.out is None:
                continue
            out = self._section(rel.name)
            if out is None:
                out = self._new_section(obj, rel)
            else:
                self._check_compatible(obj, out, rel)
            out.target = target.out
            rel.out = out
            for offset, symbol, rel_type in entries:
                mapped = obj.symbol_map[symbol]
                if not mapped:
                    raise ObjectError(
                        f"{obj.name}: relocation in {rel.name!r} refers to symbol "
                        f"{obj.symbols[symbol].name!r}, which is not linked"
                    )
                at = offset + target.out_offset
                source_symbol = obj.symbols[symbol]
                if source_symbol.type == STT_SECTION:
                    self._rebase_section_reference(obj, target, at, source_symbol)
                out.relocations.append((at, mapped, rel_type))
            out.size = 16 * len(out.relocations)

    def _rebase_section_reference(
        self, obj: Input, target: InSection, at: int, symbol: ElfSymbol
    ) -> None:
        """A reference to a section (not a symbol) carries its offset in the instruction:
        add where that section's part landed (in instructions, for a call)."""
        if not target.executable:
            raise ObjectError(
                f"{obj.name}: relocation against a section symbol in {target.name!r}, "
                "which is not code, is not supported"
            )
        assert target.out is not None
        referenced = obj.sections[symbol.shndx]
        shift = referenced.out_offset
        code = target.out.data
        if code[at] == BPF_CALL:
            shift //= 8
        (imm,) = struct.unpack_from("<i", code, at + 4)
        struct.pack_into("<i", code, at + 4, _s32(imm + shift))

    # ------------------------------------------------------------------ output

    def _symbol_value(self, glob: GlobalSymbol) -> int | None:
        return None if glob.is_extern else self.symbols[glob.symbol].value

    def finalize(self) -> bytes:
        """The linked object (ELF64 relocatable, little-endian)."""
        btf, ext = self.btf.finalize([(s.btf, s.size) for s in self.sections], self._symbol_value)
        order = sorted(range(1, len(self.symbols)), key=lambda i: self.symbols[i].bind != 0)
        renumber = {old: new for new, old in enumerate(order, start=1)}
        symbols = [self.symbols[0]] + [self.symbols[i] for i in order]
        first_global = next((i for i, s in enumerate(symbols) if s.bind != STB_LOCAL), 0)
        names = StringTable()
        sections: list[tuple[str, int, int, int, int, int, int, int, bytes]] = []
        symtab = b"".join(
            _SYMBOL.pack(names.add(s.name), s.info, s.other, s.shndx, s.value, s.size)
            for s in symbols
        )
        sections.append(
            (".symtab", SHT_SYMTAB, 0, 1, first_global or len(symbols), 8, 24, len(symtab), symtab)
        )
        for out in sorted((s for s in self.sections if not s.ephemeral), key=lambda s: s.index):
            if out.sh_type == SHT_REL:
                assert out.target is not None
                data = b"".join(
                    struct.pack("<QQ", off, renumber[sym] << 32 | rel_type)
                    for off, sym, rel_type in out.relocations
                )
                row = (out.name, SHT_REL, out.flags, 2, out.target.index, 8, 16, len(data), data)
            else:
                row = (
                    out.name,
                    out.sh_type,
                    out.flags,
                    0,
                    0,
                    out.align,
                    out.entsize,
                    out.size,
                    bytes(out.data),
                )
            sections.append(row)
        if btf:
            sections.append((".BTF", SHT_PROGBITS, 0, 0, 0, 8, 0, len(btf), btf))
            if ext is not None:
                sections.append((".BTF.ext", SHT_PROGBITS, 0, 0, 0, 8, 0, len(ext), ext))
        return _write_elf(names, sections)


def _place(obj: Input, name: str) -> tuple[SectionBtf, int] | None:
    section = obj.section_named(name)
    if section is None or section.out is None:
        return None
    return section.out.btf, section.out_offset


def _s32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _write_elf(
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


def link_objects(inputs: Sequence[bytes], names: Sequence[str] | None = None) -> bytes:
    """Link BPF ELF objects into one (libbpf's static linker semantics); pure.

    ``names`` name the inputs in error messages (default ``input #1``, ...). Raises
    ``ObjectError`` naming the object, the symbol or section, and the cause.
    """
    if not inputs:
        raise ObjectError("nothing to link: no input objects")
    labels = list(names) if names is not None else [f"input #{i + 1}" for i in range(len(inputs))]
    if len(labels) != len(inputs):
        raise ValueError(f"{len(inputs)} inputs but {len(labels)} names")
    linker = Linker()
    for data, label in zip(inputs, labels, strict=True):
        linker.add(Input(bytes(data), label))
    return linker.finalize()
