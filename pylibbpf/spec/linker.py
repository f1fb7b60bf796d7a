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

from ..btf.encode import StringTable
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
from .linker_elf import (
    BPF_CALL,
    SHN_LORESERVE,
    SHT_NOBITS,
    SHT_PROGBITS,
    SHT_REL,
    SHT_SYMTAB,
    STB_GLOBAL,
    STB_LOCAL,
    STB_WEAK,
    STT_SECTION,
    SYMBOL,
    ElfSymbol,
    Input,
    InSection,
    OutSection,
    write_elf,
)


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
        order = sorted(range(1, len(self.symbols)), key=lambda i: self.symbols[i].bind != STB_LOCAL)
        renumber = {old: new for new, old in enumerate(order, start=1)}
        symbols = [self.symbols[0]] + [self.symbols[i] for i in order]
        first_global = next((i for i, s in enumerate(symbols) if s.bind != STB_LOCAL), 0)
        names = StringTable()
        sections: list[tuple[str, int, int, int, int, int, int, int, bytes]] = []
        symtab = b"".join(
            SYMBOL.pack(names.add(s.name), s.info, s.other, s.shndx, s.value, s.size)
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
        return write_elf(names, sections)


def _place(obj: Input, name: str) -> tuple[SectionBtf, int] | None:
    section = obj.section_named(name)
    if section is None or section.out is None:
        return None
    return section.out.btf, section.out_offset


def _s32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


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
