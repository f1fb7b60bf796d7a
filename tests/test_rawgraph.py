"""``Btf.check_graph()`` of every type runs on raw records (``btf/rawgraph.py``); the
per-type check (``graph.check_type``) stays the definition. Both must agree: the same
heights, the same ObjectError. Pure: no privileges."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from pylibbpf.btf import Btf, EnumValue, Kind, Member, Param, Type, VarSecinfo, graph
from pylibbpf.btf.encode import encode
from pylibbpf.errors import ObjectError

INT = Type(1, Kind.INT, "int", size=4, encoding=1, bits=32)


def _slow(btf: Btf) -> dict[int, int] | str:
    """What the per-type check says of every type: the heights, or its error."""
    heights: dict[int, int] = {0: 0}
    try:
        graph.check_type(btf, None, heights)
    except ObjectError as error:
        return str(error)
    return heights


def _fast(btf: Btf) -> dict[int, int] | str:
    try:
        btf.check_graph()
    except ObjectError as error:
        return str(error)
    return btf.checked_heights


def _random_types(rng: random.Random, count: int) -> list[Type]:
    """Types referring to any id up to ``count`` + 1 (loops, dangling ids, deep chains)."""

    def ref() -> int:
        return rng.randint(0, count + 1 if rng.random() < 0.02 else count)

    def name() -> str:
        return rng.choice(["", "", "a", "s"])

    types = [INT]
    for type_id in range(2, count + 1):
        kind = rng.choice(list(Kind)[1:-1])
        if kind in (Kind.STRUCT, Kind.UNION):
            members = tuple(Member(name(), ref(), 0) for _ in range(rng.randint(0, 3)))
            types.append(Type(type_id, kind, name(), size=4, members=members))
        elif kind == Kind.ARRAY:
            types.append(Type(type_id, kind, type=ref(), index_type=ref(), nelems=2))
        elif kind == Kind.FUNC_PROTO:
            params = tuple(Param(name(), ref()) for _ in range(rng.randint(0, 3)))
            types.append(Type(type_id, kind, type=ref(), params=params))
        elif kind == Kind.DATASEC:
            entries = tuple(VarSecinfo(ref(), 0, 4) for _ in range(rng.randint(0, 2)))
            types.append(Type(type_id, kind, ".data", size=8, vars=entries))
        elif kind in (Kind.INT, Kind.FLOAT):
            types.append(Type(type_id, kind, "int", size=4, bits=32))
        elif kind in (Kind.ENUM, Kind.ENUM64):
            values = (EnumValue("A", 1),)
            types.append(Type(type_id, kind, name(), size=4, values=values))
        elif kind == Kind.FWD:
            types.append(Type(type_id, kind, "s"))
        else:  # the kinds that refer to one type
            types.append(Type(type_id, kind, name() or "t", type=ref()))
    return types


@pytest.mark.parametrize("seed", range(300))
def test_random_graphs_get_the_per_type_checks_verdict(seed: int) -> None:
    rng = random.Random(seed)
    data = encode(_random_types(rng, rng.randint(2, 40)))
    assert _fast(Btf(data, name="case")) == _slow(Btf(data, name="case"))


def test_a_chain_at_the_nesting_bound_and_one_past_it() -> None:
    for length, fine in ((graph.MAX_NESTING - 1, True), (graph.MAX_NESTING, False)):
        chain = [INT] + [Type(i, Kind.TYPEDEF, f"t{i}", type=i - 1) for i in range(2, length + 2)]
        data = encode(chain)
        verdict = _fast(Btf(data, name="chain"))
        assert verdict == _slow(Btf(data, name="chain"))
        assert isinstance(verdict, dict) == fine


def test_a_bad_string_offset_in_a_type_no_header_shows_is_still_an_object_error() -> None:
    """A function's name is not in a C dump, but the check reads every name (as the
    per-type check's decoding did): a name past the string section is an ObjectError."""
    types = [
        INT,
        Type(2, Kind.FUNC_PROTO, type=1, params=(Param("x", 1),)),
        Type(3, Kind.FUNC, "f", type=2, linkage=1),
    ]
    data = bytearray(encode(types))
    hdr_len, type_off = struct.unpack_from("<II", data, 4)
    func = hdr_len + type_off + 4 * (4 + 3 + 2)  # after INT (4 words) and the proto (5)
    struct.pack_into("<I", data, func, 0xFFFFF)
    verdict = _fast(Btf(bytes(data), name="case"))
    assert verdict == _slow(Btf(bytes(data), name="case"))
    assert isinstance(verdict, str) and "past the string section" in verdict
    with pytest.raises(ObjectError, match="past the string section"):
        Btf(bytes(data), name="case").dump_c()


def test_the_kernels_btf_gets_the_per_type_checks_heights() -> None:
    if not Path("/sys/kernel/btf/vmlinux").exists():
        pytest.skip("the running kernel has no BTF (/sys/kernel/btf/vmlinux)")
    fast = _fast(Btf.from_file("/sys/kernel/btf/vmlinux"))
    assert isinstance(fast, dict) and len(fast) > 1000
    assert fast == _slow(Btf.from_file("/sys/kernel/btf/vmlinux"))
