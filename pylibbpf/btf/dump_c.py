"""BTF as a C header, like ``bpftool btf dump format c``: a vmlinux.h.

The output compiles, and every struct has the layout BTF describes: definitions come
after what they contain by value, every named struct/union is forward-declared first (so
pointers never need ordering), anonymous types are written inline where they are used,
explicit padding and ``packed`` reproduce offsets the compiler would not choose itself,
and names that would collide in C get ``___N`` suffixes.

Speed: vmlinux has ~130k types, most of them functions the header never shows. The
dumper reads raw records (``records.Records``) instead of decoding a ``Type`` per id,
memoises every per-type answer (declaration prefix/suffix, what a struct body needs of a
member's type), and orders definitions (``c_order``) with a memo of finished
traversals, so each type is worked on about once. For the running kernel's BTF, what
depends on its content alone is kept across processes (``tables``): the order of the
definitions and of the forward declarations, which bodies need no padding or
``packed``, and which named types (and pointers to them) a dump declares.
"""

from __future__ import annotations

import functools
import operator
from array import array
from collections.abc import Callable, Iterable, Sequence
from itertools import compress, repeat

from ..errors import ObjectError
from ..gcpause import gc_paused
from . import tables
from .c_layout import MemberFacts, bitfield_members, is_packed, padding, round_up
from .c_names import c_names
from .parse import Btf, referenced_ids
from .records import (
    ARRAY,
    CONST,
    ENUM,
    ENUM64,
    FLOAT,
    FUNC_PROTO,
    FWD,
    INT,
    MAX_HOPS,
    PTR,
    RESTRICT,
    STRUCT,
    TYPE_TAG,
    TYPEDEF,
    UNION,
    VOID,
    VOLATILE,
    Records,
)
from .types import INT_BOOL, Type, kind_name

_QUALIFIERS = {CONST: "const", VOLATILE: "volatile", RESTRICT: "restrict"}
_POINTER_QUALIFIERS = frozenset({CONST, VOLATILE, RESTRICT, TYPE_TAG})
_ENUM_MODES = {1: "byte", 2: "HI", 8: "DI"}

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

Decl = tuple[str, str, bool]  # (prefix, suffix, declarator-is-wrapped): see CDumper._decl
# Bounds on the C written: anonymous types are written out inline at each use, so BTF
# that nests shared anonymous types doubles the text per level. vmlinux's header is
# 3 MiB, its struct bodies 1.9 MiB in all (memoised ones once), the largest 17 KiB.
MAX_DEFINITION = 1 << 20  # one struct or union body
MAX_BODIES = 32 << 20  # every body written, inline ones included
MAX_HEADER = 32 << 20
PIECE = 1 << 16  # what ``CDumper.write`` hands on at a time, about (in characters)
_ESTIMATE, _SIZE8 = operator.itemgetter(7), operator.itemgetter(1)
_PREFIX, _WRAPPED = operator.itemgetter(0), operator.itemgetter(2)
TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import TypeVar

    _T = TypeVar("_T")
# Tables a dump derives from the BTF's content alone (``tables``): that every type checked
# out, the order of the definitions (both for a dump of all types), and the C names. Bump
# a table's version with any change to what derives it.
CHECKED_TABLE, ORDER_TABLE = "checked-1", "c-order-1"  # (and c_names.NAMES_TABLE)
# And which struct and union bodies are plain (``CDumper._struct_body``): a byte per type
# id, 0 or ``PLAIN`` | the exact alignment (0 for none).
LAYOUT_TABLE, PLAIN = "c-layout-1", 0x80
FORWARD_TABLE = "c-forward-1"  # the forward declarations' order (``_forward_of_all``)
NAMED_TABLE = "c-named-2"  # the named types a whole dump declares (``_declare_named``)
_KEYWORDS = {STRUCT: "struct ", UNION: "union ", ENUM: "enum ", ENUM64: "enum ", TYPEDEF: ""}


class CDumper:
    """Writes BTF types as C declarations."""

    def __init__(self, btf: Btf, records: Records | None = None) -> None:
        self.btf = btf
        self._raw = records if records is not None else Records(btf, type_strings_only=True)
        self._kinds, self._refs = self._raw.kinds, self._raw.refs
        self._words_of, self._starts = self._raw.words_of, self._raw.starts
        self._string = self._raw.strings.__getitem__
        # C names (``c_names``): of types that have one, and of enums' enumerators.
        self._names, self._enumerators = c_names(btf, self._raw)
        self._decls: dict[int, Decl] = {}
        self._member_facts: dict[int, dict[int, MemberFacts]] = {}  # by indent, type id
        self._current = 0  # the type being worked on, for error messages
        self._bodies_written = 0  # bytes of struct bodies, against MAX_BODIES
        # Which bodies are plain (``LAYOUT_TABLE``): as an earlier process found, or as
        # found here (a split BTF's ids count its base's too: found here alone).
        kept = tables.cached(btf, LAYOUT_TABLE) if btf.base is None else None
        self._layouts_kept = kept is not None and len(kept) == len(self._kinds)
        self._layouts = bytearray(len(self._kinds))
        if kept is not None and self._layouts_kept:
            self._layouts[:] = kept

    # ----------------------------------------------------------------- naming

    def name_of(self, t: Type) -> str:
        return self._names.get(t.id, t.name)

    def _c_name(self, type_id: int) -> str:
        name = self._names.get(type_id)
        return name if name is not None else self._raw.name(type_id)

    # ----------------------------------------------------------------- declarations

    def declaration(self, type_id: int, declarator: str = "", indent: int = 0) -> str:
        """``type_id`` declared with ``declarator`` (a name, or '' for a bare type)."""
        return self._guarded(lambda: self._declare(type_id, declarator, indent))

    def _declare(self, type_id: int, declarator: str, indent: int) -> str:
        prefix, suffix, wrapped = self._decls.get(type_id) or self._decl(type_id, indent)
        if wrapped:
            return prefix + declarator + suffix
        return f"{prefix} {declarator}" if declarator else prefix

    def _decl(self, type_id: int, indent: int) -> Decl:
        """A declaration as ``prefix + declarator + suffix`` when the type wraps the
        declarator (pointers, arrays, functions, qualified pointers); otherwise the bare
        type, joined to a declarator with a space.

        Memoised by type id alone when the text has no body in it (no line break): only
        bodies written inline depend on ``indent``; others by type id and indent. (The
        memo by type id is looked up before each call, not in it: a call costs more than
        a miss.)"""
        decls = self._decls
        key = type_id | (indent + 1) << 32
        cached = decls.get(key)
        if cached is not None:
            return cached
        kinds, refs = self._kinds, self._refs
        kind = kinds[type_id]
        result: Decl
        if kind == PTR:
            target = refs[type_id]
            if kinds[target] in _POINTER_QUALIFIERS:
                target = self._skip(target, _POINTER_QUALIFIERS)
            left, right = ("(*", ")") if kinds[target] in (ARRAY, FUNC_PROTO) else ("*", "")
            inner = refs[type_id]
            prefix, suffix, wrapped = decls.get(inner) or self._decl(inner, indent)
            if wrapped:
                result = (prefix + left, right + suffix, True)
            else:
                result = (f"{prefix} {left}", right, True)
        elif kind == ARRAY:
            element, _, count = self._raw.arrays[type_id]
            result = _wrap(decls.get(element) or self._decl(element, indent), f"[{count}]")
        elif kind == FUNC_PROTO:
            words, at = self._words_of[type_id], self._starts[type_id]
            end = at + 3 + 2 * (words[at + 1] & 0xFFFFFF)
            types = words[at + 4 : end : 2]  # (the parameters: name and type, in pairs)
            names = map(self._string, words[at + 3 : end : 2])
            texts = []
            for pname, ptype in zip(names, types, strict=False):  # (pairs: as many)
                prefix, suffix, wrapped = decls.get(ptype) or self._decl(ptype, indent)
                if wrapped:  # (as _declare would: one call less a parameter)
                    texts.append(prefix + pname + suffix)
                else:
                    texts.append(f"{prefix} {pname}" if pname else prefix)
            if types and types[-1] == 0:
                texts[-1] = "..."
            arguments = f"({', '.join(texts) or 'void'})"
            inner = refs[type_id]
            result = _wrap(decls.get(inner) or self._decl(inner, indent), arguments)
        elif kind in _QUALIFIERS:
            qualifier = _QUALIFIERS[kind]
            inner = refs[type_id]
            prefix, suffix, wrapped = decls.get(inner) or self._decl(inner, indent)
            if kinds[self._skip(refs[type_id], (TYPE_TAG,))] == PTR:
                # Qualifies the pointer itself: ``int *const p``.
                if wrapped:
                    result = (f"{prefix}{qualifier} ", suffix, True)
                else:
                    result = (f"{prefix} {qualifier} ", "", True)
            elif prefix.startswith(qualifier + " "):
                result = (prefix, suffix, wrapped)
            else:
                result = (f"{qualifier} {prefix}", suffix, wrapped)
        elif kind == TYPE_TAG:
            inner = refs[type_id]
            result = decls.get(inner) or self._decl(inner, indent)
        else:
            result = (self._base_name(type_id, indent), "", False)
        if "\n" in result[0] or "\n" in result[1]:
            decls[key] = result
        else:
            decls[type_id] = result
        return result

    def _declare_named(self) -> bool:
        """Memoise the bare declarations (``struct task_struct``) of named structs,
        unions, enums and typedefs at once: made in bulk, one costs a tenth of a ``_decl``
        call. Those a whole dump of this BTF's content used in an earlier process
        (``NAMED_TABLE``: 40 % of vmlinux's), and the pointers to them it used (``struct
        task_struct *``), else every named one; but False for a BTF with a store and no
        such table yet: the dump declares them as met, then ``_keep_named``."""
        kept = tables.cached(self.btf, NAMED_TABLE) if self.btf.base is None else None
        if kept is not None and len(kept) >= 4 and not len(kept) % 4:
            ids = array("I")
            ids.frombytes(kept)
            named, pointers = ids[1 : 1 + ids[0]], ids[1 + ids[0] :]
            fits = max(ids[1:], default=0) < len(self._kinds)  # (ids of this BTF's types)
            if fits and all(map(_KEYWORDS.__contains__, map(self._kinds.__getitem__, named))):
                self._declare_bulk(named)
                self._declare_pointers(pointers)
                return True
        if self.btf.base is None and tables.STORE in self.btf.memo:
            return False
        self._declare_bulk(self._raw.own_ids(_KEYWORDS))
        return True

    def _declare_bulk(self, ids: Sequence[int]) -> None:
        """``_declare_named`` for ``ids`` (each a kind of ``_KEYWORDS``), less those
        without a C name (anonymous)."""
        c_names = list(map(self._names.get, ids))  # (None or '' when anonymous)
        keywords = compress(map(_KEYWORDS.__getitem__, map(self._kinds.__getitem__, ids)), c_names)
        texts = map(operator.add, keywords, filter(None, c_names))
        named = zip(texts, repeat(""), repeat(False))  # (as many as the names)
        self._decls.update(zip(compress(ids, c_names), named, strict=False))

    def _declare_pointers(self, ids: Sequence[int]) -> None:
        """``_decl`` of pointers (``ids``) to types declared already, unwrapped, in bulk:
        ``_decl`` makes each ``prefix + " *"``; and their ``_facts`` at indent 1. (None of
        them, if one is not such a pointer.)"""
        decls, kinds = self._decls, self._kinds
        targets = list(map(decls.get, map(self._refs.__getitem__, ids)))
        if (
            None in targets
            or not all(map(PTR.__eq__, map(kinds.__getitem__, ids)))
            or any(map(_WRAPPED, targets))  # type: ignore[arg-type]
        ):
            return
        texts = list(map(operator.add, map(_PREFIX, targets), repeat(" *")))  # type: ignore[arg-type]
        decls.update(zip(ids, zip(texts, repeat(""), repeat(True)), strict=False))
        # And what ``_facts`` makes of each as a member's type at indent 1 (most are).
        lefts = list(map("\t".__add__, texts))
        lines = list(map(operator.add, lefts, repeat(";")))
        estimates = map(operator.add, map(len, lefts), map(len, lines))
        bits, empty = repeat(64), repeat("")  # (align8 and size8 alike; no suffix)
        facts = zip(bits, bits, lefts, repeat(";"), lines, repeat(8), empty, estimates)
        self._member_facts.setdefault(1, {}).update(zip(ids, facts, strict=False))

    def _keep_named(self) -> None:
        """Keep the ids of the named types whose bare declaration this whole dump made
        (``_declare_named``), then of the pointers to them it declared."""
        decls, refs = self._decls, self._refs
        named = [i for i in self._raw.own_ids(_KEYWORDS) if i in decls]
        declared = set(named)
        pointers = [
            i
            for i in self._raw.own_ids((PTR,))
            if i in decls and refs[i] in declared and not decls[refs[i]][2]
        ]
        table = array("I", [len(named), *named, *pointers])
        tables.keep(self.btf, NAMED_TABLE, table.tobytes())

    def _skip(self, type_id: int, kinds: Iterable[int]) -> int:
        """The first type along ``type_id``'s chain whose kind is not in ``kinds``."""
        all_kinds, refs = self._kinds, self._refs
        for _ in range(MAX_HOPS):
            if all_kinds[type_id] not in kinds:
                return type_id
            type_id = refs[type_id]
        raise ObjectError(f"{self.btf.name}: modifier loop at type id {type_id}")

    def _base_name(self, type_id: int, indent: int) -> str:
        kind, raw = self._kinds[type_id], self._raw
        if kind == VOID:
            return "void"
        if kind in (INT, FLOAT):
            name = raw.name(type_id)
            if kind == INT and not name and raw.int_encoding(type_id) & INT_BOOL:
                return "_Bool"
            return name
        c_name = self._names.get(type_id)  # (a typedef's, struct's, union's, enum's or FWD's)
        if kind == TYPEDEF:
            return self._c_name(type_id) if c_name is None else c_name
        if kind == FWD:
            return f"{'union' if raw.kind_flag(type_id) else 'struct'} {self._c_name(type_id)}"
        if kind in (STRUCT, UNION):
            keyword = "struct" if kind == STRUCT else "union"
            if c_name:  # (a named one has a C name; an anonymous one none, or '' from a base)
                return f"{keyword} {c_name}"
            if raw.name(type_id):
                return f"{keyword} {self._c_name(type_id)}"
            return f"{keyword} {self._struct_body(type_id, indent)}"
        if kind in (ENUM, ENUM64):
            if raw.name(type_id):
                return f"enum {self._c_name(type_id)}"
            return f"enum {self._enum_body(type_id, indent)}"
        raise ObjectError(
            f"{self.btf.name}: type id {type_id} is a {kind_name(kind)}, which cannot be "
            f"the type of anything (met while writing type id {self._current})"
        )

    # ----------------------------------------------------------------- bodies

    def _struct_body(self, type_id: int, indent: int) -> str:
        """The braces and members of a struct or union, with the padding and ``packed``
        that reproduce BTF's offsets. The hot loop of a dump (vmlinux has ~70k members):
        what it needs of each member's type comes from one memo (``_facts``), and members
        without bitfields (most) take a loop of their own. A body found plain (no padding,
        bitfields or ``packed``: 93 % of vmlinux's), in this process or an earlier one
        (``LAYOUT_TABLE``), is its member lines alone."""
        raw = self._raw
        words, at = self._words_of[type_id], self._starts[type_id]
        info = words[at + 1]
        # The members' words (name, type, offset) as ints, each made once: the offsets
        # are read twice, and a strided slice of the words costs more than one of a list.
        member_words = words[at + 3 : at + 3 + 3 * (info & 0xFFFFFF)].tolist()
        known = self._member_facts.get(indent + 1)
        if known is None:
            known = self._member_facts[indent + 1] = {}
        member_types = member_words[1::3]
        found = list(map(known.get, member_types))
        if None in found:  # types not met yet at this indent (no exception: they cost)
            members = [
                known.get(member_type) or self._facts(member_type, indent + 1, known)
                for member_type in member_types
            ]
        else:
            members = found  # type: ignore[assignment]  # (no None in it)
        # Each member is written with its ``left`` or its unnamed line: bound the body
        # before building it (an anonymous type used by value may be large and shared).
        estimate = sum(map(_ESTIMATE, members))
        self._bodies_written += estimate
        if estimate > MAX_DEFINITION or self._bodies_written > MAX_BODIES:
            raise ObjectError(
                f"{self.btf.name}: type id {type_id} would take more C than a dump writes "
                f"({MAX_DEFINITION >> 20} MiB a body, {MAX_BODIES >> 20} MiB in all): "
                "anonymous types written out inline at every use, nested (met while "
                f"writing type id {self._current})"
            )
        names = map(self._string, member_words[::3])
        layout = self._layouts[type_id]
        if layout:  # plain (most): no padding, bitfields or ``packed`` to work out
            raw.exact_aligns.setdefault(type_id, layout & ~PLAIN or None)
            lines = [
                f"{facts[2]}{name}{facts[3]}" if name else facts[4]
                for name, facts in zip(names, members, strict=True)
            ]
            lines.append("\t" * indent + "}")
            return "{\n" + "\n".join(lines)
        return self._laid_out_body(type_id, indent, info, member_words[2::3], names, members)

    def _laid_out_body(
        self,
        type_id: int,
        indent: int,
        info: int,
        offsets: list[int],
        names: Iterable[str],
        members: list[MemberFacts],
    ) -> str:
        """``_struct_body`` for a body not known to be plain: each member where BTF
        puts it, and whether the body is plain, for the next."""
        raw = self._raw
        has_bitfields = bool(info >> 31)
        is_struct = self._kinds[type_id] == STRUCT
        size = self._refs[type_id]
        # (A loop: a body has 6 members on average, too few for passes in C.)
        packed, exact_align = is_packed(members, offsets, has_bitfields, size)
        packed &= is_struct  # (a union's members all start at its start)
        # The alignment Records.align would find walking the members again.
        exact_align = raw.exact_aligns.setdefault(type_id, exact_align)
        pad = "\t" * (indent + 1)
        lines = ["{"]
        plain = not packed and not has_bitfields  # (and no padding: counted below)
        if not is_struct and not has_bitfields:  # a union: no positions to keep
            lines += [
                f"{facts[2]}{name}{facts[3]}" if name else facts[4]
                for name, facts in zip(names, members, strict=True)
            ]
        elif not has_bitfields:
            position = 0  # bits laid out so far
            for name, facts, bit_offset in zip(names, members, offsets, strict=True):
                if bit_offset != position:  # (right after the last: no padding)
                    align8 = 8 if packed else facts[0]
                    # Where a C compiler would put the member after ``position`` bits.
                    if bit_offset > (position + align8 - 1) // align8 * align8:
                        taken = functools.partial(raw.member_names, type_id)
                        lines += [pad + p for p in padding(position, bit_offset, taken)]
                        position = bit_offset
                        plain = False
                lines.append(f"{facts[2]}{name}{facts[3]}" if name else facts[4])
                end = bit_offset + facts[1]
                if end > position:
                    position = end
        else:
            taken = functools.partial(raw.member_names, type_id)
            position = bitfield_members(
                is_struct, names, members, offsets, packed, lines, pad, taken
            )
        if is_struct:
            align8 = 8 if packed else 8 * (exact_align or 1)  # (raw.align)
            if 8 * size > -(-position // align8) * align8:
                taken = functools.partial(raw.member_names, type_id)
                lines += [pad + p for p in padding(position, 8 * size, taken)]
                plain = False
        else:
            widest = max(map(_SIZE8, members), default=0)
            if 8 * size > round_up(widest, 8 * (exact_align or 1)):  # (raw.align)
                lines.append(f"{pad}char __pad[{size}];")
                plain = False
        if plain and (exact_align or 0) < PLAIN:
            self._layouts[type_id] = PLAIN | (exact_align or 0)
        lines.append("\t" * indent + "}" + (" __attribute__((packed))" if packed else ""))
        return "\n".join(lines)

    def _facts(self, type_id: int, indent: int, known: dict[int, MemberFacts]) -> MemberFacts:
        """What a struct body needs to know of a member's type at ``indent``, memoised:
        8 x its alignment (8 if none) and its size in bits (0 if none), the text that goes
        before and after a member name (with the indent and the ';'), and the member
        without a name; then the exact alignment (None if none), the suffix alone, and
        what a member of it adds to a body at most. Kept in ``known``, the memo for
        ``indent``."""
        raw = self._raw
        prefix, suffix, wrapped = self._decls.get(type_id) or self._decl(type_id, indent)
        pad = "\t" * indent
        left = pad + prefix if wrapped else f"{pad}{prefix} "
        bare_line = f"{pad}{prefix}{suffix};" if wrapped else f"{pad}{prefix};"
        exact_align: int | None
        kind = self._kinds[type_id]
        if kind == PTR:  # (the most common member type)
            align8, size8, exact_align = 64, 64, 8
        elif kind in (STRUCT, UNION):  # (their third word is their size)
            exact_align = raw.exact_align(type_id)
            align8, size8 = 8 * (exact_align or 1), 8 * self._refs[type_id]
        else:
            exact_align = raw.exact_align(type_id)
            align8, size8 = 8 * (exact_align or 1), 8 * raw.size(type_id)
        facts = (
            align8,
            size8,
            left,
            suffix + ";",
            bare_line,
            exact_align,
            suffix,
            len(left) + len(bare_line),
        )
        known[type_id] = facts
        return facts

    def _enum_body(self, type_id: int, indent: int) -> str:
        pad = "\t" * (indent + 1)
        lines = ["{"]
        is_enum64 = self._kinds[type_id] == ENUM64
        names = self._enumerators.get(type_id)
        if names is None:  # (none renamed, or a base's enum)
            names, values = self._raw.enum_members(type_id)
        else:
            values = self._raw.enum_numbers(type_id)
        for name, value in zip(names, values, strict=True):
            if is_enum64 or not -(1 << 31) <= value < (1 << 31):
                lines.append(f"{pad}{name} = {value}{'LL' if value < 0 else 'ULL'},")
            else:
                lines.append(f"{pad}{name} = {value},")
        lines.append("\t" * indent + "}")
        body = "\n".join(lines)
        size = self._refs[type_id]
        mode = _ENUM_MODES.get(size)
        if mode and not (size == 8 and is_enum64):
            body += f" __attribute__((mode({mode})))"
        return body

    # ----------------------------------------------------------------- whole dumps

    def definition(self, type_id: int) -> str:
        return self._guarded(lambda: self._definition(type_id))

    def _definition(self, type_id: int) -> str:
        self._current = type_id
        kind = self._kinds[type_id]
        name = self._names.get(type_id)  # (_c_name, inlined: one call less a definition)
        if name is None:
            name = self._raw.name(type_id)
        if kind == STRUCT:
            return f"struct {name} {self._struct_body(type_id, 0)};"
        if kind == TYPEDEF:
            return f"typedef {self._declare(self._refs[type_id], name, 0)};"
        if kind == UNION:
            return f"union {name} {self._struct_body(type_id, 0)};"
        body = self._enum_body(type_id, 0)
        return f"enum {name} {body};" if name else f"enum {body};"

    def dump(self, type_ids: Iterable[int] | None = None) -> str:
        pieces: list[str] = []
        self._guarded(lambda: self._dump(type_ids, pieces.append))
        return "".join(pieces)

    def write(self, type_ids: Iterable[int] | None, write: Callable[[str], object]) -> None:
        """``dump``'s text, handed to ``write`` in pieces of about ``PIECE`` characters
        as it is made (a CLI writes each out: no whole header held, joined or encoded)."""
        self._guarded(lambda: self._dump(type_ids, write))

    def _order(self, roots: Iterable[int] | None) -> Iterable[int]:
        """The definitions in the order they are written (``c_order``); for a whole dump
        (``roots`` None), as an earlier process kept it for this BTF's content, if one
        did, else from every type of the kinds ordered."""
        whole = roots is None
        kept = tables.cached(self.btf, ORDER_TABLE) if whole else None
        if kept is not None:
            order = array("I")
            order.frombytes(kept)
            return order
        # (Imported here: a whole dump with kept tables orders nothing.)
        from .c_order import NOT_ORDERED, DefinitionOrder

        if roots is None:
            # Every type in id order, less the kinds never ordered (half of vmlinux's
            # types are functions): scheduling would skip them one by one.
            roots = self._raw.own_ids(set(self._raw.by_kind) - NOT_ORDERED)
        ordering = DefinitionOrder(self._raw)
        try:
            ordering.schedule(roots)
        finally:
            self._current = ordering.current
        if whole:
            ordering.schedule_unreferenced_anonymous_enums()
            tables.keep(self.btf, ORDER_TABLE, array("I", ordering.order).tobytes())
        return ordering.order

    def _forward(self, declared: Iterable[int]) -> dict[str, int]:
        """The forward declarations (``struct task_struct;``) of the named structs,
        unions and FWDs among ``declared``, each with a type id it declares."""
        raw, kinds = self._raw, self._kinds
        forward: dict[str, int] = {}
        for type_id in declared:
            kind = kinds[type_id]
            if kind in (STRUCT, UNION, FWD) and raw.name(type_id):
                union = kind == UNION or (kind == FWD and raw.kind_flag(type_id))
                text = f"{'union' if union else 'struct'} {self._c_name(type_id)};"
                forward.setdefault(text, type_id)
        return forward

    def _forward_of_all(self) -> list[str]:
        """A whole dump's forward declarations, sorted: of every named struct and union
        (their C names: in bulk) and FWD. Kept in ``FORWARD_TABLE`` as the ids they
        declare, in this order, after the number of structs among them."""
        forward: dict[str, int] = {}
        for kind, keyword in ((STRUCT, "struct "), (UNION, "union ")):
            ids = self._raw.own_ids((kind,))
            c_names = list(map(self._names.get, ids))  # (None or '' when anonymous)
            named = map(operator.add, map(keyword.__add__, filter(None, c_names)), repeat(";"))
            forward.update(zip(named, compress(ids, c_names), strict=False))
        for text, type_id in self._forward(self._raw.own_ids((FWD,))).items():
            forward.setdefault(text, type_id)
        texts = sorted(forward)
        if self.btf.base is None:  # (split BTF's ids count its base's: not kept)
            structs = sum(1 for text in texts if text.startswith("struct "))
            table = array("I", [structs, *map(forward.__getitem__, texts)])
            tables.keep(self.btf, FORWARD_TABLE, table.tobytes())
        return texts

    def _kept_forward(self) -> list[str] | None:
        """``_forward_of_all``'s declarations from the ids an earlier process kept, if
        one did: the structs' and the unions' each one join of their C names, neither
        made one by one nor sorted again. None if not kept, or not of named structs, unions
        and FWDs (in that order)."""
        kept = tables.cached(self.btf, FORWARD_TABLE) if self.btf.base is None else None
        if kept is None or not kept or len(kept) % 4:
            return None
        ids = array("I")
        ids.frombytes(kept)
        structs = ids.pop(0)
        c_names = list(map(self._names.get, ids))
        if structs > len(ids) or None in c_names or "" in c_names:
            return None
        kind = self._kinds.__getitem__  # (ids of this BTF's types: they have C names)
        struct_kinds, union_kinds = set(map(kind, ids[:structs])), set(map(kind, ids[structs:]))
        if not struct_kinds <= {STRUCT, FWD} or not union_kinds <= {UNION, FWD}:
            return None
        blocks = []
        if structs:  # ("struct …" sorts before "union …")
            blocks.append("struct " + ";\nstruct ".join(c_names[:structs]) + ";")  # type: ignore[arg-type]
        if structs < len(ids):
            blocks.append("union " + ";\nunion ".join(c_names[structs:]) + ";")  # type: ignore[arg-type]
        return blocks

    def _dump(self, type_ids: Iterable[int] | None, write: Callable[[str], object]) -> None:
        btf, named_kept = self.btf, True
        if type_ids is None:
            order = self._order(None)
            named_kept = self._declare_named()
            declarations = self._kept_forward() or self._forward_of_all()
        else:
            roots = list(type_ids)
            for type_id in roots:
                if not 0 <= type_id < btf.type_count:
                    raise ObjectError(f"{btf.name}: no type id {type_id} to dump")
            order = self._order(roots)
            declared = {t.id for root in roots for t in btf.walk(root)}
            declarations = sorted(self._forward(declared))
        head = [HEADER, *declarations, ""]
        written = sum(map(len, head))
        definitions: list[str] = []  # (not yet written)
        definition, flush_at = self._definition, min(written + PIECE, MAX_HEADER)
        for type_id in order:
            text = definition(type_id)
            written += len(text) + 1
            if written > flush_at:
                if written > MAX_HEADER:
                    raise ObjectError(
                        f"{btf.name}: the header would take more than {MAX_HEADER >> 20} "
                        f"MiB of C (at type id {type_id}; vmlinux's takes a few)"
                    )
                if head:
                    write("\n".join(head) + "\n")
                    head = []
                if definitions:  # each with its blank line, in one join
                    definitions.append("")
                    write("\n\n".join(definitions))
                    definitions = []
                flush_at = min(written + PIECE, MAX_HEADER)
            definitions.append(text)
        if definitions:
            definitions[-1] += "\n" + FOOTER
            head.append("\n\n".join(definitions))
        else:
            head[-1] += FOOTER
        write("\n".join(head) if len(head) > 1 else head[0])
        if type_ids is None and not self._layouts_kept and btf.base is None:
            tables.keep(btf, LAYOUT_TABLE, bytes(self._layouts))  # (every body was met)
        if type_ids is None and not named_kept:
            self._keep_named()

    # ----------------------------------------------------------------- malformed input

    def _guarded(self, work: Callable[[], _T]) -> _T:
        """Run ``work``, turning what malformed BTF makes it trip over into ObjectError."""
        try:
            return work()
        except IndexError:
            dangling = self._dangling_reference()
            if dangling is None:
                raise
            raise dangling from None
        except RecursionError:
            raise ObjectError(
                f"{self.btf.name}: the types reachable from type id {self._current} form a "
                "cycle C cannot express, or nest too deeply"
            ) from None

    def _dangling_reference(self) -> ObjectError | None:
        last = self.btf.type_count - 1
        for t in self.btf:
            for ref in referenced_ids(t):
                if ref > last:
                    return ObjectError(
                        f"{self.btf.name}: {t.describe()} (id {t.id}) refers to type id "
                        f"{ref}, past the last type id {last}"
                    )
        return None


def _wrap(inner: Decl, suffix: str) -> Decl:
    """``inner`` declaring ``declarator + suffix`` (an array or function declarator)."""
    prefix, inner_suffix, wrapped = inner
    return (prefix, suffix + inner_suffix, True) if wrapped else (prefix + " ", suffix, True)


def checked_dump_c(btf: Btf, type_ids: Iterable[int] | None = None) -> str:
    """``Btf.dump_c``: the graph of what the header declares checked (every type, or
    those reachable from ``type_ids``), then ``dump_c``."""
    pieces: list[str] = []
    checked_write_c(btf, pieces.append, type_ids)
    return "".join(pieces)


def checked_write_c(
    btf: Btf, write: Callable[[str], object], type_ids: Iterable[int] | None = None
) -> None:
    """``checked_dump_c``'s text handed to ``write`` in pieces (``CDumper.write``)."""
    # (vmlinux's dump makes ~10^6 memos and lines: the GC's passes over them cost ~10 %)
    gc_paused(lambda: _checked_write(btf, write, type_ids))


def _checked_write(
    btf: Btf, write: Callable[[str], object], type_ids: Iterable[int] | None
) -> None:
    checked = type_ids is not None or tables.cached(btf, CHECKED_TABLE) is not None
    records = Records(btf, type_strings_only=checked)  # (the check reads every name)
    if type_ids is None:
        if not checked:  # (the checks imported here: a whole dump with kept tables has none)
            from .rawgraph import check_every_type

            check_every_type(btf, records, record=False)  # the dumper's records, read once
            tables.keep(btf, CHECKED_TABLE, b"")
            records.keep_type_strings()  # (for the next process's type_strings_only)
        CDumper(btf, records).write(None, write)
    else:
        from .graph import check_roots

        CDumper(btf, records).write(check_roots(btf, type_ids), write)


def dump_c(btf: Btf, type_ids: Iterable[int] | None = None) -> str:
    """A C header declaring every type of ``btf`` (or those reachable from ``type_ids``)."""
    return gc_paused(lambda: CDumper(btf).dump(type_ids))
