"""Hostile objects for the skeleton tests: a compiled object with its names rewritten.

BTF names (types, members, enum values, variables, data sections) are changed by
re-encoding the BTF with the original string section kept verbatim (so ``.BTF.ext``
offsets stay right) and the new strings appended; ELF section and symbol names by
appending to the string table. The new tables go at the end of the file, and their
section headers are pointed there: the rest of the object is untouched.
"""

from __future__ import annotations

import dataclasses
import struct

from pylibbpf.btf import Btf, EnumValue, Member, Type
from pylibbpf.btf.encode import encode


def _encoded(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")  # surrogates stand for non-UTF-8 bytes


def _renamed_type(t: Type, names: dict[str, str]) -> Type:
    def new(name: str) -> str:
        return names.get(name, name)

    return dataclasses.replace(
        t,
        name=new(t.name),
        members=tuple(
            Member(new(m.name), m.type, m.bit_offset, m.bitfield_size) for m in t.members
        ),
        values=tuple(EnumValue(new(v.name), v.value) for v in t.values),
    )


class _Elf:
    def __init__(self, data: bytes) -> None:
        assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "64-bit LE ELF only"
        self.data = bytearray(data)
        (self.shoff,) = struct.unpack_from("<Q", data, 0x28)
        self.shnum, self.shstrndx = struct.unpack_from("<HH", data, 0x3C)
        self.names = [self.name(i) for i in range(self.shnum)]  # as they were

    def header(self, index: int) -> list[int]:
        return list(struct.unpack_from("<IIQQQQIIQQ", self.data, self.shoff + 64 * index))

    def set_header(self, index: int, fields: list[int]) -> None:
        struct.pack_into("<IIQQQQIIQQ", self.data, self.shoff + 64 * index, *fields)

    def contents(self, index: int) -> bytes:
        h = self.header(index)
        return bytes(self.data[h[4] : h[4] + h[5]])

    def name(self, index: int) -> bytes:
        strings = self.contents(self.shstrndx)
        start = self.header(index)[0]
        return strings[start : strings.index(b"\0", start)]

    def index(self, name: bytes) -> int:
        return self.names.index(name)

    def replace(self, index: int, content: bytes) -> None:
        """Put a section's new content at the end of the file."""
        self.data += bytes(-len(self.data) % 8)
        h = self.header(index)
        h[4], h[5] = len(self.data), len(content)
        self.data += content
        self.set_header(index, h)


def rewrite(
    data: bytes,
    btf_names: dict[str, str] | None = None,
    section_names: dict[str, str] | None = None,
    symbol_names: dict[str, str] | None = None,
) -> bytes:
    """``data`` with names changed: in BTF (any type, member, enum value or variable
    name), ELF section names, and ELF symbol names. Unknown names are an error."""
    elf = _Elf(data)
    if btf_names:
        btf_index = elf.index(b".BTF")
        btf = Btf(elf.contents(btf_index))
        used = {n for t in btf for n in (t.name, *(m.name for m in t.members))}
        used |= {v.name for t in btf for v in t.values}
        assert set(btf_names) <= used, set(btf_names) - used
        types = [_renamed_type(t, btf_names) for t in btf]
        elf.replace(btf_index, encode(types, strings_base=btf.strings))
    strtab = bytearray(elf.contents(elf.shstrndx))

    def add(name: str) -> int:
        offset = len(strtab)
        strtab.extend(_encoded(name) + b"\0")
        return offset

    for old, new in (section_names or {}).items():
        index = elf.index(old.encode())
        header = elf.header(index)
        header[0] = add(new)
        elf.set_header(index, header)
    if symbol_names:
        symtab = elf.index(b".symtab")
        assert elf.header(symtab)[6] == elf.shstrndx, "one string table for both"
        table = bytearray(elf.contents(symtab))
        found = set()
        for offset in range(0, len(table), 24):
            name_offset = struct.unpack_from("<I", table, offset)[0]
            name = bytes(strtab[name_offset : strtab.index(b"\0", name_offset)]).decode()
            if name in symbol_names:
                struct.pack_into("<I", table, offset, add(symbol_names[name]))
                found.add(name)
        assert found == set(symbol_names), set(symbol_names) - found
        elf.replace(symtab, bytes(table))
    elf.replace(elf.shstrndx, bytes(strtab))
    return bytes(elf.data)
