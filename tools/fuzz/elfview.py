"""Where things are in a seed: ELF sections, symbols, relocations and BTF records.

The mutators aim at fields, not at random bytes, so they need to know where the fields
are. This reader is independent of pylibbpf (a fuzzer must not share the parser it
tests) and deliberately forgiving: it reads well-formed seeds; mutated bytes are never
read through it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_REL = 9
SHT_NOBITS = 8

# ELF64 header fields: name -> (offset, size)
EHDR_FIELDS = {
    "e_type": (16, 2),
    "e_machine": (18, 2),
    "e_version": (20, 4),
    "e_entry": (24, 8),
    "e_phoff": (32, 8),
    "e_shoff": (40, 8),
    "e_flags": (48, 4),
    "e_ehsize": (52, 2),
    "e_phentsize": (54, 2),
    "e_phnum": (56, 2),
    "e_shentsize": (58, 2),
    "e_shnum": (60, 2),
    "e_shstrndx": (62, 2),
}
# ELF64 section header fields, relative to the header
SHDR_FIELDS = {
    "sh_name": (0, 4),
    "sh_type": (4, 4),
    "sh_flags": (8, 8),
    "sh_addr": (16, 8),
    "sh_offset": (24, 8),
    "sh_size": (32, 8),
    "sh_link": (40, 4),
    "sh_info": (44, 4),
    "sh_addralign": (48, 8),
    "sh_entsize": (56, 8),
}
SYM_FIELDS = {
    "st_name": (0, 4),
    "st_info": (4, 1),
    "st_other": (5, 1),
    "st_shndx": (6, 2),
    "st_value": (8, 8),
    "st_size": (16, 8),
}
REL_FIELDS = {"r_offset": (0, 8), "r_info": (8, 8)}

# BTF record layout: kind -> (fixed extra words, words per vlen entry)
BTF_LAYOUT = {
    1: (1, 0),  # INT
    2: (0, 0),  # PTR
    3: (3, 0),  # ARRAY
    4: (0, 3),  # STRUCT
    5: (0, 3),  # UNION
    6: (0, 2),  # ENUM
    7: (0, 0),  # FWD
    8: (0, 0),  # TYPEDEF
    9: (0, 0),  # VOLATILE
    10: (0, 0),  # CONST
    11: (0, 0),  # RESTRICT
    12: (0, 0),  # FUNC
    13: (0, 2),  # FUNC_PROTO
    14: (1, 0),  # VAR
    15: (0, 3),  # DATASEC
    16: (0, 0),  # FLOAT
    17: (1, 0),  # DECL_TAG
    18: (0, 0),  # TYPE_TAG
    19: (0, 3),  # ENUM64
}
# Kinds whose third word is a type id (the others: a size).
REF_KINDS = {2, 7, 8, 9, 10, 11, 12, 13, 14, 17, 18}


@dataclass
class Section:
    index: int
    name: str
    header: int  # file offset of the section header
    type: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int


@dataclass
class BtfRecord:
    type_id: int
    offset: int  # file offset of the record
    kind: int
    vlen: int
    kind_flag: bool
    words: int  # record length in words


@dataclass
class BtfView:
    """A BTF blob at ``start`` in the file: header, records and the string section."""

    start: int
    header_len: int
    types_start: int
    types_len: int
    strings_start: int
    strings_len: int
    records: list[BtfRecord] = field(default_factory=list)

    def string_offsets(self, data: bytes) -> list[int]:
        """Start offsets (relative to the string section) of every string."""
        blob = data[self.strings_start : self.strings_start + self.strings_len]
        offsets, position = [], 0
        for chunk in blob.split(b"\0"):
            offsets.append(position)
            position += len(chunk) + 1
        return offsets[:-1] if offsets else []


@dataclass
class ElfView:
    little: bool
    sections: list[Section] = field(default_factory=list)
    symbols: list[int] = field(default_factory=list)  # file offsets of symbol entries
    relocations: list[tuple[int, int]] = field(default_factory=list)  # (entry, target sec)
    btf: BtfView | None = None
    btf_ext: Section | None = None

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)


def read_btf(data: bytes, start: int, length: int) -> BtfView | None:
    """The records of a little-endian BTF blob, or None if it does not parse."""
    if length < 24 or start + 24 > len(data):
        return None
    magic, _v, _f, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
        "<HBBIIIII", data, start
    )
    if magic != 0xEB9F:
        return None
    view = BtfView(
        start, hdr_len, start + hdr_len + type_off, type_len, start + hdr_len + str_off, str_len
    )
    position, type_id = view.types_start, 1
    end = min(view.types_start + type_len, len(data))
    while position + 12 <= end:
        info = struct.unpack_from("<I", data, position + 4)[0]
        kind, vlen = (info >> 24) & 0x7F, info & 0xFFFFFF  # 7.1+ widths (0 above before)
        if kind not in BTF_LAYOUT:
            break
        fixed, per = BTF_LAYOUT[kind]
        words = 3 + fixed + per * vlen
        if position + 4 * words > end:  # a (mutated) vlen past the section: not a record
            break
        view.records.append(BtfRecord(type_id, position, kind, vlen, bool(info >> 31), words))
        position += 4 * words
        type_id += 1
    return view


def read_elf(data: bytes) -> ElfView | None:
    """Sections, symbols, relocations and BTF of a little-endian ELF64, or None."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    (shoff,) = struct.unpack_from("<Q", data, 40)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 58)
    if shentsize != 64 or shoff + shnum * 64 > len(data) or shstrndx >= shnum:
        return None
    raw = []
    for index in range(shnum):
        header = shoff + index * 64
        name, type_, _flags, _addr, offset, size, link, info, _align, entsize = struct.unpack_from(
            "<IIQQQQIIQQ", data, header
        )
        raw.append((index, name, header, type_, offset, size, link, info, entsize))
    names_at = raw[shstrndx][4]
    view = ElfView(little=True)
    for index, name, header, type_, offset, size, link, info, entsize in raw:
        end = data.find(b"\0", names_at + name)
        label = data[names_at + name : end].decode("latin-1") if end >= 0 else ""
        view.sections.append(
            Section(index, label, header, type_, offset, size, link, info, entsize)
        )
    for sec in view.sections:
        if sec.type == SHT_SYMTAB and sec.entsize == 24:
            view.symbols = [sec.offset + 24 * i for i in range(sec.size // 24)]
        elif sec.type == SHT_REL and sec.entsize == 16:
            view.relocations += [(sec.offset + 16 * i, sec.info) for i in range(sec.size // 16)]
    btf = view.section(".BTF")
    if btf is not None:
        view.btf = read_btf(data, btf.offset, btf.size)
    view.btf_ext = view.section(".BTF.ext")
    return view
