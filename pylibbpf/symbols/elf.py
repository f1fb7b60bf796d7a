"""User-space symbols of one ELF file: functions from ``.symtab``/``.dynsym``, the load
segments that turn file offsets into link-time addresses, the build-id, and the debug
file (``/usr/lib/debug/.build-id/xx/yyyy.debug`` or ``.gnu_debuglink``) when the binary
itself is stripped.

Symbol tables are decoded with ``struct.iter_unpack`` straight from a memory map (a
libc debug file has 10 000 functions; pyelftools' per-symbol objects would take a
second), pyelftools reads only the headers. Files are cached by (device, inode, mtime,
size), so every process mapping the same libc shares one table.
"""

from __future__ import annotations

import io
import mmap
import os
import struct
import zlib
from bisect import bisect_right
from collections import OrderedDict
from typing import IO, Any, cast

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from ..errors import ObjectError
from .dwarf import LineTable

DEBUG_ROOT = "/usr/lib/debug"
STT_FUNC, STT_GNU_IFUNC = 2, 10
_FUNCTION_TYPES = (STT_FUNC, STT_GNU_IFUNC)
SHN_UNDEF = 0
NT_GNU_BUILD_ID = 3
PT_LOAD = "PT_LOAD"
_BIND_RANK = {1: 0, 2: 1, 0: 2}  # GLOBAL, WEAK, LOCAL: which alias names an address
CACHE_FILES = 256


class ElfSymbols:
    """Function symbols and line info of one ELF file (an executable, a library, a vdso)."""

    def __init__(self, data: bytes | mmap.mmap, name: str, *, path: str | None = None) -> None:
        """Parse ``data`` (the whole file); ``path`` lets DWARF be read later, lazily."""
        self.name = name
        self.path = path
        self.build_id: bytes | None = None
        self.debuglink: tuple[str, int] | None = None
        self.debug_file: str | None = None  # where symbols and lines came from, if not here
        self._segments: list[tuple[int, int, int]] = []  # (file offset, file size, vaddr)
        self._starts: list[int] = []
        self._sizes: list[int] = []
        self._names: list[str] = []
        self._ranks: list[int] = []
        self._aliases: list[tuple[int, int, int, str]] = []  # other names of listed addresses
        self._by_name: dict[str, int] | None = None
        self._lines: LineTable | None = None
        self._lines_source: str | None = None
        self._has_symtab = False
        try:
            elf = ELFFile(io.BytesIO(data) if isinstance(data, bytes) else cast(IO[bytes], data))
        except (ELFError, ValueError, struct.error, OverflowError) as error:
            raise ObjectError(f"{name}: not an ELF file ({error})") from None
        try:
            rows = self._read(elf, data)
            if self.path is not None and _has_line_info(elf):
                self._lines_source = self.path
        except (ELFError, ValueError, struct.error, IndexError, OverflowError, KeyError) as error:
            raise ObjectError(f"{name}: malformed ELF file ({error})") from None
        self._index(rows)

    @classmethod
    def open(cls, path: str, *, name: str | None = None, debug: bool = True) -> ElfSymbols:
        """The symbols of the file at ``path`` (and of its debug file, with ``debug``)."""
        try:
            with open(path, "rb") as f:
                data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as error:
            raise ObjectError(f"{name or path}: cannot read: {error}") from None
        try:
            symbols = cls(data, name or path, path=path)
        finally:
            data.close()
        if debug and (not symbols._has_symtab or symbols._lines_source is None):
            symbols._add_debug_file()
        return symbols

    # ----------------------------------------------------------------- parsing

    def _read(self, elf: Any, data: bytes | mmap.mmap) -> list[tuple[int, int, int, str]]:
        rows: list[tuple[int, int, int, str]] = []
        for segment in elf.iter_segments():
            if segment["p_type"] == PT_LOAD:
                header = segment.header
                self._segments.append((header.p_offset, header.p_filesz, header.p_vaddr))
        for section in elf.iter_sections():
            kind = section["sh_type"]
            if kind in ("SHT_SYMTAB", "SHT_DYNSYM"):
                strtab = elf.get_section(section["sh_link"])
                if strtab["sh_type"] == "SHT_NOBITS":
                    continue
                rows += _functions(elf, data, section.header, strtab.header)
                self._has_symtab |= kind == "SHT_SYMTAB"
            elif kind == "SHT_NOTE" and self.build_id is None:
                self.build_id = _build_id(elf, _section_bytes(data, section.header))
            elif section.name == ".gnu_debuglink":
                self.debuglink = _debuglink(_section_bytes(data, section.header))
        return rows

    def _index(self, rows: list[tuple[int, int, int, str]]) -> None:
        """Sort by address; of several names at one address keep the global one."""
        rows.sort()
        starts: list[int] = []
        sizes: list[int] = []
        names: list[str] = []
        ranks: list[int] = []
        aliases: list[tuple[int, int, int, str]] = []
        for row in rows:
            address, rank, size, symbol = row
            if starts and starts[-1] == address:
                sizes[-1] = max(sizes[-1], size)
                if symbol != names[-1]:
                    aliases.append(row)
                continue
            starts.append(address)
            sizes.append(size)
            names.append(symbol)
            ranks.append(rank)
        self._starts, self._sizes, self._names, self._ranks = starts, sizes, names, ranks
        self._aliases = aliases
        self._by_name = None

    def _add_debug_file(self) -> None:
        """Take symbols and lines from the separate debug file a stripped binary names."""
        path = find_debug_file(self)
        if path is None:
            return
        try:
            debug = ElfSymbols.open(path, debug=False)
        except ObjectError:
            return
        if self.build_id is not None and debug.build_id not in (None, self.build_id):
            return
        self.debug_file = path
        rows = [
            row
            for symbols in (self, debug)
            for row in (
                *zip(symbols._starts, symbols._ranks, symbols._sizes, symbols._names, strict=True),
                *symbols._aliases,
            )
        ]
        self._has_symtab |= debug._has_symtab
        self._index(rows)
        if self._lines_source is None:
            self._lines_source = debug._lines_source

    # ----------------------------------------------------------------- lookups

    def __len__(self) -> int:
        return len(self._starts)

    def vaddr_of_offset(self, offset: int) -> int | None:
        """The link-time address of file offset ``offset`` (None outside every segment)."""
        for file_offset, size, vaddr in self._segments:
            if file_offset <= offset < file_offset + size:
                return vaddr + offset - file_offset
        return None

    def symbol(self, vaddr: int) -> tuple[str, int] | None:
        """(name, offset from its start) of the function covering link-time ``vaddr``."""
        index = bisect_right(self._starts, vaddr) - 1
        if index < 0:
            return None
        start, size = self._starts[index], self._sizes[index]
        if size and vaddr >= start + size:
            return None
        return self._names[index], vaddr - start

    def line(self, vaddr: int) -> tuple[str, int] | None:
        """(source file, line) of ``vaddr`` from DWARF line info, if the file has it."""
        if self._lines_source is None:
            return None
        if self._lines is None:
            self._lines = LineTable(self._lines_source)
        return self._lines.lookup(vaddr)

    def address_of(self, name: str) -> int | None:
        """The link-time address of function ``name``."""
        if self._by_name is None:
            self._by_name = {}
            for start, symbol in zip(self._starts, self._names, strict=True):
                self._by_name.setdefault(symbol, start)
            for start, _rank, _size, symbol in self._aliases:
                self._by_name.setdefault(symbol, start)
        return self._by_name.get(name)


def _section_bytes(data: bytes | mmap.mmap, header: Any) -> bytes:
    return bytes(data[header.sh_offset : header.sh_offset + header.sh_size])


def _functions(
    elf: Any, data: bytes | mmap.mmap, symtab: Any, strtab: Any
) -> list[tuple[int, int, int, str]]:
    """(address, binding rank, size, name) of every defined function in one table."""
    order = "<" if elf.little_endian else ">"
    if elf.elfclass == 64:
        layout, fields = struct.Struct(order + "IBBHQQ"), (0, 1, 3, 4, 5)
    else:
        layout, fields = struct.Struct(order + "IIIBBH"), (0, 3, 5, 1, 2)
    name_at, info_at, shndx_at, value_at, size_at = fields
    table = _section_bytes(data, symtab)
    table = table[: len(table) - len(table) % layout.size]
    strings = _section_bytes(data, strtab)
    rows = []
    for entry in layout.iter_unpack(table):
        info, value = entry[info_at], entry[value_at]
        if info & 0xF not in _FUNCTION_TYPES or entry[shndx_at] == SHN_UNDEF or not value:
            continue
        start = entry[name_at]
        end = strings.find(b"\0", start)
        name = strings[start : end if end >= 0 else len(strings)].decode(errors="replace")
        if name:
            rows.append((value, _BIND_RANK.get(info >> 4, 3), entry[size_at], name))
    return rows


def _build_id(elf: Any, notes: bytes) -> bytes | None:
    order = "<" if elf.little_endian else ">"
    at = 0
    while at + 12 <= len(notes):
        namesz, descsz, kind = struct.unpack_from(order + "III", notes, at)
        name_end = at + 12 + ((namesz + 3) & ~3)
        if kind == NT_GNU_BUILD_ID and notes[at + 12 : at + 12 + namesz] == b"GNU\0":
            return notes[name_end : name_end + descsz]
        at = name_end + ((descsz + 3) & ~3)
    return None


def _debuglink(section: bytes) -> tuple[str, int] | None:
    end = section.find(b"\0")
    if end <= 0 or len(section) < 4:
        return None
    return section[:end].decode(errors="replace"), int.from_bytes(section[-4:], "little")


def _has_line_info(elf: Any) -> bool:
    section = elf.get_section_by_name(".debug_line")
    return section is not None and section["sh_type"] != "SHT_NOBITS"


def build_id_path(build_id: bytes, root: str = DEBUG_ROOT) -> str:
    """Where distributions install the debug file for ``build_id``."""
    text = build_id.hex()
    return os.path.join(root, ".build-id", text[:2], text[2:] + ".debug")


def find_debug_file(symbols: ElfSymbols, root: str = DEBUG_ROOT) -> str | None:
    """The debug file of a stripped binary: by build-id, then by ``.gnu_debuglink``
    (next to the binary, in its ``.debug/``, or under ``root``; checked by CRC)."""
    if symbols.build_id:
        path = build_id_path(symbols.build_id, root)
        if os.path.exists(path):
            return path
    if symbols.debuglink is None or symbols.path is None:
        return None
    name, crc = symbols.debuglink
    directory = os.path.dirname(os.path.realpath(symbols.path))
    for candidate in (
        os.path.join(directory, name),
        os.path.join(directory, ".debug", name),
        os.path.join(root, directory.lstrip("/"), name),
    ):
        if candidate != symbols.path and os.path.isfile(candidate) and _crc32(candidate) == crc:
            return candidate
    return None


def _crc32(path: str) -> int:
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc


_files: OrderedDict[tuple[int, int, int, int], ElfSymbols] = OrderedDict()


def elf_symbols(path: str, *, name: str | None = None) -> ElfSymbols:
    """The (cached) symbols of the file at ``path``: one parse per file version, shared by
    every process that maps it; ``name`` is what frames show as the module."""
    try:
        info = os.stat(path)
    except OSError as error:
        raise ObjectError(f"{name or path}: cannot read: {error.strerror}") from None
    key = (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)
    symbols = _files.get(key)
    if symbols is None:
        symbols = ElfSymbols.open(path, name=name)
        _files[key] = symbols
        while len(_files) > CACHE_FILES:
            _files.popitem(last=False)
    else:
        _files.move_to_end(key)
    return symbols


def by_build_id(build_id: bytes) -> ElfSymbols | None:
    """A cached file with this build-id, else its debug file (stacks recorded with
    ``BPF_F_STACK_BUILD_ID`` name files by build-id and offset)."""
    for symbols in _files.values():
        if symbols.build_id == build_id:
            return symbols
    path = build_id_path(build_id)
    return elf_symbols(path) if os.path.exists(path) else None
