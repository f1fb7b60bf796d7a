"""BTF as a C header, like ``bpftool btf dump format c``: a vmlinux.h.

The output compiles, and every struct has the layout BTF describes: definitions come
after what they contain by value, every named struct/union is forward-declared first (so
pointers never need ordering), anonymous types are written inline where they are used,
explicit padding and ``packed`` reproduce offsets the compiler would not choose itself,
and names that would collide in C get ``___N`` suffixes.
"""

from __future__ import annotations

from collections.abc import Iterable

from pylibbpf.btf.parse import Btf, referenced_ids
from pylibbpf.btf.types import INT_BOOL, Kind, Member, Type

_QUALIFIERS = {Kind.CONST: "const", Kind.VOLATILE: "volatile", Kind.RESTRICT: "restrict"}
_TAGGED = (Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.FWD)
_SKIPPED = (Kind.FUNC, Kind.VAR, Kind.DATASEC, Kind.DECL_TAG)
_PAD_UNITS = ((64, "long"), (32, "int"), (16, "short"), (8, "char"))
_ENUM_MODES = {1: "byte", 2: "HI", 8: "DI"}
# Typedefs the compiler defines itself (and differently for the BPF target).
_COMPILER_BUILTINS = frozenset({"__builtin_va_list"})

HEADER = """#ifndef __VMLINUX_H__
#define __VMLINUX_H__

#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)
#endif
"""
FOOTER = """
#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute pop
#endif

#endif /* __VMLINUX_H__ */
"""


class CDumper:
    """Writes BTF types as C declarations."""

    def __init__(self, btf: Btf) -> None:
        self.btf = btf
        self._names: dict[int, str] = {}
        self._enumerators: dict[tuple[int, int], str] = {}
        self._order: list[int] = []
        self._done: set[int] = set()
        self._in_progress: set[int] = set()
        self._assign_names()

    # ----------------------------------------------------------------- naming

    def _assign_names(self) -> None:
        """C names: struct/union/enum tags share one namespace; typedef names and
        enumerators share another. A later duplicate gets ``___2``, ``___3``…"""
        tags: dict[str, int] = {}
        idents: dict[str, int] = {}
        definitions: dict[str, int] = {}
        btf = self.btf

        def unique(pool: dict[str, int], name: str) -> str:
            count = pool.get(name, 0) + 1
            pool[name] = count
            return name if count == 1 else f"{name}___{count}"

        for t in btf:
            if t.kind in (Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64) and t.name:
                self._names[t.id] = unique(tags, t.name)
                if t.kind in (Kind.STRUCT, Kind.UNION):
                    definitions.setdefault(t.name, t.id)
            elif t.kind == Kind.TYPEDEF:
                self._names[t.id] = unique(idents, t.name)
            if t.kind in (Kind.ENUM, Kind.ENUM64):
                for index, value in enumerate(t.values):
                    self._enumerators[(t.id, index)] = unique(idents, value.name)
        for t in btf:
            if t.kind == Kind.FWD:
                # A forward declaration names the same C type as the definition, if any.
                target = definitions.get(t.name)
                self._names[t.id] = self._names[target] if target else unique(tags, t.name)

    def name_of(self, t: Type) -> str:
        return self._names.get(t.id, t.name)

    # ----------------------------------------------------------------- ordering

    def _order_type(self, type_id: int, by_value: bool) -> None:
        """Schedule definitions so each follows everything it contains by value."""
        t = self.btf[type_id]
        kind = t.kind
        if kind in (Kind.INT, Kind.FLOAT, Kind.UNKN, Kind.FWD) or kind in _SKIPPED:
            return
        if kind == Kind.PTR:
            self._order_type(t.type, False)
        elif kind == Kind.ARRAY:  # C needs complete element types, even behind a pointer
            self._order_type(t.type, True)
        elif kind in (Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPE_TAG):
            self._order_type(t.type, by_value)
        elif kind == Kind.FUNC_PROTO:
            self._order_type(t.type, False)
            for param in t.params:
                self._order_type(param.type, False)
        elif kind in (Kind.STRUCT, Kind.UNION):
            if not t.name:  # written inline wherever used: its contents are needed
                if type_id in self._in_progress:
                    return
                self._in_progress.add(type_id)
                for member in t.members:
                    self._order_type(member.type, True)
                self._in_progress.discard(type_id)
                return
            if not by_value or type_id in self._done or type_id in self._in_progress:
                return
            self._in_progress.add(type_id)
            for member in t.members:
                self._order_type(member.type, True)
            self._in_progress.discard(type_id)
            self._emit(type_id)
        elif kind in (Kind.ENUM, Kind.ENUM64):
            if t.name and type_id not in self._done:
                self._emit(type_id)
        elif kind == Kind.TYPEDEF:
            if t.name in _COMPILER_BUILTINS or type_id in self._in_progress:
                return
            self._in_progress.add(type_id)
            # Declaring the typedef needs only what its target needs to be *named*
            # (a named struct is already forward-declared); users by value then need
            # the target complete, which is ordered after the typedef itself.
            self._order_type(t.type, False)
            if type_id not in self._done:
                self._emit(type_id)
            if by_value:
                self._order_type(t.type, True)
            self._in_progress.discard(type_id)

    def _emit(self, type_id: int) -> None:
        self._done.add(type_id)
        self._order.append(type_id)

    # ----------------------------------------------------------------- declarations

    def declaration(self, type_id: int, declarator: str = "", indent: int = 0) -> str:
        """``type_id`` declared with ``declarator`` (a name, or '' for a bare type)."""
        btf = self.btf
        t = btf[type_id]
        kind = t.kind
        if kind == Kind.PTR:
            inner = "*" + declarator
            target = btf[t.type]
            while target.kind in (Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPE_TAG):
                target = btf[target.type]
            if target.kind in (Kind.ARRAY, Kind.FUNC_PROTO):
                inner = f"({inner})"
            return self.declaration(t.type, inner, indent)
        if kind == Kind.ARRAY:
            return self.declaration(t.type, f"{declarator}[{t.nelems}]", indent)
        if kind == Kind.FUNC_PROTO:
            params = [self.declaration(p.type, p.name, indent) for p in t.params]
            if params and t.params[-1].type == 0:
                params[-1] = "..."
            return self.declaration(t.type, f"{declarator}({', '.join(params) or 'void'})", indent)
        if kind in _QUALIFIERS:
            target = btf[t.type]
            while target.kind == Kind.TYPE_TAG:
                target = btf[target.type]
            if target.kind == Kind.PTR:  # qualifies the pointer itself
                return self.declaration(t.type, f"{_QUALIFIERS[kind]} {declarator}", indent)
            inner = self.declaration(t.type, declarator, indent)
            qualifier = _QUALIFIERS[kind]
            return inner if inner.startswith(qualifier + " ") else f"{qualifier} {inner}"
        if kind == Kind.TYPE_TAG:
            return self.declaration(t.type, declarator, indent)
        base = self._base_name(t, indent)
        if not declarator:
            return base
        return f"{base} {declarator}"

    def _base_name(self, t: Type, indent: int) -> str:
        kind = t.kind
        if kind == Kind.UNKN:
            return "void"
        if kind in (Kind.INT, Kind.FLOAT):
            return "_Bool" if kind == Kind.INT and t.encoding & INT_BOOL and not t.name else t.name
        if kind == Kind.TYPEDEF:
            return self.name_of(t)
        if kind == Kind.FWD:
            return f"{'union' if t.kind_flag else 'struct'} {self.name_of(t)}"
        if kind in (Kind.STRUCT, Kind.UNION):
            keyword = "struct" if kind == Kind.STRUCT else "union"
            if t.name:
                return f"{keyword} {self.name_of(t)}"
            return f"{keyword} {self._struct_body(t, indent)}"
        if kind in (Kind.ENUM, Kind.ENUM64):
            if t.name:
                return f"enum {self.name_of(t)}"
            return f"enum {self._enum_body(t, indent)}"
        raise ValueError(f"cannot declare a {kind.name}")

    # ----------------------------------------------------------------- bodies

    def _struct_body(self, t: Type, indent: int) -> str:
        pad = "\t" * (indent + 1)
        lines = ["{"]
        packed = self._is_packed(t)
        position = 0  # bits laid out so far
        for member in t.members:
            if t.kind == Kind.STRUCT:
                natural = self._natural_offset(member, position, packed)
                if member.bit_offset > natural:
                    lines += [pad + p for p in _padding(position, member.bit_offset)]
                    position = member.bit_offset
            text = self.declaration(member.type, member.name, indent + 1)
            if member.bitfield_size:
                text += f": {member.bitfield_size}"
            lines.append(f"{pad}{text};")
            width = member.bitfield_size or 8 * self._size(member.type)
            position = max(position, member.bit_offset + width)
        if t.kind == Kind.STRUCT:
            align = 1 if packed else self._align(t)
            natural_end = _round_up(position, 8 * align)
            if 8 * t.size > natural_end:
                lines += [pad + p for p in _padding(position, 8 * t.size)]
        else:
            widest = max((8 * self._size(m.type) for m in t.members), default=0)
            if 8 * t.size > _round_up(widest, 8 * self._align(t)):
                lines.append(f"{pad}char __pad[{t.size}];")
        lines.append("\t" * indent + "}" + (" __attribute__((packed))" if packed else ""))
        return "\n".join(lines)

    def _enum_body(self, t: Type, indent: int) -> str:
        pad = "\t" * (indent + 1)
        lines = ["{"]
        for index, value in enumerate(t.values):
            name = self._enumerators.get((t.id, index), value.name)
            literal = str(value.value)
            if t.kind == Kind.ENUM64 or not -(1 << 31) <= value.value < (1 << 31):
                literal += "LL" if value.value < 0 else "ULL"
            lines.append(f"{pad}{name} = {literal},")
        lines.append("\t" * indent + "}")
        body = "\n".join(lines)
        mode = _ENUM_MODES.get(t.size)
        if mode and not (t.size == 8 and t.kind == Kind.ENUM64):
            body += f" __attribute__((mode({mode})))"
        return body

    # ----------------------------------------------------------------- layout helpers

    def _size(self, type_id: int) -> int:
        try:
            return self.btf.sizeof(type_id)
        except Exception:
            return 0

    def _align(self, t_or_id: Type | int) -> int:
        type_id = t_or_id.id if isinstance(t_or_id, Type) else t_or_id
        try:
            return self.btf.alignof(type_id)
        except Exception:
            return 1

    def _natural_offset(self, member: Member, position: int, packed: bool) -> int:
        """Where a C compiler would put ``member`` after ``position`` bits."""
        if member.bitfield_size:
            unit = 8 * self._size(member.type) or 8
            if packed:
                return position
            start = position - position % unit
            return position if position + member.bitfield_size <= start + unit else start + unit
        align = 8 if packed else 8 * self._align(member.type)
        return _round_up(position, align)

    def _is_packed(self, t: Type) -> bool:
        if t.kind != Kind.STRUCT:
            return False
        max_align = 1
        for member in t.members:
            align = self._align(member.type)
            max_align = max(max_align, align)
            if not member.bitfield_size and member.bit_offset % (8 * align):
                return True
        return t.size % max_align != 0

    # ----------------------------------------------------------------- whole dumps

    def definition(self, type_id: int) -> str:
        t = self.btf[type_id]
        if t.kind == Kind.TYPEDEF:
            return f"typedef {self.declaration(t.type, self.name_of(t))};"
        if t.kind in (Kind.STRUCT, Kind.UNION):
            keyword = "struct" if t.kind == Kind.STRUCT else "union"
            return f"{keyword} {self.name_of(t)} {self._struct_body(t, 0)};"
        return f"enum {self.name_of(t)} {self._enum_body(t, 0)};".replace("enum  {", "enum {")

    def dump(self, type_ids: Iterable[int] | None = None) -> str:
        btf = self.btf
        roots = list(type_ids) if type_ids is not None else range(btf.first_id, btf.type_count)
        for type_id in roots:
            self._order_type(type_id, True)
        if type_ids is None:
            # Anonymous enums nobody uses carry constants (BPF_ANY...): emit them too.
            referenced = {ref for t in btf for ref in referenced_ids(t)}
            for t in btf:
                if t.kind in (Kind.ENUM, Kind.ENUM64) and not t.name and t.id not in referenced:
                    self._emit(t.id)
        forward = set()
        if type_ids is None:
            declared: Iterable[Type] = btf
        else:
            declared = {t.id: t for root in roots for t in btf.walk(root)}.values()
        for t in declared:
            if t.kind in (Kind.STRUCT, Kind.UNION, Kind.FWD) and t.name:
                keyword = "union" if t.kind == Kind.UNION or t.is_fwd_union else "struct"
                forward.add(f"{keyword} {self.name_of(t)};")
        out = [HEADER, *sorted(forward), ""]
        out += [self.definition(type_id) + "\n" for type_id in self._order]
        return "\n".join(out) + FOOTER


def _round_up(value: int, multiple: int) -> int:
    return value if multiple <= 1 else -(-value // multiple) * multiple


def _padding(start: int, end: int) -> list[str]:
    """Anonymous bitfields covering bits [start, end) — they add no alignment."""
    out = []
    position = start
    if position % 8:
        bits = min(8 - position % 8, end - position)
        out.append(f"char: {bits};")
        position += bits
    while position < end:
        for unit, name in _PAD_UNITS:
            if position % unit == 0 and end - position >= unit:
                out.append(f"{name}: {unit};")
                position += unit
                break
        else:
            bits = end - position
            out.append(f"char: {bits};")
            position += bits
    return out


def dump_c(btf: Btf, type_ids: Iterable[int] | None = None) -> str:
    """A C header declaring every type of ``btf`` (or those reachable from ``type_ids``)."""
    return CDumper(btf).dump(type_ids)
