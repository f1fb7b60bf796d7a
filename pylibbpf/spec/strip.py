"""Dropping DWARF from a BPF object: what ``gen skeleton`` embeds.

clang's ``-g`` output is mostly DWARF (``.debug_*`` and their ``.rel.debug_*``
relocations): 947 KB of libbpf-bootstrap's ``bootstrap.bpf.o`` is 53 KB without it.
Loading needs none of it: types are in ``.BTF``, and the line info verifier messages
quote is in ``.BTF.ext``. This rewrites the ELF without those sections, as ``strip
--strip-debug`` would: the section header table renumbered, ``sh_link``/``sh_info`` and
symbols' ``st_shndx`` following the new numbering (the name table is kept whole: clang
shares it with the symbol names). Symbol indices do not change (the
section symbols of dropped sections become null entries), so every kept relocation and
``.llvm_addrsig`` stays valid as it is. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import struct

from ..errors import ObjectError

_SHT_SYMTAB, _SHT_RELA, _SHT_NOBITS, _SHT_REL = 2, 4, 8, 9
_SHT_DYNSYM, _SHT_SYMTAB_SHNDX = 11, 18
_SHF_INFO_LINK = 0x40
_SHN_LORESERVE = 0xFF00
_EHDR_SIZE, _SHDR_SIZE, _SYM_SIZE = 64, 64, 24


def is_debug_section(name: bytes) -> bool:
    return name.startswith(b".debug_")


def strip_debug(data: bytes, name: str = "object") -> bytes:
    """``data`` without DWARF; the same bytes when there is none. ``ObjectError`` for an
    ELF this cannot rewrite (not 64-bit, program headers, extended section numbering)."""
    elf = _Elf(data, name)
    dropped = {i for i, (sec_name, _) in enumerate(elf.sections) if is_debug_section(sec_name)}
    for index, (_, header) in enumerate(elf.sections):
        if header["type"] in (_SHT_REL, _SHT_RELA) and header["info"] in dropped:
            dropped.add(index)
    if not dropped:
        return data
    return elf.rewrite(dropped)


class _Elf:
    def __init__(self, data: bytes, name: str) -> None:
        self.data, self.name = data, name
        if len(data) < _EHDR_SIZE or data[:4] != b"\x7fELF":
            raise self.error("not an ELF file")
        if data[4] != 2 or data[5] not in (1, 2):
            raise self.error("only 64-bit ELF objects are rewritten")
        self.order = "<" if data[5] == 1 else ">"
        ehdr = struct.unpack_from(self.order + "HHIQQQIHHHHHH", data, 16)
        _, _, _, _, _, shoff, _, _, _, phnum, shentsize, shnum, shstrndx = ehdr
        self.ehdr = list(ehdr)
        if phnum:
            raise self.error("has program headers (not a relocatable object)")
        if shentsize != _SHDR_SIZE or shnum == 0 or shstrndx >= shnum:
            raise self.error("unusual section header table (extended numbering?)")
        if shoff + shnum * _SHDR_SIZE > len(data):
            raise self.error("the section header table runs past the end of the file")
        self.shstrndx = shstrndx
        headers = []
        for index in range(shnum):
            fields = struct.unpack_from(self.order + "IIQQQQIIQQ", data, shoff + index * 64)
            keys = ("name", "type", "flags", "addr", "offset", "size", "link", "info", "align")
            header = dict(zip(keys, fields[:9], strict=True))
            header["entsize"] = fields[9]
            if header["type"] != _SHT_NOBITS and header["offset"] + header["size"] > len(data):
                raise self.error(f"section {index} runs past the end of the file")
            if header["type"] == _SHT_SYMTAB_SHNDX:
                raise self.error("extended symbol section indices are not rewritten")
            headers.append(header)
        names = self.contents(headers[shstrndx])
        self.sections: list[tuple[bytes, dict[str, int]]] = []
        for header in headers:
            end = names.find(b"\0", header["name"])
            if header["name"] >= len(names) or end < 0:
                raise self.error("a section name is out of range")
            self.sections.append((names[header["name"] : end], header))

    def error(self, why: str) -> ObjectError:
        return ObjectError(f"{self.name}: cannot strip DWARF: {why}")

    def contents(self, header: dict[str, int]) -> bytes:
        if header["type"] == _SHT_NOBITS:
            return b""
        return self.data[header["offset"] : header["offset"] + header["size"]]

    def rewrite(self, dropped: set[int]) -> bytes:
        kept = [i for i in range(len(self.sections)) if i not in dropped]
        if self.shstrndx in dropped or 0 in dropped:
            raise self.error("it would drop the section name table")
        number = {old: new for new, old in enumerate(kept)}
        out = bytearray(self.data[:_EHDR_SIZE])
        headers = []
        for old in kept:
            header = dict(self.sections[old][1])
            header["link"] = self.renumber(header["link"], number, f"section {old}'s sh_link")
            if header["type"] in (_SHT_REL, _SHT_RELA) or header["flags"] & _SHF_INFO_LINK:
                header["info"] = self.renumber(header["info"], number, f"section {old}'s sh_info")
            if header["type"] in (_SHT_SYMTAB, _SHT_DYNSYM):
                content = self.symbols(self.contents(header), number, dropped)
            else:
                content = self.contents(header)
            if old:
                align = max(1, header["align"])
                out += bytes(-len(out) % align)
                header["offset"] = len(out)
                out += content
            headers.append(header)
        out += bytes(-len(out) % 8)
        ehdr = list(self.ehdr)
        ehdr[5], ehdr[11], ehdr[12] = len(out), len(kept), number[self.shstrndx]
        struct.pack_into(self.order + "HHIQQQIHHHHHH", out, 16, *ehdr)
        for header in headers:
            out += struct.pack(self.order + "IIQQQQIIQQ", *header.values())
        return bytes(out)

    def renumber(self, index: int, number: dict[int, int], what: str) -> int:
        if index == 0:
            return 0
        if index not in number:
            raise self.error(f"{what} refers to a dropped or missing section ({index})")
        return number[index]

    def symbols(self, table: bytes, number: dict[int, int], dropped: set[int]) -> bytes:
        """The symbol table with section indices renumbered; symbols of dropped sections
        (their section symbols) become null entries, so no symbol index moves."""
        if len(table) % _SYM_SIZE:
            raise self.error("the symbol table size is not a multiple of 24")
        out = bytearray(table)
        layout = self.order + "IBBHQQ"
        for offset in range(0, len(table), _SYM_SIZE):
            name, info, other, shndx, value, size = struct.unpack_from(layout, table, offset)
            if shndx == 0 or shndx >= _SHN_LORESERVE:
                continue
            if shndx in dropped:
                if info >> 4:  # a global defined in DWARF: nothing sane to turn it into
                    raise self.error("a global symbol is defined in a debug section")
                struct.pack_into(layout, out, offset, 0, 0, 0, 0, 0, 0)
                continue
            if shndx not in number:
                raise self.error(f"a symbol refers to section {shndx}, which does not exist")
            struct.pack_into(layout, out, offset, name, info, other, number[shndx], value, size)
        return bytes(out)
