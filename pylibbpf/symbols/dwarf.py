"""Address to source file and line, from DWARF ``.debug_line`` (via pyelftools).

The line program of a compilation unit is decoded only when an address inside it is
first asked for (``.debug_aranges`` says which unit that is), so a libc debug file with
thousands of units costs only the units a profile actually hits. Without aranges every
unit is decoded once. A row covers the addresses up to the next row, as in addr2line;
an address between sequences has no line.
"""

from __future__ import annotations

import os
import struct
from bisect import bisect_right
from typing import Any

from elftools.common.exceptions import DWARFError, ELFError
from elftools.elf.elffile import ELFFile

# pyelftools' ways of saying the DWARF is damaged: a line lookup then has no answer.
_ERRORS = (
    DWARFError,
    ELFError,
    KeyError,
    IndexError,
    ValueError,
    AttributeError,
    OSError,
    OverflowError,
    TypeError,
    AssertionError,
    struct.error,
    RecursionError,
    NotImplementedError,
)


class _Rows:
    """Line tables, merged and sorted: parallel lists and the files their rows name."""

    __slots__ = ("addresses", "files", "lines", "paths")

    def __init__(self, programs: list[tuple[Any, str]]) -> None:
        """``programs``: (line program, compilation directory) pairs."""
        self.paths: list[str] = []
        rows: list[tuple[int, int, int]] = []
        for program, comp_dir in programs:
            base = len(self.paths) - (0 if program["version"] >= 5 else 1)  # v5 counts from 0
            self.paths += _file_paths(program, comp_dir)
            rows += [
                (state.address, -1 if state.end_sequence else base + state.file, state.line)
                for entry in program.get_entries()
                if (state := entry.state) is not None
            ]
        # A sequence's end sorts before another starting at the same address; rows at one
        # address keep their order, so the last of them covers it.
        rows.sort(key=lambda row: (row[0], row[1] >= 0))
        self.addresses = [row[0] for row in rows]
        self.files = [row[1] for row in rows]  # index into paths; -1 ends a sequence
        self.lines = [row[2] for row in rows]

    def lookup(self, address: int) -> tuple[str, int] | None:
        index = bisect_right(self.addresses, address) - 1
        if index < 0 or self.files[index] < 0:
            return None
        path_index = self.files[index]
        if not 0 <= path_index < len(self.paths) or not self.lines[index]:
            return None
        return self.paths[path_index], self.lines[index]


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _file_paths(program: Any, comp_dir: str) -> list[str]:
    """Full paths of a line program's files, as addr2line prints them."""
    version = program["version"]
    directories = [_text(d) for d in program["include_directory"]]
    paths = []
    for entry in program["file_entry"]:
        index = entry.dir_index
        if version >= 5:
            directory = directories[index] if index < len(directories) else ""
        else:
            directory = "" if index == 0 else directories[index - 1]
        paths.append(os.path.join(comp_dir, directory, _text(entry.name)))
    return paths


class LineTable:
    """Lazy address -> (file, line) for one ELF file with DWARF."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._dwarf: Any = None
        self._aranges: Any = None
        self._units: dict[int, _Rows | None] = {}
        self._whole: _Rows | None = None
        self._broken = False

    def _open(self) -> bool:
        if self._dwarf is None and not self._broken:
            try:
                with open(self.path, "rb") as f:
                    self._dwarf = ELFFile(f).get_dwarf_info()  # sections are read in here
                self._aranges = self._dwarf.get_aranges()
            except _ERRORS:
                self._broken = True
        return self._dwarf is not None

    def _program(self, unit: Any) -> tuple[Any, str] | None:
        """A unit's line program and compilation directory (None if unreadable)."""
        try:
            program = self._dwarf.line_program_for_CU(unit)
            attributes = unit.get_top_DIE().attributes
        except _ERRORS:
            return None
        if program is None:
            return None
        comp_dir = attributes.get("DW_AT_comp_dir")
        return program, "" if comp_dir is None else _text(comp_dir.value)

    def _rows(self, programs: list[tuple[Any, str] | None]) -> _Rows | None:
        try:
            return _Rows([p for p in programs if p is not None])
        except _ERRORS:
            return None

    def lookup(self, address: int) -> tuple[str, int] | None:
        """(file, line) of ``address`` (a link-time address), or None."""
        if not self._open():
            return None
        if self._aranges is not None:
            try:
                offset = self._aranges.cu_offset_at_addr(address)
            except _ERRORS:
                offset = None
            if offset is None:
                return None
            if offset not in self._units:
                try:
                    unit = self._dwarf.get_CU_at(offset)
                except _ERRORS:
                    unit = None
                self._units[offset] = None if unit is None else self._rows([self._program(unit)])
            rows = self._units[offset]
            return None if rows is None else rows.lookup(address)
        if self._whole is None:
            try:
                units = list(self._dwarf.iter_CUs())
            except _ERRORS:
                units = []
            self._whole = self._rows([self._program(unit) for unit in units]) or _Rows([])
        return self._whole.lookup(address)
