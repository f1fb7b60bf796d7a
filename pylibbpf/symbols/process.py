"""User addresses of one process to symbols: ``/proc/PID/maps`` says which file (and
which offset in it) an address comes from; the file's ELF symbols and DWARF lines say
which function and line that is.

PIE executables and shared libraries load anywhere, so an address becomes a file offset
(``address - mapping start + mapping offset``) and then a link-time address through the
file's load segments. Files are opened through ``/proc/PID/root`` (processes in other
mount namespaces) or ``/proc/PID/map_files`` (deleted or replaced files). JIT code that
writes ``/tmp/perf-PID.map`` (Python 3.12's perf trampolines, Node, the JVM with an agent)
is named from that file; the vdso is read from the process's memory.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_right
from typing import NamedTuple

from ..errors import ObjectError
from .elf import ElfSymbols, elf_symbols
from .frame import Frame

RELOAD_INTERVAL = 1.0


class Mapping(NamedTuple):
    start: int
    end: int
    offset: int
    path: str  # "" for anonymous memory, "[vdso]" and the like for special mappings


def parse_maps(text: str) -> list[Mapping]:
    """Executable mappings from ``/proc/PID/maps`` text, sorted by address."""
    mappings = []
    for line in text.splitlines():
        fields = line.split(None, 5)
        if len(fields) < 5 or "x" not in fields[1]:
            continue
        start, _, end = fields[0].partition("-")
        path = fields[5].strip() if len(fields) == 6 else ""
        mappings.append(Mapping(int(start, 16), int(end, 16), int(fields[2], 16), path))
    mappings.sort()
    return mappings


class ProcessSymbols:
    """Resolver for one process's user addresses (maps re-read when an address misses)."""

    def __init__(self, pid: int, *, lines: bool = True) -> None:
        self.pid = pid
        self.lines = lines
        self._mappings: list[Mapping] = []
        self._starts: list[int] = []
        self._files: dict[Mapping, ElfSymbols | None] = {}
        self._perf_map: tuple[float, list[int], list[tuple[int, str]]] | None = None
        self._cache: dict[int, Frame] = {}
        self._loaded_at = -RELOAD_INTERVAL
        self.alive = True
        self.reload()

    def reload(self) -> None:
        """Read ``/proc/PID/maps`` again (a library was loaded, or the process exec'd)."""
        self._loaded_at = time.monotonic()
        try:
            with open(f"/proc/{self.pid}/maps") as f:
                text = f.read()
        except OSError:
            self.alive = False  # gone: what was cached stays, the rest is unknown
            return
        self._mappings = parse_maps(text)
        self._starts = [m.start for m in self._mappings]

    @property
    def _perf_map_path(self) -> str:
        return f"/tmp/perf-{self.pid}.map"

    def mapping(self, address: int) -> Mapping | None:
        index = bisect_right(self._starts, address) - 1
        if index >= 0 and address < self._mappings[index].end:
            return self._mappings[index]
        return None

    def _elf(self, mapping: Mapping) -> ElfSymbols | None:
        if mapping in self._files:
            return self._files[mapping]
        symbols: ElfSymbols | None = None
        try:
            if mapping.path == "[vdso]":
                symbols = self._vdso(mapping)
            elif mapping.path.startswith("/"):
                symbols = elf_symbols(self._file_path(mapping), name=mapping.path)
        except ObjectError:
            symbols = None
        self._files[mapping] = symbols
        return symbols

    def _file_path(self, mapping: Mapping) -> str:
        path = mapping.path.removesuffix(" (deleted)")
        rooted = f"/proc/{self.pid}/root{path}"
        if not mapping.path.endswith(" (deleted)") and os.path.exists(rooted):
            return rooted
        by_range = f"/proc/{self.pid}/map_files/{mapping.start:x}-{mapping.end:x}"
        return by_range if os.path.exists(by_range) else path

    def _vdso(self, mapping: Mapping) -> ElfSymbols:
        try:
            with open(f"/proc/{self.pid}/mem", "rb") as memory:
                memory.seek(mapping.start)
                image = memory.read(mapping.end - mapping.start)
        except (OSError, OverflowError) as error:
            raise ObjectError(f"[vdso] of process {self.pid}: cannot read it: {error}") from None
        return ElfSymbols(image, "[vdso]")

    def resolve(self, address: int, *, caller: bool = False) -> Frame:
        """The function (and line, if known) at ``address`` in this process; ``caller``:
        a return address, looked up one byte back (the call instruction)."""
        key = -address if caller else address
        frame = self._cache.get(key)
        if frame is None:
            frame = self._resolve(address, address - 1 if caller else address)
            # Kept unless nothing maps the address yet (a library loaded later, JIT code).
            if frame.name is not None or frame.module is not None or not self.alive:
                self._cache[key] = frame
        return frame

    def _resolve(self, address: int, target: int) -> Frame:
        mapping = self.mapping(target)
        if mapping is None and self.alive and time.monotonic() - self._loaded_at >= RELOAD_INTERVAL:
            self.reload()
            mapping = self.mapping(target)
        if mapping is None or not mapping.path or mapping.path.startswith("[anon"):
            jit = self._perf_map_symbol(target)
            if jit is not None:
                return Frame(address, jit[0], jit[1] + address - target, self._perf_map_path)
            return Frame(address, None, module=mapping.path if mapping and mapping.path else None)
        symbols = self._elf(mapping)
        if symbols is None:
            return Frame(address, None, module=mapping.path)
        offset = target - mapping.start + mapping.offset
        vaddr = symbols.vaddr_of_offset(offset)
        return symbol_frame(
            symbols,
            offset if vaddr is None else vaddr,
            address - target,
            address,
            mapping.path,
            lines=self.lines,
        )

    def _perf_map_symbol(self, address: int) -> tuple[str, int] | None:
        """From ``/tmp/perf-PID.map`` (``START SIZE name`` in hex), re-read when it grows."""
        path = self._perf_map_path
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            return None
        if self._perf_map is None or self._perf_map[0] != mtime:
            starts: list[int] = []
            entries: list[tuple[int, str]] = []
            try:
                with open(path, errors="replace") as f:
                    rows = sorted(_perf_map_rows(f.read()))
            except OSError:
                return None
            for start, size, name in rows:
                starts.append(start)
                entries.append((size, name))
            self._perf_map = (mtime, starts, entries)
        _mtime, starts, entries = self._perf_map
        index = bisect_right(starts, address) - 1
        if index < 0 or address >= starts[index] + entries[index][0]:
            return None
        return entries[index][1], address - starts[index]


def _perf_map_rows(text: str) -> list[tuple[int, int, str]]:
    rows = []
    for line in text.splitlines():
        fields = line.split(None, 2)
        if len(fields) == 3:
            try:
                rows.append((int(fields[0], 16), int(fields[1], 16), fields[2]))
            except ValueError:
                continue
    return rows


def symbol_frame(
    symbols: ElfSymbols, vaddr: int, delta: int, address: int, module: str, *, lines: bool
) -> Frame:
    """The frame for link-time ``vaddr`` in ``symbols`` (``address`` is what the stack
    said, ``delta`` how far past ``vaddr`` it is)."""
    found = symbols.symbol(vaddr)
    line = symbols.line(vaddr) if lines else None
    file, number = line if line is not None else (None, None)
    if found is None:
        return Frame(address, None, module=module, file=file, line=number)
    return Frame(address, found[0], found[1] + delta, module, file, number)
