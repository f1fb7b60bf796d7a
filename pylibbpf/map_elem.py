"""Element operations on maps: ``m[k]``, ``m[k] = v``, ``lookup``, ``update``, ``delete``,
queue/stack operations. ``Map`` inherits them from ``MapElements``.

These are the hot path of a Python daemon (``counts[pid] += 1``), so each method does its
work inline on a set of buffers it takes from the map's pool and gives back in a
``finally`` (``syscall.elem``): the key and value written straight into preallocated
buffers by a setter picked for the map's types, one foreign call (a direct entry point
where the platform allows one), the value decoded by a getter picked likewise (or, for a
ctypes record, written by the kernel straight into a new instance: ``new_record``). Input of
any other kind (bytes for an int map, a per-CPU list, an fd holder) takes the codec's
path, which converts it or raises an error naming the map. Thread-safe: no two operations
hold the same buffers at once. (``lookup = ops.lookup; lookup()``, and likewise for
``update`` and ``get_value``: an entry point or getter is a callable held in a slot, which
``ops.lookup()`` finds by a generic method lookup and a plain read finds by a specialised
one, ~30 to ~60 instructions less on CPython 3.11.)
"""

from __future__ import annotations

import errno

from .errors import BpfError
from .spec.codec import Codec, IntCodec
from .syscall.elem_pool import FAST_MISS, MapElems
from .uapi_values import Cmd, MapType, UpdateFlags

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from collections import deque
    from collections.abc import Callable
    from typing import Any

_LOOKUP_CMD = Cmd.MAP_LOOKUP_ELEM
_UPDATE_CMD = Cmd.MAP_UPDATE_ELEM


class MapElements:
    """The element half of ``Map`` (whose attributes it uses)."""

    _type: int  # the map type's number (``Map.type`` is the enum member)
    max_entries: int
    _pool: deque[Any]  # MapElems.pool: buffer sets not in use
    _new_ops: Callable[[], Any]  # MapElems.make_ops, or NotCreated
    _elems: MapElems | None
    _key: Codec
    _slot_size: int
    _ncpus: int
    _what: str

    def lookup(self, key: Any, flags: int = 0) -> Any:
        """The value for ``key``, or None if the key is absent."""
        pool = self._pool
        try:
            ops = pool.pop()
        except IndexError:
            ops = self._new_ops()
        try:
            try:
                ops.key_dst[ops.key_at] = key
            except FAST_MISS:
                ops.put_key(key)
            if flags:
                return ops.lookup_flags(flags)
            if ops.int_value is not None:
                lookup = ops.lookup
                if (result := lookup()) < 0:
                    return ops.absent(_LOOKUP_CMD, result)
                return ops.int_value[0]
            if (lookup_record := ops.lookup_record) is not None:  # into a new record
                if (record := lookup_record()) is None:
                    return ops.absent(_LOOKUP_CMD, ops.record_error())
                return record
            lookup = ops.lookup
            if (result := lookup()) < 0:
                return ops.absent(_LOOKUP_CMD, result)
            get_value = ops.get_value
            return get_value()
        finally:
            pool.append(ops)

    def __getitem__(self, key: Any) -> Any:
        pool = self._pool
        try:
            ops = pool.pop()
        except IndexError:
            ops = self._new_ops()
        try:
            try:
                ops.key_dst[ops.key_at] = key
            except FAST_MISS:
                ops.put_key(key)
            if ops.int_value is not None:
                lookup = ops.lookup
                if (result := lookup()) < 0:
                    ops.absent(_LOOKUP_CMD, result)
                    raise KeyError(key)
                return ops.int_value[0]
            if (lookup_record := ops.lookup_record) is not None:  # into a new record
                if (record := lookup_record()) is None:
                    ops.absent(_LOOKUP_CMD, ops.record_error())
                    raise KeyError(key)
                return record
            lookup = ops.lookup
            if (result := lookup()) < 0:
                ops.absent(_LOOKUP_CMD, result)
                raise KeyError(key)
            get_value = ops.get_value
            return get_value()
        finally:
            pool.append(ops)

    def get(self, key: Any, default: Any = None) -> Any:
        """The value for ``key``, or ``default`` if it is absent."""
        pool = self._pool
        try:
            ops = pool.pop()
        except IndexError:
            ops = self._new_ops()
        try:
            try:
                ops.key_dst[ops.key_at] = key
            except FAST_MISS:
                ops.put_key(key)
            if ops.int_value is not None:
                lookup = ops.lookup
                if (result := lookup()) < 0:
                    ops.absent(_LOOKUP_CMD, result)
                    return default
                return ops.int_value[0]
            if (lookup_record := ops.lookup_record) is not None:  # into a new record
                if (record := lookup_record()) is None:
                    ops.absent(_LOOKUP_CMD, ops.record_error())
                    return default
                return record
            lookup = ops.lookup
            if (result := lookup()) < 0:
                ops.absent(_LOOKUP_CMD, result)
                return default
            get_value = ops.get_value
            return get_value()
        finally:
            pool.append(ops)

    def __contains__(self, key: Any) -> bool:
        pool = self._pool
        try:
            ops = pool.pop()
        except IndexError:
            ops = self._new_ops()
        try:
            try:
                ops.key_dst[ops.key_at] = key
            except FAST_MISS:
                ops.put_key(key)
            lookup = ops.lookup
            if (result := lookup()) < 0:
                ops.absent(_LOOKUP_CMD, result)
                return False
            return True
        finally:
            pool.append(ops)

    def update(self, key: Any, value: Any, flags: int = UpdateFlags.ANY) -> None:
        """Insert or replace (``flags``: ``UpdateFlags.NOEXIST``/``EXIST``/``F_LOCK``)."""
        pool = self._pool
        try:
            ops = pool.pop()
        except IndexError:
            ops = self._new_ops()
        try:
            try:
                ops.key_dst[ops.key_at] = key
            except FAST_MISS:
                ops.put_key(key)
            try:
                ops.value_dst[ops.value_at] = value
            except FAST_MISS:
                ops.put_value(value)
            update_call = ops.update
            if flags:
                ops.update_flags(flags)
            elif (result := update_call()) < 0:
                raise ops.fail(_UPDATE_CMD, result)
        finally:
            pool.append(ops)

    def __setitem__(self, key: Any, value: Any) -> None:
        pool = self._pool
        try:
            ops = pool.pop()
        except IndexError:
            ops = self._new_ops()
        try:
            try:
                ops.key_dst[ops.key_at] = key
            except FAST_MISS:
                ops.put_key(key)
            try:
                ops.value_dst[ops.value_at] = value
            except FAST_MISS:
                ops.put_value(value)
            update = ops.update
            if (result := update()) < 0:
                raise ops.fail(_UPDATE_CMD, result)
        finally:
            pool.append(ops)

    def _take_ops(self) -> Any:
        """A buffer set for an operation off the hot path (it gives it back to ``_pool``)."""
        try:
            return self._pool.pop()
        except IndexError:
            return self._new_ops()

    def delete(self, key: Any) -> bool:
        """Remove ``key``; False if it was not there."""
        ops = self._take_ops()
        try:
            return bool(ops.delete(key))
        finally:
            self._pool.append(ops)

    def __delitem__(self, key: Any) -> None:
        if not self.delete(key):
            raise KeyError(key)

    def lookup_and_delete(self, key: Any = None, flags: int = 0) -> Any:
        """Atomically read and remove ``key`` (or pop, for queue/stack maps); None if absent."""
        ops = self._take_ops()
        try:
            raw = ops.lookup_and_delete(key, flags)
            return None if raw is None else ops.get_value()
        finally:
            self._pool.append(ops)

    def push(self, value: Any, flags: int = 0) -> None:
        """Queue/stack push, bloom-filter add (an update without a key)."""
        ops = self._take_ops()
        try:
            ops.push(value, flags)
        finally:
            self._pool.append(ops)

    def pop(self) -> Any:
        """Queue/stack pop: remove and return the next value (None if empty)."""
        return self.lookup_and_delete(None)

    def peek(self) -> Any:
        """Queue/stack peek: the next value without removing it (None if empty)."""
        ops = self._take_ops()
        try:
            return None if ops.lookup_keyless() is None else ops.get_value()
        finally:
            self._pool.append(ops)

    def next_key(self, key: Any = None) -> Any:
        """The key after ``key`` in the kernel's order (the first key for None)."""
        ops = self._take_ops()
        try:
            raw = ops.next_key(key)
        finally:
            self._pool.append(ops)
        return None if raw is None else self._key.decode(raw)

    def clear(self) -> int:
        """Delete every key (array maps cannot delete: their values are zeroed instead)."""
        ops = self._take_ops()
        try:
            if self._type in (MapType.ARRAY, MapType.PERCPU_ARRAY):
                zero = bytes(self._slot_size * self._ncpus)
                for index in range(self.max_entries):
                    ops.update_raw(index.to_bytes(4, "little"), zero)
                return self.max_entries
            removed = 0
            while (raw := ops.next_key(None)) is not None:
                removed += ops.delete(raw)
            return removed
        finally:
            self._pool.append(ops)


def encode_value(codec: Codec, percpu: bool, slot: int, ncpus: int, what: str, value: Any) -> bytes:
    """A value's bytes; per-CPU maps take one value per possible CPU, or one for all."""
    if not percpu:
        return codec.encode(value)
    many = isinstance(value, list | tuple)
    if many and len(value) != ncpus:
        raise BpfError(
            f"{what}: per-CPU value needs {ncpus} entries (one per possible CPU), got {len(value)}",
            errno.EINVAL,
        )
    if isinstance(codec, IntCodec):
        packed = codec.encode_strided(value if many else [value] * ncpus, slot)
        if packed is not None:
            return packed
    if many:
        return b"".join(codec.encode(v).ljust(slot, b"\0") for v in value)
    return codec.encode(value).ljust(slot, b"\0") * ncpus


def decode_percpu(codec: Codec, slot: int, ncpus: int, raw: Any) -> list[Any]:
    """A per-CPU value (one slot per possible CPU) as a list with one value per CPU."""
    if isinstance(codec, IntCodec):
        return codec.decode_strided(raw, ncpus, slot)
    data, size = bytes(raw), codec.size
    return [codec.decode(data[i * slot : i * slot + size]) for i in range(ncpus)]


class NotCreated:
    """``Map._new_ops`` before the map exists (its pool is empty): any element operation
    says so."""

    def __init__(self, what: str) -> None:
        self._what = what

    def __call__(self) -> Any:
        raise BpfError(f"{self._what} is not created yet: load the object first", errno.EBADF)


__all__ = ["MapElements", "NotCreated", "decode_percpu", "encode_value"]
