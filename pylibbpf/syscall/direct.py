"""Direct ``bpf(2)`` entry points for the single-element hot path: a few bytes of machine
code per thread's map buffers, called through ctypes with no arguments.

Why: an int lookup through libc's ``syscall()`` spends about a third of its time in ctypes
(converting four arguments, swapping errno in and out) — more than the Python around it.
A stub with the command, the attr's address and its size built in needs none of that, and
returns the kernel's result itself (``-errno`` on failure), so no errno bookkeeping either.
Each stub is ``endbr64; movabs rsi, attr; mov eax, NR_bpf; mov edi, cmd; mov edx, size;
syscall; ret`` (x86-64 only; elsewhere callers keep libc's ``syscall()``).

Safety: the code is fixed — these bytes, plus an address this process allocated and two
constants; nothing from input. A page is written whole while it is read-write and only
then made read+execute, never both (W^X), and never written again: one page serves the
attrs of ~25 buffers, which are allocated with it and reused (``allocate``). Where the
kernel or an LSM refuses executable anonymous memory (SELinux ``execmem``, PaX), or with
``PYLIBBPF_DIRECT_SYSCALL=0`` in the environment, ``allocate`` returns None and the
callers use libc. Stubs are called with the GIL held (``PYFUNCTYPE``), like the libc call
they replace on this path (map element operations do not block).
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from _thread import allocate_lock  # threading.Lock, without importing threading.py
from collections.abc import Callable

from .bpf import NR_BPF

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any

# endbr64; movabs rsi, attr; mov eax, nr; mov edi, cmd; mov edx, size; syscall; ret
_STUB = struct.Struct("<4s2sQBIBIBI3s")
# (The libc binding and the stub prototype are made with the first page: a process that
# never touches a map does not pay for them.)
_libc_mprotect: Any = None


def _mprotect(address: int, size: int, prot: int) -> int:
    global _libc_mprotect
    if _libc_mprotect is None:
        call = ctypes.CDLL(None, use_errno=True).mprotect
        call.restype = ctypes.c_int
        call.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        _libc_mprotect = call
    return int(_libc_mprotect(address, size, prot))


Stub = Callable[[], int]
Commands = tuple[tuple[int, int], ...]  # (command, attr size) for each entry point


def _supported() -> bool:
    return (
        os.uname().machine == "x86_64"
        and ctypes.sizeof(ctypes.c_void_p) == 8
        and os.environ.get("PYLIBBPF_DIRECT_SYSCALL", "1") != "0"
    )


_enabled = _supported()  # False once the kernel refused an executable page


def enabled() -> bool:
    """Whether new buffers get direct entry points."""
    return _enabled


def set_enabled(value: bool) -> bool:
    """Turn direct entry points on or off for buffers made from now on (tests compare the
    two paths; buffers made before keep theirs); returns the previous setting."""
    global _enabled
    previous = _enabled
    _enabled = bool(value) and _supported()
    return previous


class Slot:
    """One attr with its entry points, from a slab (below). ``release()`` gives it back for
    the next buffers; its owner must not call its entry points afterwards."""

    __slots__ = ("_index", "_slab", "attr", "calls")

    def __init__(self, slab: _Slab, index: int) -> None:
        self._slab = slab
        self._index = index
        self.attr: Any = slab.attrs[index]
        self.calls: tuple[Stub, ...] = slab.calls[index]

    def release(self) -> None:
        # No lock: this runs from a finaliser, which the garbage collector may call while
        # this thread holds ``_lock`` in ``allocate`` (a deadlock). ``list.append`` is
        # atomic, and ``allocate`` only pops what it has just seen there.
        ctypes.memset(ctypes.addressof(self.attr), 0, ctypes.sizeof(self.attr))
        self._slab.free.append(self._index)


class _Slab:
    """Attrs for as many buffers as one page of their stubs holds, and that page: written
    whole, then made read+execute (W^X: no page is ever writable and executable, and none
    is written again). Slabs live as long as the process; their slots are reused."""

    def __init__(self, attr_type: type[ctypes.Structure], commands: Commands) -> None:
        import mmap

        page_size = mmap.PAGESIZE
        per_slot = len(commands) * _STUB.size
        count = page_size // per_slot
        self.attrs = (attr_type * count)()
        attr_size = ctypes.sizeof(attr_type)
        first_attr = ctypes.addressof(self.attrs)
        self.page = mmap.mmap(-1, page_size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        for slot in range(count):
            for index, (cmd, size) in enumerate(commands):
                at = slot * per_slot + index * _STUB.size
                self.page[at : at + _STUB.size] = _STUB.pack(
                    b"\xf3\x0f\x1e\xfa",  # endbr64 (a no-op without CET)
                    b"\x48\xbe",  # movabs rsi, imm64
                    first_attr + slot * attr_size,
                    0xB8,  # mov eax, imm32
                    NR_BPF,
                    0xBF,  # mov edi, imm32
                    cmd,
                    0xBA,  # mov edx, imm32
                    size,
                    b"\x0f\x05\xc3",  # syscall; ret
                )
        anchor = ctypes.c_char.from_buffer(self.page)
        base = ctypes.addressof(anchor)
        del anchor  # (an exported buffer would keep the page from being unmapped)
        if _mprotect(base, page_size, mmap.PROT_READ | mmap.PROT_EXEC) != 0:
            err = ctypes.get_errno()
            self.page.close()
            raise OSError(err, os.strerror(err))
        proto = ctypes.PYFUNCTYPE(ctypes.c_long)  # no arguments; keeps the GIL (see above)
        self.calls = [
            tuple(proto(base + slot * per_slot + i * _STUB.size) for i in range(len(commands)))
            for slot in range(count)
        ]
        self.free = list(range(count - 1, -1, -1))


_lock = allocate_lock()
_slabs: dict[tuple[type[ctypes.Structure], Commands], list[_Slab]] = {}


def allocate(attr_type: type[ctypes.Structure], commands: Commands) -> Slot | None:
    """A zeroed ``attr_type`` with zero-argument callables issuing ``bpf(cmd, &attr, size)``
    for each of ``commands``; each returns the kernel's result, ``-errno`` on failure.
    None where direct calls are off or the kernel refuses an executable page."""
    global _enabled
    if not _enabled:
        return None
    with _lock:
        slabs = _slabs.setdefault((attr_type, commands), [])
        for slab in slabs:
            if slab.free:
                return Slot(slab, slab.free.pop())
        try:
            slab = _Slab(attr_type, commands)
        except OSError as error:  # EPERM/EACCES: W^X policy; ENOMEM: out of mappings
            if error.errno in (errno.EPERM, errno.EACCES):
                _enabled = False
            return None
        slabs.append(slab)
        return Slot(slab, slab.free.pop())
