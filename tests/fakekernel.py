"""A stand-in for bpf(2), installed with ``pylibbpf.syscall.bpf.override_syscall``: enough
of the kernel's bookkeeping (maps as dicts or mmappable memory, programs, links, BTF,
pins) to unit-test maps, links and the loader without privileges — aya's
``override_syscall``. It checks what pylibbpf asked for, never what a kernel would do.

Every object the fake creates is a memfd; the caller gets duplicates of it, so a test can
tell which descriptors pylibbpf still holds (``FakeKernel.open_objects``).
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pylibbpf.syscall import attrs
from pylibbpf.syscall.seam import override_syscall
from pylibbpf.uapi import Cmd, MapFlags, MapType, UpdateFlags


@dataclass
class FakeObject:
    kind: str  # "map", "prog", "link", "btf"
    id: int
    name: str
    memfd: int  # the fake kernel's own reference
    inode: int
    map_type: int = 0
    key_size: int = 0
    value_size: int = 0
    max_entries: int = 0
    flags: int = 0
    prog_type: int = 0
    prog_id: int = 0  # links: the program they hold
    elements: dict[bytes, bytes] = field(default_factory=dict)
    memory: mmap.mmap | None = None  # arrays: the values, mmappable through the fd
    frozen: bool = False


def _string(address: int) -> str:
    return ctypes.string_at(address).decode()


class FakeKernel:
    """``reject``: program names PROG_LOAD refuses (EACCES, with ``log`` as verifier log)."""

    def __init__(self, reject: tuple[str, ...] = (), log: str = "0: (95) exit\nR0 !read_ok\n"):
        self.reject = set(reject)
        self.log = log
        self.objects: dict[int, FakeObject] = {}  # by id
        self.handed: list[tuple[int, int]] = []  # (fd, inode) given to pylibbpf
        self.pins: dict[str, int] = {}  # path -> id
        self.calls: list[Cmd] = []
        self._next_id = 1000

    # ------------------------------------------------------------------ bookkeeping

    def _new(self, kind: str, name: str, **attributes: int) -> int:
        self._next_id += 1
        memfd = os.memfd_create(f"fake-bpf-{kind}-{name}", os.MFD_CLOEXEC)
        obj = FakeObject(kind, self._next_id, name, memfd, os.fstat(memfd).st_ino, **attributes)
        self.objects[obj.id] = obj
        return self._hand_out(obj)

    def _hand_out(self, obj: FakeObject) -> int:
        fd = os.dup(obj.memfd)
        os.set_inheritable(fd, False)
        self.handed.append((fd, obj.inode))
        return fd

    def _object(self, fd: int) -> FakeObject:
        try:
            inode = os.fstat(fd).st_ino
        except (OSError, OverflowError):
            raise OSError(errno.EBADF, "bad fd") from None
        for obj in self.objects.values():
            if obj.inode == inode:
                return obj
        raise OSError(errno.EBADF, "not a fake bpf object")

    def open_objects(self) -> list[FakeObject]:
        """Objects pylibbpf still holds a descriptor to."""
        alive = set()
        for fd, inode in self.handed:
            try:
                if os.fstat(fd).st_ino == inode:
                    alive.add(inode)
            except OSError:
                continue
        return [obj for obj in self.objects.values() if obj.inode in alive]

    def close(self) -> None:
        for obj in self.objects.values():
            if obj.memory is not None:
                obj.memory.close()
            os.close(obj.memfd)

    # ------------------------------------------------------------------ the syscall

    def __call__(self, cmd: Cmd, attr: ctypes.Structure, size: int) -> int:
        self.calls.append(cmd)
        handler = getattr(self, f"_{cmd.name.lower()}", None)
        if handler is None:
            raise OSError(errno.EINVAL, f"the fake kernel does not do {cmd.name}")
        return int(handler(attr))

    def _map_create(self, attr: attrs.MapCreateAttr) -> int:
        fd = self._new(
            "map",
            attr.map_name.decode(),
            map_type=attr.map_type,
            key_size=attr.key_size,
            value_size=attr.value_size,
            max_entries=attr.max_entries,
            flags=attr.map_flags,
        )
        obj = self._object(fd)
        if obj.map_type == MapType.ARRAY:
            size = max(obj.value_size * obj.max_entries, 1)
            size = -(-size // mmap.PAGESIZE) * mmap.PAGESIZE
            os.ftruncate(obj.memfd, size)
            obj.memory = mmap.mmap(obj.memfd, size)
        return fd

    def _key(self, obj: FakeObject, address: int) -> bytes:
        return ctypes.string_at(address, obj.key_size) if obj.key_size else b""

    def _array_slot(self, obj: FakeObject, key: bytes) -> int:
        index = int.from_bytes(key, "little")
        if index >= obj.max_entries:
            raise OSError(errno.ENOENT, "index out of range")
        return index * obj.value_size

    def _map_lookup_elem(self, attr: attrs.MapElemAttr) -> int:
        obj = self._object(attr.map_fd)
        key = self._key(obj, attr.key)
        if obj.memory is not None:
            start = self._array_slot(obj, key)
            value = obj.memory[start : start + obj.value_size]
        elif key in obj.elements:
            value = obj.elements[key]
        else:
            raise OSError(errno.ENOENT, "no such key")
        ctypes.memmove(attr.value, value, len(value))
        return 0

    def _map_update_elem(self, attr: attrs.MapElemAttr) -> int:
        obj = self._object(attr.map_fd)
        if obj.frozen:
            raise OSError(errno.EPERM, "frozen")
        key = self._key(obj, attr.key)
        value = ctypes.string_at(attr.value, obj.value_size)
        if obj.memory is not None:
            start = self._array_slot(obj, key)
            obj.memory[start : start + obj.value_size] = value
            return 0
        exists = key in obj.elements
        if attr.flags == UpdateFlags.NOEXIST and exists:
            raise OSError(errno.EEXIST, "exists")
        if attr.flags == UpdateFlags.EXIST and not exists:
            raise OSError(errno.ENOENT, "no such key")
        if not exists and len(obj.elements) >= obj.max_entries:
            raise OSError(errno.E2BIG, "full")
        obj.elements[key] = value
        return 0

    def _map_delete_elem(self, attr: attrs.MapElemAttr) -> int:
        obj = self._object(attr.map_fd)
        if obj.memory is not None:
            raise OSError(errno.EINVAL, "arrays cannot delete")
        key = self._key(obj, attr.key)
        if obj.elements.pop(key, None) is None:
            raise OSError(errno.ENOENT, "no such key")
        return 0

    def _map_get_next_key(self, attr: attrs.MapElemAttr) -> int:
        obj = self._object(attr.map_fd)
        keys = (
            [i.to_bytes(4, "little") for i in range(obj.max_entries)]
            if obj.memory is not None
            else list(obj.elements)
        )
        position = 0
        if attr.key:
            key = self._key(obj, attr.key)
            position = keys.index(key) + 1 if key in keys else 0
        if position >= len(keys):
            raise OSError(errno.ENOENT, "last key")
        ctypes.memmove(attr.value, keys[position], obj.key_size)
        return 0

    def _map_freeze(self, attr: attrs.FdAttr) -> int:
        self._object(attr.fd).frozen = True
        return 0

    def _prog_load(self, attr: attrs.ProgLoadAttr) -> int:
        name = attr.prog_name.decode()
        if name in self.reject:
            if attr.log_level and attr.log_buf:
                text = self.log.encode()[: attr.log_size - 1] + b"\0"
                ctypes.memmove(attr.log_buf, text, len(text))
            raise OSError(errno.EACCES, "rejected")
        return self._new("prog", name, prog_type=attr.prog_type)

    def _prog_bind_map(self, attr: attrs.ProgBindMapAttr) -> int:
        self._object(attr.prog_fd)
        self._object(attr.map_fd)
        return 0

    def _btf_load(self, attr: attrs.BtfLoadAttr) -> int:
        return self._new("btf", "btf")

    def _link(self, prog_fd: int) -> int:
        program = self._object(prog_fd)
        if program.kind != "prog":
            raise OSError(errno.EINVAL, "not a program")
        return self._new("link", program.name, prog_id=program.id)

    def _link_create(self, attr: attrs.LinkCreateAttr) -> int:
        return self._link(attr.prog_fd)

    def _raw_tracepoint_open(self, attr: attrs.RawTracepointAttr) -> int:
        return self._link(attr.prog_fd)

    def _link_update(self, attr: attrs.LinkUpdateAttr) -> int:
        link = self._object(attr.link_fd)
        link.prog_id = self._object(attr.new_prog_fd).id
        return 0

    def _link_detach(self, attr: attrs.FdAttr) -> int:
        self._object(attr.fd).prog_id = 0
        return 0

    def _obj_pin(self, attr: attrs.ObjAttr) -> int:
        path = _string(attr.pathname)
        if os.path.exists(path):
            raise OSError(errno.EEXIST, "pinned already")
        with open(path, "x"):
            pass
        self.pins[path] = self._object(attr.bpf_fd).id
        return 0

    def _obj_get(self, attr: attrs.ObjAttr) -> int:
        path = _string(attr.pathname)
        if path not in self.pins or not os.path.exists(path):
            raise OSError(errno.ENOENT, "nothing pinned")
        return self._hand_out(self.objects[self.pins[path]])

    def _obj_get_info_by_fd(self, attr: attrs.InfoAttr) -> int:
        obj = self._object(attr.bpf_fd)
        if obj.kind == "map":
            info = attrs.MapInfo.from_address(attr.info)
            info.type, info.id, info.map_flags = obj.map_type, obj.id, obj.flags
            info.key_size, info.value_size = obj.key_size, obj.value_size
            info.max_entries = obj.max_entries
            info.name = obj.name.encode()
        elif obj.kind == "prog":
            prog = attrs.ProgInfo.from_address(attr.info)
            prog.type, prog.id, prog.name = obj.prog_type, obj.id, obj.name.encode()
        elif obj.kind == "link":
            link = attrs.LinkInfo.from_address(attr.info)
            link.id, link.prog_id = obj.id, obj.prog_id
        return 0


@contextmanager
def fake_kernel(**options: object) -> Iterator[FakeKernel]:
    """A ``FakeKernel`` behind every bpf(2) call of pylibbpf while the block runs."""
    kernel = FakeKernel(**options)  # type: ignore[arg-type]
    try:
        with override_syscall(kernel):
            yield kernel
    finally:
        kernel.close()


def mmapable(obj: FakeObject) -> bool:
    return bool(obj.flags & MapFlags.MMAPABLE)
