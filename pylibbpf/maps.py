"""BPF maps from user space: element access, iteration, batches, pinning, per-CPU values.

A ``Map`` owns its fd. Keys and values are accepted as bytes, ints, ctypes instances or
fd-carrying objects (see ``codec``) and read back as bytes unless the map has a key/value
type (given to ``Map.create`` or, for object maps, taken from BTF). Per-CPU maps read as a
list with one value per possible CPU and accept either such a list or one value for all.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import features, syscall
from .codec import Codec, codec_for
from .errors import BpfError, NotSupportedError, ObjectError
from .fd import Closing, OwnedFd
from .sysinfo import num_possible_cpus

if TYPE_CHECKING:
    from .link import Link
    from .struct_ops import StructOpsState

from .uapi import (
    KEYLESS_MAP_TYPES,
    OBJ_NAME_LEN,
    PERCPU_MAP_TYPES,
    Cmd,
    FileFlags,
    MapFlags,
    MapType,
    UpdateFlags,
)

# Batch operations move at most this many elements per syscall by default; large enough to
# amortise the syscall, small enough to keep the transfer buffers modest.
DEFAULT_BATCH_CHUNK = 1 << 16


def sanitize_name(name: str) -> str:
    """Kernel object names: 15 chars of ``[A-Za-z0-9_.]``; anything else becomes ``_``."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "_.") else "_" for c in name)
    return cleaned[: OBJ_NAME_LEN - 1]


def _type_name(map_type: int) -> str:
    try:
        return MapType(map_type).name
    except ValueError:
        return f"type {map_type}"


@dataclass(frozen=True)
class MapInfo:
    """What the kernel reports about a map (``bpf_map_info``)."""

    id: int
    type: int
    name: str
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    btf_id: int
    btf_key_type_id: int
    btf_value_type_id: int
    btf_vmlinux_value_type_id: int
    map_extra: int
    ifindex: int


@dataclass(frozen=True)
class BatchData:
    """Raw result of a batch lookup: ``count`` keys and values, packed back to back."""

    keys: bytes
    values: bytes
    count: int


class Map(Closing):
    """A BPF map this process holds an fd to."""

    def __init__(
        self,
        fd: OwnedFd | None,
        *,
        name: str,
        map_type: int,
        key_size: int,
        value_size: int,
        max_entries: int,
        flags: int = 0,
        key_type: Any = None,
        value_type: Any = None,
    ) -> None:
        self.name = name
        self.type = map_type
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self.flags = flags
        self._pin_path: str | None = None
        self._what = f"map {name!r}"
        self._key_type = key_type
        self._value_type = value_type
        self._fd: OwnedFd | None = None
        self.struct_ops: StructOpsState | None = None  # set for an object's struct_ops maps
        self._ops: Any = _NotCreatedOps(self._what)
        if fd is not None:
            self._bind(fd)

    @property
    def key_type(self) -> Any:
        """How keys are decoded: ``int``, a ctypes type, or None for bytes."""
        return self._key_type

    @property
    def value_type(self) -> Any:
        """How values are decoded: ``int``, a ctypes type, or None for bytes."""
        return self._value_type

    def _bind(self, fd: OwnedFd) -> None:
        """Start using a kernel map (its attributes are final from here on)."""
        self._fd = fd
        self.percpu = self.type in PERCPU_MAP_TYPES
        self._ncpus = num_possible_cpus() if self.percpu else 1
        self._slot_size = (self.value_size + 7) & ~7 if self.percpu else self.value_size
        self._key = codec_for(self._key_type, self.key_size, self._what, "key")
        self._value = codec_for(self._value_type, self.value_size, self._what, "value")
        self._raw_values = type(self._value) is Codec and not self.percpu
        self._ops = syscall.MapElemOps(
            fd.fd,
            self.key_size,
            self._slot_size * self._ncpus,
            self._what,
            self._key.encode,
            self._encode_value,
        )

    # ----------------------------------------------------------------- construction

    @classmethod
    def create(
        cls,
        map_type: MapType | int,
        key_size: int,
        value_size: int,
        max_entries: int,
        *,
        name: str = "",
        flags: int = 0,
        inner_map: Map | int | None = None,
        numa_node: int | None = None,
        map_extra: int = 0,
        btf_fd: int = 0,
        btf_key_type_id: int = 0,
        btf_value_type_id: int = 0,
        btf_vmlinux_value_type_id: int = 0,
        ifindex: int = 0,
        key_type: Any = None,
        value_type: Any = None,
    ) -> Map:
        """Create a map outside any object (``inner_map`` gives map-in-map its template)."""
        kernel_name = sanitize_name(name)
        what = f"map {name!r}" if name else f"{_type_name(map_type)} map"
        try:
            map_type = MapType(map_type)
        except ValueError:
            raise ObjectError(f"{what}: unknown map type {map_type}", errno.EINVAL) from None
        features.ensure_memlock()
        inner_fd = inner_map.fileno() if isinstance(inner_map, Map) else (inner_map or 0)
        if numa_node is not None:
            flags |= MapFlags.NUMA_NODE
        try:
            raw_fd = syscall.map_create(
                map_type,
                key_size,
                value_size,
                max_entries,
                flags=flags,
                name=kernel_name,
                inner_map_fd=inner_fd,
                numa_node=numa_node or 0,
                ifindex=ifindex,
                btf_fd=btf_fd,
                btf_key_type_id=btf_key_type_id,
                btf_value_type_id=btf_value_type_id,
                btf_vmlinux_value_type_id=btf_vmlinux_value_type_id,
                map_extra=map_extra,
                what=what,
            )
        except BpfError as error:
            if error.errno == errno.EINVAL and not features.has_map_type(map_type):
                raise NotSupportedError(
                    f"{what}: this kernel does not support {map_type.name} maps", errno.EINVAL
                ) from error
            raise
        return cls(
            OwnedFd(raw_fd, what),
            name=name or kernel_name,
            map_type=map_type,
            key_size=key_size,
            value_size=value_size,
            max_entries=max_entries,
            flags=flags,
            key_type=key_type,
            value_type=value_type,
        )

    @classmethod
    def from_fd(cls, fd: int | OwnedFd, *, key_type: Any = None, value_type: Any = None) -> Map:
        """Wrap an existing map fd (an ``int`` is duplicated; an ``OwnedFd`` is taken over)."""
        owned = fd if isinstance(fd, OwnedFd) else OwnedFd(os.dup(fd), f"map fd {fd}")
        info = _map_info(owned.fd, owned.label)
        owned.label = f"map {info.name!r}"
        return cls(
            owned,
            name=info.name,
            map_type=info.type,
            key_size=info.key_size,
            value_size=info.value_size,
            max_entries=info.max_entries,
            flags=info.flags,
            key_type=key_type,
            value_type=value_type,
        )

    @classmethod
    def from_pinned(
        cls,
        path: str | os.PathLike[str],
        *,
        readonly: bool = False,
        key_type: Any = None,
        value_type: Any = None,
    ) -> Map:
        what = f"pinned map {os.fspath(path)!r}"
        flags = FileFlags.RDONLY if readonly else 0
        raw = syscall.obj_get(path, flags=flags, what=what)
        result = cls.from_fd(OwnedFd(raw, what), key_type=key_type, value_type=value_type)
        return result

    @classmethod
    def from_id(cls, map_id: int, *, key_type: Any = None, value_type: Any = None) -> Map:
        raw = syscall.map_get_fd_by_id(map_id)
        return cls.from_fd(
            OwnedFd(raw, f"map id {map_id}"), key_type=key_type, value_type=value_type
        )

    # ----------------------------------------------------------------- fd and info

    def _owned(self) -> OwnedFd:
        if self._fd is None:
            raise BpfError(f"{self._what} is not created yet: load the object first", errno.EBADF)
        return self._fd

    @property
    def fd(self) -> int:
        return self._owned().fd

    def fileno(self) -> int:
        return self._owned().fd

    @property
    def created(self) -> bool:
        return self._fd is not None

    @property
    def closed(self) -> bool:
        return self._fd is None or self._fd.closed

    def close(self) -> None:
        self._ops.invalidate()
        if self._fd is not None:
            self._fd.close()

    def __repr__(self) -> str:
        state = "not created" if self._fd is None else "closed" if self.closed else f"fd={self.fd}"
        return (
            f"<Map {self.name!r} {_type_name(self.type)} key={self.key_size} "
            f"value={self.value_size} max_entries={self.max_entries} {state}>"
        )

    def info(self) -> MapInfo:
        return _map_info(self.fd, self._what)

    @property
    def id(self) -> int:
        return self.info().id

    # ----------------------------------------------------------------- encoding

    def _encode_value(self, value: Any) -> bytes:
        if not self.percpu:
            return self._value.encode(value)
        slot = self._slot_size
        if isinstance(value, list | tuple):
            if len(value) != self._ncpus:
                raise BpfError(
                    f"{self._what}: per-CPU value needs {self._ncpus} entries "
                    f"(one per possible CPU), got {len(value)}",
                    errno.EINVAL,
                )
            return b"".join(self._value.encode(v).ljust(slot, b"\0") for v in value)
        return self._value.encode(value).ljust(slot, b"\0") * self._ncpus

    def _decode_value(self, raw: bytes) -> Any:
        if not self.percpu:
            return self._value.decode(raw)
        slot, size, decode = self._slot_size, self.value_size, self._value.decode
        return [decode(raw[i * slot : i * slot + size]) for i in range(self._ncpus)]

    # ----------------------------------------------------------------- elements

    def lookup(self, key: Any, flags: int = 0) -> Any:
        """The value for ``key``, or None if the key is absent."""
        raw = self._ops.lookup(key, flags)
        if raw is None or self._raw_values:
            return raw
        return self._decode_value(raw)

    def update(self, key: Any, value: Any, flags: int = UpdateFlags.ANY) -> None:
        """Insert or replace (``flags``: ``UpdateFlags.NOEXIST``/``EXIST``/``F_LOCK``)."""
        self._ops.update(key, value, flags)

    def delete(self, key: Any) -> bool:
        """Remove ``key``; False if it was not there."""
        return bool(self._ops.delete(key))

    def lookup_and_delete(self, key: Any = None, flags: int = 0) -> Any:
        """Atomically read and remove ``key`` (or pop, for queue/stack maps); None if absent."""
        raw = self._ops.lookup_and_delete(key, flags)
        return None if raw is None else self._decode_value(raw)

    def push(self, value: Any, flags: int = 0) -> None:
        """Queue/stack push, bloom-filter add (an update without a key)."""
        self._ops.push(self._encode_value(value), flags)

    def pop(self) -> Any:
        return self.lookup_and_delete(None)

    def peek(self) -> Any:
        raw = self._ops.lookup_keyless()
        return None if raw is None else self._decode_value(raw)

    def next_key(self, key: Any = None) -> Any:
        """The key after ``key`` in the kernel's order (the first key for None)."""
        raw = self._ops.next_key(key)
        return None if raw is None else self._key.decode(raw)

    def keys(self) -> Iterator[Any]:
        """Iterate keys. A key deleted meanwhile makes the kernel restart from the first."""
        if self.type in KEYLESS_MAP_TYPES:
            raise BpfError(f"{self._what}: {_type_name(self.type)} maps have no keys", errno.EINVAL)
        next_key, decode = self._ops.next_key, self._key.decode
        raw = next_key(None)
        while raw is not None:
            yield decode(raw)
            raw = next_key(raw)

    __iter__ = keys

    def values(self) -> Iterator[Any]:
        for _, value in self.items():
            yield value

    def items(self) -> Iterator[tuple[Any, Any]]:
        """(key, value) pairs; keys that vanish between the two syscalls are skipped."""
        next_key, lookup, decode_key = self._ops.next_key, self._ops.lookup, self._key.decode
        raw = next_key(None)
        while raw is not None:
            value = lookup(raw)
            if value is not None:
                yield decode_key(raw), self._decode_value(value)
            raw = next_key(raw)

    def clear(self) -> int:
        """Delete every key (array maps cannot delete: their values are zeroed instead)."""
        if self.type in (MapType.ARRAY, MapType.PERCPU_ARRAY):
            zero = bytes(self._slot_size * self._ncpus)
            for index in range(self.max_entries):
                self._ops.update(index.to_bytes(4, "little"), zero)
            return self.max_entries
        removed = 0
        while (raw := self._ops.next_key(None)) is not None:
            removed += self._ops.delete(raw)
        return removed

    def get(self, key: Any, default: Any = None) -> Any:
        value = self.lookup(key)
        return default if value is None else value

    def __getitem__(self, key: Any) -> Any:
        value = self.lookup(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        self.update(key, value)

    def __delitem__(self, key: Any) -> None:
        if not self.delete(key):
            raise KeyError(key)

    def __contains__(self, key: Any) -> bool:
        return self.lookup(key) is not None

    def count(self) -> int:
        """Number of keys present (walks the map)."""
        return sum(1 for _ in self.keys())

    # ----------------------------------------------------------------- batches

    def _batch_chunk(self, chunk: int | None) -> int:
        return max(1, min(chunk or DEFAULT_BATCH_CHUNK, self.max_entries or 1))

    def lookup_batch_raw(
        self, *, chunk: int | None = None, delete: bool = False, elem_flags: int = 0
    ) -> BatchData:
        """Every element in as few syscalls as possible, packed (the fastest way to read)."""
        cmd = Cmd.MAP_LOOKUP_AND_DELETE_BATCH if delete else Cmd.MAP_LOOKUP_BATCH
        value_size = self._slot_size * self._ncpus
        count = self._batch_chunk(chunk)
        token_size = max(self.key_size, 8)
        tokens = [ctypes.create_string_buffer(token_size), ctypes.create_string_buffer(token_size)]
        keys_out = bytearray()
        values_out = bytearray()
        total = 0
        first = True
        while True:
            keys = ctypes.create_string_buffer(count * self.key_size)
            values = ctypes.create_string_buffer(count * value_size)
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
                # A hash bucket larger than the buffer: the kernel asks for more room.
                if error.errno == errno.ENOSPC and count < (self.max_entries or count) * 2:
                    count *= 2
                    continue
                raise
            keys_out += keys.raw[: result.count * self.key_size]
            values_out += values.raw[: result.count * value_size]
            total += result.count
            if result.done:
                return BatchData(bytes(keys_out), bytes(values_out), total)
            tokens.reverse()
            first = False

    def lookup_batch(
        self, *, chunk: int | None = None, delete: bool = False
    ) -> list[tuple[Any, Any]]:
        """Every (key, value) pair through MAP_LOOKUP_BATCH, decoded."""
        data = self.lookup_batch_raw(chunk=chunk, delete=delete)
        keys = self._key.decode_many(data.keys, data.count)
        size = self._slot_size * self._ncpus
        if self._raw_values:
            values = [data.values[i * size : (i + 1) * size] for i in range(data.count)]
        else:
            values = [
                self._decode_value(data.values[i * size : (i + 1) * size])
                for i in range(data.count)
            ]
        return list(zip(keys, values, strict=True))

    def lookup_and_delete_batch(self, *, chunk: int | None = None) -> list[tuple[Any, Any]]:
        return self.lookup_batch(chunk=chunk, delete=True)

    def update_batch(
        self,
        keys: Iterable[Any] | bytes,
        values: Iterable[Any] | bytes,
        *,
        elem_flags: int = 0,
        chunk: int | None = None,
    ) -> int:
        """Update many elements; ``keys``/``values`` are sequences or packed buffers."""
        packed_keys = self._key.encode_many(keys)
        if isinstance(values, bytes | bytearray | memoryview) and not self.percpu:
            packed_values = self._value.encode_many(values)
        else:
            packed_values = b"".join(self._encode_value(v) for v in values)
        n = len(packed_keys) // self.key_size
        value_size = self._slot_size * self._ncpus
        if len(packed_values) != n * value_size:
            raise BpfError(
                f"{self._what}: update_batch got {n} keys but "
                f"{len(packed_values) // value_size} values",
                errno.EINVAL,
            )
        return self._batch_write(
            Cmd.MAP_UPDATE_BATCH, packed_keys, packed_values, n, elem_flags, chunk
        )

    def delete_batch(self, keys: Iterable[Any] | bytes, *, chunk: int | None = None) -> int:
        packed = self._key.encode_many(keys)
        return self._batch_write(
            Cmd.MAP_DELETE_BATCH, packed, None, len(packed) // self.key_size, 0, chunk
        )

    def _batch_write(
        self,
        cmd: Cmd,
        keys: bytes,
        values: bytes | None,
        n: int,
        elem_flags: int,
        chunk: int | None,
    ) -> int:
        step = chunk or DEFAULT_BATCH_CHUNK
        value_size = self._slot_size * self._ncpus
        done = 0
        while done < n:
            count = min(step, n - done)
            key_part = keys[done * self.key_size : (done + count) * self.key_size]
            value_part = None
            if values is not None:
                value_part = values[done * value_size : (done + count) * value_size]
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

    # ----------------------------------------------------------------- lifecycle

    def attach_struct_ops(self) -> Link:
        """Register this struct_ops map (e.g. a TCP congestion control); closing the returned
        link unregisters it."""
        if self.struct_ops is None:
            raise BpfError(f"{self._what} is not a loaded struct_ops map", errno.EINVAL)
        return self.struct_ops.attach()

    def freeze(self) -> None:
        """Make the map read-only for user space from now on (BPF programs still write)."""
        syscall.map_freeze(self.fd, what=self._what)

    def pin(self, path: str | os.PathLike[str]) -> None:
        syscall.obj_pin(self.fd, path, what=self._what)
        self._pin_path = os.fspath(path)

    def unpin(self, path: str | os.PathLike[str] | None = None) -> None:
        """Remove the pin (``path`` defaults to where this object pinned it)."""
        target = os.fspath(path) if path is not None else self._pin_path
        if target is None:
            raise BpfError(f"{self._what} is not pinned by this process", errno.ENOENT)
        try:
            os.unlink(target)
        except FileNotFoundError:
            raise BpfError(f"{self._what}: nothing pinned at {target!r}", errno.ENOENT) from None
        if target == self._pin_path:
            self._pin_path = None

    @property
    def pin_path(self) -> str | None:
        return self._pin_path


class _NotCreatedOps:
    def __init__(self, what: str) -> None:
        self._what = what

    def __getattr__(self, name: str) -> Any:
        raise BpfError(f"{self._what} is not created yet: load the object first", errno.EBADF)

    def invalidate(self) -> None:
        pass


def _map_info(fd: int, what: str) -> MapInfo:
    raw = syscall.obj_get_info_by_fd(fd, syscall.MapInfo(), what=what)
    return MapInfo(
        id=raw.id,
        type=raw.type,
        name=raw.name.decode(errors="replace"),
        key_size=raw.key_size,
        value_size=raw.value_size,
        max_entries=raw.max_entries,
        flags=raw.map_flags,
        btf_id=raw.btf_id,
        btf_key_type_id=raw.btf_key_type_id,
        btf_value_type_id=raw.btf_value_type_id,
        btf_vmlinux_value_type_id=raw.btf_vmlinux_value_type_id,
        map_extra=raw.map_extra,
        ifindex=raw.ifindex,
    )
