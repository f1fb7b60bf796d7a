"""The hot path of map access: single-element operations through preallocated buffers."""

from __future__ import annotations

import ctypes
import errno as _errno
from collections.abc import Callable
from typing import Any

from ..errors import BpfError
from ..uapi import Cmd
from .attrs import MapElemAttr
from .bpf import NR_BPF, kernel_error

# libc's syscall(), keeping the GIL (see bpf.py); a global looked up on every call, so
# ``seam.override_syscall`` can swap it.
_bpf_fast = ctypes.PyDLL(None, use_errno=True).syscall
_bpf_fast.restype = ctypes.c_long

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
        return kernel_error(ctypes.get_errno(), cmd, self.what)

    def _put_key(self, key: Any) -> None:
        try:
            self._kview[:] = key
        except (TypeError, ValueError):
            self._kview[:] = self._encode_key(key)

    def lookup(self, key: Any, flags: int = 0) -> bytes | None:
        """The value bytes for ``key``, or None if absent."""
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
        """Insert or replace ``key``'s value."""
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
        """Delete ``key``; False if it was not there."""
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
