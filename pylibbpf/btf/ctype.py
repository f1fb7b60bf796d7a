"""BTF types as ctypes types with exactly the layout BTF describes.

A struct is first built the natural way (ctypes lays it out like the C compiler, so its
alignment is right too); if that does not reproduce every BTF offset and the size — an
``aligned`` member, a packed struct — it is rebuilt packed with explicit padding. Either
way the result is checked member by member, and a layout ctypes cannot express (some
bitfield placements) is an error naming the type and member rather than a silent
mismatch. Pointers become ``c_uint64``: kernel addresses are numbers in user space.
"""

from __future__ import annotations

import ctypes
from typing import Any

from ..errors import ObjectError
from .parse import Btf
from .types import INT_BOOL, INT_CHAR, Kind, Type

_INTS = {
    (1, False): ctypes.c_uint8,
    (1, True): ctypes.c_int8,
    (2, False): ctypes.c_uint16,
    (2, True): ctypes.c_int16,
    (4, False): ctypes.c_uint32,
    (4, True): ctypes.c_int32,
    (8, False): ctypes.c_uint64,
    (8, True): ctypes.c_int64,
}
_FLOATS = {
    4: ctypes.c_float,
    8: ctypes.c_double,
    ctypes.sizeof(ctypes.c_longdouble): ctypes.c_longdouble,
}


class CtypesBuilder:
    """Builds (and caches) ctypes types for one BTF."""

    def __init__(self, btf: Btf) -> None:
        self.btf = btf
        self._cache: dict[int, Any] = {}

    def _error(self, t: Type, why: str) -> ObjectError:
        return ObjectError(f"{self.btf.name}: no ctypes type for {t.describe()} (id {t.id}): {why}")

    def ctype(self, type_id: int) -> Any:
        cached = self._cache.get(type_id)
        if cached is not None:
            return cached
        t = self.btf[type_id]
        result = self._build(t)
        self._cache[type_id] = result
        return result

    def _build(self, t: Type) -> Any:
        kind = t.kind
        if kind == Kind.INT:
            if t.encoding & INT_BOOL and t.size == 1:
                return ctypes.c_bool
            if t.size == 1 and (t.encoding & INT_CHAR or t.name == "char"):
                return ctypes.c_char
            if t.size == 16:
                return ctypes.c_uint8 * 16  # __int128: no ctypes integer of that width
            return self._int(t, t.size, t.signed)
        if kind in (Kind.ENUM, Kind.ENUM64):
            return self._int(t, t.size, t.signed)
        if kind == Kind.PTR:
            return ctypes.c_uint64
        if kind == Kind.FLOAT:
            if t.size not in _FLOATS:
                raise self._error(t, f"no {t.size}-byte float in ctypes")
            return _FLOATS[t.size]
        if kind in (
            Kind.TYPEDEF,
            Kind.CONST,
            Kind.VOLATILE,
            Kind.RESTRICT,
            Kind.TYPE_TAG,
            Kind.VAR,
        ):
            return self.ctype(t.type)
        if kind == Kind.ARRAY:
            return self.ctype(t.type) * t.nelems
        if kind in (Kind.STRUCT, Kind.UNION):
            return self._record(t)
        if kind == Kind.DATASEC:
            return self._datasec(t)
        if kind == Kind.FWD:
            raise self._error(t, "it is only forward-declared (incomplete)")
        raise self._error(t, f"{kind.name} has no data layout")

    def _int(self, t: Type, size: int, signed: bool) -> Any:
        try:
            return _INTS[(size, signed)]
        except KeyError:
            raise self._error(t, f"no {size}-byte integer in ctypes") from None

    # ----------------------------------------------------------------- records

    def _fields(
        self, t: Type
    ) -> tuple[list[tuple[Any, ...]], list[str], list[tuple[str, int, int]]]:
        """ctypes fields, anonymous member names, and (name, bit offset, bits) to verify."""
        fields: list[tuple[Any, ...]] = []
        anonymous: list[str] = []
        expected: list[tuple[str, int, int]] = []
        for index, member in enumerate(t.members):
            name = member.name or f"_anon{index}"
            member_type = self.ctype(member.type)
            if member.bitfield_size:
                base = self.btf.resolve(member.type)
                member_type = self._int(t, ctypes.sizeof(member_type), base.signed)
                fields.append((name, member_type, member.bitfield_size))
            else:
                fields.append((name, member_type))
                if not member.name and self.btf.resolve(member.type).kind in (
                    Kind.STRUCT,
                    Kind.UNION,
                ):
                    anonymous.append(name)
            expected.append((name, member.bit_offset, member.bitfield_size))
        return fields, anonymous, expected

    def _record(self, t: Type) -> Any:
        base = ctypes.Structure if t.kind == Kind.STRUCT else ctypes.Union
        name = t.name or f"anon_{t.kind.name.lower()}_{t.id}"
        fields, anonymous, expected = self._fields(t)
        for pack in (None, 1):
            made = self._fit(base, name, fields, anonymous, pack, t, expected)
            if made is not None:
                return made
        if t.kind == Kind.STRUCT and any(m.bitfield_size for m in t.members):
            made = self._with_bit_properties(name, t, fields, anonymous, expected)
            if made is not None:
                return made
        cls = self._make(base, name, fields, anonymous, pack=1)
        culprit = self._first_mismatch(cls, t, expected)
        raise self._error(t, f"ctypes cannot lay out member {culprit!r} at its BTF offset")

    def _with_bit_properties(
        self,
        name: str,
        t: Type,
        fields: list[tuple[Any, ...]],
        anonymous: list[str],
        expected: list[tuple[str, int, int]],
    ) -> Any:
        """Last resort for bitfields ctypes places differently from the C compiler: each
        run of bitfields becomes raw bytes, and each bitfield a property over them."""
        plain: list[tuple[Any, ...]] = []
        plain_expected: list[tuple[str, int, int]] = []
        accessors: dict[str, BitField] = {}
        members = list(zip(fields, t.members, expected, strict=True))
        index = 0
        while index < len(members):
            field, member, check = members[index]
            if not member.bitfield_size:
                plain.append(field)
                plain_expected.append(check)
                index += 1
                continue
            run_end = index
            while run_end < len(members) and members[run_end][1].bitfield_size:
                run_end += 1
            run = [entry[1] for entry in members[index:run_end]]
            first = run[0].bit_offset // 8
            last = max((m.bit_offset + m.bitfield_size + 7) // 8 for m in run)
            storage = f"_bits{first}"
            plain.append((storage, ctypes.c_uint8 * (last - first)))
            plain_expected.append((storage, first * 8, 0))
            for m, (field_name, *_rest) in zip(
                run, (e[0] for e in members[index:run_end]), strict=True
            ):
                signed = self.btf.resolve(m.type).signed
                accessors[field_name] = BitField(
                    storage, m.bit_offset - first * 8, m.bitfield_size, signed
                )
            index = run_end
        cls = self._fit(ctypes.Structure, name, plain, anonymous, 1, t, plain_expected)
        if cls is None:
            return None
        for field_name, accessor in accessors.items():
            setattr(cls, field_name, accessor)
        return cls

    def _fit(
        self,
        base: Any,
        name: str,
        fields: list[tuple[Any, ...]],
        anonymous: list[str],
        pack: int | None,
        t: Type,
        expected: list[tuple[str, int, int]],
    ) -> Any:
        """Insert padding before each member ctypes places too early, until all match.

        Over-aligned kernel members (``____cacheline_aligned``) and ``unsigned :0``
        bitfield breaks are invisible in BTF except as offsets; padding reproduces them.
        """
        fields = list(fields)
        positions = {entry[0]: entry for entry in expected}
        for attempt in range(4 * len(fields) + 4):
            cls = self._make(base, name, fields, anonymous, pack)
            if cls is None:
                return None
            culprit = self._first_mismatch(cls, t, expected)
            if culprit is None:
                return cls
            if culprit == "(size)":
                missing = t.size - ctypes.sizeof(cls)
                if missing <= 0 or (base is ctypes.Union and attempt > 0):
                    return None
                fields.append((f"_pad_end{attempt}", ctypes.c_uint8 * missing))
                continue
            _, want, bits = positions[culprit]
            got, _ = self._bit_position(cls, culprit, bits > 0)
            if got > want or base is ctypes.Union:
                return None
            index = next(i for i, field in enumerate(fields) if field[0] == culprit)
            gap = want - got
            if bits:
                storage = fields[index][1]
                if gap >= 8 * ctypes.sizeof(storage):
                    fields.insert(index, (f"_pad{attempt}", ctypes.c_uint8 * (gap // 8)))
                else:
                    fields.insert(index, (f"_pad{attempt}", storage, gap))
            else:
                if gap % 8:
                    return None
                fields.insert(index, (f"_pad{attempt}", ctypes.c_uint8 * (gap // 8)))
        return None

    @staticmethod
    def _make(
        base: Any, name: str, fields: list[tuple[Any, ...]], anonymous: list[str], pack: int | None
    ) -> Any:
        namespace: dict[str, Any] = {}
        if pack is not None:
            namespace["_pack_"] = pack
        if anonymous:
            namespace["_anonymous_"] = anonymous
        namespace["_fields_"] = fields
        try:
            return type(name, (base,), namespace)
        except (TypeError, ValueError, AttributeError):
            return None

    @staticmethod
    def _bit_position(cls: Any, name: str, bitfield: bool) -> tuple[int, int]:
        field = getattr(cls, name)
        if bitfield:  # ctypes encodes a bitfield's size as (bits << 16) | bit offset
            return field.offset * 8 + (field.size & 0xFFFF), field.size >> 16
        return field.offset * 8, 0

    def _first_mismatch(
        self, cls: Any, t: Type, expected: list[tuple[str, int, int]]
    ) -> str | None:
        if cls is None:
            return expected[0][0] if expected else "(size)"
        for name, bit_offset, bits in expected:
            if self._bit_position(cls, name, bits > 0) != (bit_offset, bits):
                return name
        return None if ctypes.sizeof(cls) == t.size else "(size)"

    def _datasec(self, t: Type) -> Any:
        """A data section (``.bss``, ``.data``…) as a struct of its variables."""
        fields: list[tuple[Any, ...]] = []
        position = 0
        for index, entry in enumerate(t.vars):
            var = self.btf[entry.type]
            if entry.offset > position:
                fields.append((f"_pad{index}", ctypes.c_uint8 * (entry.offset - position)))
            fields.append((var.name or f"_var{index}", self.ctype(entry.type)))
            position = entry.offset + entry.size
        if t.size > position:
            fields.append(("_pad_end", ctypes.c_uint8 * (t.size - position)))
        safe = "".join(c if c.isalnum() else "_" for c in t.name) or f"datasec_{t.id}"
        made = self._make(ctypes.Structure, safe, fields, [], pack=1)
        if made is None or ctypes.sizeof(made) != t.size:
            raise self._error(t, "variables overlap or do not fit the section size")
        return made


class BitField:
    """A bitfield ctypes cannot place where the C compiler does, as a descriptor over the
    raw bytes of its run; typed ``int`` so generated skeletons check under mypy."""

    def __init__(self, storage: str, shift: int, bits: int, signed: bool) -> None:
        self.storage = storage
        self.shift = shift
        self.bits = bits
        self.signed = signed

    def __get__(self, instance: Any, owner: Any = None) -> int:
        if instance is None:
            return self  # type: ignore[return-value]  # class access: the descriptor
        raw = int.from_bytes(bytes(getattr(instance, self.storage)), "little")
        value = (raw >> self.shift) & ((1 << self.bits) - 1)
        if self.signed and value >> (self.bits - 1):
            return value - (1 << self.bits)
        return value

    def __set__(self, instance: Any, value: int) -> None:
        array = getattr(instance, self.storage)
        mask = ((1 << self.bits) - 1) << self.shift
        raw = int.from_bytes(bytes(array), "little")
        raw = (raw & ~mask) | ((value << self.shift) & mask)
        ctypes.memmove(array, raw.to_bytes(len(array), "little"), len(array))


def ctype(btf: Btf, type_id: int) -> Any:
    """A ctypes type with the size and member offsets BTF gives ``type_id``."""
    builder = btf.memo.get("ctypes builder")
    if builder is None:
        builder = btf.memo["ctypes builder"] = CtypesBuilder(btf)
    return builder.ctype(type_id)
