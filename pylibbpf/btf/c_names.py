"""The C names a dump gives types and enumerators (``dump_c``): BTF allows duplicates C
does not, so a later duplicate of a name in its C namespace gets ``___2``, ``___3``…

Struct, union and enum tags share one namespace; typedef names and enumerators share
another; a forward declaration names the same C type as the definition of its name.
For a BTF with kept tables (``tables``), only the renamed ones are kept: a few hundred of
vmlinux's 20k names.
"""

from __future__ import annotations

from . import tables
from .parse import Btf
from .records import ENUM, ENUM64, FWD, STRUCT, TYPEDEF, UNION, Records

NAMES_TABLE = "c-names-1"  # (bump with any change to what derives it)
Names = tuple[dict[int, str], dict[int, list[str]]]  # C names by type id; enumerators'


def c_names(btf: Btf, raw: Records) -> Names:
    """The C name of every named struct, union, enum, typedef and FWD of ``btf`` (not
    of its base), and of the enumerators of its enums."""
    kept = tables.cached(btf, NAMES_TABLE)
    if kept is not None:
        return _kept_names(raw, kept)
    tags: dict[str, int] = {}
    idents: dict[str, int] = {}
    definitions: dict[str, int] = {}
    names: dict[int, str] = {}
    by_enum: dict[int, list[str]] = {}
    renamed: list[str] = []  # type id, enumerator index (-1: the type), C name, …

    def unique(pool: dict[str, int], name: str) -> str:
        count = pool.get(name, 0) + 1
        pool[name] = count
        return name if count == 1 else f"{name}___{count}"

    ids = raw.own_ids((STRUCT, UNION, ENUM, ENUM64, TYPEDEF))
    kinds = raw.kinds
    for type_id, name in zip(ids, raw.names_of(ids), strict=True):
        kind = kinds[type_id]
        if kind == TYPEDEF:
            c_name = names[type_id] = unique(idents, name)
            if c_name != name:
                renamed += [str(type_id), "-1", c_name]
            continue
        if name:
            c_name = names[type_id] = unique(tags, name)
            if c_name != name:
                renamed += [str(type_id), "-1", c_name]
            if kind in (STRUCT, UNION):
                definitions.setdefault(name, type_id)
        if kind in (ENUM, ENUM64):
            value_names = raw.enum_names(type_id)
            fresh = dict.fromkeys(value_names, 1)
            if len(fresh) == len(value_names) and idents.keys().isdisjoint(fresh):
                idents.update(fresh)  # none taken yet (most enums): at C speed
                by_enum[type_id] = value_names
                continue
            enumerators = by_enum[type_id] = []
            for index, value_name in enumerate(value_names):  # unique(), inlined
                count = idents.get(value_name, 0) + 1
                idents[value_name] = count
                if count == 1:
                    enumerators.append(value_name)
                else:
                    enumerators.append(f"{value_name}___{count}")
                    renamed += [str(type_id), str(index), enumerators[-1]]
    for type_id in raw.own_ids((FWD,)):
        # A forward declaration names the same C type as the definition, if any.
        name = raw.name(type_id)
        target = definitions.get(name)
        c_name = names[type_id] = names[target] if target else unique(tags, name)
        if c_name != name:
            renamed += [str(type_id), "-1", c_name]
    tables.keep(btf, NAMES_TABLE, "\0".join(renamed).encode("utf-8", "surrogateescape"))
    return names, by_enum


def _kept_names(raw: Records, kept: bytes | memoryview) -> Names:
    """The names ``c_names`` gave this BTF's content in an earlier process: the BTF's
    own, less those it renamed. (Read at C speed, kind by kind, and not memoised in
    ``raw`` as ``names_of`` would: a dump looks them up here.)"""
    names: dict[int, str] = {}
    strings, starts = raw.strings.__getitem__, raw.starts.__getitem__
    for kind in (STRUCT, UNION, ENUM, ENUM64, TYPEDEF, FWD):
        ids = raw.own_ids((kind,))
        if ids:  # (a BTF's own records are all in its own words)
            words = raw.words_of[ids[0]].__getitem__
            names.update(zip(ids, map(strings, map(words, map(starts, ids))), strict=True))
    by_enum: dict[int, list[str]] = {}
    renamed = str(kept, "utf-8", "surrogateescape").split("\0") if kept else []
    fields = iter(renamed)
    for type_text, index_text, c_name in zip(fields, fields, fields, strict=True):
        type_id, index = int(type_text), int(index_text)
        if index < 0:
            names[type_id] = c_name
        else:
            enumerators = by_enum.get(type_id)
            if enumerators is None:
                enumerators = by_enum[type_id] = raw.enum_names(type_id)
            enumerators[index] = c_name
    return names, by_enum
