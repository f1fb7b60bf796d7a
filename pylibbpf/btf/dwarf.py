"""Types from DWARF for what clang leaves out of BTF.

clang's BTF holds the types a program's globals, maps and functions name; a type used only
through a pointer cast (``struct event *e = bpf_ringbuf_reserve(...)``, the usual ring
buffer record) is not there, but the object's DWARF (``-g``) has it. This converts one
named struct, union, enum or typedef, and everything it contains, from DWARF DIEs to BTF
records (as pahole does), so the ctypes layout code that works on BTF works on it too and
checks the result against the offsets DWARF gives. Pointers become pointers to void (a
number in user space); their targets are not followed. Pure: the object's bytes in.
"""

from __future__ import annotations

import io
from typing import Any

from ..errors import ObjectError
from .encode import encode
from .parse import Btf
from .types import INT_BOOL, INT_SIGNED, EnumValue, Kind, Member, Type

_NAMED = {
    "DW_TAG_structure_type": Kind.STRUCT,
    "DW_TAG_class_type": Kind.STRUCT,
    "DW_TAG_union_type": Kind.UNION,
    "DW_TAG_enumeration_type": Kind.ENUM,
    "DW_TAG_typedef": Kind.TYPEDEF,
}
_QUALIFIERS = {
    "DW_TAG_const_type": Kind.CONST,
    "DW_TAG_volatile_type": Kind.VOLATILE,
    "DW_TAG_restrict_type": Kind.RESTRICT,
}
_POINTERS = {"DW_TAG_pointer_type", "DW_TAG_reference_type", "DW_TAG_rvalue_reference_type"}
# DW_ATE_*: boolean 2, float 4, signed 5, signed_char 6, unsigned 7, unsigned_char 8
_SIGNED_ENCODINGS = {5, 6}
_MAX_MEMBERS = 0xFFFF  # a BTF record's vlen


def type_from_dwarf(data: bytes, name: str, what: str) -> tuple[Btf, int] | None:
    """A BTF made from the object's DWARF holding the struct, union, enum or typedef
    ``name`` and all it contains, and the type's id there; ``None`` when the object has no
    DWARF or no complete type of that name. ``ObjectError`` for DWARF that is corrupt."""
    from elftools.common.exceptions import ELFError

    try:
        from elftools.elf.elffile import ELFFile

        elf = ELFFile(io.BytesIO(data))
        if not elf.has_dwarf_info():
            return None
        # BPF objects are relocatable, but their DWARF relocations (REL, section symbols
        # at 0) leave the right values in place: no need for pyelftools to apply them.
        dwarf = elf.get_dwarf_info(relocate_dwarf_sections=False)
        die = _find(dwarf, name)
        if die is None:
            return None
        converter = _Converter(elf.little_endian)
        type_id = converter.convert(die)
        return Btf(encode(converter.types), name=f"{what} DWARF"), type_id
    except (ELFError, ObjectError, RecursionError) as error:
        raise ObjectError(f"{what}: cannot read type {name!r} from DWARF: {error}") from None
    except Exception as error:  # pyelftools raises many kinds on corrupt DWARF
        raise ObjectError(
            f"{what}: cannot read type {name!r} from DWARF: {type(error).__name__}: {error}"
        ) from None


_NAMED_KINDS = (Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.TYPEDEF)


def named_type(data: bytes, btf: Btf | None, name: str, what: str) -> tuple[Btf, int]:
    """The struct, union, enum or typedef ``name`` of an object (``data``, its ``btf``):
    from BTF, else from DWARF; ``ObjectError`` saying how to keep it when neither has it."""
    if btf is not None:
        matches = [t.id for t in btf.find_all(name) if t.kind in _NAMED_KINDS]
        if matches:
            return btf, matches[0]
    found = type_from_dwarf(data, name, what)
    if found is None:
        raise ObjectError(missing_type_hint(what, name, data))
    return found


def named_ctype(data: bytes, btf: Btf | None, name: str, what: str) -> Any:
    """A ctypes type for the object's type ``name`` (from BTF, else DWARF): what decodes
    a ring buffer record no map names."""
    type_btf, type_id = named_type(data, btf, name, what)
    return type_btf.ctype(type_id)


def missing_type_hint(what: str, name: str, data: bytes) -> str:
    """Why ``name`` is in neither BTF nor DWARF, and the one line of C that keeps it."""
    try:
        from elftools.elf.elffile import ELFFile

        has_dwarf = ELFFile(io.BytesIO(data)).has_dwarf_info()
    except Exception:  # not readable as ELF: the message below still holds
        has_dwarf = False
    where = (
        "nor in its DWARF"
        if has_dwarf
        else "and the object has no DWARF to fall back on (compiled without -g, or stripped)"
    )
    safe = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return (
        f"{what}: no struct, union, enum or typedef named {name!r} in its BTF, {where}. "
        "clang keeps a type the program uses only through a pointer cast (a ring buffer "
        "record from bpf_ringbuf_reserve()) out of BTF; one line in the BPF C source keeps "
        f"it: `struct {safe} *unused_{safe} __attribute__((unused));` "
        f"(`union {safe}`, `enum {safe}` or `{safe}` for a union, enum or typedef)"
    )


def _find(dwarf: Any, name: str) -> Any:
    """The first complete struct/union/enum/typedef DIE named ``name`` (top level first:
    types defined inside others are rare)."""
    wanted = name.encode("utf-8", "surrogateescape")
    nested = None
    for unit in dwarf.iter_CUs():
        for die in unit.iter_DIEs():
            if die.tag not in _NAMED or _name_bytes(die) != wanted:
                continue
            if "DW_AT_declaration" in die.attributes:
                continue
            if die.get_parent() is not None and die.get_parent().tag == "DW_TAG_compile_unit":
                return die
            nested = nested or die
    return nested


def _name_bytes(die: Any) -> bytes:
    attribute = die.attributes.get("DW_AT_name")
    value = attribute.value if attribute is not None else b""
    return value if isinstance(value, bytes) else str(value).encode()


def _name(die: Any) -> str:
    return _name_bytes(die).decode("utf-8", "surrogateescape")


def _int(die: Any, attribute: str, default: int = 0) -> int:
    found = die.attributes.get(attribute)
    if found is None:
        return default
    if not isinstance(found.value, int):
        raise ObjectError(f"DIE at {die.offset}: {attribute} is not a constant")
    return found.value


class _Converter:
    """DWARF DIEs -> BTF ``Type`` records, ids in the order first met."""

    def __init__(self, little_endian: bool) -> None:
        self.little_endian = little_endian
        self.types: list[Type] = []
        self._ids: dict[int, int] = {}  # DIE offset -> type id
        self._index_type = 0

    def _reserve(self) -> int:
        self.types.append(Type(0, Kind.UNKN))
        return len(self.types)

    def _set(self, type_id: int, t: Type) -> int:
        self.types[type_id - 1] = t
        return type_id

    def _target(self, die: Any) -> int:
        """The type id of what ``die`` refers to through DW_AT_type (0: void)."""
        if "DW_AT_type" not in die.attributes:
            return 0
        return self.convert(die.get_DIE_from_attribute("DW_AT_type"))

    def convert(self, die: Any) -> int:
        if die.offset in self._ids:
            return self._ids[die.offset]
        tag = die.tag
        if tag in _POINTERS:  # a number in user space; the target is not needed
            type_id = self._ids[die.offset] = self._reserve()
            return self._set(type_id, Type(type_id, Kind.PTR, type=0))
        if tag in ("DW_TAG_atomic_type", "DW_TAG_immutable_type", "DW_TAG_packed_type"):
            self._ids[die.offset] = target = self._target(die)
            return target
        type_id = self._ids[die.offset] = self._reserve()
        return self._set(type_id, self._record(type_id, die))

    def _record(self, type_id: int, die: Any) -> Type:
        tag = die.tag
        if tag == "DW_TAG_base_type":
            return self._base(type_id, die)
        if tag in _QUALIFIERS:
            return Type(type_id, _QUALIFIERS[tag], type=self._target(die))
        if tag == "DW_TAG_typedef":
            return Type(type_id, Kind.TYPEDEF, _name(die), type=self._target(die))
        if tag in ("DW_TAG_structure_type", "DW_TAG_class_type", "DW_TAG_union_type"):
            kind = Kind.UNION if tag == "DW_TAG_union_type" else Kind.STRUCT
            if "DW_AT_declaration" in die.attributes:
                return Type(type_id, Kind.FWD, _name(die), kind_flag=kind == Kind.UNION)
            return self._struct(type_id, die, kind)
        if tag == "DW_TAG_enumeration_type":
            return self._enum(type_id, die)
        if tag == "DW_TAG_array_type":
            return self._array(type_id, die)
        if tag == "DW_TAG_subroutine_type":
            return Type(type_id, Kind.FUNC_PROTO, type=0)  # no layout: refused by ctypes
        if tag == "DW_TAG_unspecified_type":
            return Type(type_id, Kind.FWD, _name(die))
        raise ObjectError(f"DIE at {die.offset}: {tag} is not a type pylibbpf can lay out")

    def _base(self, type_id: int, die: Any) -> Type:
        size = _int(die, "DW_AT_byte_size")
        encoding = _int(die, "DW_AT_encoding")
        if encoding == 4:  # float
            return Type(type_id, Kind.FLOAT, _name(die), size=size)
        # As clang's BTF: signedness only; ``char`` (by name) reads as text, ``unsigned
        # char``/``signed char`` as numbers.
        flags = INT_BOOL if encoding == 2 else INT_SIGNED if encoding in _SIGNED_ENCODINGS else 0
        return Type(type_id, Kind.INT, _name(die), size=size, encoding=flags, bits=8 * size)

    def _struct(self, type_id: int, die: Any, kind: Kind) -> Type:
        size = _int(die, "DW_AT_byte_size")
        members: list[Member] = []
        for child in die.iter_children():
            if child.tag != "DW_TAG_member":
                continue
            if len(members) >= _MAX_MEMBERS:
                raise ObjectError(f"DIE at {die.offset}: more members than BTF can hold")
            member_type = self._target(child)
            bits = _int(child, "DW_AT_bit_size")
            offset = 8 * self._location(child)
            if "DW_AT_data_bit_offset" in child.attributes:
                offset = _int(child, "DW_AT_data_bit_offset")
            elif bits and "DW_AT_bit_offset" in child.attributes:  # DWARF 2/3 bitfields
                storage = _int(child, "DW_AT_byte_size", 0) or self._size_of(child)
                from_msb = _int(child, "DW_AT_bit_offset")
                if self.little_endian:
                    offset += 8 * storage - from_msb - bits
                else:
                    offset += from_msb
            members.append(Member(_name(child), member_type, offset, bits))
        return Type(type_id, kind, _name(die), size=size, members=tuple(members))

    @staticmethod
    def _location(member: Any) -> int:
        found = member.attributes.get("DW_AT_data_member_location")
        if found is None:
            return 0
        if isinstance(found.value, int):
            return found.value
        expression = list(found.value)  # DWARF 2: DW_OP_plus_uconst <uleb128>
        if expression[:1] != [0x23]:
            raise ObjectError(f"DIE at {member.offset}: unsupported member location")
        value, shift = 0, 0
        for byte in expression[1:]:
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return value

    def _size_of(self, die: Any) -> int:
        """The byte size of the type a member has (for DWARF 2/3 bitfield storage)."""
        target = die.get_DIE_from_attribute("DW_AT_type")
        for _ in range(64):
            if "DW_AT_byte_size" in target.attributes:
                return _int(target, "DW_AT_byte_size")
            if "DW_AT_type" not in target.attributes:
                break
            target = target.get_DIE_from_attribute("DW_AT_type")
        raise ObjectError(f"DIE at {die.offset}: bitfield storage of unknown size")

    def _enum(self, type_id: int, die: Any) -> Type:
        size = _int(die, "DW_AT_byte_size", 4)
        values = []
        for child in die.iter_children():
            if child.tag == "DW_TAG_enumerator":
                values.append(EnumValue(_name(child), _int(child, "DW_AT_const_value")))
        signed = any(v.value < 0 for v in values)
        if "DW_AT_type" in die.attributes:
            underlying = die.get_DIE_from_attribute("DW_AT_type")
            while underlying.tag == "DW_TAG_typedef" and "DW_AT_type" in underlying.attributes:
                underlying = underlying.get_DIE_from_attribute("DW_AT_type")
            signed = signed or _int(underlying, "DW_AT_encoding") in _SIGNED_ENCODINGS
        if signed and size in (1, 2, 4, 8):  # a signed value some producers wrote unsigned
            top = 1 << (8 * size)
            values = [
                EnumValue(v.name, v.value - top if v.value >= top >> 1 else v.value) for v in values
            ]
        kind = Kind.ENUM64 if size == 8 else Kind.ENUM
        if len(values) > _MAX_MEMBERS:
            raise ObjectError(f"DIE at {die.offset}: more enumerators than BTF can hold")
        return Type(type_id, kind, _name(die), size=size, kind_flag=signed, values=tuple(values))

    def _array(self, type_id: int, die: Any) -> Type:
        """``int grid[2][3]``: one DIE with two subranges -> array(2) of array(3)."""
        element = self._target(die)
        counts = []
        for child in die.iter_children():
            if child.tag == "DW_TAG_subrange_type":
                if "DW_AT_count" in child.attributes:
                    counts.append(_int(child, "DW_AT_count"))
                elif "DW_AT_upper_bound" in child.attributes:
                    counts.append(
                        _int(child, "DW_AT_upper_bound") - _int(child, "DW_AT_lower_bound") + 1
                    )
                else:
                    counts.append(0)  # a flexible array member
        if not counts or any(not 0 <= count <= 0xFFFF_FFFF for count in counts):
            raise ObjectError(f"DIE at {die.offset}: array bounds BTF cannot hold")
        index = self._index()
        for count in reversed(counts[1:]):
            inner = self._reserve()
            self._set(inner, Type(inner, Kind.ARRAY, type=element, index_type=index, nelems=count))
            element = inner
        return Type(type_id, Kind.ARRAY, type=element, index_type=index, nelems=counts[0])

    def _index(self) -> int:
        """The index type BTF arrays name (clang's ``__ARRAY_SIZE_TYPE__``)."""
        if not self._index_type:
            self._index_type = self._reserve()
            self._set(
                self._index_type,
                Type(self._index_type, Kind.INT, "__ARRAY_SIZE_TYPE__", size=4, bits=32),
            )
        return self._index_type
