"""BTF types as ctypes types with exactly the layout BTF describes.

A struct is first built the natural way (ctypes lays it out like the C compiler, so its
alignment is right too); if that does not reproduce every BTF offset and the size — an
``aligned`` member, a packed struct — it is rebuilt packed with explicit padding. Either
way the result is checked member by member, and a layout ctypes cannot express (some
bitfield placements) is an error naming the type and member rather than a silent
mismatch. Pointers become ``c_uint64``: kernel addresses are numbers in user space.

BTF is input like any other: CPython's ctypes crashes (rather than raising) on some
shapes hostile BTF can describe, e.g. an anonymous member whose own members reuse a name
the outer record has. So every name a record exposes, its own and those promoted from
anonymous members, is unique or the type is refused; synthetic names (anonymous members,
padding) carry the BTF type id, so two records never produce the same one; names Python
or ctypes give a meaning (``__init__``, ``_fields_``, ``from_buffer``) are renamed; and
self-reference, runaway nesting and sizes BTF cannot have are refused before ctypes sees
them. Records derive from ``CStruct``/``CUnion``: readable ``repr()`` and ``asdict()``.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Iterator

from ..errors import ObjectError
from .parse import Btf
from .types import INT_BOOL, INT_CHAR, Kind, Type

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any, ClassVar

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
MAX_SIZE = 0xFFFF_FFFF  # BTF sizes are 32-bit: a larger array is no C type BTF describes
# The names this module makes up: anonymous members, padding, bitfield storage; the BTF
# type id in them keeps those of different records apart.
_SYNTHETIC = re.compile(r"_(?:anon|pad|bits)\d+_(?:\d+|end)")


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


class _Record:
    """What BTF-derived records share: bitfield descriptors installed from the declarative
    ``_bitfields_`` (and promoted from anonymous members, as ctypes promotes fields), a
    ``repr()`` that shows the values, and ``asdict()`` for JSON."""

    __slots__ = ()
    _bitfields_: ClassVar[dict[str, BitField]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        namespace = cls.__dict__
        for name, accessor in namespace.get("_bitfields_", {}).items():
            setattr(cls, name, accessor)
        types = {field[0]: field[1] for field in namespace.get("_fields_", ())}
        own = set(types) | set(namespace.get("_bitfields_", {}))
        for anonymous in namespace.get("_anonymous_", ()):
            for name, value in vars(types.get(anonymous, object)).items():
                if isinstance(value, BitField) and name not in own:
                    setattr(cls, name, value)  # its storage is promoted by ctypes

    def asdict(self) -> dict[str, Any]:
        """Members as plain Python (nested dicts, lists, ``str`` for char arrays): what
        ``json.dumps`` takes. Anonymous members' members appear inline, as in C."""
        return {name: to_plain(value) for name, value in items(self)}

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={show(value)}" for name, value in items(self))
        return f"{type(self).__name__}({shown})"


class CStruct(_Record, ctypes.Structure):
    """Base of BTF-derived structs."""

    __slots__ = ()


class CUnion(_Record, ctypes.Union):
    """Base of BTF-derived unions."""

    __slots__ = ()


def items(record: Any) -> Iterator[tuple[str, Any]]:
    """(name, value) of a record's members in order: padding left out, bitfields in their
    place, members of anonymous members inline."""
    # The class that declares the fields (a user's subclass may add none of its own).
    cls = next((c for c in type(record).__mro__ if "_fields_" in c.__dict__), type(record))
    anonymous = set(cls.__dict__.get("_anonymous_", ()))
    by_storage: dict[str, list[str]] = {}
    for name, accessor in cls.__dict__.get("_bitfields_", {}).items():
        by_storage.setdefault(accessor.storage, []).append(name)
    for name, *_ in cls.__dict__.get("_fields_", ()):
        if name in anonymous:
            yield from items(getattr(record, name))
        elif name in by_storage:
            yield from ((bit, getattr(record, bit)) for bit in by_storage[name])
        elif not is_synthetic(name):
            yield name, getattr(record, name)


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")


def to_plain(value: Any) -> Any:
    """A ctypes value (or what reading a member gives) as JSON-friendly Python: records
    as dicts, arrays as lists, char arrays as strings, numbers as numbers."""
    if isinstance(value, ctypes.Structure | ctypes.Union):
        return {name: to_plain(member) for name, member in items(value)}
    if isinstance(value, ctypes.Array):
        if value._type_ is ctypes.c_char:
            return _text(bytes(value))
        return [to_plain(item) for item in value]
    if isinstance(value, bytes):  # a char array member reads as bytes
        return _text(value)
    if isinstance(value, ctypes._SimpleCData):
        return to_plain(value.value)
    return value


def show(value: Any) -> str:
    """A member's value as a record's ``repr()`` shows it: nested records by their own
    ``repr()``, arrays as lists, char arrays and numbers as ``asdict()`` gives them."""
    if isinstance(value, ctypes.Structure | ctypes.Union):
        return repr(value)
    if isinstance(value, ctypes.Array) and value._type_ is not ctypes.c_char:
        return "[" + ", ".join(show(item) for item in value) + "]"
    return repr(to_plain(value))


# Names that mean something to Python or ctypes on a record class: a member named so
# would break the class (``__init__``) or ctypes (``_fields_``), so it is renamed.
_CTYPES_NAMES = {"_fields_", "_anonymous_", "_pack_", "_align_", "_layout_", "_swappedbytes_"}
_CTYPES_NAMES |= {"_use_broken_old_ctypes_structure_semantics_", "_type_", "_length_"}
RESERVED = frozenset(_CTYPES_NAMES | set(dir(CStruct)) | set(dir(CUnion)))


def member_attribute(name: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """The attribute a C member ``name`` gets on a record class: the C name, unless
    Python or ctypes reserve it (``__init__`` -> ``m__init__``, ``asdict`` -> ``asdict_``)
    or another member has it already. A name that is not UTF-8 (BTF bytes kept as lone
    surrogates) is spelt with backslash escapes: ctypes refuses it from Python 3.12 on."""
    if not name.isascii():
        name = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if len(name) > 4 and name.startswith("__") and name.endswith("__"):
        name = f"m{name}"  # a dunder: no suffix makes it ordinary
    while name in RESERVED or name in taken:
        name += "_"
    return name


def is_synthetic(name: str) -> bool:
    """Whether a field name is one this module made up (padding, anonymous members)."""
    return _SYNTHETIC.fullmatch(name) is not None


def visible_names(cls: Any) -> list[str]:
    """Every attribute name a record's instances expose for members: its fields, its
    bitfields, and (recursively) what its anonymous members promote."""
    names: list[str] = []
    fields = cls.__dict__.get("_fields_", ())
    anonymous = set(cls.__dict__.get("_anonymous_", ()))
    for field in fields:
        names.append(field[0])
        if field[0] in anonymous:
            names.extend(visible_names(field[1]))
    names.extend(cls.__dict__.get("_bitfields_", {}))
    return names


def _safe_class_name(t: Type) -> str:
    return re.sub(r"\W", "_", t.name, flags=re.ASCII) or f"anon_{t.kind.name.lower()}_{t.id}"


class CtypesBuilder:
    """Builds (and caches) ctypes types for one BTF."""

    def __init__(self, btf: Btf) -> None:
        self.btf = btf
        self._cache: dict[int, Any] = {}
        self._building: set[int] = set()

    def _error(self, t: Type, why: str) -> ObjectError:
        return ObjectError(f"{self.btf.name}: no ctypes type for {t.describe()} (id {t.id}): {why}")

    def ctype(self, type_id: int) -> Any:
        cached = self._cache.get(type_id)
        if cached is not None:
            return cached
        t = self.btf[type_id]
        if type_id in self._building:
            raise self._error(t, "it contains itself")
        self._building.add(type_id)
        try:
            result = self._build(t)
        finally:
            self._building.discard(type_id)
        if ctypes.sizeof(result) > MAX_SIZE:
            raise self._error(t, f"{ctypes.sizeof(result)} bytes is more than BTF can describe")
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
            element = self.ctype(t.type)
            if ctypes.sizeof(element) * t.nelems > MAX_SIZE:
                raise self._error(t, f"{t.nelems} elements is more than BTF can describe")
            return element * t.nelems
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
        taken = {m.name for m in t.members if m.name}
        for index, member in enumerate(t.members):
            if member.name:
                name = member_attribute(member.name, taken - {member.name})
            else:  # the type id keeps it apart from the names its members promote
                name = f"_anon{t.id}_{index}"
            taken.add(name)
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
        base = CStruct if t.kind == Kind.STRUCT else CUnion
        name = _safe_class_name(t)
        fields, anonymous, expected = self._fields(t)
        for pack in (None, 1):
            made = self._fit(base, name, fields, anonymous, pack, t, expected)
            if made is not None:
                return made
        if t.kind == Kind.STRUCT and any(m.bitfield_size for m in t.members):
            made = self._with_bit_properties(name, t, fields, anonymous, expected)
            if made is not None:
                return made
        cls = self._make(base, name, fields, anonymous, 1, t)
        culprit = self._first_mismatch(cls, t, expected)
        raise self._error(t, f"ctypes cannot lay out member {culprit!r} at its BTF offset")

    def _check_unique(
        self,
        t: Type,
        fields: list[tuple[Any, ...]],
        anonymous: list[str],
        bitfields: dict[str, BitField],
    ) -> set[str]:
        """The names a record's instances would see; refused if one comes twice: ctypes
        overwrites the first (a member silently unreachable) or, for an anonymous member,
        crashes the interpreter."""
        seen: set[str] = set()
        names: list[str] = [*bitfields]
        for field in fields:
            names.append(field[0])
            if field[0] in anonymous:
                names.extend(visible_names(field[1]))
        for name in names:
            if name in seen:
                raise self._error(
                    t, f"member name {name!r} appears twice (directly or through anonymous members)"
                )
            seen.add(name)
        return seen

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
            if last <= first:
                return None
            storage = f"_bits{t.id}_{first}"
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
        return self._fit(CStruct, name, plain, anonymous, 1, t, plain_expected, accessors)

    def _fit(
        self,
        base: Any,
        name: str,
        fields: list[tuple[Any, ...]],
        anonymous: list[str],
        pack: int | None,
        t: Type,
        expected: list[tuple[str, int, int]],
        bitfields: dict[str, BitField] | None = None,
    ) -> Any:
        """Insert padding before each member ctypes places too early, until all match.

        Over-aligned kernel members (``____cacheline_aligned``) and ``unsigned :0``
        bitfield breaks are invisible in BTF except as offsets; padding reproduces them.
        """
        fields = list(fields)
        positions = {entry[0]: entry for entry in expected}
        taken = self._check_unique(t, fields, anonymous, bitfields or {})
        for attempt in range(4 * len(fields) + 4):
            cls = self._make(base, name, fields, anonymous, pack, t, bitfields)
            if cls is None:
                return None
            culprit = self._first_mismatch(cls, t, expected)
            if culprit is None:
                return cls
            pad = f"_pad{t.id}_{attempt}"
            if pad in taken:
                raise self._error(t, f"member name {pad!r} is reserved for padding")
            if culprit == "(size)":
                missing = t.size - ctypes.sizeof(cls)
                if missing <= 0 or (base is CUnion and attempt > 0):
                    return None
                fields.append((pad, ctypes.c_uint8 * missing))
                continue
            _, want, bits = positions[culprit]
            got, _ = self._bit_position(cls, culprit, bits > 0)
            if got > want or base is CUnion:
                return None
            index = next(i for i, field in enumerate(fields) if field[0] == culprit)
            gap = want - got
            if bits:
                storage = fields[index][1]
                if gap >= 8 * ctypes.sizeof(storage):
                    fields.insert(index, (pad, ctypes.c_uint8 * (gap // 8)))
                else:
                    fields.insert(index, (pad, storage, gap))
            else:
                if gap % 8:
                    return None
                fields.insert(index, (pad, ctypes.c_uint8 * (gap // 8)))
        return None

    def _make(
        self,
        base: Any,
        name: str,
        fields: list[tuple[Any, ...]],
        anonymous: list[str],
        pack: int | None,
        t: Type,
        bitfields: dict[str, BitField] | None = None,
    ) -> Any:
        namespace: dict[str, Any] = {}
        if pack is not None:
            namespace["_pack_"] = pack
        if anonymous:
            namespace["_anonymous_"] = anonymous
        if bitfields:
            namespace["_bitfields_"] = bitfields
        namespace["_fields_"] = fields
        if sum(ctypes.sizeof(field[1]) for field in fields) > MAX_SIZE:
            raise self._error(t, "its members add up to more than BTF can describe")
        try:
            return type(name, (base,), namespace)
        except (TypeError, ValueError, AttributeError, OverflowError):
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
        taken: set[str] = set()
        for index, entry in enumerate(t.vars):
            var = self.btf[entry.type]
            if entry.offset > position:
                fields.append((f"_pad{t.id}_{index}", ctypes.c_uint8 * (entry.offset - position)))
            name = member_attribute(var.name, taken) if var.name else f"_anon{t.id}_{index}"
            taken.add(name)
            fields.append((name, self.ctype(entry.type)))
            position = entry.offset + entry.size
        if t.size > position:
            fields.append((f"_pad{t.id}_end", ctypes.c_uint8 * (t.size - position)))
        self._check_unique(t, fields, [], {})
        made = self._make(CStruct, _safe_class_name(t), fields, [], 1, t)
        if made is None or ctypes.sizeof(made) != t.size:
            raise self._error(t, "variables overlap or do not fit the section size")
        return made


def ctype(btf: Btf, type_id: int) -> Any:
    """A ctypes type with the size and member offsets BTF gives ``type_id``."""
    builder = btf.memo.get("ctypes builder")
    if builder is None:
        builder = btf.memo["ctypes builder"] = CtypesBuilder(btf)
    try:
        return builder.ctype(type_id)
    except RecursionError:
        raise ObjectError(f"{btf.name}: type id {type_id} is nested too deeply") from None
