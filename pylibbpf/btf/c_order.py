"""The order of a C header's definitions: each after everything it contains by value.

Every named struct/union is forward-declared first, so a pointer never needs its target
defined; a member by value, an array element, or what a typedef names does. Anonymous
types are written inline where used, so what they contain is ordered where they are.
Definitions follow bpftool's order: types in id order, each preceded by what it needs.

Speed: each traversal (a type by name, or by value) that finished is remembered in a set,
seeded with the kinds never ordered, so most tests are one set lookup and each type is
worked on about once.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from .records import (
    ARRAY,
    CONST,
    DATASEC,
    DECL_TAG,
    ENUM,
    ENUM64,
    FLOAT,
    FUNC,
    FUNC_PROTO,
    FWD,
    INT,
    MODIFIERS,
    PTR,
    RESTRICT,
    STRUCT,
    TYPE_TAG,
    TYPEDEF,
    UNION,
    VAR,
    VOID,
    VOLATILE,
    Records,
)

_POINTER_QUALIFIERS = frozenset({CONST, VOLATILE, RESTRICT, TYPE_TAG})
# Kinds that never schedule a definition (functions, variables, sections, tags: not shown).
NOT_ORDERED = frozenset({VOID, INT, FLOAT, FWD, FUNC, VAR, DATASEC, DECL_TAG})
_REFERRING = frozenset({PTR, *MODIFIERS, FUNC, FUNC_PROTO, VAR, DECL_TAG})
# Typedefs the compiler defines itself (and differently for the BPF target).
COMPILER_BUILTINS = frozenset({"__builtin_va_list"})


class DefinitionOrder:
    """The named structs, unions, enums and typedefs a header defines, in ``order``."""

    def __init__(self, records: Records) -> None:
        self._raw = records
        self._kinds, self._refs = records.kinds, records.refs
        self.order: list[int] = []
        self.current = 0  # the root being ordered, for error messages
        self._done: set[int] = set()
        self._in_progress: set[int] = set()
        self._cycles_met = 0
        by_kind = records.by_kind
        # Named structs, unions and enums (a base's too), and the typedefs the compiler
        # defines: what ordering asks of a type's name, as sets.
        tagged = sorted(t for kind in (STRUCT, UNION, ENUM, ENUM64) for t in by_kind.get(kind, ()))
        self.named = set(itertools.compress(tagged, records.names_of(tagged)))
        typedefs = by_kind.get(TYPEDEF, [])
        self._builtins = {
            type_id
            for type_id, name in zip(typedefs, records.names_of(typedefs), strict=True)
            if name in COMPILER_BUILTINS
        }
        # Types whose traversal by name (by value) finished without meeting a type in
        # progress, and the kinds never ordered: ordering one again would schedule
        # nothing new, so it is skipped.
        self._by_name: set[int] = set()
        self._by_value: set[int] = set()
        for kind in NOT_ORDERED & by_kind.keys():
            self._by_name.update(by_kind[kind])
            self._by_value.update(by_kind[kind])

    def schedule(self, roots: Iterable[int]) -> None:
        """Order ``roots`` (in id order, as bpftool does) and what they need."""
        kinds, refs, raw = self._kinds, self._refs, self._raw
        by_name, complete = self._by_name, self._by_value
        for type_id in roots:
            if type_id in complete:
                continue
            kind = kinds[type_id]
            if kind == PTR:  # mostly to a struct already seen: decided without a call
                if refs[type_id] in by_name:
                    complete.add(type_id)  # what _order_type would record
                    by_name.add(type_id)
                    continue
            elif kind == FUNC_PROTO:  # most return and take what is ordered already
                words, at = raw.words_of[type_id], raw.starts[type_id]
                end = at + 3 + 2 * (words[at + 1] & 0xFFFFFF)
                if refs[type_id] in by_name and by_name.issuperset(words[at + 4 : end : 2]):
                    complete.add(type_id)
                    by_name.add(type_id)
                    continue
                for target in (refs[type_id], *words[at + 4 : end : 2]):
                    if target in by_name:
                        continue
                    if kinds[target] != PTR or refs[target] not in by_name:
                        break
                    by_name.add(target)  # a pointer to what is ordered: decided as above
                else:  # what _order_type would find, without the call
                    complete.add(type_id)
                    by_name.add(type_id)
                    continue
            elif kind in (ENUM, ENUM64) and type_id not in self.named:
                continue  # nothing to schedule; left out so unreferenced ones show
            self.current = type_id
            self._order_type(type_id, True)

    def _order_type(self, type_id: int, by_value: bool) -> None:
        """Schedule definitions so each follows everything it contains by value.

        Callers skip traversals already finished (``_by_name``, ``_by_value``, which
        hold the kinds never ordered from the start) themselves: that test, inlined,
        saves most calls.
        """
        kinds, refs, by_name = self._kinds, self._refs, self._by_name
        complete = self._by_value
        kind = kinds[type_id]
        cycles_met = self._cycles_met
        if kind == PTR:
            target = refs[type_id]
            if target not in by_name:
                self._order_type(target, False)
        elif kind == ARRAY:  # C needs complete element types, even behind a pointer
            target = self._raw.arrays[type_id][0]
            if target not in complete:
                self._order_type(target, True)
        elif kind in _POINTER_QUALIFIERS:
            target = refs[type_id]
            if target not in (complete if by_value else by_name):
                self._order_type(target, by_value)
        elif kind == FUNC_PROTO:
            target = refs[type_id]
            if target not in by_name:
                self._order_type(target, False)
            for target in self._raw.param_types(type_id):
                if target not in by_name:
                    self._order_type(target, False)
        elif kind in (STRUCT, UNION):
            named = type_id in self.named
            if named and (not by_value or type_id in self._done):
                (complete if by_value else by_name).add(type_id)
                return
            if type_id in self._in_progress:
                self._cycles_met += 1
                return
            # An anonymous one is written inline wherever used: its contents are needed.
            self._in_progress.add(type_id)
            for target in self._raw.member_types(type_id):
                if target not in complete:
                    self._order_type(target, True)
            self._in_progress.discard(type_id)
            if named:
                self._emit(type_id)
        elif kind in (ENUM, ENUM64):
            if type_id not in self._done and type_id in self.named:
                self._emit(type_id)
        elif kind == TYPEDEF:
            if type_id in self._builtins:
                (complete if by_value else by_name).add(type_id)
                return
            if type_id in self._in_progress:
                self._cycles_met += 1
                return
            self._in_progress.add(type_id)
            # Declaring the typedef needs only what its target needs to be *named*
            # (a named struct is already forward-declared); users by value then need
            # the target complete, which is ordered after the typedef itself.
            target = refs[type_id]
            if target not in by_name:
                self._order_type(target, False)
            if type_id not in self._done:
                self._emit(type_id)
            if by_value and target not in complete:
                self._order_type(target, True)
            self._in_progress.discard(type_id)
        if self._cycles_met == cycles_met:
            by_name.add(type_id)  # what a by-name traversal would do is a part of this one
            if by_value:
                complete.add(type_id)

    def _emit(self, type_id: int) -> None:
        self._done.add(type_id)
        self.order.append(type_id)

    def schedule_unreferenced_anonymous_enums(self) -> None:
        """Schedule the anonymous enums no type of this BTF refers to, once every type
        was ordered: they carry constants (BPF_ANY...).

        Ordering follows every reference of every type except those of the kinds it
        skips (functions, variables, sections, tags), array index types and the targets
        of compiler-builtin typedefs; an enum it reached is in ``_by_name``.
        """
        raw, refs, by_name = self._raw, self._refs, self._by_name
        unreached = [
            type_id
            for type_id in raw.own_ids((ENUM, ENUM64))
            if type_id not in by_name and not raw.name(type_id)
        ]
        if not unreached:
            return
        referenced: set[int] = set()
        for kind in NOT_ORDERED & _REFERRING:  # functions, variables, tags: in bulk
            referenced.update(map(refs.__getitem__, raw.own_ids((kind,))))
        for type_id in raw.own_ids((DATASEC,)):
            referenced.update(raw.datasec_types(type_id))
        for type_id in raw.own_ids((ARRAY,)):
            referenced.add(raw.arrays[type_id][1])
        for type_id in raw.own_ids((TYPEDEF,)):
            if raw.name(type_id) in COMPILER_BUILTINS:
                referenced.add(refs[type_id])
        for type_id in unreached:
            if type_id not in referenced:
                self._emit(type_id)
