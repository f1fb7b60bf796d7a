"""The shape of a BTF type graph, checked once per type: no loops, bounded nesting.

Sizes, alignments, ctypes layouts, C declarations and CO-RE all follow a type's references
recursively. Corrupt or hostile BTF can make those references loop (a struct containing
itself, a typedef of its own ``const``, a VAR of itself, a pointer to its own qualifier)
or nest thousands deep; checked here first, such BTF is an ``ObjectError`` naming the
types of the loop instead of a RecursionError or a hang.

A pointer to a named type is where C breaks a recursion (``struct list_head *next``), so
that reference is not followed. Every other one is, including a pointer to an unnamed type
or function prototype: C cannot write a loop through those, and a C declaration spells
them out inline. The check is iterative and memoised: each type is visited once per BTF.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..errors import ObjectError
from .types import MAX_NESTING, MODIFIER_KINDS, Kind, Member, Type

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object  # (the protocols below are for the type checker only)


class Btf(Protocol):
    """What the checks need of ``parse.Btf`` (which imports this module)."""

    @property
    def name(self) -> str: ...
    @property
    def base(self) -> Btf | None: ...
    @property
    def first_id(self) -> int: ...
    @property
    def type_count(self) -> int: ...
    def __getitem__(self, type_id: int, /) -> Type: ...
    def check_graph(self, type_id: int | None = None) -> int: ...
    def resolve(self, type_id: int) -> Type: ...
    def walk(self, type_id: int) -> Iterator[Type]: ...


_QUALIFIERS = (Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPE_TAG)
_NAMED_TARGETS = (Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.FWD, Kind.TYPEDEF)
_REFERS = frozenset({*MODIFIER_KINDS, Kind.VAR, Kind.FUNC, Kind.DECL_TAG})


def _named_pointee(btf: Btf, type_id: int) -> bool:
    """Whether a pointer to ``type_id`` points at a named type (through qualifiers)."""
    for _ in range(8):
        if type_id == 0:
            return False
        t = btf[type_id]
        if t.kind in _QUALIFIERS:
            type_id = t.type
            continue
        return t.kind in _NAMED_TARGETS and bool(t.name)
    return False  # a long qualifier chain: followed, so a loop in it is reported


def strong_refs(btf: Btf, t: Type) -> list[int]:
    """The references of ``t`` that recursive consumers follow."""
    kind = t.kind
    if kind in (Kind.STRUCT, Kind.UNION):
        return [m.type for m in t.members]
    if kind in _REFERS:
        return [t.type]
    if kind == Kind.PTR:
        return [] if _named_pointee(btf, t.type) else [t.type]
    if kind == Kind.ARRAY:
        return [t.type, t.index_type]
    if kind == Kind.FUNC_PROTO:
        return [t.type, *(p.type for p in t.params)]
    if kind == Kind.DATASEC:
        return [v.type for v in t.vars]
    return []


def check_type(btf: Btf, type_id: int | None, heights: dict[int, int]) -> int:
    """``Btf.check_graph``: one type (its height), or every type of ``btf`` (0)."""
    if type_id is None:
        for own in range(btf.first_id, btf.type_count):
            check(btf, own, heights)
        return 0
    if type_id < btf.first_id and btf.base is not None:
        return btf.base.check_graph(type_id)
    btf[type_id]  # an unknown id: the usual error
    return check(btf, type_id, heights)


def check_roots(btf: Btf, type_ids: Iterable[int] | None) -> list[int] | None:
    """Check what a C dump of ``type_ids`` (all types if None) will declare."""
    if type_ids is None:
        btf.check_graph()
        return None
    roots = list(type_ids)
    for root in roots:
        if not 0 <= root < btf.type_count:
            raise ObjectError(f"{btf.name}: no type id {root} to dump")
        for t in btf.walk(root):
            btf.check_graph(t.id)
    return roots


def chain_error(btf: Btf, type_id: int, what: str) -> ObjectError:
    """The error for a chain walked too far: the loop or depth check names the types."""
    btf.check_graph(type_id)
    return ObjectError(f"{btf.name}: {what} nest too deep at type id {type_id}")


def check(btf: Btf, root: int, heights: dict[int, int]) -> int:
    """The nesting height of ``root`` (1 for a leaf), recording every type checked in
    ``heights``; ObjectError on a loop or on nesting beyond ``MAX_NESTING``."""
    known = heights.get(root)
    if known is not None:
        return known
    base = btf.base
    first = btf.first_id
    path = [root]
    on_path = {root: 0}
    pending = [iter(strong_refs(btf, btf[root]))]
    tallest = [0]  # per path entry: the tallest child seen so far
    while path:
        for child in pending[-1]:
            height = heights.get(child)
            if height is None:
                if child < first and base is not None:
                    height = base.check_graph(child)
                elif child in on_path:
                    raise _loop_error(btf, [*path[on_path[child] :], child])
                elif child >= btf.type_count:
                    raise ObjectError(
                        f"{btf.name}: {btf[path[-1]].describe()} (id {path[-1]}) refers to "
                        f"type id {child}, past the last type id {btf.type_count - 1}"
                    )
                else:
                    if len(path) >= MAX_NESTING:
                        raise _depth_error(btf, path)
                    on_path[child] = len(path)
                    path.append(child)
                    pending.append(iter(strong_refs(btf, btf[child])))
                    tallest.append(0)
                    break
            if height > tallest[-1]:
                tallest[-1] = height
        else:
            node = path.pop()
            pending.pop()
            del on_path[node]
            height = tallest.pop() + 1
            if height > MAX_NESTING:
                raise _depth_error(btf, [*path, node])
            heights[node] = height
            if tallest and height > tallest[-1]:
                tallest[-1] = height
    return heights[root]


def anonymous_member_path(btf: Btf, outer: Type, name: str) -> list[tuple[Type, Member]]:
    """``name`` through the anonymous members of ``outer`` (a struct or union without a
    direct member of that name): the chain from ``outer`` to the member, or empty. Each
    type is searched once: members sharing an anonymous type would otherwise multiply
    the work, and a loop would never end."""
    searched = {outer.id}
    for member in outer.members:
        if not member.name:
            inner = _member_path(btf, member.type, name, searched, 1)
            if inner:
                return [(outer, member), *inner]
    return []


def _member_path(
    btf: Btf, type_id: int, name: str, searched: set[int], depth: int
) -> list[tuple[Type, Member]]:
    t = btf.resolve(type_id)
    if t.kind not in (Kind.STRUCT, Kind.UNION) or t.id in searched:
        return []
    searched.add(t.id)
    if depth > MAX_NESTING:
        raise chain_error(btf, type_id, "anonymous members")
    for member in t.members:
        if member.name == name:
            return [(t, member)]
    for member in t.members:
        if not member.name:
            inner = _member_path(btf, member.type, name, searched, depth + 1)
            if inner:
                return [(t, member), *inner]
    return []


def _chain(btf: Btf, ids: list[int]) -> str:
    """``typedef t [1] -> const [2] -> typedef t [1]``"""
    labels = []
    for i in ids:
        t = btf[i]
        labels.append(
            f"{t.kind.name.lower()} {t.name} [{i}]" if t.name else f"{t.kind.name.lower()} [{i}]"
        )
    return " -> ".join(labels)


def _loop_error(btf: Btf, ids: list[int]) -> ObjectError:
    kinds = {btf[i].kind for i in ids}
    if kinds & {Kind.STRUCT, Kind.UNION, Kind.ARRAY, Kind.VAR, Kind.DATASEC}:
        what = "a type contains itself"
    elif Kind.FUNC_PROTO in kinds:
        what = "a function prototype refers to itself"
    elif Kind.PTR in kinds:
        what = "a pointer loop through unnamed types"
    else:
        what = "a typedef/qualifier loop"
    return ObjectError(f"{btf.name}: type loop ({what}): {_chain(btf, ids)}")


def _depth_error(btf: Btf, path: list[int]) -> ObjectError:
    shown = path if len(path) <= 6 else [*path[:3], *path[-3:]]
    chain = (
        _chain(btf, shown)
        if len(path) <= 6
        else (f"{_chain(btf, shown[:3])} -> ... -> {_chain(btf, shown[3:])}")
    )
    return ObjectError(
        f"{btf.name}: types nest more than {MAX_NESTING} deep (type id {path[0]}): {chain}"
    )
