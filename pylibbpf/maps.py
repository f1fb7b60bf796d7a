"""BPF maps from user space: element access, iteration, batches, pinning, per-CPU values.

A ``Map`` owns its fd. Keys and values are accepted as bytes, ints, ctypes instances or
fd-carrying objects (see ``codec``) and read back as bytes unless the map has a key/value
type (given to ``Map.create`` or, for object maps, taken from BTF). Per-CPU maps read as a
list with one value per possible CPU and accept either such a list or one value for all.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
from collections import deque

from . import syscall
from .errors import BpfError, NotSupportedError, ObjectError
from .logs import module_logger
from .map_elem import MapElements, NotCreated, decode_percpu, encode_value
from .records import dataclass, on_demand
from .spec.codec import Codec, codec_for
from .syscall import features
from .syscall.elem_pool import MapElems
from .syscall.fd import Closing, OwnedFd
from .syscall.system import num_possible_cpus
from .uapi_values import (
    ENOTSUPP,
    OBJ_NAME_LEN,
    PERCPU_MAP_TYPES,
    MapFlags,
    MapType,
    as_enum,
    map_type_name,
    value_name,
)

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any, Protocol
else:
    Protocol = object  # (the protocols below are for the type checker only)

# Every attribute ``map_batch.MapBatches`` defines (a test checks the list).
BATCH_ATTRIBUTES = (
    "_no_batch",
    "_take_ops",
    "fd",
    "_encode_value",
    "_decode_value",
    "_batch_chunk",
    "_batches",
    "_lookup_calls",
    "_decode_values",
    "lookup_batch_raw",
    "lookup_batch",
    "lookup_batch_lists",
    "_int_keys_and_values",
    "lookup_batch_arrays",
    "_read_into",
    "_arrays_of_slots",
    "_array_format",
    "lookup_and_delete_batch",
    "_iter_chunks",
    "keys",
    "_key_runs",
    "__iter__",
    "_keys_by_next_key",
    "values",
    "_value_runs",
    "items",
    "_item_runs",
    "_items_by_next_key",
    "count",
    "_packed_values",
    "update_batch",
    "delete_batch",
    "_batch_write",
)

if TYPE_CHECKING:
    from .arena import Arena
    from .links.base import Link
    from .map_batch import BatchData, MapBatches
else:
    # The batch half of ``Map`` (and its iteration: ``keys()``, ``items()``...), imported
    # on first use: loading an object and reading single elements do without it.
    MapBatches = on_demand("pylibbpf.map_batch", "MapBatches", BATCH_ATTRIBUTES)


logger = module_logger(__name__)  # creation and pinning only: element operations never log


def sanitize_name(name: str) -> str:
    """Kernel object names: 15 chars of ``[A-Za-z0-9_.]``; anything else becomes ``_``."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "_.") else "_" for c in name)
    return cleaned[: OBJ_NAME_LEN - 1]


# The releases that added the newest map types, for refusals on older kernels.
_ADDED_IN: dict[int, str] = {
    MapType.USER_RINGBUF: "6.1",
    MapType.CGRP_STORAGE: "6.2",
    MapType.ARENA: "6.9",
}


def map_type_of(map_type: MapType | int | str, what: str = "map") -> int:
    """A map type given as ``MapType``, a number, or a name as other tools spell it:
    ``"hash"``, ``"PERCPU_ARRAY"``, ``"BPF_MAP_TYPE_RINGBUF"``, cilium's ``"PerCPUHash"``
    (``what``: the map, for the error)."""
    if not isinstance(map_type, str):
        return map_type
    from .uapi import MapType as MapTypes  # the enum of names (built on first use)

    wanted = map_type.upper().removeprefix("BPF_MAP_TYPE_").replace("_", "")
    for member in MapTypes:
        if member.name.replace("_", "") == wanted:
            return member
    raise ObjectError(f"{what}: unknown map type {map_type!r}", errno.EINVAL)


class StructOpsRegistration(Protocol):
    """How a struct_ops map registers itself (``struct_ops.StructOpsState`` is one; the
    loader sets it on the object's struct_ops maps)."""

    def attach(self, map_: Map) -> Link: ...

    def write_value(self, map_: Map) -> None: ...


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
    hash: bytes = b""  # the kernel's SHA-256 of a frozen array's values (6.18), if asked
    btf_vmlinux_id: int = 0  # the kernel BTF (vmlinux or a module's) of the value type


@dataclass(frozen=True)
class MapBtf:
    """The BTF describing a map's key and value: an uploaded BTF's fd and two type ids."""

    fd: int
    key_type_id: int
    value_type_id: int


class Map(MapElements, MapBatches, Closing):
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
        map_extra: int = 0,
    ) -> None:
        self.name = name
        self._type = map_type  # (a plain int on the load path: see the property)
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self.flags = flags
        self.map_extra = map_extra  # an arena's address, a bloom filter's hash count…
        self._arena: Arena | None = None
        self._pin_path: str | None = None
        self._what = f"map {name!r}"
        self._key_type = key_type
        self._value_type = value_type
        self._fd: OwnedFd | None = None
        self.struct_ops: StructOpsRegistration | None = None  # an object's struct_ops maps
        # Whether the object's attach() registers this struct_ops map (libbpf's
        # bpf_map__set_autoattach): False leaves it to attach_struct_ops().
        self.autoattach = True
        self._elems: MapElems | None = None
        self._pool: deque[Any] = deque()  # (stays empty: NotCreated makes no buffers)
        self._new_ops: Any = NotCreated(self._what)
        if fd is not None:
            self._bind(fd)

    @property
    def type(self) -> MapType | int:
        """The map type: a ``MapType`` member for a number this pylibbpf knows."""
        return as_enum("MapType", self._type)

    @type.setter
    def type(self, value: MapType | int) -> None:
        self._type = value

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
        self.percpu = self._type in PERCPU_MAP_TYPES
        self._ncpus = num_possible_cpus() if self.percpu else 1
        self._slot_size = (self.value_size + 7) & ~7 if self.percpu else self.value_size
        self._key = codec_for(self._key_type, self.key_size, self._what, "key")
        self._value = codec_for(self._value_type, self.value_size, self._what, "value")
        self._raw_values = type(self._value) is Codec and not self.percpu
        # Nothing here refers back to this map: dropping it frees it by reference counting.
        self._elems = MapElems(
            fd.fd,
            self.key_size,
            self._slot_size * self._ncpus,
            self._what,
            self._key,
            self._value,
            functools.partial(
                encode_value, self._value, self.percpu, self._slot_size, self._ncpus, self._what
            ),
            functools.partial(decode_percpu, self._value, self._slot_size, self._ncpus)
            if self.percpu
            else None,
            self._slot_size if self.percpu else 0,
        )
        self._pool = self._elems.pool
        self._new_ops = self._elems.make_ops

    # ----------------------------------------------------------------- construction

    @classmethod
    def create(
        cls,
        map_type: MapType | int | str,
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
        """Create a map outside any object (``inner_map`` gives map-in-map its template).
        ``map_type`` may be a name (``"hash"``, ``"BPF_MAP_TYPE_LRU_HASH"``)."""
        map_type = map_type_of(map_type, f"map {name!r}" if name else "Map.create")
        map_ = cls(
            None,
            name=name,
            map_type=map_type,
            key_size=key_size,
            value_size=value_size,
            max_entries=max_entries,
            flags=flags,
            key_type=key_type,
            value_type=value_type,
        )
        btf = (
            MapBtf(btf_fd, btf_key_type_id, btf_value_type_id)
            if btf_fd or btf_key_type_id or btf_value_type_id
            else None
        )
        map_.create_in_kernel(
            inner_map_fd=inner_map.fileno() if isinstance(inner_map, Map) else (inner_map or 0),
            numa_node=numa_node,
            map_extra=map_extra,
            btf=btf,
            btf_vmlinux_value_type_id=btf_vmlinux_value_type_id,
            ifindex=ifindex,
            what=f"map {name!r}" if name else f"{map_type_name(map_type)} map",
        )
        return map_

    def create_in_kernel(
        self,
        *,
        inner_map_fd: int = 0,
        numa_node: int | None = None,
        map_extra: int = 0,
        btf: MapBtf | None = None,
        btf_fallback: bool = False,
        btf_vmlinux_value_type_id: int = 0,
        value_type_btf_obj_fd: int = 0,
        ifindex: int = 0,
        what: str | None = None,
    ) -> None:
        """Create this declared map in the kernel with its current attributes (type, sizes,
        ``max_entries``, ``flags``): the one path every map takes — ``Map.create`` and an
        object's maps alike — so each gets the memlock lift and a clear error when the
        kernel lacks the map type. ``btf_fallback``: a kernel that rejects the map's BTF
        gets the map without it (as libbpf does for object maps).
        ``value_type_btf_obj_fd``: the module BTF that ``btf_vmlinux_value_type_id`` is in
        (a struct_ops type a module defines; Linux 6.9+)."""
        what = what or self._what
        if self._fd is not None:
            raise BpfError(f"{what} is already created", errno.EALREADY)
        map_type = self._type
        if value_name(MapType, map_type) is None:
            raise ObjectError(f"{what}: unknown map type {map_type}", errno.EINVAL)
        features.ensure_memlock()
        if numa_node is not None:
            self.flags |= MapFlags.NUMA_NODE
        if value_type_btf_obj_fd:
            self.flags |= MapFlags.VTYPE_BTF_OBJ_FD

        def attempt(btf: MapBtf | None) -> int:
            return syscall.map_create(
                map_type,
                self.key_size,
                self.value_size,
                self.max_entries,
                flags=self.flags,
                name=sanitize_name(self.name),
                inner_map_fd=inner_map_fd,
                numa_node=numa_node or 0,
                ifindex=ifindex,
                btf_fd=btf.fd if btf else 0,
                btf_key_type_id=btf.key_type_id if btf else 0,
                btf_value_type_id=btf.value_type_id if btf else 0,
                btf_vmlinux_value_type_id=btf_vmlinux_value_type_id,
                value_type_btf_obj_fd=value_type_btf_obj_fd,
                map_extra=map_extra,
                what=what,
            )

        try:
            try:
                raw_fd = attempt(btf)
            except BpfError as error:
                rejected = error.errno in (errno.EINVAL, errno.ENOTSUP, ENOTSUPP)
                if not (btf_fallback and btf is not None and rejected):
                    raise
                raw_fd = attempt(None)  # a kernel that rejects the map's BTF: create it without
                logger.warning(
                    "%s: the kernel refused the map's BTF (%s); created without it",
                    what,
                    error.message,
                )
        except BpfError as error:
            if error.errno == errno.EINVAL and not features.has_map_type(map_type):
                since = _ADDED_IN.get(map_type)
                raise NotSupportedError(
                    f"{what}: this kernel does not support {map_type_name(map_type)} maps"
                    + (f" (Linux {since}+)" if since else ""),
                    errno.EINVAL,
                ) from error
            raise
        self._type = map_type
        self.map_extra = map_extra
        self._bind(OwnedFd(raw_fd, what))

    def adopt(self, fd: OwnedFd, *, pin_path: str | None = None) -> None:
        """Use an existing kernel map (taken over) for this declared one: a pinned map an
        object reuses, after the loader checked that it is compatible."""
        if self._fd is not None:
            raise BpfError(f"{self._what} is already created", errno.EALREADY)
        self._bind(fd)
        self._pin_path = pin_path

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
            map_extra=info.map_extra,
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
        """Open a pinned map (read-only for user space with ``readonly``); ``unpin()``
        then removes that pin."""
        what = f"pinned map {os.fspath(path)!r}"
        from .uapi import FileFlags

        flags = FileFlags.RDONLY if readonly else 0
        raw = syscall.obj_get(path, flags=flags, what=what)
        result = cls.from_fd(OwnedFd(raw, what), key_type=key_type, value_type=value_type)
        result._pin_path = os.fspath(path)
        return result

    @classmethod
    def from_id(cls, map_id: int, *, key_type: Any = None, value_type: Any = None) -> Map:
        """Open a map by its kernel id."""
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
        """The map's descriptor (EBADF ``BpfError`` before creation or after close)."""
        return self._owned().fd

    def fileno(self) -> int:
        """The map's descriptor, for APIs that take file-like objects (and prog arrays' values)."""
        return self._owned().fd

    @property
    def created(self) -> bool:
        """Whether the map exists in the kernel (created or adopted)."""
        return self._fd is not None

    @property
    def closed(self) -> bool:
        """Whether this handle is closed (or was never created)."""
        return self._fd is None or self._fd.closed

    def close(self) -> None:
        """Release this handle; the kernel frees the map once nothing else holds it."""
        if self._elems is not None:
            self._elems.invalidate()
        if self._arena is not None:
            self._arena.close()
        if self._fd is not None:
            self._fd.close()

    def __repr__(self) -> str:
        state = "not created" if self._fd is None else "closed" if self.closed else f"fd={self.fd}"
        return (
            f"<Map {self.name!r} {map_type_name(self._type)} key={self.key_size} "
            f"value={self.value_size} max_entries={self.max_entries} {state}>"
        )

    def info(self, *, with_hash: bool = False) -> MapInfo:
        """What the kernel reports about the map (``bpf_map_info``); ``with_hash``: also
        the SHA-256 it computes over a frozen array map's values (Linux 6.18)."""
        return _map_info(self.fd, self._what, with_hash)

    @property
    def id(self) -> int:
        """The kernel's id of this map."""
        return self.info().id

    # ----------------------------------------------------------------- encoding

    def _encode_value(self, value: Any) -> bytes:
        return encode_value(
            self._value, self.percpu, self._slot_size, self._ncpus, self._what, value
        )

    def _decode_value(self, raw: bytes) -> Any:
        if not self.percpu:
            return self._value.decode(raw)
        return decode_percpu(self._value, self._slot_size, self._ncpus, raw)

    # ----------------------------------------------------------------- memory

    def arena(self, address: int | None = None) -> Arena:
        """An arena map's memory, mapped where its programs' pointers point (its
        ``map_extra``; ``address`` for one another process mapped first): one mapping per
        handle, made on first use."""
        if self._type != MapType.ARENA:
            raise BpfError(
                f"{self._what} is {map_type_name(self._type)}, not an arena", errno.EINVAL
            )
        if self._arena is None or self._arena.closed:
            from .arena import map_arena  # (arenas: imported by the maps that are one)

            self._arena = map_arena(self.fd, self.max_entries, self.map_extra, address, self._what)
        return self._arena

    def mmap(self) -> memoryview:
        """The map's memory as writable bytes: an arena's pages, or the values of a
        ``BPF_F_MMAPABLE`` array (each 8-byte aligned)."""
        if self._type == MapType.ARENA:
            return self.arena().memory
        if not self.flags & MapFlags.MMAPABLE:
            raise BpfError(f"{self._what} was not created BPF_F_MMAPABLE", errno.EINVAL)
        from .arena import map_memory

        return map_memory(self.fd, self.value_size, self.max_entries, self._what)

    # ----------------------------------------------------------------- lifecycle

    def attach_struct_ops(self) -> Link:
        """Register this struct_ops map (e.g. a TCP congestion control); closing the returned
        link unregisters it."""
        if self.struct_ops is None:
            raise BpfError(f"{self._what} is not a loaded struct_ops map", errno.EINVAL)
        return self.struct_ops.attach(self)

    def freeze(self) -> None:
        """Make the map read-only for user space from now on (BPF programs still write)."""
        syscall.map_freeze(self.fd, what=self._what)

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Pin on bpffs (a missing parent directory is created, as libbpf does)."""
        from .syscall.pins import pin_object

        self._pin_path = pin_object(self.fd, path, self._what)

    def unpin(self, path: str | os.PathLike[str] | None = None) -> None:
        """Remove the pin (``path`` defaults to where this map was pinned or opened)."""
        from .syscall.pins import unpin_object

        self._pin_path = unpin_object(path, self._pin_path, self._what)

    @property
    def pin_path(self) -> str | None:
        """Where this map is pinned (by ``pin()``, ``from_pinned()`` or pin-by-name)."""
        return self._pin_path


def _map_info(fd: int, what: str, with_hash: bool = False) -> MapInfo:
    request = syscall.MapInfo()
    digest = ctypes.create_string_buffer(32)
    if with_hash:
        request.hash, request.hash_size = ctypes.addressof(digest), len(digest)
    try:
        raw = syscall.obj_get_info_by_fd(fd, request, what=what)
    except BpfError as error:
        if not with_hash or error.errno != errno.EPERM:
            raise
        raise BpfError(f"{what}: the kernel hashes only frozen maps", errno.EPERM) from None
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
        hash=digest.raw if with_hash else b"",
        btf_vmlinux_id=raw.btf_vmlinux_id,
    )


def __getattr__(name: str) -> object:
    """``Arena`` and ``BatchData`` (re-exported) on first use: arenas are imported by the
    maps that are one, batch results by batch reads."""
    if name == "Arena":
        from .arena import Arena

        return Arena
    if name == "BatchData":
        from .map_batch import BatchData

        return BatchData
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Arena", "BatchData", "Map", "MapBtf", "MapInfo", "sanitize_name"]
