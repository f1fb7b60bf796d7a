"""BPF arenas (``BPF_MAP_TYPE_ARENA``, Linux 6.9) from user space.

An arena is memory shared by BPF programs and user space, page by page as either side
touches it. Programs keep pointers into it as *user-space* addresses, so an ``Arena`` maps
it where those pointers point (the map's ``map_extra``, or where the kernel puts the
first mapping) and a pointer a program wrote can be followed here: ``arena.view(pointer,
ctype)`` is that struct, live. The object's ``__arena`` globals are ordinary variables
(``obj.variables``) whose memory is the arena's last pages, where libbpf 1.7 puts them.

The mapping lives as long as something uses it: ``close()`` (or the map's) drops this
handle, and the pages are unmapped once the last view made from it is gone. The kernel
does not copy arena mappings into forked children.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import weakref
from typing import Any, TypeVar, cast

from .errors import BpfError
from .syscall import mapping
from .syscall.fd import Closing

CType = TypeVar(
    "CType", bound="ctypes.Structure | ctypes.Union | ctypes.Array[Any] | ctypes._SimpleCData[Any]"
)


def arena_size(max_entries: int) -> int:
    """Bytes an arena of ``max_entries`` pages spans (what every mapping of it must be)."""
    return max_entries * mmap.PAGESIZE


def globals_offset(max_entries: int, data_size: int) -> int:
    """Where an object's ``__arena`` globals start: the whole pages at the arena's end
    (libbpf 1.7; 1.4-1.6 put them at 0, where a NULL pointer would land)."""
    pages = -(-data_size // mmap.PAGESIZE)
    return arena_size(max_entries) - pages * mmap.PAGESIZE


class Arena(Closing):
    """An arena map's memory, mapped in this process at the address its programs use."""

    def __init__(self, map_fd: int, size: int, address: int = 0, *, what: str = "arena") -> None:
        """Map ``size`` bytes (the map's ``max_entries`` pages) of ``map_fd`` at
        ``address`` (0: where the kernel chooses, when no ``map_extra`` fixed it)."""
        self._what = what
        start = mapping.map_shared(map_fd, size, address, what=what)
        pages: Any = type("ArenaPages", (ctypes.c_ubyte * size,), {})  # weakref-able
        memory = pages.from_address(start)
        weakref.finalize(memory, mapping.unmap, start, size)
        self._memory: Any = memory
        self.address = start
        self.size = size

    def _pages(self) -> Any:
        if self._memory is None:
            raise BpfError(f"{self._what} is closed", errno.EBADF)
        return self._memory

    @property
    def closed(self) -> bool:
        """Whether ``close()`` ran."""
        return self._memory is None

    @property
    def memory(self) -> memoryview:
        """The whole arena as writable bytes (pages appear as they are touched)."""
        return memoryview(self._pages()).cast("B")

    def offset(self, pointer: int) -> int:
        """Where in the arena a pointer a program stored points: by its low 32 bits, as
        the kernel keeps arena pointers (so kernel-side values work too)."""
        offset = (pointer - self.address) & 0xFFFF_FFFF
        if offset >= self.size:
            raise BpfError(
                f"{self._what}: {pointer:#x} is not in the arena "
                f"({self.address:#x}, {self.size} bytes)",
                errno.EFAULT,
            )
        return offset

    def pointer(self, offset: int) -> int:
        """The address a program would use for ``offset``."""
        return self.address + offset

    def view(self, pointer: int, ctype: type[CType]) -> CType:
        """A ctypes instance (a struct from ``btf.ctype``, an int type…) over the arena
        at ``pointer``: reads and writes go to the shared pages. NULL is an error."""
        if not pointer:
            raise BpfError(f"{self._what}: NULL pointer", errno.EFAULT)
        offset = self.offset(pointer)
        if offset + ctypes.sizeof(ctype) > self.size:
            raise BpfError(f"{self._what}: {pointer:#x} + {ctypes.sizeof(ctype)} runs past the end")
        return cast(CType, ctype.from_buffer(self._pages(), offset))

    def read(self, pointer: int, size: int) -> bytes:
        """``size`` bytes at ``pointer``."""
        offset = self.offset(pointer)
        return bytes(self.memory[offset : offset + size])

    def write(self, pointer: int, data: bytes) -> None:
        """Write ``data`` at ``pointer``."""
        offset = self.offset(pointer)
        self.memory[offset : offset + len(data)] = data

    def close(self) -> None:
        """Drop this handle; the pages go with the last view made from it."""
        self._memory = None

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"at {self.address:#x}"
        return f"<Arena {self._what} {self.size} bytes {state}>"


def map_arena(
    map_fd: int, max_entries: int, map_extra: int, address: int | None, what: str
) -> Arena:
    """An arena map's ``Arena``: at ``address`` if given, else at its ``map_extra``."""
    where = map_extra if address is None else address
    try:
        return Arena(map_fd, arena_size(max_entries), where, what=what)
    except BpfError as error:
        if error.errno == errno.EINVAL and not where:
            raise BpfError(
                f"{what}: already mapped by another process at an address its map_extra "
                "does not say: pass address= (where that process mapped it)",
                errno.EINVAL,
            ) from error
        raise


def map_memory(map_fd: int, value_size: int, max_entries: int, what: str) -> memoryview:
    """A ``BPF_F_MMAPABLE`` array's values as writable bytes (each value 8-byte aligned)."""
    size = -(-((value_size + 7) & ~7) * max_entries // mmap.PAGESIZE) * mmap.PAGESIZE
    try:
        return memoryview(mmap.mmap(map_fd, size, mmap.MAP_SHARED))
    except OSError as error:
        raise BpfError(f"{what}: cannot mmap it: {error.strerror}", error.errno) from error
