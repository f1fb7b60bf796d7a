"""``mmap(2)`` at a chosen address, which Python's ``mmap`` module cannot do.

BPF arenas need it: programs keep pointers into the arena as user-space addresses, so
user space must map the arena exactly where the kernel says (its ``map_extra``, or where
the first mapping landed). ``MAP_FIXED_NOREPLACE`` (Linux 4.17) gets that address or
fails with EEXIST; it never replaces a mapping the process already has there.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os

from ..errors import BpfError

MAP_SHARED = 0x01
MAP_FIXED_NOREPLACE = 0x100000
_MAP_FAILED = ctypes.c_void_p(-1).value

_libc = ctypes.CDLL(None, use_errno=True)
_mmap = _libc.mmap
_mmap.restype = ctypes.c_void_p
_mmap.argtypes = [
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_long,
]
_munmap = _libc.munmap
_munmap.restype = ctypes.c_int
_munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]


def map_shared(fd: int, size: int, address: int = 0, *, what: str = "mapping") -> int:
    """Map ``size`` bytes of ``fd`` read-write and shared, at ``address`` exactly (0: where
    the kernel chooses); returns the address."""
    flags = MAP_SHARED | (MAP_FIXED_NOREPLACE if address else 0)
    result = _mmap(address or None, size, mmap.PROT_READ | mmap.PROT_WRITE, flags, fd, 0)
    if result is None or result == _MAP_FAILED:
        err = ctypes.get_errno()
        where = f" at {address:#x}" if address else ""
        reason = os.strerror(err)
        if err == errno.EEXIST:
            reason = "this process already has something mapped there"
        elif err == errno.EBUSY:
            reason = "it is already mapped elsewhere (all users must map it at one address)"
        raise BpfError(f"{what}: cannot mmap {size} bytes{where}: {reason}", err)
    if address and result != address:  # a kernel without MAP_FIXED_NOREPLACE took a hint
        _munmap(result, size)
        raise BpfError(f"{what}: the kernel would not map it at {address:#x}", errno.EBUSY)
    return int(result)


def unmap(address: int, size: int) -> None:
    """Undo ``map_shared``."""
    _munmap(address, size)
