"""Conversion between Python values and the bytes of map keys and values.

Every codec *encodes* the same inputs — bytes-like objects of the right size, ints, ctypes
instances, and objects with ``fileno()`` (programs, maps, fds for prog arrays and
map-in-map) — and differs only in what it *decodes* to: bytes, int, or a ctypes instance.
Errors name the map through the ``what`` prefix.

Whole arrays of elements (batch operations) convert in one pass at C speed where the
element type allows it — ``array``/``memoryview.cast`` for 1, 2, 4 and 8-byte integers,
a ctypes array for ctypes types, slices for bytes — with the per-element path kept as the
fallback that explains what is wrong with an input.
"""

from __future__ import annotations

import ctypes
import errno
import struct
import sys
from array import array
from itertools import chain

from ..errors import BpfError

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any

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
# Integer sizes with a one-letter struct/array/memoryview format (unsigned; lower case
# is signed). Map keys and values are little-endian here, as on every host BPF runs on
# that this package supports; the array/memoryview shortcuts need a little-endian host.
INT_FORMATS = {1: "B", 2: "H", 4: "I", 8: "Q"}
_NATIVE_LITTLE = sys.byteorder == "little"
_CTYPES_DATA = (ctypes.Structure, ctypes.Union, ctypes.Array, ctypes._SimpleCData)


def _buffer_bytes(obj: Any) -> bytes | None:
    """The bytes of any object with the buffer protocol (bytes, array, ctypes), else None."""
    try:
        view = memoryview(obj)
    except TypeError:
        return None
    with view:
        return view.tobytes()


def int_array(fmt: str, objs: Any) -> array[int]:
    """``objs`` as an ``array`` of ``fmt`` (ints only, in range, else TypeError or
    OverflowError). A list goes through ``fromlist``, whose C loop reads the list's items
    in place: half the cost of ``array(fmt, list)``, which fetches each through the
    sequence protocol (1.1 against 2.0 ms per 1e5 ints here)."""
    if type(objs) is list:
        packed = array(fmt)
        packed.fromlist(objs)
        return packed
    return array(fmt, objs)


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

    @property
    def int_format(self) -> str | None:
        """The one-letter struct format of this codec's integers (None: not an int codec
        of a standard size)."""
        return None

    def encode(self, obj: Any) -> bytes:
        """``obj`` as exactly ``size`` bytes (bytes, int, ctypes, or an fd holder)."""
        size = self.size
        if isinstance(obj, bytes | bytearray):
            data = bytes(obj)
        elif isinstance(obj, int):
            try:
                return obj.to_bytes(size, "little", signed=obj < 0)
            except OverflowError as error:
                raise BpfError(
                    f"{self.what}: {obj} does not fit in {size} bytes", errno.ERANGE
                ) from error
        elif isinstance(obj, _CTYPES_DATA):
            data = bytes(obj)
        elif hasattr(obj, "fileno"):
            data = int(obj.fileno()).to_bytes(4, "little")
        else:
            raw = _buffer_bytes(obj)  # memoryview, array, anything with the buffer protocol
            if raw is None:
                raise BpfError(
                    f"{self.what}: cannot use {type(obj).__name__} as {size} bytes "
                    "(give bytes, an int, a ctypes instance or an object with fileno())",
                    errno.EINVAL,
                )
            data = raw
        if len(data) != size:
            raise BpfError(
                f"{self.what}: {self.role} must be {size} bytes, got {len(data)} bytes",
                errno.EINVAL,
            )
        return data

    def encode_many(self, objs: Any) -> bytes | array[int]:
        """A contiguous array of encoded values: a buffer (bytes, ``array``, a ctypes
        array) is taken as packed elements; a sequence is encoded element by element
        (integers into an ``array``, not copied again into bytes: a batch of 1e5 is
        800 KB a side)."""
        data = objs if isinstance(objs, bytes) else _buffer_bytes(objs)
        if data is not None:
            if self.size and len(data) % self.size:
                raise BpfError(
                    f"{self.what}: {len(data)} bytes is not a whole number of "
                    f"{self.size}-byte elements",
                    errno.EINVAL,
                )
            return data
        return self._encode_each(objs)

    def _encode_each(self, objs: Any) -> bytes | array[int]:
        return b"".join(map(self.encode, objs))

    def decode(self, data: bytes) -> Any:
        """The bytes themselves (subclasses decode to int or ctypes)."""
        return data

    def decode_many(self, data: Any, count: int) -> list[Any]:
        """The first ``count`` packed elements of ``data`` (any buffer), decoded."""
        size = self.size
        raw = memoryview(data).cast("B")[: count * size].tobytes()
        return list(map(raw.__getitem__, map(slice, range(0, len(raw), size), _ends(raw, size))))


def _ends(raw: bytes, size: int) -> range:
    return range(size, len(raw) + size, size)


class IntCodec(Codec):
    """Integer keys/values, read back as ``int``."""

    __slots__ = ()

    @property
    def int_format(self) -> str | None:
        fmt = INT_FORMATS.get(self.size)
        return fmt.lower() if fmt is not None and self.signed else fmt

    def decode(self, data: bytes) -> int:
        """The little-endian integer."""
        return int.from_bytes(data, "little", signed=self.signed)

    def _encode_each(self, objs: Any) -> bytes | array[int]:
        fmt = self.int_format
        if fmt is not None and _NATIVE_LITTLE:
            try:
                return int_array(fmt, objs)  # one pass in C; ints only, in range
            except (TypeError, OverflowError):
                pass  # negative ints for unsigned, fd holders, bytes…: one by one
        return super()._encode_each(objs)

    def decode_many(self, data: Any, count: int) -> list[Any]:
        """``count`` packed integers, decoded at C speed."""
        fmt = self.int_format
        if fmt is None:
            return [self.decode(raw) for raw in super().decode_many(data, count)]
        view: Any = memoryview(data).cast("B")[: count * self.size]
        if _NATIVE_LITTLE:
            return view.cast(fmt).tolist()  # type: ignore[no-any-return]
        return list(struct.unpack(f"<{count}{fmt}", view))

    def decode_strided(self, data: Any, count: int, stride: int) -> list[int]:
        """``count`` integers, one every ``stride`` bytes (per-CPU slots: 8-byte aligned)."""
        fmt = self.int_format
        if fmt is None or not _NATIVE_LITTLE or stride % self.size:
            return [
                self.decode(bytes(memoryview(data)[i * stride : i * stride + self.size]))
                for i in range(count)
            ]
        step = stride // self.size
        view: Any = memoryview(data).cast("B")[: count * stride]
        return list(view.cast(fmt)[::step].tolist())

    def encode_strided(self, values: Any, stride: int) -> bytes | None:
        """Integers one every ``stride`` bytes in one pass, or None if they need the
        per-element path (not all ints in range, or no shortcut on this host)."""
        fmt = self.int_format
        if fmt is None or not _NATIVE_LITTLE or stride % self.size:
            return None
        step = stride // self.size
        try:
            packed = int_array(fmt, values)
        except (TypeError, OverflowError):
            return None
        if step == 1:
            return packed.tobytes()
        out = array(fmt, bytes(len(packed) * stride))
        out[::step] = packed
        return out.tobytes()


class CtypesCodec(Codec):
    """Keys/values read back as instances of a ctypes type (struct, union, array)."""

    __slots__ = ("ctype",)

    def __init__(self, ctype: Any, what: str = "", role: str = "value") -> None:
        super().__init__(ctypes.sizeof(ctype), what, role)
        self.ctype = ctype

    def decode(self, data: bytes) -> Any:
        """A ctypes instance (a copy of the bytes)."""
        return self.ctype.from_buffer_copy(data)

    def decode_many(self, data: Any, count: int) -> list[Any]:
        """``count`` instances, copied at once into one ctypes array (each element is an
        instance of the type, sharing that array's memory)."""
        if not count:
            return []
        return list((self.ctype * count).from_buffer_copy(data))


def flatten_ints(values: Any) -> Any:
    """Per-CPU values given as one sequence per element, as one flat iterable."""
    return chain.from_iterable(values)


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
