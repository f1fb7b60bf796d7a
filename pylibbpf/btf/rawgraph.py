"""``Btf.check_graph()`` for every type at once, on raw records.

``graph.check`` decodes a ``Type`` per id: right for one type, but checking all of
vmlinux's ~130k that way costs seconds, several times what a C dump of it does. This
module walks the record words (``records.Records``) instead, follows exactly the
references ``graph.strong_refs`` names, and checks every string offset a decode would
read. It only says yes: on anything it does not accept (a loop, nesting too deep, a
dangling reference or string offset, an unknown kind) ``graph.check_type`` runs as before
and raises its error naming the types, so messages and verdicts are those of the slow
check, which stays the one definition.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Sequence

from ..errors import ObjectError
from . import graph
from .parse import Btf
from .records import (
    ARRAY,
    CONST,
    DATASEC,
    DECL_TAG,
    ENUM,
    ENUM64,
    FUNC,
    FUNC_PROTO,
    FWD,
    PTR,
    RESTRICT,
    STRUCT,
    TYPE_TAG,
    TYPEDEF,
    UNION,
    VAR,
    VOLATILE,
    Records,
)
from .types import MAX_KIND, MAX_NESTING

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any

_QUALIFIERS = frozenset({CONST, VOLATILE, RESTRICT, TYPE_TAG})
_NAMED_TARGETS = frozenset({STRUCT, UNION, ENUM, ENUM64, FWD, TYPEDEF})
_ONE_REFERENCE = frozenset({TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG, VAR, FUNC, DECL_TAG})
_MEMBERS = frozenset({STRUCT, UNION})
# Words per vlen entry of the kinds whose entries start with a string offset.
_NAMED_ENTRIES = {STRUCT: 3, UNION: 3, ENUM: 2, ENUM64: 3, FUNC_PROTO: 2}


class _Refused(Exception):
    """What the fast check does not vouch for: the slow one decides."""


def check_every_type(btf: Btf, records: Records | None = None, *, record: bool = True) -> None:
    """Check every type of ``btf`` as ``graph.check_type(btf, None, …)`` does, and record
    each one's height (unless ``record`` is false: a C dump needs only the verdict, and
    a dict of every height costs it ~10 ms); ObjectError (from the slow check) if one
    fails."""
    heights = btf.checked_heights
    try:
        computed = _heights(btf, records if records is not None else Records(btf))
    except (_Refused, ObjectError, IndexError, KeyError, RecursionError):
        graph.check_type(btf, None, heights)
        return
    if record:
        first = btf.first_id
        heights.update(zip(range(first, btf.type_count), computed[first:], strict=True))


def _string_limit(btf: Btf) -> int:
    """The highest string offset below which every offset of ``btf`` (and its base)
    reads a NUL-terminated string; -1 when the sections leave a gap of bad offsets."""
    own = btf.strings
    last_nul = own.rfind(b"\0")
    if btf.base is None:
        return last_nul
    below = _string_limit(btf.base)
    if below != btf.str_base - 1:
        raise _Refused
    return btf.str_base + last_nul


def _heights(btf: Btf, records: Records) -> list[int]:
    """Every type's nesting height (base types reached included), by id."""
    kinds, refs, starts, words_of = records.kinds, records.refs, records.starts, records.words_of
    arrays, strings = records.arrays, records.strings
    first, count, base = btf.first_id, btf.type_count, btf.base
    limit = _string_limit(btf)
    heights = [0] * count  # 0: not yet (or void); -1: on the path being walked

    def named_pointee(type_id: int) -> bool:
        for _ in range(8):
            if type_id == 0:
                return False
            kind = kinds[type_id]
            if kind in _QUALIFIERS:
                type_id = refs[type_id]
                continue
            return kind in _NAMED_TARGETS and strings[words_of[type_id][starts[type_id]]] != ""
        return False

    def visit(type_id: int, depth: int) -> int:
        """The height of ``type_id``, walking what is not known yet (graph.strong_refs)."""
        if type_id < first and base is not None:
            return base.check_graph(type_id)
        if depth >= MAX_NESTING:
            raise _Refused
        heights[type_id] = -1
        kind = kinds[type_id]
        if kind in _ONE_REFERENCE or kind == PTR:  # most types: one reference, no loop
            child = refs[type_id]
            if kind == PTR and named_pointee(child):
                tallest = 0  # where C breaks a recursion: not followed
            else:
                tallest = heights[child]
                if tallest <= 0:
                    if tallest < 0:
                        raise _Refused  # a loop
                    if child:
                        tallest = visit(child, depth + 1)
            if tallest >= MAX_NESTING:
                raise _Refused
            heights[type_id] = tallest + 1
            return tallest + 1
        words: Any
        children: Sequence[int]
        if kind == ARRAY:
            children = arrays[type_id][:2]
        elif kind > MAX_KIND:
            raise _Refused  # only the layout section knows it: the slow check decodes it
        else:
            words, at = words_of[type_id], starts[type_id]
            vlen = words[at + 1] & 0xFFFFFF
            step = _NAMED_ENTRIES.get(kind)
            if (
                step is not None
                and vlen
                and max(words[at + 3 : at + 3 + step * vlen : step]) > limit
            ):
                raise _Refused  # an entry's name past the strings
            if kind in _MEMBERS:
                children = words[at + 4 : at + 3 + 3 * vlen : 3]
            elif kind == FUNC_PROTO:
                children = (refs[type_id], *words[at + 4 : at + 3 + 2 * vlen : 2])
            elif kind == DATASEC:
                children = words[at + 3 : at + 3 + 3 * vlen : 3]
            else:
                children = ()
        tallest = 0
        for child in children:
            height = heights[child]
            if height <= 0:
                if height < 0:
                    raise _Refused  # a loop
                if child:
                    height = visit(child, depth + 1)
            if height > tallest:
                tallest = height
        if tallest >= MAX_NESTING:
            raise _Refused
        heights[type_id] = tallest + 1
        return tallest + 1

    for kind, of_kind in records.by_kind.items():
        if kind != FUNC:
            for type_id in of_kind[bisect.bisect_left(of_kind, first) :]:
                if not heights[type_id]:
                    visit(type_id, 0)
    functions = records.by_kind.get(FUNC, [])
    for type_id in functions[bisect.bisect_left(functions, first) :]:
        if not heights[type_id]:
            height = heights[refs[type_id]]
            if 0 < height < MAX_NESTING:
                heights[type_id] = height + 1
            else:
                visit(type_id, 0)
    _check_names(records, first, count, limit)
    return heights


def _check_names(records: Records, first: int, count: int, limit: int) -> None:
    """Every type's own name offset is below ``limit`` (entries' names: ``visit``)."""
    if count > first:
        words, starts = records.words_of[first], records.starts[first:count]
        names = operator.itemgetter(*starts)(words) if len(starts) > 1 else (words[starts[0]],)
        if max(names) > limit:
            raise _Refused
