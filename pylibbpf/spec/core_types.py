"""How CO-RE relates a local type to a target type: essential names, kind compatibility,
and the two type relations (``types_compatible`` for TYPE_EXISTS/TYPE_SIZE/TYPE_ID_TARGET,
``types_match`` for TYPE_MATCHES), following libbpf's documented rules."""

from __future__ import annotations

from ..btf import Btf, Kind, Type

_MODIFIERS = (Kind.TYPEDEF, Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPE_TAG)


def essential_name(name: str) -> str:
    """``task_struct___v2`` → ``task_struct``: flavours are ignored when matching. As
    libbpf (``bpf_core_essential_name_len``): cut at the last ``X___Y`` where neither X
    nor Y is an underscore."""
    for i in range(len(name) - 5, -1, -1):
        if name[i] != "_" and name[i + 1 : i + 4] == "___" and name[i + 4] != "_":
            return name[: i + 1]
    return name


def kinds_compatible(local: Type, target: Type) -> bool:
    """Same BTF kind, counting ENUM and ENUM64 as one."""
    if local.kind == target.kind:
        return True
    enums = (Kind.ENUM, Kind.ENUM64)
    return local.kind in enums and target.kind in enums


def types_compatible(
    local_btf: Btf, local_id: int, target_btf: Btf, target_id: int, depth: int = 0
) -> bool:
    """Whether a target type can stand in for a local one for TYPE_EXISTS, TYPE_SIZE and
    TYPE_ID_TARGET: same kind all the way through pointers, arrays and function
    prototypes (parameter counts included); structs, unions and enums by kind alone."""
    if depth > 32:
        return False
    if depth == 0 and not kinds_compatible(local_btf[local_id], target_btf[target_id]):
        return False  # the roots as named (a typedef for a typedef); below, modifiers skip
    local = skip_mods_and_typedefs(local_btf, local_id)
    target = skip_mods_and_typedefs(target_btf, target_id)
    if not kinds_compatible(local, target):
        return False
    kind = local.kind
    if kind in (Kind.UNKN, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.FWD):
        return True
    if kind == Kind.INT:
        return local.bit_offset == 0 and target.bit_offset == 0
    if kind in (Kind.PTR, Kind.ARRAY):
        return types_compatible(local_btf, local.type, target_btf, target.type, depth + 1)
    if kind == Kind.FUNC_PROTO:
        return (
            len(local.params) == len(target.params)
            and all(
                types_compatible(local_btf, a.type, target_btf, b.type, depth + 1)
                for a, b in zip(local.params, target.params, strict=True)
            )
            and types_compatible(local_btf, local.type, target_btf, target.type, depth + 1)
        )
    return False


def _names_match(local: str, target: str) -> bool:
    """Essential names equal; an anonymous target only matches an anonymous local."""
    if not target:
        return not local
    return essential_name(local) == essential_name(target)


def skip_mods_and_typedefs(btf: Btf, type_id: int) -> Type:
    """The type behind typedefs and const/volatile/restrict/type-tag modifiers."""
    t = btf[type_id]
    while t.kind in _MODIFIERS:
        t = btf[t.type]
    return t


def types_match(
    local_btf: Btf,
    local_id: int,
    target_btf: Btf,
    target_id: int,
    behind_ptr: bool = False,
    depth: int = 0,
) -> bool:
    """TYPE_MATCHES, by the rules libbpf documents: the target has every member the local
    type names (by essential name, at any position) with a matching type; behind a
    pointer, a struct or union only has to be a struct or union of that name."""
    if depth > 32:
        return False
    local = skip_mods_and_typedefs(local_btf, local_id)
    target = skip_mods_and_typedefs(target_btf, target_id)
    if not _names_match(local.name, target.name):
        return False
    kind, other = local.kind, target.kind

    def recurse(a: int, b: int, pointer: bool = behind_ptr) -> bool:
        return types_match(local_btf, a, target_btf, b, pointer, depth + 1)

    if kind == Kind.UNKN:
        return other == Kind.UNKN
    if kind == Kind.FWD:
        union = local.kind_flag
        if other == Kind.FWD:
            return union == target.kind_flag
        return behind_ptr and other == (Kind.UNION if union else Kind.STRUCT)
    if kind in (Kind.ENUM, Kind.ENUM64):
        return (
            other in (Kind.ENUM, Kind.ENUM64)
            and local.size == target.size
            and len(local.values) <= len(target.values)
            and all(any(_names_match(v.name, w.name) for w in target.values) for v in local.values)
        )
    if kind in (Kind.STRUCT, Kind.UNION):
        if behind_ptr:
            return other == kind or (other == Kind.FWD and target.kind_flag == (kind == Kind.UNION))
        if other != kind or len(local.members) > len(target.members):
            return False
        return all(
            any(
                _names_match(member.name, candidate.name) and recurse(member.type, candidate.type)
                for candidate in target.members
            )
            for member in local.members
        )
    if kind == Kind.INT:
        return other == Kind.INT and local.size == target.size and local.signed == target.signed
    if kind == Kind.PTR:
        return other == Kind.PTR and recurse(local.type, target.type, True)
    if kind == Kind.ARRAY:
        return (
            other == Kind.ARRAY
            and local.nelems == target.nelems
            and recurse(local.type, target.type)
        )
    if kind == Kind.FUNC_PROTO:
        return (
            other == Kind.FUNC_PROTO
            and len(local.params) == len(target.params)
            and all(
                recurse(a.type, b.type) for a, b in zip(local.params, target.params, strict=True)
            )
            and recurse(local.type, target.type)
        )
    return False
