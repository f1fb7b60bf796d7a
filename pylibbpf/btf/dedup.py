"""BTF deduplication: one copy of each type, as ``btf__dedup`` leaves it.

Linked objects each bring their own copy of every type they use (``struct task_struct``,
``int``, ...). Two types are the same when they agree on everything but the ids they
refer to, and the types they refer to are the same in turn: the coarsest such partition
of the type graph is found by refinement (start from the local signatures, split classes
by the classes of their references until nothing splits). That merges at least what
libbpf's hash-and-compare dedup merges, cycles included, in a few linear passes.

As libbpf: VARs and DATASECs are never merged (each is a variable or a section of its
own), a forward declaration resolves to the one struct/union of its name, an enum forward
declaration (an ENUM without values) to the one enum of its name, and the types left keep
their order (the first of each class stands for it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from ..errors import ObjectError
from .parse import referenced_ids
from .types import Kind, Member, Param, Type, VarSecinfo


def remap_type_ids(t: Type, new_id: Callable[[int], int]) -> Type:
    """``t`` with every type id it refers to passed through ``new_id`` (its own id kept)."""
    changes: dict[str, object] = {}
    if t.members:
        changes["members"] = tuple(
            Member(m.name, new_id(m.type), m.bit_offset, m.bitfield_size) for m in t.members
        )
    if t.params:
        changes["params"] = tuple(Param(p.name, new_id(p.type)) for p in t.params)
    if t.vars:
        changes["vars"] = tuple(VarSecinfo(new_id(v.type), v.offset, v.size) for v in t.vars)
    if t.kind == Kind.ARRAY:
        changes["type"] = new_id(t.type)
        changes["index_type"] = new_id(t.index_type)
    elif t.kind in _REFERRING:
        changes["type"] = new_id(t.type)
    return dataclasses.replace(t, **changes) if changes else t  # type: ignore[arg-type]


_REFERRING = frozenset(
    {
        Kind.PTR,
        Kind.TYPEDEF,
        Kind.VOLATILE,
        Kind.CONST,
        Kind.RESTRICT,
        Kind.TYPE_TAG,
        Kind.FUNC,
        Kind.FUNC_PROTO,
        Kind.VAR,
        Kind.DECL_TAG,
    }
)


def _signature(t: Type) -> tuple[object, ...]:
    """Everything that makes two types differ, except the ids they refer to."""
    kind = t.kind
    if kind in (Kind.VAR, Kind.DATASEC):
        return ("unique", t.id)
    if kind == Kind.INT:
        return (kind, t.name, t.size, t.encoding, t.bit_offset, t.bits)
    if kind in (Kind.STRUCT, Kind.UNION):
        fields = tuple((m.name, m.bit_offset, m.bitfield_size) for m in t.members)
        bitfields = t.kind_flag or any(m.bitfield_size for m in t.members)
        return (kind, t.name, t.size, bitfields, fields)
    if kind in (Kind.ENUM, Kind.ENUM64):
        return (kind, t.name, t.size, t.kind_flag, t.values)
    if kind == Kind.ARRAY:
        return (kind, t.nelems)
    if kind == Kind.FUNC_PROTO:
        return (kind, tuple(p.name for p in t.params))
    if kind == Kind.FUNC:
        return (kind, t.name, t.linkage)
    if kind == Kind.DECL_TAG:
        return (kind, t.name, t.component_idx)
    if kind == Kind.FLOAT:
        return (kind, t.name, t.size)
    return (kind, t.name, t.kind_flag)  # PTR, FWD, TYPEDEF, qualifiers, TYPE_TAG


def _refine(types: Sequence[Type], refs: list[list[int]], alias: dict[int, int]) -> list[int]:
    """Class number of each type (index ``id - 1``): the coarsest stable partition."""
    numbers: dict[object, int] = {}
    classes = [numbers.setdefault(_signature(t), len(numbers)) for t in types]
    count = len(numbers)
    # A reference to void is class -1; one to an aliased declaration, its target's class.
    targets = [[alias.get(r, r) - 1 for r in type_refs] for type_refs in refs]
    while True:
        known = [*classes, -1]  # index -1: void
        numbers = {}
        refined = []
        for index, current in enumerate(classes):
            aliased = alias.get(index + 1)
            key: object = (
                ("alias", known[aliased - 1])
                if aliased is not None
                else (current, tuple([known[r] for r in targets[index]]))
            )
            refined.append(numbers.setdefault(key, len(numbers)))
        classes = refined
        if len(numbers) == count:
            return classes
        count = len(numbers)


def _forward_aliases(types: Sequence[Type], classes: list[int], alias: dict[int, int]) -> bool:
    """Point forward declarations at the one complete type of their name; True if any new."""
    complete: dict[str, set[int]] = {}  # name -> first ids of its struct/union classes
    enums: dict[str, set[int]] = {}
    first: dict[int, int] = {}
    for t in types:
        first.setdefault(classes[t.id - 1], t.id)
    for t in types:
        if not t.name or t.id in alias:
            continue
        rep = first[classes[t.id - 1]]
        if t.kind in (Kind.STRUCT, Kind.UNION):
            complete.setdefault(t.name, set()).add(rep)
        elif t.kind in (Kind.ENUM, Kind.ENUM64) and t.values:
            enums.setdefault(t.name, set()).add(rep)
    added = False
    for t in types:
        if t.id in alias:
            continue
        if t.kind == Kind.FWD:
            candidates = complete.get(t.name, set())
            wanted = Kind.UNION if t.kind_flag else Kind.STRUCT
        elif t.kind in (Kind.ENUM, Kind.ENUM64) and not t.values and t.name:
            candidates, wanted = enums.get(t.name, set()), t.kind
        else:
            continue
        if len(candidates) != 1:
            continue
        target = next(iter(candidates))
        target_kind = types[target - 1].kind
        if t.kind == Kind.FWD and target_kind != wanted:
            continue
        alias[t.id] = target
        added = True
    return added


def dedup(types: Sequence[Type]) -> tuple[list[Type], list[int]]:
    """Deduplicate ``types`` (ids 1..N in order). Returns the types kept, renumbered
    1..M, and the map from each old id to its new one (``mapping[0] == 0``: void)."""
    for index, t in enumerate(types):
        if t.id != index + 1:
            raise ObjectError(f"BTF dedup: type #{index + 1} carries id {t.id}")
    count = len(types)
    refs = [referenced_ids(t) for t in types]
    for t, targets in zip(types, refs, strict=True):
        for target in targets:
            if not 0 <= target <= count:
                raise ObjectError(
                    f"BTF dedup: {t.describe()} (id {t.id}) refers to type id {target}, "
                    f"out of range 0..{count}"
                )
    alias: dict[int, int] = {}
    classes = _refine(types, refs, alias)
    while _forward_aliases(types, classes, alias):
        classes = _refine(types, refs, alias)

    representative: dict[int, int] = {}
    for t in types:
        if t.id not in alias:
            representative.setdefault(classes[t.id - 1], t.id)
    new_ids: dict[int, int] = {}
    for t in types:
        if t.id not in alias and representative[classes[t.id - 1]] == t.id:
            new_ids[t.id] = len(new_ids) + 1
    mapping = [0]
    for t in types:
        kept_as = alias.get(t.id, t.id)
        mapping.append(new_ids[representative[classes[kept_as - 1]]])
    kept = [
        dataclasses.replace(remap_type_ids(t, mapping.__getitem__), id=new_ids[t.id])
        for t in types
        if t.id in new_ids
    ]
    return kept, mapping
