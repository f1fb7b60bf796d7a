"""Symbols of user-space binaries: ``binary:function+offset`` to a file offset.

The kernel places a uprobe at a *file offset* in an inode, so attaching means turning
``binary:function+offset`` into that offset: find the symbol in ``.symtab`` or
``.dynsym``, then map its virtual address through the ``PT_LOAD`` segment that holds it
(which works the same for PIE, non-PIE and shared objects). Pure: reads only the binary.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from functools import lru_cache

from ..errors import AttachError

LIBRARY_DIRS = (
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
    "/usr/local/lib",
)
_STT_FUNC = ("STT_FUNC", "STT_GNU_IFUNC")


def find_binary(name: str) -> str:
    """A path for ``name``: as given if it has a slash, else a library (``libc.so.6``) from
    the usual directories or an executable from ``PATH``, as libbpf resolves them."""
    if "/" in name:
        if not os.path.isfile(name):
            raise AttachError(f"uprobe target {name!r} does not exist", errno.ENOENT)
        return os.path.abspath(name)
    if ".so" in name:
        for directory in LIBRARY_DIRS:
            candidate = os.path.join(directory, name)
            if os.path.isfile(candidate):
                return candidate
    import shutil  # (with bz2 and lzma) for uprobe targets named without a path only

    found = shutil.which(name)
    if found:
        return os.path.realpath(found)
    raise AttachError(
        f"uprobe target {name!r} is neither a library in {', '.join(LIBRARY_DIRS[:4])}… "
        "nor an executable on PATH",
        errno.ENOENT,
    )


@dataclass(frozen=True)
class _Segment:
    vaddr: int
    memsz: int
    offset: int


@dataclass(frozen=True)
class ElfImage:
    """What uprobes need from a binary: function symbols and its loadable segments."""

    path: str
    functions: dict[str, int]  # name -> virtual address (first definition wins)
    segments: tuple[_Segment, ...]

    def file_offset(self, address: int, what: str) -> int:
        """Where virtual ``address`` lies in the file (through its PT_LOAD segment)."""
        for segment in self.segments:
            if segment.vaddr <= address < segment.vaddr + segment.memsz:
                return address - segment.vaddr + segment.offset
        raise AttachError(
            f"{what}: address {address:#x} is in no loadable segment of {self.path}", errno.EINVAL
        )

    def function_offset(self, function: str) -> int:
        """The file offset of ``function``'s first instruction."""
        address = self.functions.get(function)
        if address is None:
            close = sorted(n for n in self.functions if function in n)[:5]
            hint = f" (similar: {', '.join(close)})" if close else ""
            raise AttachError(
                f"function {function!r} not found in {self.path} (.symtab/.dynsym){hint}",
                errno.ENOENT,
            )
        return self.file_offset(address, f"function {function!r}")


@lru_cache(maxsize=32)
def _read_image(path: str, _mtime_ns: int) -> ElfImage:
    # pyelftools is imported here: attaching uprobes needs it, importing pylibbpf does not
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            functions: dict[str, int] = {}
            for section_name in (".symtab", ".dynsym"):
                section = elf.get_section_by_name(section_name)
                if not isinstance(section, SymbolTableSection):
                    continue
                for symbol in section.iter_symbols():
                    info = symbol["st_info"]
                    if info["type"] in _STT_FUNC and symbol["st_value"] and symbol.name:
                        functions.setdefault(symbol.name.split("@", 1)[0], symbol["st_value"])
            segments = tuple(
                _Segment(seg["p_vaddr"], seg["p_memsz"], seg["p_offset"])
                for seg in elf.iter_segments()
                if seg["p_type"] == "PT_LOAD"
            )
    except (OSError, ELFError) as error:
        raise AttachError(f"cannot read {path} as an ELF binary: {error}", errno.ENOEXEC) from error
    return ElfImage(path, functions, segments)


def read_image(path: str) -> ElfImage:
    """The binary's symbols and segments, cached while the file is unchanged."""
    return _read_image(path, os.stat(path).st_mtime_ns)


def resolve(binary: str, function: str | None, offset: int = 0) -> tuple[str, int]:
    """(path, file offset) of ``function+offset`` in ``binary`` (``function=None``: the
    offset is already a file offset)."""
    path = find_binary(binary)
    if function is None:
        return path, offset
    return path, read_image(path).function_offset(function) + offset


def parse_target(target: str) -> tuple[str, str | None, int]:
    """libbpf's ``path:function+offset`` (or ``path:0xoffset``) from a section name."""
    binary, separator, spec = target.rpartition(":")
    if not separator or not binary:
        raise AttachError(
            f"uprobe target {target!r} should be <path>:<function>[+<offset>]", errno.EINVAL
        )
    function, _, offset = spec.partition("+")
    try:
        if (not offset and function[:2] in ("0x", "0X")) or function.isdigit():
            return binary, None, int(function, 0)
        return binary, function or None, int(offset or "0", 0)
    except ValueError as error:
        raise AttachError(f"uprobe target {target!r}: bad offset", errno.EINVAL) from error
