"""BTF-defined maps: the ``struct { __uint(type, …); __type(key, …); … } name SEC(".maps")``
definitions, read into ``MapSpec``s (with inner-map templates and initial ``values``)."""

from __future__ import annotations

import errno

from ..btf import Btf, Kind
from ..errors import ObjectError
from ..uapi_values import MapType
from .objspec import PIN_BY_NAME, PIN_NONE, MapSpec, Symbol


def read_maps(
    name: str,
    btf: Btf,
    symbols: list[Symbol],
    maps_index: int,
    relocations: list[tuple[int, int, int]],
) -> dict[str, MapSpec]:
    """The maps of ``.maps`` (section ``maps_index``), with the initial ``values`` its
    relocations name (programs for prog arrays, maps for map-in-maps)."""
    datasec = btf.find_all(".maps", Kind.DATASEC)
    if not datasec:
        raise ObjectError(f"{name}: .maps section has no DATASEC in BTF")
    by_name = {s.name: s for s in symbols if s.section_index == maps_index and s.name}
    maps: dict[str, MapSpec] = {}
    for entry in datasec[0].vars:
        var = btf[entry.type]
        if var.kind != Kind.VAR:
            raise ObjectError(f"{name}: .maps entry type {entry.type} is not a variable")
        symbol = by_name.get(var.name)
        spec = map_from_btf(name, btf, var.name, var.type)
        spec.offset = symbol.value if symbol is not None else entry.offset
        maps[var.name] = spec
    ordered = sorted(maps.values(), key=lambda m: m.offset)
    for offset, sym_index, _type in relocations:
        if sym_index >= len(symbols):
            raise ObjectError(
                f"{name}: .maps relocation names symbol #{sym_index}, which does not exist"
            )
        owner = next((m for m in reversed(ordered) if m.offset <= offset), None)
        if owner is None:
            raise ObjectError(f"{name}: .maps relocation at {offset} is outside every map")
        slot_offset = _values_offset(btf, owner, name)
        slot = (offset - owner.offset - slot_offset) // 8
        if slot < 0:
            raise ObjectError(
                f"{name}: map {owner.name!r}: relocation at {offset} is not in its 'values' array"
            )
        owner.init_values[slot] = symbols[sym_index].name
    return maps


_MAP_INT_FIELDS = (
    "type",
    "max_entries",
    "map_flags",
    "numa_node",
    "pinning",
    "key_size",
    "value_size",
)


def _uint_field(btf: Btf, type_id: int, what: str) -> int:
    """``__uint(x, N)`` is ``int (*x)[N]``: a pointer to an array of N ints."""
    ptr = btf.resolve(type_id)
    if ptr.kind != Kind.PTR:
        raise ObjectError(f"{what}: expected __uint(...) (a pointer to an array)")
    array = btf.resolve(ptr.type)
    if array.kind != Kind.ARRAY:
        raise ObjectError(f"{what}: expected __uint(...) (a pointer to an array)")
    return array.nelems


def _ulong_field(btf: Btf, type_id: int, what: str) -> int:
    """``__ulong(x, N)`` (libbpf 1.4) is a one-value enum naming N, so 64-bit values fit;
    ``__uint`` works too, as in libbpf."""
    t = btf.resolve(type_id)
    if t.kind == Kind.PTR:
        return _uint_field(btf, type_id, what)
    if t.kind not in (Kind.ENUM, Kind.ENUM64):
        raise ObjectError(f"{what}: expected __ulong(...) (an enum) or __uint(...)")
    if len(t.values) != 1:
        raise ObjectError(f"{what}: __ulong(...) must be an enum of one value, not {len(t.values)}")
    return t.values[0].value & 0xFFFF_FFFF_FFFF_FFFF


def map_from_btf(
    obj: str, btf: Btf, map_name: str, type_id: int, *, inner: bool = False
) -> MapSpec:
    what = f"{obj}: map {map_name!r}"
    definition = btf.resolve(type_id)
    if definition.kind != Kind.STRUCT:
        raise ObjectError(f"{what}: its definition is a {definition.kind.name}, not a struct")
    spec = MapSpec(map_name, MapType.UNSPEC)
    for member in definition.members:
        field_what = f"{what} field {member.name!r}"
        if member.name == "map_extra":
            spec.map_extra = _ulong_field(btf, member.type, field_what)
        elif member.name in _MAP_INT_FIELDS:
            value = _uint_field(btf, member.type, field_what)
            attr = {"type": "map_type", "map_flags": "flags"}.get(member.name, member.name)
            setattr(spec, attr, value)
        elif member.name in ("key", "value"):
            ptr = btf.resolve(member.type)
            if ptr.kind != Kind.PTR:
                raise ObjectError(f"{field_what}: expected __type(...) (a pointer)")
            size = btf.sizeof(ptr.type)
            setattr(spec, f"{member.name}_size", size)
            setattr(spec, f"{member.name}_type_id", ptr.type)
        elif member.name == "values":
            array = btf.resolve(member.type)
            if array.kind != Kind.ARRAY:
                raise ObjectError(f"{field_what}: expected __array(values, ...)")
            target = btf.resolve(btf.resolve(array.type).type)
            if target.kind == Kind.STRUCT:
                if inner:  # one level, as libbpf (a definition naming itself would loop)
                    raise ObjectError(f"{field_what}: an inner map cannot hold maps itself")
                spec.inner = map_from_btf(obj, btf, f"{map_name}.inner", target.id, inner=True)
        else:
            raise ObjectError(f"{field_what}: unknown map definition field")
    if spec.map_type == MapType.UNSPEC:
        raise ObjectError(f"{what}: has no 'type'")
    if spec.pinning not in (PIN_NONE, PIN_BY_NAME):
        raise ObjectError(
            f"{what}: pinning {spec.pinning} is invalid (0: none, 1: LIBBPF_PIN_BY_NAME)",
            errno.EINVAL,
        )
    if spec.inner is not None and spec.map_type in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS):
        spec.value_size = spec.value_size or 4
    if spec.map_type == MapType.PROG_ARRAY:
        spec.value_size = spec.value_size or 4
    return spec


def _values_offset(btf: Btf, spec: MapSpec, obj: str) -> int:
    """Byte offset of the ``values`` member inside a map definition."""
    datasec = btf.find_all(".maps", Kind.DATASEC)[0]
    for entry in datasec.vars:
        var = btf[entry.type]
        if var.name == spec.name:
            for member in btf.resolve(var.type).members:
                if member.name == "values":
                    return member.bit_offset // 8
    raise ObjectError(f"{obj}: map {spec.name!r} has initial values but no 'values' field")
