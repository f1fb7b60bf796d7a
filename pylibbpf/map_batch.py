"""Batch operations on maps (MAP_*_BATCH): many elements per syscall, the fastest way to
read or write a whole map, and the iteration (``keys()``, ``values()``, ``items()``,
``dict(m.items())``) built on them. ``Map`` inherits them from ``MapBatches``, through
a stand-in (``records.on_demand``) that imports this module on first use.

Elements convert in one pass per batch: 1/2/4/8-byte integers through
``memoryview.cast``/``array`` (no Python call per element), ctypes types through one
ctypes array, bytes through slices; per-CPU values become one list per element.
``lookup_batch_arrays()`` makes no object per element at all: the kernel writes into
two ``array.array``.

Iteration uses batches where the kernel has them for the map (hash maps of every
flavour, arrays; Linux 5.6+), a batch of elements per syscall, and falls back to
MAP_GET_NEXT_KEY and a lookup per key otherwise. Either way it is a walk over a map that
may change meanwhile, not a snapshot: with batches, an element added or removed during
the walk is seen or not depending on whether its bucket (hash maps) or index (arrays)
was already read; with MAP_GET_NEXT_KEY, a key deleted just before the walk reaches it
makes the kernel restart from the first key, so keys may come again.
"""

from __future__ import annotations

import ctypes
import errno
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import chain
from operator import itemgetter

from . import syscall
from .errors import BpfError
from .gcpause import gc_paused
from .records import dataclass
from .spec.codec import Codec, IntCodec, flatten_ints
from .uapi_values import ENOTSUPP, KEYLESS_MAP_TYPES, Cmd, map_type_name

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from collections import deque
    from typing import Any

# Batch reads and writes move at least this many elements per syscall by default (large
# enough to amortise the syscall)...
DEFAULT_BATCH_CHUNK = 1 << 16
# ...and whole maps in one syscall, as C callers do, up to this many bytes of keys and
# values (a read's result, or a write's packed input, is that big anyway).
_READ_ALL_BYTES = 1 << 24
# Iteration reads this many elements per syscall (and per Python list it decodes: lists of
# hundreds of thousands of objects make the cyclic GC walk them again and again).
ITER_CHUNK = 4096
_ITER_BYTES = 1 << 22  # at most this many bytes of keys and values per iteration batch
_SECOND = itemgetter(1)  # (a pair's value)
# What a kernel says when a map has no batch operations (or no batch commands at all).
_NO_BATCH = (errno.EINVAL, errno.ENOTSUP, ENOTSUPP)
# ``array`` holds native integers; map elements are read as little-endian ones.
_NATIVE_LITTLE = sys.byteorder == "little"


@dataclass(frozen=True)
class BatchData:
    """Raw result of a batch lookup: ``count`` keys and values, packed back to back."""

    keys: bytes
    values: bytes
    count: int


class MapBatches:
    """The batch half of ``Map`` (whose attributes it uses)."""

    _type: int  # the map type's number (``Map.type`` is the enum member)
    key_size: int
    max_entries: int
    percpu: bool
    _what: str
    _slot_size: int
    _ncpus: int
    _key: Codec
    _value: Codec
    _raw_values: bool
    _pool: deque[Any]  # buffer sets for element operations (``MapElements``)
    _no_batch: bool = False  # the kernel refused batch lookups for this map: iterate by key

    def _take_ops(self) -> Any:
        """A buffer set of ``_pool`` (``MapElements._take_ops``)."""
        raise NotImplementedError

    @property
    def fd(self) -> int:
        """The map's descriptor (``Map.fd``)."""
        raise NotImplementedError

    def _encode_value(self, value: Any) -> bytes:
        raise NotImplementedError

    def _decode_value(self, raw: bytes) -> Any:
        raise NotImplementedError

    def _batch_chunk(self, chunk: int | None) -> int:
        if chunk is None:
            element = self.key_size + self._slot_size * self._ncpus
            chunk = max(DEFAULT_BATCH_CHUNK, _READ_ALL_BYTES // max(element, 1))
        return max(1, min(chunk, self.max_entries or 1))

    # ----------------------------------------------------------------- reading

    def _batches(
        self, count: int, *, delete: bool = False, elem_flags: int = 0
    ) -> Iterator[tuple[Any, Any, int]]:
        """(keys buffer, values buffer, n) per MAP_LOOKUP_BATCH call, in buffers reused
        from one call to the next (read each before asking for the next)."""
        room = _ReusedBuffers(self.key_size, self._slot_size * self._ncpus)
        return self._lookup_calls(room, count, delete=delete, elem_flags=elem_flags)

    def _lookup_calls(
        self, room: Callable[[int], tuple[Any, Any]], count: int, *, delete: bool, elem_flags: int
    ) -> Iterator[tuple[Any, Any, int]]:
        """The calls of one walk over the map: each asks for ``count`` elements in the
        buffers ``room(count)`` gives it and resumes where the last one stopped; when the
        kernel answers ENOSPC (a hash bucket larger than ``count``), the call is made
        again with twice the count. Yields (keys buffer, values buffer, n) per call that
        read something."""
        cmd = Cmd.MAP_LOOKUP_AND_DELETE_BATCH if delete else Cmd.MAP_LOOKUP_BATCH
        token_size = max(self.key_size, 8)
        tokens = [ctypes.create_string_buffer(token_size), ctypes.create_string_buffer(token_size)]
        first = True
        while True:
            keys, values = room(count)
            try:
                result = syscall.map_batch(
                    cmd,
                    self.fd,
                    keys=keys,
                    values=values,
                    count=count,
                    in_batch=None if first else tokens[0],
                    out_batch=tokens[1],
                    elem_flags=elem_flags,
                    what=self._what,
                )
            except BpfError as error:
                if error.errno == errno.ENOSPC and count < (self.max_entries or count) * 2:
                    count *= 2
                    continue
                raise
            if result.count:
                yield keys, values, result.count
            if result.done:
                return
            tokens.reverse()
            first = False

    def _decode_values(self, values: Any, count: int) -> list[Any]:
        """``count`` values of a batch, decoded in one pass (per-CPU: a list each)."""
        if not self.percpu:
            return self._value.decode_many(values, count)
        ncpus, slot = self._ncpus, self._slot_size
        if isinstance(self._value, IntCodec):
            flat = self._value.decode_strided(values, count * ncpus, slot)
        else:
            data, size, decode = bytes(values), self._value.size, self._value.decode
            flat = [decode(data[i * slot : i * slot + size]) for i in range(count * ncpus)]
        return list(map(list, zip(*[iter(flat)] * ncpus, strict=True)))

    def lookup_batch_raw(
        self, *, chunk: int | None = None, delete: bool = False, elem_flags: int = 0
    ) -> BatchData:
        """Every element in as few syscalls as possible, packed (the fastest way to read)."""
        value_size = self._slot_size * self._ncpus
        count = self._batch_chunk(chunk)
        keys, values = self._read_into(
            "B", self.key_size, "B", value_size, count, delete, elem_flags
        )
        return BatchData(keys.tobytes(), values.tobytes(), len(keys) // max(self.key_size, 1))

    def lookup_batch(
        self, *, chunk: int | None = None, delete: bool = False
    ) -> list[tuple[Any, Any]]:
        """Every (key, value) pair through MAP_LOOKUP_BATCH, decoded."""
        if self._int_keys_and_values():
            # Pairs straight from the arrays: no intermediate lists (2 fewer lists of
            # references to allocate, fill and free; ~16 M fewer instructions per 1e5).
            keys, values = self.lookup_batch_arrays(chunk=chunk, delete=delete)
            if not self.percpu:
                return gc_paused(lambda: list(zip(keys, values, strict=True)))
            per_cpu = _per_cpu_lists(values, self._ncpus)
            return gc_paused(lambda: list(zip(keys, per_cpu, strict=True)))
        keys_out, values_out = self.lookup_batch_lists(chunk=chunk, delete=delete)
        return gc_paused(lambda: list(zip(keys_out, values_out, strict=True)))

    def lookup_batch_lists(
        self, *, chunk: int | None = None, delete: bool = False
    ) -> tuple[list[Any], list[Any]]:
        """Every key and every value, as two lists in the same order (the layout of
        libbpf's and cilium/ebpf's batch calls): for integer keys and values, decoded in
        one pass at C speed, the cost of two int objects per element (a pair per element
        costs a tuple more; ``lookup_batch_arrays()`` makes no object per element)."""
        if self._int_keys_and_values():
            # The kernel writes into arrays and ``array.tolist()`` makes the ints: its
            # loop costs a third of ``memoryview.tolist()``'s per element.
            keys, values = self.lookup_batch_arrays(chunk=chunk, delete=delete)
            if not self.percpu:
                return keys.tolist(), values.tolist()
            return keys.tolist(), _per_cpu_lists(values, self._ncpus)
        keys_out: list[Any] = []
        values_out: list[Any] = []
        for keys, values, n in self._batches(self._batch_chunk(chunk), delete=delete):
            if keys_out:
                keys_out += self._key.decode_many(keys, n)
                values_out += self._decode_values(values, n)
            else:  # the first (usually only) batch: its lists, not copies of them
                keys_out = self._key.decode_many(keys, n)
                values_out = self._decode_values(values, n)
        return keys_out, values_out

    def _int_keys_and_values(self) -> bool:
        """Keys and values are ints ``lookup_batch_arrays()`` can read."""
        return _int_array_format(self._key) is not None and (
            _int_array_format(self._value) is not None
        )

    def lookup_batch_arrays(
        self, *, chunk: int | None = None, delete: bool = False
    ) -> tuple[array[int], array[int]]:
        """Every key and every value as two ``array.array`` of ints, in the same order:
        the kernel writes straight into them, and no Python object is made per element
        (the fastest natural form: indexing, iteration, ``len()``, ``tolist()``, ``sum()``
        and numpy's ``frombuffer`` all work on it). Needs ``key_type`` and ``value_type``
        of 1-, 2-, 4- or 8-byte integers; per-CPU maps give ``ncpus`` values per key,
        back to back (key ``i``'s value on CPU ``c`` at ``values[i * ncpus + c]``)."""
        key_format = self._array_format(self._key)
        value_format = self._array_format(self._value)
        count = self._batch_chunk(chunk)
        if self._slot_size != self._value.size:  # per-CPU values narrower than a slot
            return self._arrays_of_slots(key_format, value_format, count, delete)
        return self._read_into(key_format, 1, value_format, self._ncpus, count, delete, 0)

    def _read_into(
        self,
        key_format: str,
        key_items: int,
        value_format: str,
        value_items: int,
        count: int,
        delete: bool,
        elem_flags: int,
    ) -> tuple[array[int], array[int]]:
        """A whole-map read (``count`` elements per call) straight into two arrays of
        ``key_items`` and ``value_items`` items per element."""
        room = _ArrayRoom(array(key_format), key_items, array(value_format), value_items)
        for _keys, _values, n in self._lookup_calls(
            room, count, delete=delete, elem_flags=elem_flags
        ):
            room.filled += n
        return room.trimmed()

    def _arrays_of_slots(
        self, key_format: str, value_format: str, count: int, delete: bool
    ) -> tuple[array[int], array[int]]:
        """``lookup_batch_arrays`` of per-CPU values narrower than their 8-byte slots:
        read into buffers, then every step-th item of the slots."""
        keys_out, values_out = array(key_format), array(value_format)
        step = self._slot_size // self._value.size
        for keys, values, n in self._batches(count, delete=delete):
            keys_out.frombytes(memoryview(keys)[: n * self.key_size])
            view: Any = memoryview(values).cast("B")[: n * self._ncpus * self._slot_size]
            values_out.frombytes(view.cast(value_format)[::step].tobytes())
        return keys_out, values_out

    def _array_format(self, codec: Codec) -> str:
        """The ``array`` typecode of an integer codec, or a BpfError saying what is needed."""
        fmt = _int_array_format(codec)
        if fmt is None:
            kind = "" if isinstance(codec, IntCodec) else ", not ints"
            raise BpfError(
                f"{self._what}: lookup_batch_arrays() needs {codec.role}s that are 1-, 2-, "
                f"4- or 8-byte integers ({codec.role}_type=int; this map's {codec.role}s "
                f"are {codec.size} bytes{kind}): use lookup_batch_lists() or "
                "lookup_batch_raw()",
                errno.EINVAL,
            )
        return fmt

    def lookup_and_delete_batch(self, *, chunk: int | None = None) -> list[tuple[Any, Any]]:
        """Every (key, value) pair, removed as it is read (MAP_LOOKUP_AND_DELETE_BATCH)."""
        return self.lookup_batch(chunk=chunk, delete=True)

    # ----------------------------------------------------------------- iteration

    def _iter_chunks(self) -> Iterator[tuple[Any, Any, int]] | None:
        """Batches for iteration, or None when this map (kernel) has no batch lookup."""
        if self._no_batch or self._type in KEYLESS_MAP_TYPES:
            return None
        element = self.key_size + self._slot_size * self._ncpus
        count = max(1, min(ITER_CHUNK, self.max_entries or 1, _ITER_BYTES // max(element, 1)))
        batches = self._batches(count)
        try:
            first = next(batches, None)
        except BpfError as error:
            if error.errno not in _NO_BATCH:
                raise
            self._no_batch = True
            return None
        if first is None:
            return iter(())
        return _prepend(first, batches)

    # keys(), values() and items() chain a batch's decoded run after another in C
    # (``chain.from_iterable``): no generator step per element, and a pair from ``zip``
    # that its consumer dropped (``dict(m.items())``) is reused for the next.

    def keys(self) -> Iterator[Any]:
        """Iterate keys (see the module's note on maps that change meanwhile)."""
        return chain.from_iterable(self._key_runs())

    def _key_runs(self) -> Iterator[Iterable[Any]]:
        if self._type in KEYLESS_MAP_TYPES:
            raise BpfError(
                f"{self._what}: {map_type_name(self._type)} maps have no keys", errno.EINVAL
            )
        chunks = self._iter_chunks()
        if chunks is None:
            yield self._keys_by_next_key()
            return
        for keys, _values, n in chunks:
            yield self._key.decode_many(keys, n)

    __iter__ = keys

    def _keys_by_next_key(self) -> Iterator[Any]:
        ops = self._take_ops()  # held while the iteration lasts
        try:
            next_key, decode = ops.next_key, self._key.decode
            raw = next_key(None)
            while raw is not None:
                yield decode(raw)
                raw = next_key(raw)
        finally:
            self._pool.append(ops)

    def values(self) -> Iterator[Any]:
        """Iterate values, in the order of ``keys()``."""
        return chain.from_iterable(self._value_runs())

    def _value_runs(self) -> Iterator[Iterable[Any]]:
        chunks = self._iter_chunks()
        if chunks is None:
            yield map(_SECOND, self._items_by_next_key())
            return
        for _keys, values, n in chunks:
            yield self._decode_values(values, n)

    def items(self) -> Iterator[tuple[Any, Any]]:
        """(key, value) pairs (see the module's note on maps that change meanwhile)."""
        return chain.from_iterable(self._item_runs())

    def _item_runs(self) -> Iterator[Iterable[tuple[Any, Any]]]:
        chunks = self._iter_chunks()
        if chunks is None:
            yield self._items_by_next_key()
            return
        for keys, values, n in chunks:
            decoded = self._decode_values(values, n)
            yield zip(self._key.decode_many(keys, n), decoded, strict=True)

    def _items_by_next_key(self) -> Iterator[tuple[Any, Any]]:
        """MAP_GET_NEXT_KEY and a lookup per key; keys that vanish in between are skipped."""
        ops = self._take_ops()  # held while the iteration lasts
        try:
            next_key, lookup, decode_key = ops.next_key, ops.lookup_raw, self._key.decode
            raw = next_key(None)
            while raw is not None:
                value = lookup(raw)
                if value is not None:
                    yield decode_key(raw), self._decode_value(value)
                raw = next_key(raw)
        finally:
            self._pool.append(ops)

    def count(self) -> int:
        """Number of keys present (walks the map)."""
        chunks = self._iter_chunks()
        if chunks is None:
            return sum(1 for _ in self._keys_by_next_key())
        return sum(n for _keys, _values, n in chunks)

    # ----------------------------------------------------------------- writing

    def _packed_values(self, values: Any) -> bytes | array[int]:
        if not self.percpu:
            return self._value.encode_many(values)
        if isinstance(values, bytes | bytearray | memoryview):
            return bytes(values)
        values = list(values)
        if isinstance(self._value, IntCodec) and all(
            isinstance(v, list | tuple) and len(v) == self._ncpus for v in values
        ):
            packed = self._value.encode_strided(flatten_ints(values), self._slot_size)
            if packed is not None:
                return packed
        return b"".join(map(self._encode_value, values))

    def update_batch(
        self,
        keys: Iterable[Any] | bytes | Mapping[Any, Any],
        values: Iterable[Any] | bytes | None = None,
        *,
        elem_flags: int = 0,
        chunk: int | None = None,
    ) -> int:
        """Update many elements: ``keys`` and ``values`` as sequences (lists of ints,
        ctypes instances, bytes…) or packed buffers (bytes, ``array``, ctypes arrays), or
        one mapping of keys to values."""
        if values is None:
            if not isinstance(keys, Mapping):
                raise BpfError(f"{self._what}: update_batch needs values", errno.EINVAL)
            mapping = keys
            keys, values = list(mapping.keys()), list(mapping.values())
        packed_keys = self._key.encode_many(keys)
        packed_values = self._packed_values(values)
        n = _nbytes(packed_keys) // self.key_size
        value_size = self._slot_size * self._ncpus
        if _nbytes(packed_values) != n * value_size:
            raise BpfError(
                f"{self._what}: update_batch got {n} keys but "
                f"{_nbytes(packed_values) // value_size} values",
                errno.EINVAL,
            )
        return self._batch_write(
            Cmd.MAP_UPDATE_BATCH, packed_keys, packed_values, n, elem_flags, chunk
        )

    def delete_batch(self, keys: Iterable[Any] | bytes, *, chunk: int | None = None) -> int:
        """Delete many keys (a sequence or a packed buffer); returns how many."""
        packed = self._key.encode_many(keys)
        return self._batch_write(
            Cmd.MAP_DELETE_BATCH, packed, None, _nbytes(packed) // self.key_size, 0, chunk
        )

    def _batch_write(
        self,
        cmd: Cmd,
        keys: bytes | array[int],
        values: bytes | array[int] | None,
        n: int,
        elem_flags: int,
        chunk: int | None,
    ) -> int:
        value_size = self._slot_size * self._ncpus
        step = chunk or max(DEFAULT_BATCH_CHUNK, _READ_ALL_BYTES // (self.key_size + value_size))
        whole = n <= step
        # One call takes the packed bytes as they are (the kernel only reads them); more
        # take slices of writable copies (a ctypes address of a bytes slice is a copy each).
        key_view: Any = keys if whole else memoryview(bytearray(keys))
        value_view: Any = values if whole or values is None else memoryview(bytearray(values))
        done = 0
        while done < n:
            count = min(step, n - done)
            key_part, value_part = key_view, value_view
            if not whole:
                key_part = key_view[done * self.key_size : (done + count) * self.key_size]
                if value_view is not None:
                    value_part = value_view[done * value_size : (done + count) * value_size]
            try:
                syscall.map_batch(
                    cmd,
                    self.fd,
                    keys=key_part,
                    values=value_part,
                    count=count,
                    elem_flags=elem_flags,
                    what=self._what,
                )
            except BpfError as error:
                partial = getattr(error, "batch_count", 0)
                error.message += f" (after {done + partial} of {n} elements)"
                raise
            done += count
        return done


def _nbytes(packed: bytes | array[int]) -> int:
    return len(packed) * packed.itemsize if isinstance(packed, array) else len(packed)


def _int_array_format(codec: Codec) -> str | None:
    """The ``array`` typecode holding ``codec``'s integers as the kernel stores them."""
    fmt = codec.int_format if isinstance(codec, IntCodec) else None
    if fmt is None or not _NATIVE_LITTLE or array(fmt).itemsize != codec.size:
        return None
    return fmt


class _ReusedBuffers:
    """Room for one call's keys and values: the same two ctypes buffers each call,
    replaced by larger ones when a call asks for more elements."""

    def __init__(self, key_size: int, value_size: int) -> None:
        self.key_size, self.value_size = key_size, value_size
        self.count = 0
        self.buffers: tuple[Any, Any] = (None, None)

    def __call__(self, count: int) -> tuple[Any, Any]:
        if count > self.count:
            self.count = count
            self.buffers = (
                ctypes.create_string_buffer(count * self.key_size or 1),
                ctypes.create_string_buffer(count * self.value_size or 1),
            )
        return self.buffers


class _ArrayRoom:
    """Room for each call's keys and values at the end of two growing arrays (after the
    ``filled`` elements earlier calls wrote), so the kernel writes into the result."""

    def __init__(self, keys: array[int], key_items: int, values: array[int], value_items: int):
        self.keys, self.key_items = keys, key_items
        self.values, self.value_items = values, value_items
        self.filled = 0  # elements written so far

    def __call__(self, count: int) -> tuple[Any, Any]:
        end = self.filled + count
        self.keys = _grown(self.keys, end * self.key_items)
        self.values = _grown(self.values, end * self.value_items)
        return (
            _slice_of(self.keys, self.filled * self.key_items, count * self.key_items),
            _slice_of(self.values, self.filled * self.value_items, count * self.value_items),
        )

    def trimmed(self) -> tuple[array[int], array[int]]:
        """The two arrays, cut to what the kernel wrote."""
        del self.keys[self.filled * self.key_items :]
        del self.values[self.filled * self.value_items :]
        return self.keys, self.values


def _per_cpu_lists(values: array[int], ncpus: int) -> list[list[int]]:
    """Per-CPU values read back to back (``ncpus`` per key), as one list per key."""
    slots = [iter(values.tolist())] * ncpus
    return gc_paused(lambda: list(map(list, zip(*slots, strict=True))))


def _grown(items: array[int], length: int) -> array[int]:
    """``items`` at least ``length`` long. An empty one is replaced by one array of zeros
    rather than extended by it: one allocation and one pass over fresh pages, not two
    (each first touch of a page is a fault, ~2.5 us on a virtual machine like the
    benchmarks'; a whole-map read of 1e5 8-byte keys and values met ~200 fewer:
    556 -> 358)."""
    if len(items) >= length:
        return items
    if not items:
        return array(items.typecode, [0]) * length
    items += array(items.typecode, [0]) * (length - len(items))
    return items


def _slice_of(items: array[int], start: int, count: int) -> Any:
    """``count`` items of ``items`` from ``start``, as a ctypes buffer for the kernel to
    write (no export: ``items`` is resized afterwards, not meanwhile)."""
    address = items.buffer_info()[0] + start * items.itemsize
    return (ctypes.c_char * (count * items.itemsize)).from_address(address)


def _prepend(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest
