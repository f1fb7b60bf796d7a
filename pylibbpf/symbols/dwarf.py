"""Address to source file and line, from DWARF ``.debug_line``.

Only what a lookup needs is read, with a small reader of its own: ``.debug_aranges``
says which compilation unit holds an address; that unit's first DIE gives its line
program's offset (``DW_AT_stmt_list``) and directory; the line program's header gives
the file table and its opcodes the rows. A unit is decoded the first time an address
inside it is asked for, so a libc debug file with thousands of units costs only the
units a profile hits (pyelftools parses a unit's whole abbreviation table to reach its
first DIE: 20 times slower). Without aranges every unit is decoded once.

A row covers the addresses up to the next row, as in addr2line; an address between
sequences has no line. Damaged or unsupported DWARF (``DW_FORM_strx`` directories,
dwz's supplementary files) gives no line rather than an error.
"""

from __future__ import annotations

import os
import zlib
from bisect import bisect_right
from typing import Literal, NamedTuple

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

Order = Literal["little", "big"]
DW_AT_STMT_LIST, DW_AT_COMP_DIR = 0x10, 0x1B
DW_LNCT_PATH, DW_LNCT_DIRECTORY_INDEX = 1, 2
DW_UT_SKELETON, DW_UT_SPLIT_COMPILE, DW_UT_TYPE, DW_UT_SPLIT_TYPE = 4, 5, 2, 6
# Forms of a fixed size (-1: the offset size, -2: the address size).
_FIXED = {
    0x01: -2, 0x05: 2, 0x06: 4, 0x07: 8, 0x0B: 1, 0x0C: 1, 0x0E: -1, 0x10: -1, 0x11: 1,
    0x12: 2, 0x13: 4, 0x14: 8, 0x17: -1, 0x19: 0, 0x1C: 4, 0x1D: -1, 0x1E: 16, 0x1F: -1,
    0x20: 8, 0x21: 0, 0x24: 8, 0x25: 1, 0x26: 2, 0x27: 3, 0x28: 4, 0x29: 1, 0x2A: 2,
    0x2B: 3, 0x2C: 4, 0x1F20: -1, 0x1F21: -1,
}  # fmt: skip
_ULEB_FORMS = {0x0D, 0x0F, 0x15, 0x1A, 0x1B, 0x22, 0x23, 0x1F01, 0x1F02}
_BLOCKS = {0x03: 2, 0x04: 4, 0x09: 0, 0x0A: 1, 0x18: 0}  # length prefix size (0: ULEB)
DW_FORM_STRING, DW_FORM_STRP, DW_FORM_LINE_STRP, DW_FORM_INDIRECT = 0x08, 0x0E, 0x1F, 0x16
_ERRORS = (IndexError, ValueError, KeyError, UnicodeDecodeError, OverflowError)
MAX_SECTION = 1 << 30


class Unsupported(Exception):
    """DWARF this reader does not decode (the unit then has no lines)."""


class _Reader:
    """A cursor over one section's bytes."""

    __slots__ = ("at", "data", "order")

    def __init__(self, data: bytes, at: int, order: Order) -> None:
        self.data, self.at, self.order = data, at, order

    def u(self, size: int) -> int:
        value = int.from_bytes(self.data[self.at : self.at + size], self.order)
        if self.at + size > len(self.data):
            raise IndexError("read past the end of the section")
        self.at += size
        return value

    def s8(self) -> int:
        value = self.u(1)
        return value - 256 if value >= 128 else value

    def uleb(self) -> int:
        value = shift = 0
        data, at = self.data, self.at
        while True:
            byte = data[at]
            at += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                self.at = at
                return value

    def sleb(self) -> int:
        value = shift = 0
        data, at = self.data, self.at
        while True:
            byte = data[at]
            at += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                self.at = at
                return value - (1 << shift) if byte & 0x40 else value

    def cstring(self) -> str:
        end = self.data.index(b"\0", self.at)
        text = self.data[self.at : end].decode(errors="replace")
        self.at = end + 1
        return text

    def unit_length(self) -> tuple[int, int]:
        """(length, offset size) of a DWARF 32- or 64-bit unit header."""
        length = self.u(4)
        return (self.u(8), 8) if length == 0xFFFFFFFF else (length, 4)


class LineHeader(NamedTuple):
    """What running one line program needs."""

    version: int
    min_length: int
    line_base: int
    line_range: int
    opcode_base: int
    operand_counts: list[int]
    start: int  # the opcodes, in .debug_line
    end: int
    paths: list[str]  # full file paths, indexed as the program's file register


class Sections:
    """The DWARF sections a line lookup reads (decompressed by pyelftools)."""

    def __init__(self, elf: ELFFile) -> None:
        self.order: Order = "little" if elf.little_endian else "big"
        self.address_size = elf.elfclass // 8
        file_size = elf.stream.seek(0, os.SEEK_END)

        def data(name: str) -> bytes:
            section = elf.get_section_by_name(name)
            if section is None or section["sh_type"] == "SHT_NOBITS":
                return b""
            # Sizes from a damaged header would have pyelftools read (or inflate) gigabytes.
            if section["sh_offset"] + section["sh_size"] > file_size:
                raise Unsupported(f"{name} lies past the end of the file")
            if section.compressed and section.data_size > MAX_SECTION:
                raise Unsupported(f"{name} claims {section.data_size} bytes uncompressed")
            return bytes(section.data())

        self.info = data(".debug_info")
        self.abbrev = data(".debug_abbrev")
        self.line = data(".debug_line")
        self.strings = data(".debug_str")
        self.line_strings = data(".debug_line_str")
        self.aranges = data(".debug_aranges")

    def reader(self, data: bytes, at: int = 0) -> _Reader:
        return _Reader(data, at, self.order)

    def string_at(self, data: bytes, offset: int) -> str:
        end = data.index(b"\0", offset)
        return data[offset:end].decode(errors="replace")

    def form_string(self, r: _Reader, form: int, offset_size: int) -> str | None:
        """A string attribute's value; None for forms that need other sections."""
        if form == DW_FORM_STRING:
            return r.cstring()
        if form == DW_FORM_STRP:
            return self.string_at(self.strings, r.u(offset_size))
        if form == DW_FORM_LINE_STRP:
            return self.string_at(self.line_strings, r.u(offset_size))
        skip_form(r, form, offset_size, self.address_size)
        return None


def skip_form(r: _Reader, form: int, offset_size: int, address_size: int) -> int:
    """Step over one attribute value; returns it when it is a number."""
    size = _FIXED.get(form)
    if size is not None:
        size = offset_size if size == -1 else address_size if size == -2 else size
        return r.u(size) if size <= 8 else r.u(size) & 0
    if form in _ULEB_FORMS:
        return r.sleb() if form == 0x0D else r.uleb()
    if form in _BLOCKS:
        prefix = _BLOCKS[form]
        r.at += r.uleb() if prefix == 0 else r.u(prefix)
        return 0
    if form == DW_FORM_STRING:
        r.cstring()
        return 0
    if form == DW_FORM_INDIRECT:
        return skip_form(r, r.uleb(), offset_size, address_size)
    raise Unsupported(f"DWARF form {form:#x}")


def unit_line_info(sections: Sections, unit: int) -> tuple[int, str] | None:
    """(line program offset, compilation directory) of the unit at ``unit`` in
    .debug_info, from its first DIE; None if it has no line program."""
    r = sections.reader(sections.info, unit)
    _length, offset_size = r.unit_length()
    version = r.u(2)
    if version >= 5:
        unit_type, address_size = r.u(1), r.u(1)
        abbrev = r.u(offset_size)
        if unit_type in (DW_UT_SKELETON, DW_UT_SPLIT_COMPILE):
            r.at += 8
        elif unit_type in (DW_UT_TYPE, DW_UT_SPLIT_TYPE):
            r.at += 8 + offset_size
    else:
        abbrev, address_size = r.u(offset_size), r.u(1)
    code = r.uleb()
    stmt_list, comp_dir = None, ""
    for attribute, form, implicit in _abbreviation(sections, abbrev, code):
        if attribute == DW_AT_STMT_LIST:
            stmt_list = implicit if form == 0x21 else skip_form(r, form, offset_size, address_size)
        elif attribute == DW_AT_COMP_DIR:
            comp_dir = sections.form_string(r, form, offset_size) or ""
        else:
            skip_form(r, form, offset_size, address_size)
    return None if stmt_list is None else (stmt_list, comp_dir)


def _abbreviation(sections: Sections, offset: int, code: int) -> list[tuple[int, int, int]]:
    """(attribute, form, implicit value) of abbreviation ``code`` in the table at
    ``offset``, reading only as far as it (a unit's first DIE is usually code 1)."""
    r = sections.reader(sections.abbrev, offset)
    while True:
        found = r.uleb()
        if found == 0:
            raise Unsupported(f"abbreviation {code} is not in the table at {offset:#x}")
        r.uleb()  # tag
        r.at += 1  # has children
        specs = []
        while True:
            attribute, form = r.uleb(), r.uleb()
            if attribute == 0 and form == 0:
                break
            specs.append((attribute, form, r.sleb() if form == 0x21 else 0))
        if found == code:
            return specs


def line_header(sections: Sections, offset: int, comp_dir: str) -> LineHeader:
    """The header of the line program at ``offset`` in .debug_line (DWARF 2 to 5)."""
    r = sections.reader(sections.line, offset)
    length, offset_size = r.unit_length()
    end = r.at + length
    version = r.u(2)
    if version >= 5:
        r.at += 2  # address size, segment selector size
    header_length = r.u(offset_size)
    start = r.at + header_length
    min_length = r.u(1)
    if version >= 4:
        r.at += 1  # maximum operations per instruction (VLIW only)
    r.at += 1  # default_is_stmt
    line_base, line_range, opcode_base = r.s8(), r.u(1), r.u(1)
    operand_counts = [0] + [r.u(1) for _ in range(opcode_base - 1)]
    if version >= 5:
        directories = [path for path, _ in _entries(sections, r, offset_size)]
        paths = [
            os.path.join(comp_dir, directories[d] if d < len(directories) else "", name)
            for name, d in _entries(sections, r, offset_size)
        ]
    else:
        directories = []
        while (directory := r.cstring()) != "":
            directories.append(directory)
        paths = []
        while (name := r.cstring()) != "":
            index = r.uleb()
            r.uleb(), r.uleb()  # modification time, length
            directory = "" if index == 0 or index > len(directories) else directories[index - 1]
            paths.append(os.path.join(comp_dir, directory, name))
    if line_range == 0:
        raise Unsupported("line_range 0")
    return LineHeader(
        version, min_length, line_base, line_range, opcode_base, operand_counts, start, end, paths
    )


def _entries(sections: Sections, r: _Reader, offset_size: int) -> list[tuple[str, int]]:
    """A DWARF 5 directory or file table: (path, directory index) per entry."""
    formats = [(r.uleb(), r.uleb()) for _ in range(r.u(1))]
    count = r.uleb()
    if count > len(r.data) - r.at:  # no entry is that small: a damaged header
        raise Unsupported(f"{count} entries in a line table header")
    entries = []
    for _ in range(count):
        path, directory = "", 0
        for content, form in formats:
            if content == DW_LNCT_PATH:
                text = sections.form_string(r, form, offset_size)
                if text is None:
                    raise Unsupported(f"a path in form {form:#x}")
                path = text
            elif content == DW_LNCT_DIRECTORY_INDEX:
                directory = skip_form(r, form, offset_size, sections.address_size)
            else:
                skip_form(r, form, offset_size, sections.address_size)
        entries.append((path, directory))
    return entries


def run_line_program(header: LineHeader, data: bytes, order: Order) -> list[tuple[int, int, int]]:
    """(address, path index, line) rows; path index -1 ends a sequence. The standard
    state machine reduced to the registers a lookup needs."""
    min_length, line_base, line_range = header.min_length, header.line_base, header.line_range
    opcode_base, operand_counts = header.opcode_base, header.operand_counts
    first_file = 0 if header.version >= 5 else 1  # the file register counts from here
    const_add = ((255 - opcode_base) // line_range) * min_length
    rows: list[tuple[int, int, int]] = []
    append = rows.append
    r = _Reader(data, header.start, order)
    address, file, line = 0, 1, 1
    end = min(header.end, len(data))
    while r.at < end:
        opcode = data[r.at]
        r.at += 1
        if opcode >= opcode_base:
            adjusted = opcode - opcode_base
            address += (adjusted // line_range) * min_length
            line += line_base + adjusted % line_range
            append((address, file - first_file, line))
        elif opcode == 0:  # extended
            length = r.uleb()
            after = r.at + length
            sub = data[r.at]
            if sub == 1:  # end_sequence
                append((address, -1, line))
                address, file, line = 0, 1, 1
            elif sub == 2:  # set_address
                r.at += 1
                address = r.u(length - 1)
            r.at = after
        elif opcode == 1:  # copy
            append((address, file - first_file, line))
        elif opcode == 2:  # advance_pc
            address += r.uleb() * min_length
        elif opcode == 3:  # advance_line
            line += r.sleb()
        elif opcode == 4:  # set_file
            file = r.uleb()
        elif opcode == 8:  # const_add_pc
            address += const_add
        elif opcode == 9:  # fixed_advance_pc
            address += r.u(2)
        else:  # set_column, negate_stmt, prologue_end, set_isa…: skip their operands
            for _ in range(operand_counts[opcode] if opcode < len(operand_counts) else 0):
                r.uleb()
    return rows


class _Rows:
    """Line tables, merged and sorted: parallel lists and the paths their rows name."""

    __slots__ = ("addresses", "files", "lines", "paths")

    def __init__(self, headers: list[LineHeader], sections: Sections) -> None:
        self.paths: list[str] = []
        rows: list[tuple[int, int, int]] = []
        for header in headers:
            base, count = len(self.paths), len(header.paths)
            self.paths += header.paths
            rows += [
                (address, base + file if 0 <= file < count else -1, line)
                for address, file, line in run_line_program(header, sections.line, sections.order)
            ]
        # A sequence's end sorts before another starting at the same address; rows at one
        # address keep their order, so the last of them covers it.
        rows.sort(key=lambda row: (row[0], row[1] >= 0))
        self.addresses = [row[0] for row in rows]
        self.files = [row[1] for row in rows]  # index into paths; -1: no line here
        self.lines = [row[2] for row in rows]

    def lookup(self, address: int) -> tuple[str, int] | None:
        index = bisect_right(self.addresses, address) - 1
        if index < 0 or self.files[index] < 0 or not self.lines[index]:
            return None
        return self.paths[self.files[index]], self.lines[index]


def _aranges(sections: Sections) -> tuple[list[int], list[int], list[int]] | None:
    """(starts, ends, unit offsets) of every address range, sorted; None if absent."""
    if not sections.aranges:
        return None
    ranges: list[tuple[int, int, int]] = []
    r = sections.reader(sections.aranges)
    while r.at < len(sections.aranges):
        length, offset_size = r.unit_length()
        end = r.at + length
        r.at += 2  # version
        unit = r.u(offset_size)
        address_size, segment_size = r.u(1), r.u(1)
        tuple_size = 2 * address_size + segment_size
        r.at += -(r.at - (end - length - (4 if offset_size == 4 else 12))) % tuple_size
        while r.at + tuple_size <= end:
            r.at += segment_size
            start, size = r.u(address_size), r.u(address_size)
            if start == 0 and size == 0:
                break
            ranges.append((start, start + size, unit))
        r.at = end
    ranges.sort()
    return [a for a, _, _ in ranges], [b for _, b, _ in ranges], [u for _, _, u in ranges]


class LineTable:
    """Lazy address -> (file, line) for one ELF file with DWARF."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._sections: Sections | None = None
        self._ranges: tuple[list[int], list[int], list[int]] | None = None
        self._units: dict[int, _Rows | None] = {}
        self._whole: _Rows | None = None
        self._broken = False

    def _open(self) -> Sections | None:
        if self._sections is None and not self._broken:
            try:
                with open(self.path, "rb") as f:
                    self._sections = Sections(ELFFile(f))
                self._ranges = _aranges(self._sections)
            except (*_ERRORS, ELFError, OSError, Unsupported, zlib.error):
                self._broken = True
                self._sections = None
        return self._sections

    def _unit_rows(self, sections: Sections, units: list[int]) -> _Rows | None:
        headers = []
        for unit in units:
            try:
                info = unit_line_info(sections, unit)
                if info is not None:
                    headers.append(line_header(sections, *info))
            except (*_ERRORS, Unsupported):
                continue
        try:
            return _Rows(headers, sections)
        except (*_ERRORS, Unsupported):
            return None

    def lookup(self, address: int) -> tuple[str, int] | None:
        """(file, line) of ``address`` (a link-time address), or None."""
        sections = self._open()
        if sections is None:
            return None
        if self._ranges is not None:
            starts, ends, units = self._ranges
            index = bisect_right(starts, address) - 1
            if index < 0 or address >= ends[index]:
                return None
            unit = units[index]
            if unit not in self._units:
                self._units[unit] = self._unit_rows(sections, [unit])
            rows = self._units[unit]
            return None if rows is None else rows.lookup(address)
        if self._whole is None:
            self._whole = self._unit_rows(sections, _all_units(sections)) or _Rows([], sections)
        return self._whole.lookup(address)


def _all_units(sections: Sections) -> list[int]:
    units = []
    r = sections.reader(sections.info)
    try:
        while r.at < len(sections.info):
            units.append(r.at)
            length, _ = r.unit_length()
            r.at += length
    except _ERRORS:
        pass
    return units
