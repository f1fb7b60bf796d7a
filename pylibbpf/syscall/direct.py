"""Direct ``bpf(2)`` entry points for the single-element hot path: a few bytes of machine
code per thread's map buffers, called with no arguments.

Why: an int lookup through libc's ``syscall()`` spends about a third of its time in ctypes
(converting four arguments, swapping errno in and out) — more than the Python around it.
A stub with the command, the attr's address and its size built in needs none of that, and
returns the kernel's result itself (``-errno`` on failure), so no errno bookkeeping either.
Each stub is ``endbr64; movabs rsi, attr; mov eax, NR_bpf; mov edi, cmd; mov edx, size;
syscall`` (x86-64 only; elsewhere callers keep libc's ``syscall()``), then either ``ret``
(called through a ctypes ``PYFUNCTYPE``) or, on CPython, ``mov rdi, rax; movabs rax,
PyLong_FromLong; jmp rax``: the stub is then a builtin function (``METH_FASTCALL``,
made with ``PyCFunction_NewEx``) that hands its result to ``PyLong_FromLong`` and so
returns a Python int itself. A builtin call skips ctypes' call machinery (~700 of the
~3,300 instructions of an int lookup).

A record lookup has one more builtin stub, ``fill()``: it makes a new instance of its
slot's record type by the type's own C constructor (``tp_new``, as ``from_buffer_copy``
does; the slot holds the type and the constructor's address, ``Slot.set_record_type``),
points the attr's value at the memory the instance owns, issues the lookup, puts the
attr's own value pointer back, and returns the instance; on failure it frees it
(``Py_DecRef``) and returns None, the kernel's result kept for ``Slot.fill_result``. So
the kernel writes the value straight into the instance: no copy, no ``from_buffer_copy``,
no Python-level constructor call (a record lookup went from ~3,800 to ~2,650
instructions). It reads the instance's buffer address (``CDataObject.b_ptr``, right
after the object header) at an offset checked against ``ctypes.addressof`` when the
first page is made; without a record type it makes nothing and fails with ``-EINVAL``.
The swap and its undoing lie between two instructions of one call with the GIL held, so
no Python code (another thread's operation, a signal handler) ever sees the attr
pointing at the instance. Its calls keep the C calling convention: ``rbx`` is saved and
restored (which also aligns the stack for them), and references are taken and dropped
only through CPython's exported ``Py_IncRef``/``Py_DecRef``.

Safety: the code is fixed — these bytes, plus addresses this process owns (the attr it
allocated, CPython's own ``PyLong_FromLong``, for ``fill`` also its ``Py_IncRef``,
``Py_DecRef``, ``None``, ``()`` and the slot's cells) and three constants; nothing from
input. The builtin form of the command stubs obeys the C calling convention CPython calls
it with: it reads none of its
arguments (``self``, the argument vector and its length arrive in rdi, rsi and rdx, which
the System V ABI lets a callee clobber, as it does rax, rcx, r11 and the flags;
``syscall`` clobbers only rcx and r11), touches no stack, and its tail jump leaves the
stack exactly as its caller left it, so ``PyLong_FromLong`` returns straight to CPython
with a new reference (or NULL with MemoryError set, which CPython raises). The
``PyMethodDef`` records and their names live in the page's slab, which lives as long as
the process, as the functions need. A page is written whole while it is read-write and
only then made read+execute, never both (W^X), and never written again: one page serves
the attrs of ~10 buffers (~17 without ``fill`` stubs), which are allocated with it and
reused (``allocate``). Where the kernel or an LSM refuses executable anonymous memory
(SELinux ``execmem``, PaX), or with ``PYLIBBPF_DIRECT_SYSCALL=0`` in the environment,
``allocate`` returns None and the callers use libc; where ``ctypes.pythonapi`` is missing
(not CPython) the stubs end in ``ret`` and are called through ctypes (and record lookups
copy). Stubs are called with the GIL held, like the libc call they replace on this path
(map element operations do not block).
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys
from _thread import allocate_lock  # threading.Lock, without importing threading.py
from collections.abc import Callable

from .bpf import NR_BPF

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any

# endbr64; movabs rsi, attr; mov eax, nr; mov edi, cmd; mov edx, size; syscall
_SYSCALL = struct.Struct("<4s2sQBIBIBI2s")
_RET = b"\xc3"  # ret: the ctypes form
# mov rdi, rax; movabs rax, PyLong_FromLong; jmp rax: the builtin form
_TO_INT = struct.Struct("<3s2sQ2s")
_STUB_SIZE = {False: _SYSCALL.size + len(_RET), True: _SYSCALL.size + _TO_INT.size}
# METH_FASTCALL, not METH_NOARGS: CPython 3.11 specialises calls of the former (~100
# instructions less a call). The stub reads no argument, and only its buffers call it.
_METH_FASTCALL = 0x0080
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
# A record lookup's stub: (command, attr size, offset of the value pointer in the attr).
Fill = tuple[int, int, int]


def _supported() -> bool:
    return (
        os.uname().machine == "x86_64"
        and ctypes.sizeof(ctypes.c_void_p) == 8
        and os.environ.get("PYLIBBPF_DIRECT_SYSCALL", "1") != "0"
    )


_enabled = _supported()  # False once the kernel refused an executable page


def _builtin_supported() -> bool:
    return sys.implementation.name == "cpython" and hasattr(ctypes, "pythonapi")


_as_builtin = _builtin_supported()  # stubs become builtin functions (else ctypes calls)
_EMPTY = ()  # the arguments ``fill`` stubs give ``tp_new``
_WORD = ctypes.sizeof(ctypes.c_void_p)
_TP_NEW_SLOT = 65  # Py_tp_new, for PyType_GetSlot
_record_pointer_at: int | None = -1  # where a ctypes instance keeps its buffer's address


def _record_pointer() -> int | None:
    """The offset of ``b_ptr`` (the address of an instance's memory) in a ctypes instance,
    right after the object header, whose last word is the type; checked on an instance
    with its memory inline and one with it allocated. None if the layout is not the one
    ``fill`` stubs read (then record lookups copy, as before)."""
    global _record_pointer_at
    if _record_pointer_at == -1:
        offset = object.__basicsize__  # CPython: right after the object header
        probes = ((ctypes.c_char * 8)(), (ctypes.c_char * 64)())
        seen = [
            (ctypes.c_void_p.from_address(id(probe) + at).value, expected)
            for probe in probes
            for at, expected in ((offset, ctypes.addressof(probe)), (offset - 8, id(type(probe))))
        ]
        laid_out = offset < 0x80 and all(held == expected for held, expected in seen)
        _record_pointer_at = offset if laid_out else None
    return _record_pointer_at


_get_slot: Callable[[type, int], int | None] | None = None  # PyType_GetSlot, bound once


def _tp_new(record_type: type) -> int:
    """The address of a type's ``tp_new`` (its C constructor)."""
    global _get_slot
    if _get_slot is None:  # (a prototype is a new class: made once, not per buffer set)
        # Our own prototype, not ``pythonapi.PyType_GetSlot``'s shared argtypes.
        prototype = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_int)
        _get_slot = prototype(("PyType_GetSlot", ctypes.pythonapi))
    return int(_get_slot(record_type, _TP_NEW_SLOT) or 0)


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


def set_builtin(value: bool) -> bool:
    """Make the stubs of buffers made from now on builtin functions (True, where CPython
    allows it) or ctypes calls (False: tests compare the two); the previous setting."""
    global _as_builtin
    previous = _as_builtin
    _as_builtin = bool(value) and _builtin_supported()
    return previous


class _MethodDef(ctypes.Structure):
    """CPython's ``PyMethodDef``: what ``PyCFunction_NewEx`` makes a builtin function of."""

    _fields_ = [
        ("ml_name", ctypes.c_char_p),
        ("ml_meth", ctypes.c_void_p),
        ("ml_flags", ctypes.c_int),
        ("ml_doc", ctypes.c_char_p),
    ]


def _builtins(addresses: list[int], names: list[bytes]) -> tuple[Any, list[Callable[..., int]]]:
    """Builtin functions (``METH_FASTCALL``) over stubs at ``addresses``; the ``PyMethodDef``
    records they point at, which must outlive them."""
    # Our own prototype, not ``pythonapi.PyCFunction_NewEx``'s shared argtypes.
    prototype = ctypes.PYFUNCTYPE(
        ctypes.py_object, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p
    )
    new = prototype(("PyCFunction_NewEx", ctypes.pythonapi))
    defs = (_MethodDef * len(addresses))()
    for record, address, name in zip(defs, addresses, names, strict=True):
        record.ml_name, record.ml_meth, record.ml_flags = name, address, _METH_FASTCALL
    return defs, [new(ctypes.addressof(record), None, None) for record in defs]


def _long_from_long() -> int:
    """The address of CPython's ``PyLong_FromLong``, where the builtin stubs jump."""
    return ctypes.cast(ctypes.pythonapi.PyLong_FromLong, ctypes.c_void_p).value or 0


class Slot:
    """One attr with its entry points, from a slab (below): ``calls`` (one per command) and
    ``fill`` (a record lookup into a new instance of the slot's record type; None where
    the stubs are ctypes calls). ``release()`` gives it back for the next buffers; its
    owner must not call its entry points afterwards."""

    __slots__ = ("_index", "_record_type", "_slab", "attr", "calls", "fill")

    def __init__(self, slab: _Slab, index: int) -> None:
        self._slab = slab
        self._index = index
        self.attr: Any = slab.attrs[index]
        self.calls: tuple[Stub, ...] = slab.calls[index]
        self.fill: Callable[[], Any] | None = slab.fills[index] if slab.fills else None
        self._record_type: type | None = None

    def set_record_type(self, record_type: type | None) -> bool:
        """What ``fill`` makes from now on: instances of ``record_type`` (a ctypes type of
        the attr's value size, made by its own ``tp_new``; the slot keeps it alive), or
        nothing (None: ``fill`` fails with EINVAL). False if it cannot make that type."""
        constructor = 0 if record_type is None else _tp_new(record_type)
        if not constructor:
            record_type = None
        self._record_type = record_type
        at = 3 * self._index
        cells = self._slab.record_cells
        cells[at : at + 3] = [id(record_type) if record_type else 0, constructor, 0]
        return record_type is not None

    def fill_result(self) -> int:
        """The kernel's result of the last ``fill`` that returned None (``-errno``)."""
        return int(self._slab.record_cells[3 * self._index + 2])

    def release(self) -> None:
        # No lock: this runs from a finaliser, which the garbage collector may call while
        # this thread holds ``_lock`` in ``allocate`` (a deadlock). ``list.append`` is
        # atomic, and ``allocate`` only pops what it has just seen there.
        self.set_record_type(None)
        ctypes.memset(ctypes.addressof(self.attr), 0, ctypes.sizeof(self.attr))
        self._slab.free.append(self._index)


def _api(name: str) -> int:
    """The address of one of CPython's C API functions."""
    return ctypes.cast(getattr(ctypes.pythonapi, name), ctypes.c_void_p).value or 0


def _fill_code(attr: int, fill: Fill, cells: int, pointer_at: int) -> bytes:
    """A record lookup's stub (builtin form; see the module's note): a new instance of the
    type in ``cells[0]`` made by its ``tp_new`` (``cells[1]``), ``bpf(cmd, attr, size)``
    with the attr's value pointer swapped for the instance's memory and back; the instance,
    or None with the kernel's result in ``cells[2]`` (``-EINVAL`` without a type)."""
    cmd, size, value_at = fill
    none = id(None)
    # No type: -EINVAL. mov qword [rbx + 16], -EINVAL
    einval = b"\x48\xc7\x43\x10" + struct.pack("<i", -errno.EINVAL)
    give_none = b"".join(
        (
            b"\x48\xbf" + struct.pack("<Q", none),  # movabs rdi, None
            b"\x48\xb8" + struct.pack("<Q", _api("Py_IncRef")),  # movabs rax, Py_IncRef
            b"\xff\xd0",  # call rax
            b"\x48\xb8" + struct.pack("<Q", none),  # movabs rax, None
            b"\x5b\xc3",  # pop rbx; ret
        )
    )
    failed = b"".join(
        (
            b"\x48\x89\x43\x10",  # mov [rbx + 16], rax: the kernel's result
            b"\x4c\x89\xcf",  # mov rdi, r9: the instance
            b"\x48\xb8" + struct.pack("<Q", _api("Py_DecRef")),  # movabs rax, Py_DecRef
            b"\xff\xd0",  # call rax
        )
    )
    failed += b"\xeb" + bytes((len(einval),))  # jmp give_none
    lookup = b"".join(
        (
            b"\x49\x89\xc1",  # mov r9, rax: the instance
            b"\x49\x8b\x41" + bytes((pointer_at,)),  # mov rax, [r9 + b_ptr]
            b"\x48\xbe" + struct.pack("<Q", attr),  # movabs rsi, attr
            b"\x4c\x8b\x46" + bytes((value_at,)),  # mov r8, [rsi + value]: the attr's own
            b"\x48\x89\x46" + bytes((value_at,)),  # mov [rsi + value], rax
            struct.pack("<BIBIBI", 0xB8, NR_BPF, 0xBF, cmd, 0xBA, size),  # eax, edi, edx
            b"\x0f\x05",  # syscall (keeps rsi, r8 and r9)
            b"\x4c\x89\x46" + bytes((value_at,)),  # mov [rsi + value], r8: put it back
            b"\x48\x85\xc0",  # test rax, rax
            b"\x78\x05",  # js failed (past the next two instructions)
            b"\x4c\x89\xc8",  # mov rax, r9: the instance
        )
    )
    out = b"\x5b\xc3"  # pop rbx; ret (the instance, or NULL with the exception set)
    make = b"".join(
        (
            b"\x48\xbe" + struct.pack("<Q", id(_EMPTY)),  # movabs rsi, ()
            b"\x31\xd2",  # xor edx, edx: no keywords
            b"\xff\x53\x08",  # call [rbx + 8]: tp_new(type, (), NULL)
            b"\x48\x85\xc0",  # test rax, rax
            b"\x74" + bytes((len(lookup),)),  # jz out
        )
    )
    body = make + lookup + out + failed
    code = b"".join(
        (
            b"\xf3\x0f\x1e\xfa",  # endbr64
            b"\x53",  # push rbx (callee-saved; aligns the stack for the calls)
            b"\x48\xbb" + struct.pack("<Q", cells),  # movabs rbx, cells
            b"\x48\x8b\x3b",  # mov rdi, [rbx]: the type
            b"\x48\x85\xff",  # test rdi, rdi
            b"\x74" + bytes((len(body),)),  # jz einval
            body,
            einval,
            give_none,
        )
    )
    assert len(body) < 0x80  # (short jumps)
    return code


class _Slab:
    """Attrs for as many buffers as one page of their stubs holds, and that page: written
    whole, then made read+execute (W^X: no page is ever writable and executable, and none
    is written again). Slabs live as long as the process; their slots are reused."""

    def __init__(
        self,
        attr_type: type[ctypes.Structure],
        commands: Commands,
        as_builtin: bool,
        fill: Fill | None,
    ) -> None:
        import mmap

        page_size = mmap.PAGESIZE
        stub_size = _STUB_SIZE[as_builtin]
        tail = (  # mov rdi, rax; movabs rax, imm64; jmp rax
            _TO_INT.pack(b"\x48\x89\xc7", b"\x48\xb8", _long_from_long(), b"\xff\xe0")
            if as_builtin
            else _RET
        )
        pointer_at = _record_pointer() if as_builtin else None
        if fill is None or pointer_at is None:
            fill = None  # (no record stubs: the ctypes form, or another layout)
        fill_size = 0 if fill is None else len(_fill_code(0, fill, 0, 8))
        per_slot = len(commands) * stub_size + fill_size
        count = page_size // per_slot
        self.attrs = (attr_type * count)()
        # Each slot's record type, its ``tp_new`` and the last failed fill's result.
        self.record_cells = (ctypes.c_ssize_t * (3 * count))()
        attr_size = ctypes.sizeof(attr_type)
        first_attr = ctypes.addressof(self.attrs)
        self.page = mmap.mmap(-1, page_size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        for slot in range(count):
            attr = first_attr + slot * attr_size
            for index, (cmd, size) in enumerate(commands):
                at = slot * per_slot + index * stub_size
                code = _SYSCALL.pack(
                    b"\xf3\x0f\x1e\xfa",  # endbr64 (a no-op without CET)
                    b"\x48\xbe",  # movabs rsi, imm64
                    attr,
                    0xB8,  # mov eax, imm32
                    NR_BPF,
                    0xBF,  # mov edi, imm32
                    cmd,
                    0xBA,  # mov edx, imm32
                    size,
                    b"\x0f\x05",  # syscall
                )
                self.page[at : at + stub_size] = code + tail
            if fill is not None and pointer_at is not None:
                at = slot * per_slot + len(commands) * stub_size
                cells = ctypes.addressof(self.record_cells) + slot * 3 * _WORD
                code = _fill_code(attr, fill, cells, pointer_at)
                self.page[at : at + fill_size] = code
        anchor = ctypes.c_char.from_buffer(self.page)
        base = ctypes.addressof(anchor)
        del anchor  # (an exported buffer would keep the page from being unmapped)
        if _mprotect(base, page_size, mmap.PROT_READ | mmap.PROT_EXEC) != 0:
            err = ctypes.get_errno()
            self.page.close()
            raise OSError(err, os.strerror(err))
        self.base = base  # (tests read the page's permissions)
        per = len(commands)
        addresses = [
            base + slot * per_slot + index * stub_size
            for slot in range(count)
            for index in range(per)
        ]
        self.fills: list[Callable[[], Any]] = []
        if as_builtin:
            names = [b"bpf_%d" % cmd for _slot in range(count) for cmd, _size in commands]
            if fill is not None:
                names += [b"bpf_%d_into" % fill[0]] * count
                addresses += [base + slot * per_slot + per * stub_size for slot in range(count)]
            self.method_defs, stubs = _builtins(addresses, names)
            self.fills, stubs = stubs[count * per :], stubs[: count * per]
        else:
            proto = ctypes.PYFUNCTYPE(ctypes.c_long)  # no arguments; keeps the GIL (above)
            stubs = [proto(address) for address in addresses]
        self.calls = [tuple(stubs[slot * per : slot * per + per]) for slot in range(count)]
        self.free = list(range(count - 1, -1, -1))


_lock = allocate_lock()
_slabs: dict[tuple[type[ctypes.Structure], Commands, bool, Fill | None], list[_Slab]] = {}


def allocate(
    attr_type: type[ctypes.Structure], commands: Commands, fill: Fill | None = None
) -> Slot | None:
    """A zeroed ``attr_type`` with zero-argument callables issuing ``bpf(cmd, &attr, size)``
    for each of ``commands``; each returns the kernel's result, ``-errno`` on failure.
    With ``fill``, also a builtin ``fill()`` issuing that command into a new instance of
    the slot's record type, which it returns (``Slot.fill``, ``Slot.set_record_type``;
    None where the stubs are ctypes calls or ctypes instances are laid out otherwise).
    None where direct calls are off or the kernel refuses an executable page."""
    global _enabled
    if not _enabled:
        return None
    with _lock:
        as_builtin = _as_builtin
        slabs = _slabs.setdefault((attr_type, commands, as_builtin, fill), [])
        for slab in slabs:
            if slab.free:
                return Slot(slab, slab.free.pop())
        try:
            slab = _Slab(attr_type, commands, as_builtin, fill)
        except OSError as error:  # EPERM/EACCES: W^X policy; ENOMEM: out of mappings
            if error.errno in (errno.EPERM, errno.EACCES):
                _enabled = False
            return None
        slabs.append(slab)
        return Slot(slab, slab.free.pop())
