"""The hot path of map access: single-element operations through preallocated buffers.

An operation takes a set of buffers (``MapElemOps``: the key, value and next-key buffers
and the attr that points at them) from its map's pool (``elem_pool.MapElems``, which
imports this module when it makes its first set) and gives it back when it is done:
``ops = pool.pop()`` (``make_ops()`` if the pool is empty) ... ``pool.append(ops)`` in a
``finally``. The pool is a ``deque``: a ``list`` frees its item array when it empties and
allocates it again on the next append, ~500 instructions an operation. Sharing one set
between threads is not safe even with the GIL, which threads can take from each other
between any two bytecodes — between filling the key and reading the value — so a lookup
could return another thread's value and an update store it under another thread's key
(issue #15). ``deque.pop`` and ``deque.append`` are atomic, so no two operations hold the
same set at once, in any threads (a signal handler's operation included); the pool holds
as many sets as operations ever ran at once. This costs ~240 instructions an operation,
against ~530 for a ``threading.local`` read; a lock would cost more and serialise the
threads.

The fast path for a map's key and value types is picked once, when its buffers are made,
as an item assignment ``dst[at] = x`` the caller writes inline (a subscript costs half a
call): through a typed ``memoryview`` for 1/2/4/8-byte ints, an ``mmap`` slice (a
``memcpy`` of any buffer of the element's size) for ctypes types, a ``memoryview`` slice
for bytes. Each raises one of ``FAST_MISS`` for input it does not take, and the caller
then goes through the codec, which converts it or raises a ``BpfError`` naming the map.

``Map``'s element methods do this work inline (a Python call is a tenth of the cost of an
operation) and issue the command through the buffers' own entry points: a direct stub
(``direct.py``: no libc, no argument conversion, no errno swap) where the platform allows,
else ``_bpf_fast`` bound to the buffers. ``seam.override_syscall`` rebinds every live
buffer's entry points (``rebind_all``), so its handler still sees every call.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import functools
import operator
import struct
import sys
import weakref
from collections.abc import Callable

from ..errors import BpfError
from ..spec.codec import Codec, CtypesCodec, IntCodec
from ..uapi_values import Cmd
from .attrs import MapElemAttr
from .bpf import NR_BPF, kernel_error
from .elem_pool import FAST_MISS, INVALID_FD, MapElems

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any

    from .direct import Slot

    Encoder = Callable[[Any], bytes]


# libc's syscall(), keeping the GIL (see bpf.py); a global looked up on every call, so
# ``seam.override_syscall`` can swap it.
_bpf_fast = ctypes.PyDLL(None, use_errno=True).syscall
_bpf_fast.restype = ctypes.c_long
_LIBC_FAST = _bpf_fast

_NATIVE_LITTLE = sys.byteorder == "little"  # map elements are little-endian here

LOOKUP = int(Cmd.MAP_LOOKUP_ELEM)
UPDATE = int(Cmd.MAP_UPDATE_ELEM)
DELETE = int(Cmd.MAP_DELETE_ELEM)
ATTR_SIZE = ctypes.sizeof(MapElemAttr)
KEY_ATTR_SIZE = MapElemAttr.value.offset  # MAP_DELETE_ELEM: the fd and the key only
# MapElemOps' lookup, update, delete_call, next and pop, in that order.
_COMMANDS = (
    (LOOKUP, ATTR_SIZE),
    (UPDATE, ATTR_SIZE),
    (DELETE, KEY_ATTR_SIZE),
    (int(Cmd.MAP_GET_NEXT_KEY), ATTR_SIZE),
    (int(Cmd.MAP_LOOKUP_AND_DELETE_ELEM), ATTR_SIZE),
)
# The record lookup's stub: MAP_LOOKUP_ELEM with the value pointer at a new instance.
_FILL = (LOOKUP, ATTR_SIZE, MapElemAttr.value.offset)
_LIVE: weakref.WeakSet[MapElemOps] = weakref.WeakSet()  # every thread's, for rebind_all


def rebind_all() -> None:
    """Re-pick every live buffer's entry points (the seam calls this when it installs or
    removes a handler, which must see every call: direct entry points would bypass it)."""
    for ops in list(_LIVE):
        ops.bind_calls()


__all__ = [
    "ATTR_SIZE",
    "DELETE",
    "FAST_MISS",
    "KEY_ATTR_SIZE",
    "LOOKUP",
    "NR_BPF",
    "UPDATE",
    "MapElemOps",
    "MapElems",
]


def _direct_slot() -> Slot | None:
    """A direct-call slot, ``direct.py`` imported on a map's first element operation:
    loading an object (and a program that never reads its maps) does without it."""
    from . import direct

    return direct.allocate(MapElemAttr, _COMMANDS, _FILL)


class MapElemOps:
    """One buffer set and attr for one map, and the element operations on them (one
    operation at a time holds it: see the module's note).

    ``key_dst[key_at] = key`` and ``value_dst[value_at] = value`` write the fast-path
    kinds straight into the buffers and raise one of ``FAST_MISS`` for anything else
    (``put_key``/``put_value`` convert that); ``get_value()`` decodes the value buffer,
    and for 1/2/4/8-byte int values ``int_value[0]`` reads it (a subscript: half the cost
    of that call; None for other values).

    ``lookup()``, ``update()``, ``delete_call()``, ``next()`` and ``pop()`` (lookup and
    delete) issue their command on the attr as it stands and return the kernel's result:
    a direct entry point (``direct.py``) where there is one, else libc's ``syscall()``
    bound to the same arguments. On failure, ``error(result)`` is the errno either way.

    Record maps with builtin stubs also have ``new_record`` (the value type) and
    ``lookup_record()``: the lookup with the kernel writing the value straight into a new
    instance the stub makes (``direct.py``), which it returns (None on failure:
    ``record_error()`` is the kernel's result), instead of a lookup into the value buffer
    and a copy (``get_value()``). Both are None elsewhere.
    """

    __slots__ = (
        "__weakref__",
        "attr",
        "delete_call",
        "direct",
        "elems",
        "entry",
        "get_value",
        "int_value",
        "kbuf",
        "key_at",
        "key_dst",
        "kview",
        "lookup",
        "lookup_record",
        "nbuf",
        "new_record",
        "next",
        "pop",
        "ref",
        "update",
        "value_at",
        "value_dst",
        "vbuf",
        "vview",
    )

    def __init__(self, elems: Any) -> None:
        self.elems = elems
        key_size, value_size = elems.key_size, elems.value_size
        # Buffers of exactly the element size, so ``.raw`` is the element without slicing.
        self.kbuf, key_memory = _element_buffer(elems.key, key_size or 1)
        self.nbuf = ctypes.create_string_buffer(key_size or 1)
        record_values = elems.decode_value is None
        self.vbuf, value_memory = _element_buffer(
            elems.value if record_values else None, value_size or 1
        )
        self.kview = memoryview(self.kbuf).cast("B")[:key_size]
        self.vview = memoryview(self.vbuf).cast("B")[:value_size]
        # A direct-call slot (attr and entry points) unless the seam is installed.
        self.entry = _direct_slot() if _bpf_fast is _LIBC_FAST else None
        self.attr = MapElemAttr() if self.entry is None else self.entry.attr
        self.attr.map_fd = elems.register(self)
        self.ref = ctypes.byref(self.attr)
        self.attr.key = ctypes.addressof(self.kbuf) if key_size else 0
        self.attr.value = ctypes.addressof(self.vbuf)
        self.key_dst, self.key_at = _destination(elems.key, self.kbuf, key_memory, self.kview)
        if record_values:
            self.value_dst, self.value_at = _destination(
                elems.value, self.vbuf, value_memory, self.vview
            )
            self.get_value = _getter(elems.value, self.vbuf, self.vview)
            self.int_value = _int_view(elems.value, self.vview)
        elif (slots := _percpu_int_view(elems.value, elems.percpu_slot, self.vview)) is not None:
            # Per-CPU ints: a strided view of the slots reads them all (``tolist``). With one
            # CPU and no padding it is the whole value: it takes an int without a Python
            # frame (a list: through the codec).
            whole = len(slots) == 1 and slots.nbytes == elems.value_size
            self.value_dst = slots if whole else _PerCpuInts(slots, self.vview, self.vbuf, elems)
            self.value_at = 0
            self.get_value = slots.tolist
            self.int_value = None
        else:
            self.value_dst, self.value_at = _Converting(self.vview, elems.encode_value), 0
            self.get_value = functools.partial(elems.decode_value, self.vbuf)
            self.int_value = None
        self.bind_calls()
        _LIVE.add(self)

    def __del__(self) -> None:
        entry = getattr(self, "entry", None)  # (unset if __init__ failed early)
        if entry is not None:
            entry.release()

    def bind_calls(self) -> None:
        """Pick the entry points: the direct ones if this buffer has them and libc's
        ``syscall()`` is installed, else ``_bpf_fast``, whatever is installed now (the seam
        rebinds every live buffer when it swaps it)."""
        entry = self.entry if _bpf_fast is _LIBC_FAST else None
        self.direct = entry is not None
        self.new_record = self.lookup_record = None
        if entry is not None:
            self.lookup, self.update, self.delete_call, self.next, self.pop = entry.calls
            if entry.fill is not None:
                self.new_record = _fresh_record_type(self.elems)
                self.lookup_record = entry.fill if self.new_record is not None else None
        else:
            call, ref = _bpf_fast, self.ref
            self.lookup, self.update, self.delete_call, self.next, self.pop = (
                functools.partial(call, NR_BPF, cmd, ref, size) for cmd, size in _COMMANDS
            )
        # What the slot's ``fill`` makes (nothing, when not in use), if it can make it.
        if self.entry is not None and not self.entry.set_record_type(self.new_record):
            self.new_record = self.lookup_record = None

    def record_error(self) -> int:
        """The kernel's result (``-errno``) of the last ``lookup_record()`` that failed."""
        return self.entry.fill_result() if self.entry is not None else -_errno.EINVAL

    def error(self, result: int) -> int:
        """The errno of a failed call that returned ``result``."""
        return -result if self.direct else ctypes.get_errno()

    # ----------------------------------------------------------------- slow halves

    def put_key(self, key: Any) -> None:
        """Write a key the fast setter did not take (converted, or a BpfError)."""
        try:
            self.kview[:] = key
        except (TypeError, ValueError):
            self.kview[:] = self.elems.key.encode(key)

    def put_value(self, value: Any) -> None:
        """Write a value the fast setter did not take (converted, or a BpfError)."""
        try:
            self.vview[:] = value
        except (TypeError, ValueError):
            self.vview[:] = self.elems.encode_value(value)

    def key(self, key: Any) -> None:
        """Write ``key`` whatever its kind."""
        try:
            self.key_dst[self.key_at] = key
        except FAST_MISS:
            self.put_key(key)

    def fail(self, cmd: Cmd, result: int) -> BpfError:
        """The error for a command that returned ``result`` (EBADF once the map is closed)."""
        if self.attr.map_fd == INVALID_FD:
            return BpfError(f"{self.elems.what} is closed", _errno.EBADF)
        return kernel_error(self.error(result), cmd, self.elems.what)

    def absent(self, cmd: Cmd, result: int) -> Any:
        """After a lookup or delete that returned ``result`` < 0: None for ENOENT, else raise."""
        if self.error(result) != _errno.ENOENT or self.attr.map_fd == INVALID_FD:
            raise self.fail(cmd, result)
        return None

    def _call(self, call: Callable[[], int], flags: int) -> int:
        if not flags:
            return call()
        self.attr.flags = flags
        try:
            return call()
        finally:
            self.attr.flags = 0

    # ----------------------------------------------------------------- operations

    def lookup_raw(self, key: Any, flags: int = 0) -> bytes | None:
        """The value bytes for ``key``, or None if absent."""
        self.key(key)
        if (result := self._call(self.lookup, flags)) < 0:
            self.absent(Cmd.MAP_LOOKUP_ELEM, result)
            return None
        return self.vbuf.raw

    def lookup_flags(self, flags: int) -> Any:
        """A lookup with flags (BPF_F_LOCK…) of the key already written; None if absent."""
        if (result := self._call(self.lookup, flags)) < 0:
            return self.absent(Cmd.MAP_LOOKUP_ELEM, result)
        return self.get_value()

    def update_flags(self, flags: int) -> None:
        """An update with flags of the key and value already written."""
        if (result := self._call(self.update, flags)) < 0:
            raise self.fail(Cmd.MAP_UPDATE_ELEM, result)

    def next_key(self, key: Any) -> bytes | None:
        """The key after ``key`` (the first key for None); None at the end."""
        attr = self.attr
        if key is None:
            attr.key = 0
        else:
            self.key(key)
        attr.value = ctypes.addressof(self.nbuf)
        try:
            result = self.next()
        finally:
            attr.key = ctypes.addressof(self.kbuf) if self.elems.key_size else 0
            attr.value = ctypes.addressof(self.vbuf)
        if result < 0:
            self.absent(Cmd.MAP_GET_NEXT_KEY, result)
            return None
        return self.nbuf.raw

    def delete(self, key: Any) -> bool:
        """Delete ``key``; False if it was not there."""
        self.key(key)
        if (result := self.delete_call()) < 0:
            self.absent(Cmd.MAP_DELETE_ELEM, result)
            return False
        return True

    def _keyless(self, call: Callable[[], int], flags: int) -> int:
        attr = self.attr
        attr.key = 0
        try:
            return self._call(call, flags)
        finally:
            attr.key = ctypes.addressof(self.kbuf) if self.elems.key_size else 0

    def lookup_keyless(self, flags: int = 0) -> bytes | None:
        """Peek (queue/stack): a lookup with a NULL key."""
        if (result := self._keyless(self.lookup, flags)) < 0:
            self.absent(Cmd.MAP_LOOKUP_ELEM, result)
            return None
        return self.vbuf.raw

    def lookup_and_delete(self, key: Any, flags: int = 0) -> bytes | None:
        """Pop: with ``key=None`` on queue/stack maps, else lookup-then-delete atomically."""
        cmd = Cmd.MAP_LOOKUP_AND_DELETE_ELEM
        if key is None:
            result = self._keyless(self.pop, flags)
        else:
            self.key(key)
            result = self._call(self.pop, flags)
        if result < 0:
            self.absent(cmd, result)
            return None
        return self.vbuf.raw

    def push(self, value: Any, flags: int = 0) -> None:
        """Update with a NULL key (queue/stack push, bloom filter add)."""
        self.put_value(value)
        if (result := self._keyless(self.update, flags)) < 0:
            raise self.fail(Cmd.MAP_UPDATE_ELEM, result)

    def update_raw(self, key: Any, value: Any, flags: int = 0) -> None:
        """Insert or replace ``key``'s value (any kinds of key and value)."""
        self.key(key)
        try:
            self.value_dst[self.value_at] = value
        except FAST_MISS:
            self.put_value(value)
        if (result := self._call(self.update, flags)) < 0:
            raise self.fail(Cmd.MAP_UPDATE_ELEM, result)


def _fresh_record_type(elems: Any) -> Any:
    """The map's value type if its C constructor (``tp_new``, which the record lookup's
    stub calls, as ``from_buffer_copy`` does) is ctypes' own: a zeroed instance owning
    exactly the value's bytes; else None (lookups copy). A type with its own ``__new__``
    is left out (``tp_new`` would run it); ``__init__`` does not run, as it does not for a
    copy."""
    codec = elems.value
    if elems.decode_value is not None or not isinstance(codec, CtypesCodec):
        return None
    ctype = codec.ctype
    if ctypes.sizeof(ctype) != elems.value_size:
        return None
    for base in (ctypes.Structure, ctypes.Union, ctypes.Array):
        if issubclass(ctype, base):
            return ctype if ctype.__new__ is base.__new__ else None
    return None


def _destination(codec: Codec, buffer: Any, memory: Any, view: memoryview) -> tuple[Any, Any]:
    """Where and at which index an item assignment writes one element of ``codec``'s kind
    into ``buffer`` (``memory``: the mmap under a record buffer; ``view``: its element
    bytes), raising a FAST_MISS error for input of another kind."""
    fmt = codec.int_format
    if isinstance(codec, IntCodec) and fmt is not None:
        if _NATIVE_LITTLE:  # a typed view: the cheapest write of an int
            return view.cast(fmt), 0  # type: ignore[call-overload]
        return _Packing(struct.Struct("<" + fmt), buffer), 0
    if isinstance(codec, CtypesCodec):
        return memory, slice(0, len(view))  # a memcpy (``_element_buffer``)
    if len(view) == len(buffer):  # the whole buffer: its own view is faster than a slice
        return memoryview(buffer).cast("B"), slice(None)
    return view, slice(None)


def _element_buffer(codec: Codec | None, size: int) -> tuple[ctypes.Array[ctypes.c_char], Any]:
    """A ``c_char`` array of ``size`` bytes for elements of ``codec``'s kind, and for ctypes
    types the anonymous ``mmap`` it lies in (else None): ``memory[0:size] = record`` is a
    ``memcpy`` from any buffer of exactly that size (IndexError for another size), where a
    ctypes pointer's ``pointer[0] = record`` also keeps a reference to the record's objects
    (``KeepRef``: an ``sprintf`` and a dict store, ~900 of the assignment's ~1,300
    instructions). The codec takes any buffer of the element's size too, so both accept
    the same input. Anonymous mappings side by side share one kernel mapping (VMA)."""
    if not isinstance(codec, CtypesCodec):
        return ctypes.create_string_buffer(size), None
    import mmap

    memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return (ctypes.c_char * size).from_buffer(memory), memory


class _Packing:
    """``dst[0] = n`` packing ``n`` little-endian (hosts of the other byte order)."""

    __slots__ = ("buffer", "packer")

    def __init__(self, packer: struct.Struct, buffer: Any) -> None:
        self.packer, self.buffer = packer, buffer

    def __setitem__(self, _index: int, value: Any) -> None:
        self.packer.pack_into(self.buffer, 0, value)


class _Converting:
    """``dst[0] = v`` through the codec, as ``put_value`` (per-CPU values: one per CPU, or
    one for all); it holds the view, not the ops, so the ops are no cycle."""

    __slots__ = ("encode", "view")

    def __init__(self, view: memoryview, encode: Encoder) -> None:
        self.view, self.encode = view, encode

    def __setitem__(self, _index: int, value: Any) -> None:
        try:
            self.view[:] = value
        except (TypeError, ValueError):
            self.view[:] = self.encode(value)


class _PerCpuInts(_Converting):
    """``dst[0] = v`` for per-CPU ints: an int (for every CPU) or a list or tuple of one
    per CPU, packed into the value buffer; other input through the codec.

    An int is packed into one CPU's slot (zero padding, as the codec pads) and the bytes
    repeated for every CPU; a list by one ``Struct`` of every slot. Either is set as the
    buffer's ``raw`` (exactly its size): ~1,800 and ~1,200 instructions less than an
    ``array`` written through the strided view of the slots, whose slice assignment alone
    costs ~400 more than ``raw``. ``struct`` refuses what ``array`` refused (out of range,
    not ints, another count), which the codec then converts or reports, naming the map.
    """

    __slots__ = ("buffer", "ncpus", "pack_all", "pack_slot")

    def __init__(self, slots: memoryview, view: memoryview, buffer: Any, elems: Any) -> None:
        super().__init__(view, elems.encode_value)
        self.buffer, self.ncpus = buffer, len(slots)  # exactly the value's size (for ``raw``)
        slot = f"{slots.format}{elems.percpu_slot - slots.itemsize}x"  # (host: little-endian)
        self.pack_slot = struct.Struct(f"<{slot}").pack
        self.pack_all = struct.Struct(f"<{slot * self.ncpus}").pack

    def __setitem__(self, _index: int, value: Any) -> None:
        kind = type(value)
        try:
            if kind is int:
                self.buffer.raw = self.pack_slot(value) * self.ncpus
                return
            if kind is list or kind is tuple:
                self.buffer.raw = self.pack_all(*value)
                return
        except (struct.error, TypeError, ValueError, OverflowError):
            pass  # (the codec says what is wrong, naming the map)
        super().__setitem__(_index, value)


def _percpu_int_view(codec: Codec, slot: int, view: memoryview) -> memoryview | None:
    """The per-CPU value buffer as one native int per CPU slot (a strided view), or None."""
    fmt = codec.int_format
    if not (slot and isinstance(codec, IntCodec) and fmt is not None and _NATIVE_LITTLE):
        return None
    if slot % codec.size:
        return None
    typed: memoryview = view.cast(fmt)  # type: ignore[call-overload]
    return typed[:: slot // codec.size]


def _int_view(codec: Codec, view: memoryview) -> Any:
    """The value buffer as one native int (``[0]``), or None where ``get_value`` must run."""
    fmt = codec.int_format
    if isinstance(codec, IntCodec) and fmt is not None and _NATIVE_LITTLE:
        return view.cast(fmt)  # type: ignore[call-overload]
    return None


def _getter(codec: Codec, buffer: Any, view: memoryview) -> Callable[[], Any]:
    """The decoder of ``buffer``'s element."""
    fmt = codec.int_format
    if isinstance(codec, IntCodec):
        if fmt is not None and _NATIVE_LITTLE:
            typed: Any = view.cast(fmt)  # type: ignore[call-overload]
            return functools.partial(operator.getitem, typed, 0)
        return functools.partial(int.from_bytes, buffer, "little", signed=codec.signed)
    if isinstance(codec, CtypesCodec):
        return functools.partial(codec.ctype.from_buffer_copy, buffer)
    if type(codec) is Codec:
        if len(view) == len(buffer):  # ``.raw`` of an exact-size buffer: half of bytes()
            return functools.partial(type(buffer).raw.__get__, buffer)
        return functools.partial(bytes, view)
    return lambda: codec.decode(bytes(buffer))
