"""The only caller of ``bpf(2)``: ctypes attr layouts and one function per command.

Layouts follow ``union bpf_attr`` of Linux 6.18. The kernel accepts a shorter attr from
older user space and rejects a longer one with a non-zero tail, so every call passes only
the bytes up to the last field it set (``_used_size``): the same call works on 6.1.

Two entry points into libc's ``syscall``:

* ``_bpf_slow`` (``CDLL``) releases the GIL, for commands that can take long (PROG_LOAD
  runs the verifier, BTF_LOAD, batch operations, test runs).
* ``_bpf_fast`` (``PyDLL``) keeps the GIL, for single-element map operations. Keeping it is
  both faster (no release/re-acquire around a ~1 us syscall) and what makes
  ``MapElemOps``' preallocated buffers safe to share between threads.

Every function raises the ``BpfError`` subclass that ``errors.error_from_errno`` picks,
with the ``what`` argument (e.g. ``"map 'counts'"``) naming the object in the message.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import BpfError, error_from_errno
from .uapi import OBJ_NAME_LEN, Cmd

c_u8 = ctypes.c_uint8
c_u32 = ctypes.c_uint32
c_s32 = ctypes.c_int32
c_u64 = ctypes.c_uint64

_NR_BPF = {
    "x86_64": 321,
    "aarch64": 280,
    "riscv64": 280,
    "loongarch64": 280,
    "s390x": 351,
    "ppc64le": 361,
    "ppc64": 361,
    "i686": 357,
    "i386": 357,
    "armv7l": 386,
}
NR_BPF = _NR_BPF.get(platform.machine(), 321)

_bpf_slow = ctypes.CDLL(None, use_errno=True).syscall
_bpf_fast = ctypes.PyDLL(None, use_errno=True).syscall
_bpf_slow.restype = ctypes.c_long
_bpf_fast.restype = ctypes.c_long


# --------------------------------------------------------------------------- attr layouts


class MapCreateAttr(ctypes.Structure):
    _fields_ = [
        ("map_type", c_u32),
        ("key_size", c_u32),
        ("value_size", c_u32),
        ("max_entries", c_u32),
        ("map_flags", c_u32),
        ("inner_map_fd", c_u32),
        ("numa_node", c_u32),
        ("map_name", ctypes.c_char * OBJ_NAME_LEN),
        ("map_ifindex", c_u32),
        ("btf_fd", c_u32),
        ("btf_key_type_id", c_u32),
        ("btf_value_type_id", c_u32),
        ("btf_vmlinux_value_type_id", c_u32),
        ("map_extra", c_u64),
        ("value_type_btf_obj_fd", c_s32),
        ("map_token_fd", c_s32),
    ]


class MapElemAttr(ctypes.Structure):
    _fields_ = [
        ("map_fd", c_u32),
        ("_pad", c_u32),
        ("key", c_u64),
        ("value", c_u64),  # also next_key for MAP_GET_NEXT_KEY
        ("flags", c_u64),
    ]


class MapBatchAttr(ctypes.Structure):
    _fields_ = [
        ("in_batch", c_u64),
        ("out_batch", c_u64),
        ("keys", c_u64),
        ("values", c_u64),
        ("count", c_u32),
        ("map_fd", c_u32),
        ("elem_flags", c_u64),
        ("flags", c_u64),
    ]


class ProgLoadAttr(ctypes.Structure):
    _fields_ = [
        ("prog_type", c_u32),
        ("insn_cnt", c_u32),
        ("insns", c_u64),
        ("license", c_u64),
        ("log_level", c_u32),
        ("log_size", c_u32),
        ("log_buf", c_u64),
        ("kern_version", c_u32),
        ("prog_flags", c_u32),
        ("prog_name", ctypes.c_char * OBJ_NAME_LEN),
        ("prog_ifindex", c_u32),
        ("expected_attach_type", c_u32),
        ("prog_btf_fd", c_u32),
        ("func_info_rec_size", c_u32),
        ("func_info", c_u64),
        ("func_info_cnt", c_u32),
        ("line_info_rec_size", c_u32),
        ("line_info", c_u64),
        ("line_info_cnt", c_u32),
        ("attach_btf_id", c_u32),
        ("attach_prog_fd", c_u32),  # union with attach_btf_obj_fd
        ("core_relo_cnt", c_u32),
        ("fd_array", c_u64),
        ("core_relos", c_u64),
        ("core_relo_rec_size", c_u32),
        ("log_true_size", c_u32),
        ("prog_token_fd", c_s32),
        ("fd_array_cnt", c_u32),
    ]


class ObjAttr(ctypes.Structure):
    _fields_ = [
        ("pathname", c_u64),
        ("bpf_fd", c_u32),
        ("file_flags", c_u32),
        ("path_fd", c_s32),
    ]


class ProgAttachAttr(ctypes.Structure):
    _fields_ = [
        ("target_fd", c_u32),  # union with target_ifindex
        ("attach_bpf_fd", c_u32),
        ("attach_type", c_u32),
        ("attach_flags", c_u32),
        ("replace_bpf_fd", c_u32),
        ("relative_fd", c_u32),  # union with relative_id
        ("expected_revision", c_u64),
    ]


class TestRunAttr(ctypes.Structure):
    _fields_ = [
        ("prog_fd", c_u32),
        ("retval", c_u32),
        ("data_size_in", c_u32),
        ("data_size_out", c_u32),
        ("data_in", c_u64),
        ("data_out", c_u64),
        ("repeat", c_u32),
        ("duration", c_u32),
        ("ctx_size_in", c_u32),
        ("ctx_size_out", c_u32),
        ("ctx_in", c_u64),
        ("ctx_out", c_u64),
        ("flags", c_u32),
        ("cpu", c_u32),
        ("batch_size", c_u32),
    ]


class GetIdAttr(ctypes.Structure):
    _fields_ = [
        ("start_id", c_u32),  # union with prog_id / map_id / btf_id / link_id
        ("next_id", c_u32),
        ("open_flags", c_u32),
    ]


class InfoAttr(ctypes.Structure):
    _fields_ = [("bpf_fd", c_u32), ("info_len", c_u32), ("info", c_u64)]


class ProgQueryAttr(ctypes.Structure):
    _fields_ = [
        ("target_fd", c_u32),
        ("attach_type", c_u32),
        ("query_flags", c_u32),
        ("attach_flags", c_u32),
        ("prog_ids", c_u64),
        ("prog_cnt", c_u32),
        ("_pad", c_u32),
        ("prog_attach_flags", c_u64),
        ("link_ids", c_u64),
        ("link_attach_flags", c_u64),
        ("revision", c_u64),
    ]


class RawTracepointAttr(ctypes.Structure):
    _fields_ = [("name", c_u64), ("prog_fd", c_u32), ("_pad", c_u32), ("cookie", c_u64)]


class BtfLoadAttr(ctypes.Structure):
    _fields_ = [
        ("btf", c_u64),
        ("btf_log_buf", c_u64),
        ("btf_size", c_u32),
        ("btf_log_size", c_u32),
        ("btf_log_level", c_u32),
        ("btf_log_true_size", c_u32),
        ("btf_flags", c_u32),
        ("btf_token_fd", c_s32),
    ]


class TaskFdQueryAttr(ctypes.Structure):
    _fields_ = [
        ("pid", c_u32),
        ("fd", c_u32),
        ("flags", c_u32),
        ("buf_len", c_u32),
        ("buf", c_u64),
        ("prog_id", c_u32),
        ("fd_type", c_u32),
        ("probe_offset", c_u64),
        ("probe_addr", c_u64),
    ]


LINK_CREATE_TAIL_SIZE = 48  # the largest member of the per-kind union (uprobe_multi)


class LinkCreateAttr(ctypes.Structure):
    """LINK_CREATE; the per-link-kind union is a raw tail filled from a kind structure."""

    _fields_ = [
        ("prog_fd", c_u32),  # union with map_fd
        ("target_fd", c_u32),  # union with target_ifindex
        ("attach_type", c_u32),
        ("flags", c_u32),
        ("tail", c_u8 * LINK_CREATE_TAIL_SIZE),
    ]


class LinkUpdateAttr(ctypes.Structure):
    _fields_ = [
        ("link_fd", c_u32),
        ("new_prog_fd", c_u32),  # union with new_map_fd
        ("flags", c_u32),
        ("old_prog_fd", c_u32),  # union with old_map_fd
    ]


class FdAttr(ctypes.Structure):
    """One-fd commands: LINK_DETACH, MAP_FREEZE (map_fd), ENABLE_STATS (type)."""

    _fields_ = [("fd", c_u32)]


class IterCreateAttr(ctypes.Structure):
    _fields_ = [("link_fd", c_u32), ("flags", c_u32)]


class ProgBindMapAttr(ctypes.Structure):
    _fields_ = [("prog_fd", c_u32), ("map_fd", c_u32), ("flags", c_u32)]


# Per-kind tails of LINK_CREATE (copied into LinkCreateAttr.tail).


class TracingLinkOpts(ctypes.Structure):
    _fields_ = [("target_btf_id", c_u32), ("_pad", c_u32), ("cookie", c_u64)]


class IterLinkOpts(ctypes.Structure):
    _fields_ = [("iter_info", c_u64), ("iter_info_len", c_u32)]


class PerfEventLinkOpts(ctypes.Structure):
    _fields_ = [("bpf_cookie", c_u64)]


class KprobeMultiLinkOpts(ctypes.Structure):
    _fields_ = [
        ("flags", c_u32),
        ("cnt", c_u32),
        ("syms", c_u64),
        ("addrs", c_u64),
        ("cookies", c_u64),
    ]


class NetfilterLinkOpts(ctypes.Structure):
    _fields_ = [("pf", c_u32), ("hooknum", c_u32), ("priority", c_s32), ("flags", c_u32)]


class TcxLinkOpts(ctypes.Structure):
    _fields_ = [("relative_fd", c_u32), ("_pad", c_u32), ("expected_revision", c_u64)]


class UprobeMultiLinkOpts(ctypes.Structure):
    _fields_ = [
        ("path", c_u64),
        ("offsets", c_u64),
        ("ref_ctr_offsets", c_u64),
        ("cookies", c_u64),
        ("cnt", c_u32),
        ("flags", c_u32),
        ("pid", c_u32),
    ]


# Info structures returned by OBJ_GET_INFO_BY_FD.


class MapInfo(ctypes.Structure):
    _fields_ = [
        ("type", c_u32),
        ("id", c_u32),
        ("key_size", c_u32),
        ("value_size", c_u32),
        ("max_entries", c_u32),
        ("map_flags", c_u32),
        ("name", ctypes.c_char * OBJ_NAME_LEN),
        ("ifindex", c_u32),
        ("btf_vmlinux_value_type_id", c_u32),
        ("netns_dev", c_u64),
        ("netns_ino", c_u64),
        ("btf_id", c_u32),
        ("btf_key_type_id", c_u32),
        ("btf_value_type_id", c_u32),
        ("btf_vmlinux_id", c_u32),
        ("map_extra", c_u64),
    ]


class ProgInfo(ctypes.Structure):
    _fields_ = [
        ("type", c_u32),
        ("id", c_u32),
        ("tag", c_u8 * 8),
        ("jited_prog_len", c_u32),
        ("xlated_prog_len", c_u32),
        ("jited_prog_insns", c_u64),
        ("xlated_prog_insns", c_u64),
        ("load_time", c_u64),
        ("created_by_uid", c_u32),
        ("nr_map_ids", c_u32),
        ("map_ids", c_u64),
        ("name", ctypes.c_char * OBJ_NAME_LEN),
        ("ifindex", c_u32),
        ("gpl_compatible", c_u32),  # bit 0
        ("netns_dev", c_u64),
        ("netns_ino", c_u64),
        ("nr_jited_ksyms", c_u32),
        ("nr_jited_func_lens", c_u32),
        ("jited_ksyms", c_u64),
        ("jited_func_lens", c_u64),
        ("btf_id", c_u32),
        ("func_info_rec_size", c_u32),
        ("func_info", c_u64),
        ("nr_func_info", c_u32),
        ("nr_line_info", c_u32),
        ("line_info", c_u64),
        ("jited_line_info", c_u64),
        ("nr_jited_line_info", c_u32),
        ("line_info_rec_size", c_u32),
        ("jited_line_info_rec_size", c_u32),
        ("nr_prog_tags", c_u32),
        ("prog_tags", c_u64),
        ("run_time_ns", c_u64),
        ("run_cnt", c_u64),
        ("recursion_misses", c_u64),
        ("verified_insns", c_u32),
        ("attach_btf_obj_id", c_u32),
        ("attach_btf_id", c_u32),
    ]


class BtfInfo(ctypes.Structure):
    _fields_ = [
        ("btf", c_u64),
        ("btf_size", c_u32),
        ("id", c_u32),
        ("name", c_u64),
        ("name_len", c_u32),
        ("kernel_btf", c_u32),
    ]


class LinkInfo(ctypes.Structure):
    """Common head of ``struct bpf_link_info``; ``extra`` is the per-kind union."""

    _fields_ = [("type", c_u32), ("id", c_u32), ("prog_id", c_u32), ("_pad", c_u32)]
    _fields_ += [("extra", c_u8 * 64)]


# --------------------------------------------------------------------------- core call

_Attr = TypeVar("_Attr", bound=ctypes.Structure)


def _used_size(attr: ctypes.Structure) -> int:
    """Bytes up to the end of the last non-zero field, so older kernels accept the attr."""
    raw = bytes(attr)
    end = len(raw.rstrip(b"\0"))
    if end == 0:
        return 4
    for name, *_ in reversed(attr._fields_):
        field = getattr(type(attr), name)
        if field.offset < end:
            return int(field.offset + field.size)
    return len(raw)


def bpf(cmd: Cmd, attr: ctypes.Structure, *, what: str = "", size: int | None = None) -> int:
    """Run one bpf command (GIL released); raise the matching ``BpfError`` on failure."""
    result = int(_bpf_slow(NR_BPF, int(cmd), ctypes.byref(attr), size or _used_size(attr)))
    if result < 0:
        raise error_from_errno(ctypes.get_errno(), cmd, what)
    return result


def _address(buffer: Any) -> int:
    """Address of a ctypes object, bytearray or bytes (caller keeps the object alive)."""
    if buffer is None:
        return 0
    if isinstance(buffer, ctypes._SimpleCData | ctypes.Structure | ctypes.Array):
        return ctypes.addressof(buffer)
    if isinstance(buffer, bytes):
        return ctypes.cast(ctypes.c_char_p(buffer), ctypes.c_void_p).value or 0
    view = memoryview(buffer)
    if view.readonly:
        raise TypeError("a writable buffer is needed")
    return ctypes.addressof((ctypes.c_char * view.nbytes).from_buffer(view))


def _path_bytes(path: str | os.PathLike[str]) -> bytes:
    return os.fsencode(path) + b"\0"


# --------------------------------------------------------------------------- maps


def map_create(
    map_type: int,
    key_size: int,
    value_size: int,
    max_entries: int,
    *,
    flags: int = 0,
    name: str = "",
    inner_map_fd: int = 0,
    numa_node: int = 0,
    ifindex: int = 0,
    btf_fd: int = 0,
    btf_key_type_id: int = 0,
    btf_value_type_id: int = 0,
    btf_vmlinux_value_type_id: int = 0,
    map_extra: int = 0,
    value_type_btf_obj_fd: int = 0,
    token_fd: int = 0,
    what: str = "",
) -> int:
    attr = MapCreateAttr(
        map_type=map_type,
        key_size=key_size,
        value_size=value_size,
        max_entries=max_entries,
        map_flags=flags,
        inner_map_fd=inner_map_fd,
        numa_node=numa_node,
        map_name=name.encode()[: OBJ_NAME_LEN - 1],
        map_ifindex=ifindex,
        btf_fd=btf_fd,
        btf_key_type_id=btf_key_type_id,
        btf_value_type_id=btf_value_type_id,
        btf_vmlinux_value_type_id=btf_vmlinux_value_type_id,
        map_extra=map_extra,
        value_type_btf_obj_fd=value_type_btf_obj_fd,
        map_token_fd=token_fd,
    )
    return bpf(Cmd.MAP_CREATE, attr, what=what or f"map {name!r}")


def _elem(cmd: Cmd, map_fd: int, key: Any, value: Any, flags: int, what: str) -> bool:
    attr = MapElemAttr(map_fd=map_fd, key=_address(key), value=_address(value), flags=flags)
    result = _bpf_fast(NR_BPF, int(cmd), ctypes.byref(attr), ctypes.sizeof(attr))
    if result < 0:
        err = ctypes.get_errno()
        if err == _errno.ENOENT and cmd != Cmd.MAP_UPDATE_ELEM:
            return False
        raise error_from_errno(err, cmd, what)
    return True


def map_lookup_elem(map_fd: int, key: Any, value: Any, flags: int = 0, *, what: str = "") -> bool:
    """Copy the value for ``key`` into ``value``; False if there is no such key."""
    return _elem(Cmd.MAP_LOOKUP_ELEM, map_fd, key, value, flags, what)


def map_update_elem(map_fd: int, key: Any, value: Any, flags: int = 0, *, what: str = "") -> None:
    _elem(Cmd.MAP_UPDATE_ELEM, map_fd, key, value, flags, what)


def map_delete_elem(map_fd: int, key: Any, *, what: str = "") -> bool:
    """Delete ``key``; False if it was not there."""
    return _elem(Cmd.MAP_DELETE_ELEM, map_fd, key, None, 0, what)


def map_get_next_key(map_fd: int, key: Any, next_key: Any, *, what: str = "") -> bool:
    """Write the key after ``key`` (the first one if ``key`` is None); False at the end."""
    return _elem(Cmd.MAP_GET_NEXT_KEY, map_fd, key, next_key, 0, what)


def map_lookup_and_delete_elem(
    map_fd: int, key: Any, value: Any, flags: int = 0, *, what: str = ""
) -> bool:
    return _elem(Cmd.MAP_LOOKUP_AND_DELETE_ELEM, map_fd, key, value, flags, what)


def map_freeze(map_fd: int, *, what: str = "") -> None:
    bpf(Cmd.MAP_FREEZE, FdAttr(fd=map_fd), what=what)


@dataclass(frozen=True)
class BatchResult:
    count: int  # elements processed by this call
    done: bool  # the kernel reported the end of the map (ENOENT)


def map_batch(
    cmd: Cmd,
    map_fd: int,
    *,
    keys: Any,
    values: Any = None,
    count: int,
    in_batch: Any = None,
    out_batch: Any = None,
    elem_flags: int = 0,
    flags: int = 0,
    what: str = "",
) -> BatchResult:
    """One MAP_*_BATCH call. Lookups report ``done`` at the end of the map instead of raising."""
    attr = MapBatchAttr(
        in_batch=_address(in_batch),
        out_batch=_address(out_batch),
        keys=_address(keys),
        values=_address(values),
        count=count,
        map_fd=map_fd,
        elem_flags=elem_flags,
        flags=flags,
    )
    result = _bpf_slow(NR_BPF, int(cmd), ctypes.byref(attr), ctypes.sizeof(attr))
    if result < 0:
        err = ctypes.get_errno()
        lookup = cmd in (Cmd.MAP_LOOKUP_BATCH, Cmd.MAP_LOOKUP_AND_DELETE_BATCH)
        if err == _errno.ENOENT and lookup:
            return BatchResult(attr.count, True)
        error = error_from_errno(err, cmd, what)
        error.batch_count = attr.count  # type: ignore[attr-defined]
        raise error
    return BatchResult(attr.count, False)


Encoder = Callable[[Any], bytes]


class MapElemOps:
    """Single-element operations on one map through preallocated buffers.

    This is the hot path of map access from Python: one attr, key, next-key and value buffer
    per map, a pre-built ``byref`` and the GIL-holding syscall entry, so an operation with
    ``bytes`` arguments costs two buffer copies and one foreign call. Anything else (ints,
    ctypes instances, per-CPU lists, wrong sizes) goes through the map's encoders, which
    convert it or raise an error naming the map.
    """

    __slots__ = (
        "_attr",
        "_encode_key",
        "_encode_value",
        "_kbuf",
        "_kview",
        "_nbuf",
        "_ref",
        "_vbuf",
        "_vview",
        "key_size",
        "value_size",
        "what",
    )

    def __init__(
        self,
        map_fd: int,
        key_size: int,
        value_size: int,
        what: str,
        encode_key: Encoder,
        encode_value: Encoder,
    ) -> None:
        self.key_size = key_size
        self.value_size = value_size
        self.what = what
        self._encode_key = encode_key
        self._encode_value = encode_value
        # Buffers of exactly the element size, so ``.raw`` is the element without slicing.
        self._kbuf = ctypes.create_string_buffer(key_size or 1)
        self._nbuf = ctypes.create_string_buffer(key_size or 1)
        self._vbuf = ctypes.create_string_buffer(value_size or 1)
        self._kview = memoryview(self._kbuf).cast("B")[:key_size]
        self._vview = memoryview(self._vbuf).cast("B")[:value_size]
        self._attr = MapElemAttr(map_fd=map_fd)
        self._ref = ctypes.byref(self._attr)
        self._attr.key = self._key_address()
        self._attr.value = ctypes.addressof(self._vbuf)

    def _key_address(self) -> int:
        return ctypes.addressof(self._kbuf) if self.key_size else 0

    def invalidate(self) -> None:
        """Make every later operation fail with EBADF (the map was closed)."""
        self._attr.map_fd = 0xFFFFFFFF

    def _fail(self, cmd: Cmd) -> BpfError:
        if self._attr.map_fd == 0xFFFFFFFF:
            return BpfError(f"{self.what} is closed", _errno.EBADF)
        return error_from_errno(ctypes.get_errno(), cmd, self.what)

    def _put_key(self, key: Any) -> None:
        try:
            self._kview[:] = key
        except (TypeError, ValueError):
            self._kview[:] = self._encode_key(key)

    def lookup(self, key: Any, flags: int = 0) -> bytes | None:
        try:
            self._kview[:] = key
        except (TypeError, ValueError):
            self._kview[:] = self._encode_key(key)
        if flags:
            self._attr.flags = flags
            result = _bpf_fast(NR_BPF, 1, self._ref, 32)  # MAP_LOOKUP_ELEM
            self._attr.flags = 0
        else:
            result = _bpf_fast(NR_BPF, 1, self._ref, 32)
        if result < 0:
            if ctypes.get_errno() == _errno.ENOENT:
                return None
            raise self._fail(Cmd.MAP_LOOKUP_ELEM)
        return self._vbuf.raw

    def update(self, key: Any, value: Any, flags: int = 0) -> None:
        try:
            self._kview[:] = key
        except (TypeError, ValueError):
            self._kview[:] = self._encode_key(key)
        try:
            self._vview[:] = value
        except (TypeError, ValueError):
            self._vview[:] = self._encode_value(value)
        if flags:
            self._attr.flags = flags
            result = _bpf_fast(NR_BPF, 2, self._ref, 32)  # MAP_UPDATE_ELEM
            self._attr.flags = 0
        else:
            result = _bpf_fast(NR_BPF, 2, self._ref, 32)
        if result < 0:
            raise self._fail(Cmd.MAP_UPDATE_ELEM)

    def delete(self, key: Any) -> bool:
        try:
            self._kview[:] = key
        except (TypeError, ValueError):
            self._kview[:] = self._encode_key(key)
        if _bpf_fast(NR_BPF, 3, self._ref, 16) < 0:  # MAP_DELETE_ELEM: fd and key only
            if ctypes.get_errno() == _errno.ENOENT:
                return False
            raise self._fail(Cmd.MAP_DELETE_ELEM)
        return True

    def next_key(self, key: Any) -> bytes | None:
        """The key after ``key`` (the first key for None); None at the end."""
        attr = self._attr
        if key is None:
            attr.key = 0
        else:
            self._put_key(key)
        attr.value = ctypes.addressof(self._nbuf)
        result = _bpf_fast(NR_BPF, 4, self._ref, 32)  # MAP_GET_NEXT_KEY
        attr.key = self._key_address()
        attr.value = ctypes.addressof(self._vbuf)
        if result < 0:
            if ctypes.get_errno() == _errno.ENOENT:
                return None
            raise self._fail(Cmd.MAP_GET_NEXT_KEY)
        return self._nbuf.raw

    def _keyless(self, cmd: Cmd, flags: int) -> int:
        attr = self._attr
        attr.key, attr.flags = 0, flags
        result = int(_bpf_fast(NR_BPF, int(cmd), self._ref, 32))
        attr.key, attr.flags = self._key_address(), 0
        return result

    def lookup_keyless(self, flags: int = 0) -> bytes | None:
        """Peek (queue/stack): a lookup with a NULL key."""
        if self._keyless(Cmd.MAP_LOOKUP_ELEM, flags) < 0:
            if ctypes.get_errno() == _errno.ENOENT:
                return None
            raise self._fail(Cmd.MAP_LOOKUP_ELEM)
        return self._vbuf.raw

    def lookup_and_delete(self, key: Any, flags: int = 0) -> bytes | None:
        """Pop: with ``key=None`` on queue/stack maps, else lookup-then-delete atomically."""
        cmd = Cmd.MAP_LOOKUP_AND_DELETE_ELEM
        if key is None:
            result = self._keyless(cmd, flags)
        else:
            self._put_key(key)
            self._attr.flags = flags
            result = _bpf_fast(NR_BPF, int(cmd), self._ref, 32)
            self._attr.flags = 0
        if result < 0:
            if ctypes.get_errno() == _errno.ENOENT:
                return None
            raise self._fail(cmd)
        return self._vbuf.raw

    def push(self, value: Any, flags: int = 0) -> None:
        """Update with a NULL key (queue/stack push, bloom filter add)."""
        try:
            self._vview[:] = value
        except (TypeError, ValueError):
            self._vview[:] = self._encode_value(value)
        if self._keyless(Cmd.MAP_UPDATE_ELEM, flags) < 0:
            raise self._fail(Cmd.MAP_UPDATE_ELEM)


# --------------------------------------------------------------------------- programs


def prog_load(attr: ProgLoadAttr, *, what: str = "") -> int:
    """PROG_LOAD with a caller-built attr (the caller reads ``log_true_size`` back)."""
    return bpf(Cmd.PROG_LOAD, attr, what=what)


@dataclass(frozen=True)
class TestRunResult:
    retval: int
    duration_ns: int  # average per repetition, as the kernel reports it
    data: bytes
    ctx: bytes | None


def prog_test_run(
    prog_fd: int,
    *,
    data: bytes = b"",
    data_out_size: int | None = None,
    ctx: bytes | None = None,
    ctx_out_size: int | None = None,
    repeat: int = 1,
    flags: int = 0,
    cpu: int = 0,
    batch_size: int = 0,
    what: str = "",
) -> TestRunResult:
    out_size = len(data) + 256 if data_out_size is None else data_out_size
    data_out = ctypes.create_string_buffer(max(out_size, 1))
    data_in = ctypes.create_string_buffer(data, len(data)) if data else None
    ctx_in = ctypes.create_string_buffer(ctx, len(ctx)) if ctx else None
    ctx_size = (len(ctx) if ctx else 0) if ctx_out_size is None else ctx_out_size
    ctx_out = ctypes.create_string_buffer(ctx_size) if ctx_size else None
    attr = TestRunAttr(
        prog_fd=prog_fd,
        data_size_in=len(data),
        data_size_out=out_size if data else 0,
        data_in=_address(data_in),
        data_out=_address(data_out) if data else 0,
        repeat=repeat if repeat > 1 else 0,  # raw_tp and syscall refuse any repeat; 0 means 1
        ctx_size_in=len(ctx) if ctx else 0,
        ctx_size_out=ctx_size,
        ctx_in=_address(ctx_in),
        ctx_out=_address(ctx_out),
        flags=flags,
        cpu=cpu,
        batch_size=batch_size,
    )
    bpf(Cmd.PROG_TEST_RUN, attr, what=what)
    out = data_out.raw[: min(attr.data_size_out, out_size)] if data else b""
    ctx_bytes = ctx_out.raw[: attr.ctx_size_out] if ctx_out is not None else None
    return TestRunResult(attr.retval, attr.duration, out, ctx_bytes)


def prog_bind_map(prog_fd: int, map_fd: int, *, what: str = "") -> None:
    bpf(Cmd.PROG_BIND_MAP, ProgBindMapAttr(prog_fd=prog_fd, map_fd=map_fd), what=what)


# --------------------------------------------------------------------------- pinning


def obj_pin(fd: int, path: str | os.PathLike[str], *, what: str = "") -> None:
    raw = _path_bytes(path)
    attr = ObjAttr(pathname=_address(raw), bpf_fd=fd)
    bpf(Cmd.OBJ_PIN, attr, what=f"{what} pin at {os.fspath(path)!r}")


def obj_get(path: str | os.PathLike[str], *, flags: int = 0, what: str = "") -> int:
    raw = _path_bytes(path)
    attr = ObjAttr(pathname=_address(raw), file_flags=flags)
    return bpf(Cmd.OBJ_GET, attr, what=what or f"pinned object {os.fspath(path)!r}")


# --------------------------------------------------------------------------- attach/query


def prog_attach(
    target_fd: int,
    prog_fd: int,
    attach_type: int,
    *,
    flags: int = 0,
    replace_fd: int = 0,
    relative_fd: int = 0,
    expected_revision: int = 0,
    what: str = "",
) -> None:
    attr = ProgAttachAttr(
        target_fd=target_fd,
        attach_bpf_fd=prog_fd,
        attach_type=attach_type,
        attach_flags=flags,
        replace_bpf_fd=replace_fd,
        relative_fd=relative_fd,
        expected_revision=expected_revision,
    )
    bpf(Cmd.PROG_ATTACH, attr, what=what)


def prog_detach(
    target_fd: int, prog_fd: int, attach_type: int, *, flags: int = 0, what: str = ""
) -> None:
    attr = ProgAttachAttr(
        target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=attach_type, attach_flags=flags
    )
    bpf(Cmd.PROG_DETACH, attr, what=what)


@dataclass(frozen=True)
class ProgQueryResult:
    attach_flags: int
    prog_ids: list[int]
    revision: int


def prog_query(
    target_fd: int, attach_type: int, *, query_flags: int = 0, what: str = ""
) -> ProgQueryResult:
    """Programs attached at a hook; retries with a bigger array if more are attached."""
    capacity = 64
    while True:
        ids = (c_u32 * capacity)()
        attr = ProgQueryAttr(
            target_fd=target_fd,
            attach_type=attach_type,
            query_flags=query_flags,
            prog_ids=ctypes.addressof(ids),
            prog_cnt=capacity,
        )
        try:
            bpf(Cmd.PROG_QUERY, attr, what=what, size=ctypes.sizeof(attr))
        except BpfError as error:
            if error.errno == _errno.ENOSPC and attr.prog_cnt > capacity:
                capacity = attr.prog_cnt
                continue
            raise
        return ProgQueryResult(attr.attach_flags, list(ids[: attr.prog_cnt]), attr.revision)


def raw_tracepoint_open(name: str | None, prog_fd: int, *, cookie: int = 0, what: str = "") -> int:
    raw = name.encode() + b"\0" if name is not None else None
    attr = RawTracepointAttr(name=_address(raw), prog_fd=prog_fd, cookie=cookie)
    return bpf(Cmd.RAW_TRACEPOINT_OPEN, attr, what=what or f"raw tracepoint {name!r}")


def link_create(
    prog_fd: int,
    target_fd: int,
    attach_type: int,
    *,
    flags: int = 0,
    opts: ctypes.Structure | None = None,
    what: str = "",
) -> int:
    attr = LinkCreateAttr(prog_fd=prog_fd, target_fd=target_fd, attach_type=attach_type)
    attr.flags = flags
    if opts is not None:
        raw = bytes(opts)
        ctypes.memmove(ctypes.addressof(attr.tail), raw, len(raw))
    return bpf(Cmd.LINK_CREATE, attr, what=what)


def link_update(
    link_fd: int, new_prog_fd: int, *, old_prog_fd: int = 0, flags: int = 0, what: str = ""
) -> None:
    attr = LinkUpdateAttr(
        link_fd=link_fd, new_prog_fd=new_prog_fd, flags=flags, old_prog_fd=old_prog_fd
    )
    bpf(Cmd.LINK_UPDATE, attr, what=what)


def link_detach(link_fd: int, *, what: str = "") -> None:
    bpf(Cmd.LINK_DETACH, FdAttr(fd=link_fd), what=what, size=4)


def iter_create(link_fd: int, *, what: str = "") -> int:
    return bpf(Cmd.ITER_CREATE, IterCreateAttr(link_fd=link_fd), what=what, size=8)


def enable_stats(stats_type: int) -> int:
    """Turn on run-time statistics while the returned fd is open."""
    return bpf(Cmd.ENABLE_STATS, FdAttr(fd=stats_type), what="enable_stats", size=4)


@dataclass(frozen=True)
class TaskFdQueryResult:
    prog_id: int
    fd_type: int
    name: str
    probe_offset: int
    probe_addr: int


def task_fd_query(pid: int, fd: int, *, what: str = "") -> TaskFdQueryResult:
    """What BPF program a perf-event or raw-tracepoint fd of ``pid`` carries."""
    buf = ctypes.create_string_buffer(4096)
    attr = TaskFdQueryAttr(pid=pid, fd=fd, buf_len=len(buf), buf=ctypes.addressof(buf))
    bpf(Cmd.TASK_FD_QUERY, attr, what=what or f"task_fd_query pid {pid} fd {fd}")
    return TaskFdQueryResult(
        attr.prog_id,
        attr.fd_type,
        buf.value.decode(errors="replace"),
        attr.probe_offset,
        attr.probe_addr,
    )


# --------------------------------------------------------------------------- BTF


def btf_load(attr: BtfLoadAttr, *, what: str = "") -> int:
    return bpf(Cmd.BTF_LOAD, attr, what=what or "BTF")


# --------------------------------------------------------------------------- ids and info


def _next_id(cmd: Cmd, start: int) -> int | None:
    attr = GetIdAttr(start_id=start)
    result = _bpf_slow(NR_BPF, int(cmd), ctypes.byref(attr), 8)
    if result < 0:
        err = ctypes.get_errno()
        if err == _errno.ENOENT:
            return None
        raise error_from_errno(err, cmd, "")
    return int(attr.next_id)


def prog_get_next_id(start: int) -> int | None:
    return _next_id(Cmd.PROG_GET_NEXT_ID, start)


def map_get_next_id(start: int) -> int | None:
    return _next_id(Cmd.MAP_GET_NEXT_ID, start)


def btf_get_next_id(start: int) -> int | None:
    return _next_id(Cmd.BTF_GET_NEXT_ID, start)


def link_get_next_id(start: int) -> int | None:
    return _next_id(Cmd.LINK_GET_NEXT_ID, start)


def _fd_by_id(cmd: Cmd, obj_id: int, flags: int, kind: str) -> int:
    return bpf(cmd, GetIdAttr(start_id=obj_id, open_flags=flags), what=f"{kind} id {obj_id}")


def prog_get_fd_by_id(prog_id: int, flags: int = 0) -> int:
    return _fd_by_id(Cmd.PROG_GET_FD_BY_ID, prog_id, flags, "program")


def map_get_fd_by_id(map_id: int, flags: int = 0) -> int:
    return _fd_by_id(Cmd.MAP_GET_FD_BY_ID, map_id, flags, "map")


def btf_get_fd_by_id(btf_id: int, flags: int = 0) -> int:
    return _fd_by_id(Cmd.BTF_GET_FD_BY_ID, btf_id, flags, "BTF")


def link_get_fd_by_id(link_id: int, flags: int = 0) -> int:
    return _fd_by_id(Cmd.LINK_GET_FD_BY_ID, link_id, flags, "link")


def obj_get_info_by_fd(fd: int, info: _Attr, *, what: str = "") -> _Attr:
    """Fill ``info`` (a MapInfo/ProgInfo/BtfInfo/LinkInfo with its pointers pre-set)."""
    attr = InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
    bpf(Cmd.OBJ_GET_INFO_BY_FD, attr, what=what, size=ctypes.sizeof(attr))
    return info


def iterate_ids(next_id: Any) -> Sequence[int]:
    """All ids from a ``*_get_next_id`` function, in order."""
    ids: list[int] = []
    current = 0
    while (current_id := next_id(current)) is not None:
        ids.append(current_id)
        current = current_id
    return ids
