"""The BTF type model: one immutable ``Type`` per record, with kind-specific parts.

One class for every kind (rather than nineteen) keeps the consumers — the encoder, the C
dumper, CO-RE, ctypes generation — simple: they switch on ``kind`` and read the parts
that kind has; the others stay empty.
"""

from __future__ import annotations

from enum import IntEnum

from ..records import dataclass


class Kind(IntEnum):
    """``BTF_KIND_*``: what a BTF type is."""

    UNKN = 0  # void (type id 0 only)
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19
    # Not a BTF kind number (those are 7 bits): a record of a kind this library does not
    # know, which the BTF's layout section let the parser skip (``OpaqueType``).
    OPAQUE = 0x80


MAX_KIND = Kind.ENUM64
# Kind numbers 0..MAX_KIND to their members: an index, where ``Kind(number)`` is a call
# into the enum machinery (it runs for every record a parse decodes).
KIND_BY_NUMBER: tuple[Kind, ...] = tuple(Kind)[: MAX_KIND + 1]
# The largest kind number a record's info word can hold (7 bits since Linux 7.1).
MAX_KIND_NUMBER = 0x7F
# The largest vlen (members, enumerators, parameters…) of one record: 24 bits since 7.1,
# 16 before (a kernel before 7.1 refuses the upper 8 bits).
MAX_VLEN = 0xFFFFFF
MAX_VLEN_BEFORE_7_1 = 0xFFFF


def kind_name(number: int) -> str:
    """``STRUCT`` for a kind this library knows, ``kind 40`` for one it does not."""
    return KIND_BY_NUMBER[number].name if 0 <= number <= MAX_KIND else f"kind {number}"


# Kinds whose third word is a size (the others refer to another type there).
SIZED_KINDS = frozenset(
    {Kind.INT, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.DATASEC, Kind.FLOAT, Kind.ENUM64}
)
# Modifiers that CO-RE and type resolution look through.
MODIFIER_KINDS = frozenset({Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG})
# Longest chain of by-value references accepted (``graph.py`` checks it). Real BTF stays
# far below it (vmlinux nests under 30); recursive consumers need about four Python frames
# per level.
MAX_NESTING = 100

INT_SIGNED = 1
INT_CHAR = 2
INT_BOOL = 4

LINKAGE_STATIC = 0
LINKAGE_GLOBAL = 1
LINKAGE_EXTERN = 2


@dataclass(frozen=True, slots=True)
class Member:
    """A struct/union member; ``bit_offset`` from the start, ``bitfield_size`` 0 if none."""

    name: str
    type: int
    bit_offset: int
    bitfield_size: int = 0


@dataclass(frozen=True, slots=True)
class EnumValue:
    """One enumerator of an ENUM or ENUM64."""

    name: str
    value: int


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a FUNC_PROTO (``type`` 0 with no name: ``...``)."""

    name: str
    type: int


@dataclass(frozen=True, slots=True)
class VarSecinfo:
    """Where a DATASEC holds one variable: its VAR type, offset and size."""

    type: int
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class Type:
    """One BTF type. ``size`` for sized kinds, ``type`` for kinds that refer to another."""

    id: int
    kind: Kind
    name: str = ""
    size: int = 0
    type: int = 0
    kind_flag: bool = False
    # INT
    encoding: int = 0
    bit_offset: int = 0
    bits: int = 0
    # ARRAY
    index_type: int = 0
    nelems: int = 0
    # STRUCT / UNION, ENUM / ENUM64, FUNC_PROTO, DATASEC
    members: tuple[Member, ...] = ()
    values: tuple[EnumValue, ...] = ()
    params: tuple[Param, ...] = ()
    vars: tuple[VarSecinfo, ...] = ()
    # FUNC (vlen) and VAR (extra word)
    linkage: int = 0
    # DECL_TAG: -1 for the whole type, else the member/param index
    component_idx: int = -1

    def __repr__(self) -> str:
        parts = [f"<Type {self.id} {self.kind.name}"]
        if self.name:
            parts.append(repr(self.name))
        if self.kind in SIZED_KINDS:
            parts.append(f"size={self.size}")
        elif self.kind != Kind.UNKN:
            parts.append(f"type={self.type}")
        vlen = len(self.members or self.values or self.params or self.vars)
        if vlen:
            parts.append(f"vlen={vlen}")
        return " ".join(parts) + ">"

    @property
    def signed(self) -> bool:
        """Signedness for INT (encoding) and ENUM/ENUM64 (kind_flag)."""
        if self.kind == Kind.INT:
            return bool(self.encoding & INT_SIGNED)
        return self.kind_flag

    @property
    def is_fwd_union(self) -> bool:
        """A forward declaration of a union (not of a struct)."""
        return self.kind == Kind.FWD and self.kind_flag

    def describe(self) -> str:
        """``struct task_struct``, ``int``, ``typedef u32``… for messages."""
        prefix = {
            Kind.STRUCT: "struct ",
            Kind.UNION: "union ",
            Kind.ENUM: "enum ",
            Kind.ENUM64: "enum ",
            Kind.FWD: "union " if self.kind_flag else "struct ",
            Kind.TYPEDEF: "typedef ",
        }.get(self.kind, "")
        name = self.name or "(anon)"
        if self.kind in (Kind.PTR, Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.ARRAY):
            return f"{self.kind.name.lower()} -> [{self.type}]"
        if self.kind == Kind.UNKN:
            return "void"
        return f"{prefix}{name}"


@dataclass(frozen=True, slots=True, repr=False)
class OpaqueType(Type):
    """A record of a kind this library does not know (``kind`` is ``Kind.OPAQUE``), kept
    word for word so the BTF re-encodes unchanged. The BTF's layout section said how long
    it is; what its words mean is unknown: ``size`` and ``type`` both hold its third word.
    """

    info: int = 0  # the record's info word as read: kind number, vlen, kind_flag
    raw: tuple[int, ...] = ()  # the words after the 3-word common header

    @property
    def kind_number(self) -> int:
        """The kind number the record carries (above ``MAX_KIND``)."""
        return (self.info >> 24) & MAX_KIND_NUMBER

    @property
    def vlen(self) -> int:
        """The record's vlen (how many elements follow its fixed part)."""
        return self.info & MAX_VLEN

    def describe(self) -> str:
        """``kind 40 name``: its kind number, as no name for it is known."""
        return f"{kind_name(self.kind_number)} {self.name or '(anon)'}"
