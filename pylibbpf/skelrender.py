"""ctypes record types rendered back as Python source, for generated skeletons.

The classes ``btf.ctype`` builds (and verifies against BTF, or DWARF) are the layouts; this
writes them out as ``class X(CStruct)`` blocks, each defined once and before its first
use, with annotations so mypy knows every member. Member names are C's: written as quoted
literals in ``_fields_``/``_anonymous_``/``_bitfields_`` (any text is safe there), and as
annotations only when ``skelsafe.is_ident`` accepts them; keywords get a ``_`` suffix
(``in`` -> ``in_``), unique among everything the record exposes.
"""

from __future__ import annotations

import ctypes
import keyword
import re
from typing import Any

from .btf.ctype import BitField, is_synthetic, member_attribute
from .errors import ObjectError
from .skelsafe import Ident, ident, is_ident, literal

SIMPLE: dict[Any, tuple[str, str]] = {  # ctypes type -> (source, annotation)
    ctypes.c_bool: ("ctypes.c_bool", "bool"),
    ctypes.c_char: ("ctypes.c_char", "bytes"),
    ctypes.c_float: ("ctypes.c_float", "float"),
    ctypes.c_double: ("ctypes.c_double", "float"),
    ctypes.c_longdouble: ("ctypes.c_longdouble", "float"),
}
for _bits in (8, 16, 32, 64):
    for _sign in ("", "u"):
        _name = f"c_{_sign}int{_bits}"
        SIMPLE[getattr(ctypes, _name)] = (f"ctypes.{_name}", "int")

# Names the generated module imports or its base classes define.
MODULE_NAMES = {
    "Any",
    "BitField",
    "CStruct",
    "CUnion",
    "ClassVar",
    "GlobalSection",
    "Link",
    "Map",
    "Program",
    "Skeleton",
    "SkeletonLinks",
    "SkeletonMaps",
    "SkeletonPrograms",
    "SkeletonStructOps",
    "base64",
    "ctypes",
    "enum",
}


def field_name(name: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """A C member name as a ctypes field: ``in`` and ``global`` get a trailing ``_``
    (ctypes fields are found by position, so the name is ours to choose), as does a name
    another member has already."""
    return member_attribute(f"{name}_" if keyword.iskeyword(name) else name, taken)


def camel(name: str) -> str:
    """``task_struct`` → ``TaskStruct``: a C name as a Python class name."""
    parts = [part for part in re.split(r"[^0-9A-Za-z]+", name) if part]
    text = "".join(part[0].upper() + part[1:] for part in parts) or "Anon"
    return f"T{text}" if text[0].isdigit() else text


def identifier(name: str, taken: set[str] | frozenset[str] = frozenset()) -> Ident:
    """A C or section name as a Python attribute: not a keyword, not a reserved name."""
    text = re.sub(r"[^0-9A-Za-z_]", "_", name).strip("_") or "anon"
    if text[0].isdigit():
        text = f"_{text}"
    while keyword.iskeyword(text) or text in taken:
        text += "_"
    return ident(text)


def annotation_line(name: Ident, annotation: str) -> str:
    """``name: annotation``, keeping C's names against the linters that would object."""
    codes = []
    if name.lower() != name and name.lstrip("_")[:1].islower():
        codes.append("N815")  # mixedCase in a class
    if name in ("l", "O", "I"):
        codes.append("E741")
    return f"{name}: {annotation}" + (f"  # noqa: {', '.join(codes)}" if codes else "")


class Names:
    """Unique module-level class names."""

    def __init__(self) -> None:
        self.taken = set(MODULE_NAMES)

    def claim(self, wanted: str) -> Ident:
        name, counter = wanted, 2
        while name in self.taken or keyword.iskeyword(name):
            name, counter = f"{wanted}{counter}", counter + 1
        self.taken.add(name)
        return ident(name)


def fields_tuple(entries: list[str]) -> list[str]:
    """``_fields_`` as a tuple (immutable: no ruff RUF012), laid out as ruff formats it."""
    if len(entries) == 1 and len(line := f"    _fields_ = ({entries[0]},)") <= 88:
        return [line]
    if not entries:
        return ["    _fields_ = ()"]
    return ["    _fields_ = (", *(f"        {entry}," for entry in entries), "    )"]


def _literals(names: list[str], indent: str) -> list[str]:
    """A tuple of string literals, one per line when several (ruff's magic trailing comma)."""
    if len(names) == 1:
        return [f"({literal(names[0])},)"]
    return ["(", *(f"{indent}    {literal(name)}," for name in names), f"{indent})"]


class Renderer:
    """ctypes types → source, with each structure defined once, before its first use."""

    def __init__(self, names: Names) -> None:
        self.names = names
        self.defined: dict[Any, Ident] = {}
        # record -> [(name in the generated class, ctypes type or None for a bitfield)]
        self.members: dict[Any, list[tuple[str, Any]]] = {}
        self.blocks: list[str] = []

    def source(self, ctype: Any) -> str:
        if ctype in SIMPLE:
            return SIMPLE[ctype][0]
        if issubclass(ctype, ctypes.Array):
            return f"{self.source(ctype._type_)} * {int(ctype._length_)}"
        return self.define(ctype)

    def element_type(self, ctype: Any) -> str:
        """The ctypes class as a typing expression (``ctypes.Array[ctypes.c_uint32]``)."""
        if ctype in SIMPLE:
            return SIMPLE[ctype][0]
        if issubclass(ctype, ctypes.Array):
            return f"ctypes.Array[{self.element_type(ctype._type_)}]"
        return self.define(ctype)

    def annotation(self, ctype: Any) -> str:
        """What reading a member of this type gives back in Python."""
        if ctype is None:
            return "int"  # a bitfield
        if ctype in SIMPLE:
            return SIMPLE[ctype][1]
        if issubclass(ctype, ctypes.Array) and ctype._type_ is ctypes.c_char:
            return "bytes"
        return self.element_type(ctype)

    def define(self, record: Any) -> Ident:
        if record in self.defined:
            return self.defined[record]
        if not issubclass(record, ctypes.Structure | ctypes.Union):
            raise ObjectError(f"no source form for ctypes type {record!r}")
        fields = list(record._fields_)
        sources = [self.source(field[1]) for field in fields]  # inner records first
        name = self.names.claim(camel(record.__name__))
        self.defined[record] = name
        anonymous = list(record.__dict__.get("_anonymous_", ()))
        bitfields: dict[str, BitField] = dict(record.__dict__.get("_bitfields_", {}))
        renamed = self._rename(record, fields, anonymous, bitfields)
        base = "CUnion" if issubclass(record, ctypes.Union) else "CStruct"
        lines = [f"class {name}({base}):"]
        if "_pack_" in record.__dict__:
            lines.append(f"    _pack_ = {int(record._pack_)}")
        if anonymous:
            lines.append("    _anonymous_ = " + "\n".join(_literals(anonymous, "    ")))
        entries = []
        for field, source in zip(fields, sources, strict=True):
            bits = f", {int(field[2])}" if len(field) > 2 else ""
            entries.append(f"({literal(renamed[field[0]])}, {source}{bits})")
        lines.extend(fields_tuple(entries))
        if bitfields:
            lines.append("    _bitfields_: ClassVar[dict[str, BitField]] = {")
            for bit_name, accessor in bitfields.items():
                lines.append(
                    f"        {literal(renamed[bit_name])}: BitField({literal(accessor.storage)}, "
                    f"{int(accessor.shift)}, {int(accessor.bits)}, {bool(accessor.signed)}),"
                )
            lines.append("    }")
        lines.extend(f"    {line}" for line in self._annotations(record))
        self.blocks.append("\n".join(lines))
        return name

    def _rename(
        self,
        record: Any,
        fields: list[tuple[Any, ...]],
        anonymous: list[str],
        bitfields: dict[str, BitField],
    ) -> dict[str, str]:
        """C member name -> the name in the generated class, recording the members."""
        promoted: list[str] = []
        for field in fields:
            if field[0] in anonymous:
                promoted.extend(self._visible(field[1]))
        if len(set(promoted)) != len(promoted):
            raise ObjectError(f"{record.__name__}: anonymous members expose one name twice")
        taken = set(promoted)
        renamed: dict[str, str] = {}
        members: list[tuple[str, Any]] = []
        storage = {accessor.storage for accessor in bitfields.values()}
        for field in fields:
            c_name = field[0]
            keep = is_synthetic(c_name) or c_name in storage
            renamed[c_name] = c_name if keep else field_name(c_name, taken)
            taken.add(renamed[c_name])
            members.append((renamed[c_name], field[1] if len(field) == 2 else ctypes.c_int))
        for c_name in bitfields:
            renamed[c_name] = field_name(c_name, taken)
            taken.add(renamed[c_name])
            members.append((renamed[c_name], None))
        self.members[record] = members
        return renamed

    def _visible(self, record: Any) -> list[str]:
        """The generated names a record's instances expose, with what anonymous members
        promote."""
        anonymous = set(record.__dict__.get("_anonymous_", ()))
        names = []
        for name, ctype in self.members[record]:
            names.append(name)
            if name in anonymous:
                names.extend(self._visible(ctype))
        return names

    def _annotations(self, record: Any) -> list[str]:
        lines = []
        anonymous = set(record.__dict__.get("_anonymous_", ()))
        for name, ctype in self.members[record]:
            if name in anonymous:  # ctypes promotes the members of anonymous members
                lines.extend(self._annotations(ctype))
            elif not is_synthetic(name) and is_ident(name):
                lines.append(annotation_line(Ident(name), self.annotation(ctype)))
        return lines
