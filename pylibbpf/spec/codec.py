"""Conversion between Python values and the bytes of map keys and values.

Every codec *encodes* the same inputs — bytes-like objects of the right size, ints, ctypes
instances, and objects with ``fileno()`` (programs, maps, fds for prog arrays and
map-in-map) — and differs only in what it *decodes* to: bytes, int, or a ctypes instance.
Errors name the map through the ``what`` prefix.
"""

from __future__ import annotations

import ctypes
import errno
import struct
from typing import Any

from ..errors import BpfError

_CTYPES_INTS = {
    ctypes.c_int8: True,
    ctypes.c_int16: True,
    ctypes.c_int32: True,
    ctypes.c_int64: True,
    ctypes.c_uint8: False,
    ctypes.c_uint16: False,
    ctypes.c_uint32: False,
    ctypes.c_uint64: False,
    ctypes.c_bool: False,
}


class Codec:
    """Encodes anything sensible to ``size`` bytes; decodes to bytes."""

    __slots__ = ("role", "signed", "size", "what")

    def __init__(
        self, size: int, what: str = "", role: str = "value", *, signed: bool = False
    ) -> None:
        self.size = size
        self.what = what
        self.role = role
        self.signed = signed

    def encode(self, obj: Any) -> bytes:
        """``obj`` as exactly ``size`` bytes (bytes, int, ctypes, or an fd holder)."""
        size = self.size
        if isinstance(obj, bytes | bytearray | memoryview):
            data = bytes(obj)
        elif isinstance(obj, int):
            try:
                return obj.to_bytes(size, "little", signed=obj < 0)
            except OverflowError as error:
                raise BpfError(
                    f"{self.what}: {obj} does not fit in {size} bytes", errno.ERANGE
                ) from error
        elif isinstance(obj, ctypes.Structure | ctypes.Union | ctypes.Array | ctypes._SimpleCData):
            data = bytes(obj)
        elif hasattr(obj, "fileno"):
            data = int(obj.fileno()).to_bytes(4, "little")
        else:
            raise BpfError(
                f"{self.what}: cannot use {type(obj).__name__} as {size} bytes "
                "(give bytes, an int, a ctypes instance or an object with fileno())",
                errno.EINVAL,
            )
        if len(data) != size:
            raise BpfError(
                f"{self.what}: {self.role} must be {size} bytes, got {len(data)} bytes",
                errno.EINVAL,
            )
        return data

    def encode_many(self, objs: Any) -> bytes:
        """A contiguous array of encoded values (a bytes-like input is taken as is)."""
        if isinstance(objs, bytes | bytearray | memoryview):
            data = bytes(objs)
            if self.size and len(data) % self.size:
                raise BpfError(
                    f"{self.what}: {len(data)} bytes is not a whole number of "
                    f"{self.size}-byte elements",
                    errno.EINVAL,
                )
            return data
        return b"".join(self.encode(obj) for obj in objs)

    def decode(self, data: bytes) -> Any:
        """The bytes themselves (subclasses decode to int or ctypes)."""
        return data

    def decode_many(self, data: bytes, count: int) -> list[Any]:
        """``count`` packed elements, decoded."""
        size = self.size
        return [self.decode(data[i * size : (i + 1) * size]) for i in range(count)]


class IntCodec(Codec):
    """Integer keys/values, read back as ``int``."""

    __slots__ = ()

    def decode(self, data: bytes) -> int:
        """The little-endian integer."""
        return int.from_bytes(data, "little", signed=self.signed)

    def decode_many(self, data: bytes, count: int) -> list[Any]:
        """``count`` packed integers, decoded at C speed."""
        fmt = {1: "B", 2: "H", 4: "I", 8: "Q"}.get(self.size)
        if fmt is None:
            return super().decode_many(data, count)
        fmt = fmt.lower() if self.signed else fmt
        return list(struct.unpack(f"<{count}{fmt}", data[: count * self.size]))


class CtypesCodec(Codec):
    """Keys/values read back as instances of a ctypes type (struct, union, array)."""

    __slots__ = ("ctype",)

    def __init__(self, ctype: Any, what: str = "", role: str = "value") -> None:
        super().__init__(ctypes.sizeof(ctype), what, role)
        self.ctype = ctype

    def decode(self, data: bytes) -> Any:
        """A ctypes instance (a copy of the bytes)."""
        return self.ctype.from_buffer_copy(data)


def codec_for(spec: Any, size: int, what: str, role: str = "value") -> Codec:
    """Pick a codec for ``key_type``/``value_type``: None (bytes), ``int``, or a ctypes type."""
    if spec is None or spec is bytes:
        return Codec(size, what, role)
    if spec is int:
        return IntCodec(size, what, role)
    if spec in _CTYPES_INTS:
        if ctypes.sizeof(spec) != size:
            raise BpfError(
                f"{what}: {spec.__name__} is {ctypes.sizeof(spec)} bytes, the map uses {size}",
                errno.EINVAL,
            )
        return IntCodec(size, what, role, signed=_CTYPES_INTS[spec])
    if isinstance(spec, type) and issubclass(spec, ctypes.Structure | ctypes.Union | ctypes.Array):
        if ctypes.sizeof(spec) != size:
            raise BpfError(
                f"{what}: {spec.__name__} is {ctypes.sizeof(spec)} bytes, the map uses {size}",
                errno.EINVAL,
            )
        return CtypesCodec(spec, what, role)
    raise BpfError(f"{what}: unsupported key/value type {spec!r}", errno.EINVAL)
