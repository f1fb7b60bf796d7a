"""The fast paths of map access return what the slow ones do (issue #18).

Every check goes through the kernel: a typed handle (ints, ctypes, per-CPU lists: the
fast setters and getters, one-pass batch conversion) and a second, untyped handle on the
same kernel map (bytes in and out, decoded here with ``int.from_bytes`` and ctypes) must
agree, in both directions, and batch iteration must agree with MAP_GET_NEXT_KEY
iteration. Across map types (hash, array, per-CPU hash and array, LRU) and element sizes
(1, 2, 4, 8 bytes, and odd sizes that take the general path). No timing assertions.
"""

from __future__ import annotations

import ctypes
import errno
import random
from array import array
from collections.abc import Iterator
from typing import Any

import pytest

import pylibbpf as bpf
from pylibbpf.syscall.system import num_possible_cpus

pytestmark = pytest.mark.root

NCPUS = num_possible_cpus()


class Rec(ctypes.Structure):
    """An odd-sized record (20 bytes: no integer shortcut applies)."""

    _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_int64), ("tag", ctypes.c_char * 8)]


def _pair(map_type: bpf.MapType, key_size: int, value_size: int, **types: Any) -> Any:
    typed = bpf.Map.create(map_type, key_size, value_size, 64, name="t_fast", **types)
    return typed, bpf.Map.from_fd(typed.fd)


def _slow_int(raw: bytes, signed: bool = False) -> int:
    return int.from_bytes(raw, "little", signed=signed)


def _keys(map_type: bpf.MapType, size: int) -> list[int]:
    if map_type in (bpf.MapType.ARRAY, bpf.MapType.PERCPU_ARRAY):
        return list(range(0, 64, 3))
    top = (1 << (8 * size)) - 1
    rng = random.Random(size)
    return sorted({0, 1, top, top >> 1, *(rng.randrange(top + 1) for _ in range(20))})


def _value_for(key: int, size: int) -> int:
    return (key * 0x9E3779B97F4A7C15 + 7) & ((1 << (8 * size)) - 1)


@pytest.fixture
def maps() -> Iterator[list[bpf.Map]]:
    made: list[bpf.Map] = []
    yield made
    for map_ in made:
        map_.close()


SCALAR_TYPES = [bpf.MapType.HASH, bpf.MapType.LRU_HASH, bpf.MapType.ARRAY]


SIZES = [1, 2, 4, 8, 3, 16]  # the integer shortcuts, and odd sizes (the general path)
INT_CASES = [
    (map_type, key_size, value_size)
    for map_type in SCALAR_TYPES
    for key_size in SIZES
    for value_size in SIZES
    if map_type != bpf.MapType.ARRAY or key_size == 4  # array keys are 4 bytes
]


@pytest.mark.parametrize(
    ("map_type", "key_size", "value_size"),
    INT_CASES,
    ids=[f"{t.name}-k{k}-v{v}" for t, k, v in INT_CASES],
)
def test_int_elements_match_the_bytes_path(
    maps: list[bpf.Map], map_type: bpf.MapType, key_size: int, value_size: int
) -> None:
    typed, raw = _pair(map_type, key_size, value_size, key_type=int, value_type=int)
    maps += [typed, raw]
    keys = _keys(map_type, key_size)
    # fast writes, read back through bytes
    for k in keys:
        typed[k] = _value_for(k, value_size)
    for k in keys:
        stored = raw[k.to_bytes(key_size, "little")]
        assert _slow_int(stored) == _value_for(k, value_size)
        assert typed[k] == typed.lookup(k) == typed.get(k) == _value_for(k, value_size)
        assert k in typed
    # bytes writes, read back fast
    for k in keys:
        raw.update(
            k.to_bytes(key_size, "little"),
            _value_for(k + 1, value_size).to_bytes(value_size, "little"),
        )
    assert {k: typed[k] for k in keys} == {k: _value_for(k + 1, value_size) for k in keys}
    # a bytes key into the int map, an int key into the bytes map: both paths convert
    assert typed[keys[-1].to_bytes(key_size, "little")] == _value_for(keys[-1] + 1, value_size)
    assert raw[keys[-1]] == _value_for(keys[-1] + 1, value_size).to_bytes(value_size, "little")
    # batches and iteration, against MAP_GET_NEXT_KEY and per-key lookups on the bytes handle
    expected = {_slow_int(key): _slow_int(value) for key, value in raw._items_by_next_key()}
    assert dict(typed.items()) == expected
    assert dict(typed.lookup_batch()) == expected
    assert dict(zip(*typed.lookup_batch_lists(), strict=True)) == expected
    _check_arrays(typed, expected)
    assert dict(typed) == expected
    assert sorted(typed.keys()) == sorted(expected)
    assert sorted(typed.values()) == sorted(expected.values())
    assert typed.count() == len(expected)
    if map_type != bpf.MapType.ARRAY:
        absent = next(k for k in range(1 << min(8 * key_size, 16)) if k not in expected)
        assert typed.lookup(absent) is None and absent not in typed
        with pytest.raises(KeyError):
            typed[absent]


def _check_arrays(typed: bpf.Map, expected: dict[int, Any]) -> None:
    """``lookup_batch_arrays()`` holds what the kernel holds (``expected``, read through
    the bytes path), or refuses, naming the map, keys or values that are not 1-, 2-, 4-
    or 8-byte ints."""
    if typed.key_size not in (1, 2, 4, 8) or typed.value_size not in (1, 2, 4, 8):
        with pytest.raises(bpf.BpfError, match="lookup_batch_arrays") as refused:
            typed.lookup_batch_arrays()
        assert refused.value.errno == errno.EINVAL and typed.name in str(refused.value)
        return
    keys, values = typed.lookup_batch_arrays()
    assert isinstance(keys, array) and isinstance(values, array)
    assert (keys.itemsize, values.itemsize) == (typed.key_size, typed.value_size)
    ncpus = NCPUS if typed.percpu else 1
    assert len(values) == len(keys) * ncpus == len(expected) * ncpus
    if typed.percpu:
        grouped = [values[i * ncpus : (i + 1) * ncpus].tolist() for i in range(len(keys))]
        assert dict(zip(keys, grouped, strict=True)) == expected
    else:
        assert dict(zip(keys, values, strict=True)) == expected


@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_out_of_range_and_wrong_kinds_take_the_checked_path(maps: list[bpf.Map], size: int) -> None:
    typed, raw = _pair(bpf.MapType.HASH, size, size, key_type=int, value_type=int)
    maps += [typed, raw]
    with pytest.raises(bpf.BpfError, match="does not fit") as caught:
        typed[1 << (8 * size)] = 1
    assert caught.value.errno == errno.ERANGE
    with pytest.raises(bpf.BpfError, match="cannot use float"):
        typed[1] = 1.5
    with pytest.raises(bpf.BpfError, match=f"key must be {size} bytes"):
        typed[b"\0" * (size + 1)] = 1
    # negative ints are stored two's-complement, as the general path always did
    typed[-1] = -2
    assert raw[b"\xff" * size] == (-2).to_bytes(size, "little", signed=True)
    assert typed[(1 << (8 * size)) - 1] == (1 << (8 * size)) - 2
    assert typed.count() == 1


@pytest.mark.parametrize("ctype", [ctypes.c_int8, ctypes.c_int16, ctypes.c_int32, ctypes.c_int64])
def test_signed_ctypes_int_types(maps: list[bpf.Map], ctype: Any) -> None:
    size = ctypes.sizeof(ctype)
    typed, raw = _pair(bpf.MapType.HASH, size, size, key_type=ctype, value_type=ctype)
    maps += [typed, raw]
    values = {-1: -(1 << (8 * size - 1)), 5: -5, -7: (1 << (8 * size - 1)) - 1}
    for k, v in values.items():
        typed[k] = v
    for k, v in values.items():
        assert typed[k] == v
        assert _slow_int(raw[k.to_bytes(size, "little", signed=True)], signed=True) == v
    assert dict(typed.items()) == values == dict(typed.lookup_batch())
    _check_arrays(typed, values)
    assert typed.lookup_batch_arrays()[0].typecode in "bhiq"  # signed: negative ints
    typed.update_batch(list(values), [v // 2 for v in values.values()])
    assert dict(typed.items()) == {k: v // 2 for k, v in values.items()}


@pytest.mark.parametrize("map_type", SCALAR_TYPES, ids=lambda t: t.name)
def test_ctypes_values_match_the_bytes_path(maps: list[bpf.Map], map_type: bpf.MapType) -> None:
    size = ctypes.sizeof(Rec)
    typed, raw = _pair(map_type, 4, size, key_type=int, value_type=Rec)
    maps += [typed, raw]
    records = {k: Rec(k, -k * 1000, b"r%d" % k) for k in range(0, 40, 4)}
    for k, rec in records.items():
        typed[k] = rec
    for k, rec in records.items():
        back = Rec.from_buffer_copy(raw[k.to_bytes(4, "little")])
        assert (back.a, back.b, back.tag) == (rec.a, rec.b, rec.tag)
        got = typed[k]
        assert isinstance(got, Rec) and bytes(got) == bytes(rec)

    # another ctypes type of the same size, and plain bytes, take the general path
    class Other(ctypes.Structure):
        _fields_ = [("raw", ctypes.c_uint8 * size)]

    typed[0] = Other.from_buffer_copy(bytes(Rec(9, 9, b"other")))
    assert typed[0].tag == b"other"
    typed[4] = bytes(Rec(8, 8, b"bytes"))
    assert typed[4].tag == b"bytes"
    expected = {_slow_int(k): bytes(v) for k, v in raw._items_by_next_key()}
    assert {k: bytes(v) for k, v in typed.items()} == expected
    assert {k: bytes(v) for k, v in typed.lookup_batch()} == expected
    # a ctypes array of records in one update_batch
    batch = (Rec * 3)(Rec(1, 1, b"a"), Rec(2, 2, b"b"), Rec(3, 3, b"c"))
    assert typed.update_batch(array("I", [1, 2, 3]), batch) == 3
    assert [typed[k].tag for k in (1, 2, 3)] == [b"a", b"b", b"c"]


def test_ctypes_array_values(maps: list[bpf.Map]) -> None:
    u16x3 = ctypes.c_uint16 * 3
    typed, raw = _pair(bpf.MapType.HASH, 2, 6, key_type=ctypes.c_uint16, value_type=u16x3)
    maps += [typed, raw]
    typed[7] = u16x3(1, 2, 65535)
    assert list(typed[7]) == [1, 2, 65535]
    assert raw[b"\x07\x00"] == b"\x01\x00\x02\x00\xff\xff"
    assert [(k, list(v)) for k, v in typed.items()] == [(7, [1, 2, 65535])]


PERCPU_TYPES = [bpf.MapType.PERCPU_HASH, bpf.MapType.PERCPU_ARRAY, bpf.MapType.LRU_PERCPU_HASH]


@pytest.mark.parametrize("map_type", PERCPU_TYPES, ids=lambda t: t.name)
@pytest.mark.parametrize("value_size", [1, 2, 4, 8, 12])
def test_percpu_values_match_the_bytes_path(
    maps: list[bpf.Map], map_type: bpf.MapType, value_size: int
) -> None:
    typed, raw = _pair(map_type, 4, value_size, key_type=int, value_type=int)
    maps += [typed, raw]
    keys = _keys(bpf.MapType.ARRAY, 4)[:8]
    per_cpu = {k: [_value_for(k * 31 + cpu, value_size) for cpu in range(NCPUS)] for k in keys}
    for k, values in per_cpu.items():
        typed[k] = values
    for k, values in per_cpu.items():
        stored = raw[k.to_bytes(4, "little")]  # one bytes value per CPU
        assert len(stored) == NCPUS and {len(v) for v in stored} == {value_size}
        assert [_slow_int(v) for v in stored] == values
        assert typed[k] == values
    typed[keys[0]] = 3  # one value for every CPU
    assert typed[keys[0]] == [3] * NCPUS
    per_cpu[keys[0]] = [3] * NCPUS
    expected = {
        _slow_int(k): [_slow_int(v) for v in values] for k, values in raw._items_by_next_key()
    }
    assert dict(typed.items()) == expected == dict(typed.lookup_batch())
    assert dict(zip(*typed.lookup_batch_lists(), strict=True)) == expected
    _check_arrays(typed, expected)
    assert all(expected[k] == per_cpu[k] for k in keys)
    # update_batch with one list per element
    doubled = {k: [v * 2 % (1 << (8 * value_size)) for v in vs] for k, vs in per_cpu.items()}
    typed.update_batch(list(doubled), list(doubled.values()))
    assert {k: typed[k] for k in keys} == doubled


@pytest.mark.parametrize("value_size", [4, 8])
def test_percpu_int_writes_refuse_what_the_codec_refuses(
    maps: list[bpf.Map], value_size: int
) -> None:
    """The strided per-CPU fast path takes an int, a list or a tuple of NCPUS ints, or the
    packed bytes; anything else gets the codec's error naming the map, and the element
    the kernel holds is unchanged."""
    typed, raw = _pair(bpf.MapType.PERCPU_ARRAY, 4, value_size, key_type=int, value_type=int)
    maps += [typed, raw]
    typed[1] = tuple(range(10, 10 + NCPUS))
    assert [_slow_int(v) for v in raw[(1).to_bytes(4, "little")]] == list(range(10, 10 + NCPUS))
    slot = (value_size + 7) & ~7
    packed = b"".join(
        (40 + cpu).to_bytes(value_size, "little").ljust(slot, b"\0") for cpu in range(NCPUS)
    )
    typed[2] = packed
    assert typed[2] == [40 + cpu for cpu in range(NCPUS)]
    for bad in ([1] * (NCPUS + 1), 1 << (8 * value_size), "seven", [1.5] * NCPUS):
        with pytest.raises(bpf.BpfError) as refused:
            typed[1] = bad
        assert refused.value.errno in (errno.EINVAL, errno.ERANGE) and "t_fast" in str(
            refused.value
        )
    assert typed[1] == list(range(10, 10 + NCPUS))


@pytest.mark.parametrize(
    "value_type",
    [ctypes.c_int8, ctypes.c_uint16, ctypes.c_int32, ctypes.c_int64, ctypes.c_uint64],
    ids=lambda t: t.__name__,
)
def test_percpu_int_writes_store_what_the_bytes_path_stores(
    maps: list[bpf.Map], value_type: Any
) -> None:
    """An int for every CPU and a list or tuple of one per CPU (the packed fast setter),
    signed or not, with or without slot padding: the kernel holds for each key what it
    holds for the packed bytes written through an untyped handle, and the typed handle
    reads them back."""
    size, signed = ctypes.sizeof(value_type), value_type(-1).value < 0
    slot, bits = (size + 7) & ~7, 8 * size
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    typed, raw = _pair(bpf.MapType.PERCPU_HASH, 4, size, key_type=int, value_type=value_type)
    maps += [typed, raw]
    spread = [(low, high, 0, 1)[cpu % 4] for cpu in range(NCPUS)]
    for key, value in enumerate([low, high, 0, spread, tuple(reversed(spread))]):
        typed[key] = value
        per_cpu = [value] * NCPUS if isinstance(value, int) else list(value)
        packed = b"".join(
            v.to_bytes(size, "little", signed=signed).ljust(slot, b"\0") for v in per_cpu
        )
        raw[(key + 100).to_bytes(4, "little")] = packed
        stored = raw[key.to_bytes(4, "little")]
        assert stored == raw[(key + 100).to_bytes(4, "little")]
        assert [int.from_bytes(v, "little", signed=signed) for v in stored] == per_cpu
        assert typed[key] == per_cpu == typed[key + 100]


@pytest.mark.parametrize("map_type", SCALAR_TYPES + PERCPU_TYPES, ids=lambda t: t.name)
def test_batch_iteration_matches_next_key_iteration(
    maps: list[bpf.Map], map_type: bpf.MapType
) -> None:
    typed = bpf.Map.create(map_type, 4, 8, 5000, name="t_iter", key_type=int, value_type=int)
    maps.append(typed)
    keys = list(range(0, 5000, 2)) if "ARRAY" not in map_type.name else list(range(5000))
    typed.update_batch(keys, [k * 7 for k in keys])
    batched = list(typed.items())
    assert len(batched) == len(keys) and not typed._no_batch
    slow = bpf.Map.from_fd(typed.fd, key_type=int, value_type=int)
    maps.append(slow)
    slow._no_batch = True  # as on a kernel without batch operations
    assert sorted(slow.items()) == sorted(batched)
    assert sorted(slow.keys()) == sorted(typed.keys()) == sorted(k for k, _ in batched)
    assert sorted(map(str, slow.values())) == sorted(map(str, typed.values()))
    assert slow.count() == typed.count() == len(keys)
    assert dict(slow) == dict(typed) == dict(batched)
    expect = (lambda k: [k * 7] * NCPUS) if typed.percpu else (lambda k: k * 7)
    assert all(value == expect(key) for key, value in batched)
    # arrays, read in one call and in many small ones (the kernel answers ENOSPC when a
    # hash bucket does not fit: the call is retried with more room)
    for chunk in (None, 1, 7, 999):
        _check_arrays_chunked(typed, dict(batched), chunk)


def _check_arrays_chunked(typed: bpf.Map, expected: dict[int, Any], chunk: int | None) -> None:
    keys, values = typed.lookup_batch_arrays(chunk=chunk)
    step = NCPUS if typed.percpu else 1
    read = {
        key: values[i * step : (i + 1) * step].tolist() if typed.percpu else values[i]
        for i, key in enumerate(keys)
    }
    assert len(keys) == len(expected) and read == expected


@pytest.mark.parametrize(
    "map_type", [bpf.MapType.HASH, bpf.MapType.LRU_PERCPU_HASH], ids=lambda t: t.name
)
def test_lookup_and_delete_batch_arrays(maps: list[bpf.Map], map_type: bpf.MapType) -> None:
    """``delete=True`` reads every element into arrays and the kernel's map is empty."""
    typed = bpf.Map.create(map_type, 8, 4, 3000, name="t_arrdel", key_type=int, value_type=int)
    maps.append(typed)
    typed.update_batch(list(range(0, 6000, 2)), [k + 1 for k in range(0, 6000, 2)])
    held = dict(typed.items())  # an LRU map may have evicted some while filling
    assert len(held) > 2000
    keys, values = typed.lookup_batch_arrays(chunk=256, delete=True)
    step = NCPUS if typed.percpu else 1
    assert sorted(keys) == sorted(held)
    assert all(values[i * step] == key + 1 for i, key in enumerate(keys))
    assert typed.count() == 0 and typed.lookup(keys[0]) is None


def test_lookup_batch_arrays_refuses_untyped_maps(maps: list[bpf.Map]) -> None:
    raw = bpf.Map.create(bpf.MapType.HASH, 8, 8, 4, name="t_arrraw")
    maps.append(raw)
    raw[b"\1" * 8] = b"\2" * 8
    with pytest.raises(bpf.BpfError, match="key_type=int") as refused:
        raw.lookup_batch_arrays()
    assert refused.value.errno == errno.EINVAL and "t_arrraw" in str(refused.value)
    assert raw.lookup_batch_raw().count == 1  # the map is unchanged and readable


def test_iteration_falls_back_where_the_kernel_has_no_batches(maps: list[bpf.Map]) -> None:
    # CPU maps have no batch operations (ENOTSUPP): MAP_GET_NEXT_KEY, a lookup per key
    cpus = bpf.Map.create(
        bpf.MapType.CPUMAP, 4, 4, NCPUS, name="t_cpus", key_type=int, value_type=int
    )
    maps.append(cpus)
    cpus[0] = 192  # a queue of 192 frames for CPU 0; the other CPUs have none
    assert dict(cpus.items()) == {0: 192}
    assert cpus._no_batch
    assert list(cpus.values()) == [192] and cpus.count() == NCPUS  # keys: every index


def test_update_batch_inputs(maps: list[bpf.Map]) -> None:
    typed, raw = _pair(bpf.MapType.HASH, 8, 4, key_type=int, value_type=int)
    maps += [typed, raw]
    assert typed.update_batch({1: 10, 2: 20}) == 2
    assert typed.update_batch(array("Q", [3, 4]), (ctypes.c_uint32 * 2)(30, 40)) == 2
    assert typed.update_batch([5, 6], [50, 60]) == 2
    assert typed.update_batch([7, -1], [70, -1]) == 2  # negative: the general path
    assert (
        typed.update_batch(
            b"".join(k.to_bytes(8, "little") for k in (8, 9)), b"\x50\0\0\0\x5a\0\0\0"
        )
        == 2
    )
    assert dict(typed.items()) == {
        1: 10,
        2: 20,
        3: 30,
        4: 40,
        5: 50,
        6: 60,
        7: 70,
        (1 << 64) - 1: (1 << 32) - 1,
        8: 80,
        9: 90,
    }
    with pytest.raises(bpf.BpfError, match="does not fit"):
        typed.update_batch([1], [1 << 32])
    with pytest.raises(bpf.BpfError, match="2 keys but 1 values"):
        typed.update_batch([1, 2], [1])
    assert typed.delete_batch(array("Q", [1, 2])) == 2 and 1 not in typed


OBJECTS_WITH_FIXUPS = ["loader", "core_reads", "tcp_cc", "kfunc_ct", "skeleton", "ringbuf"]


@pytest.mark.parametrize("name", OBJECTS_WITH_FIXUPS)
def test_object_btf_from_raw_records_matches_a_full_reencode(bpf_object: Any, name: str) -> None:
    """On a first load, types the fix-ups leave alone go back to the kernel as their raw
    records (``RawType``): the encoding must be what decoding and re-encoding everything
    gives, for kernels with every BTF kind and for ones lacking them (sanitized)."""
    from pylibbpf.btf.encode import (
        KernelBtfSupport,
        encode,
        fixup_datasecs,
        fixup_externs,
        fixup_hidden,
        raw_types,
        sanitize,
    )
    from pylibbpf.spec.source import read_object

    spec = read_object(bpf_object(name))
    assert spec.btf is not None
    sizes = dict(spec.section_sizes)
    offsets = {var: offset for (_section, var), offset in spec.object_symbols.items()}
    for support in (KernelBtfSupport(), KernelBtfSupport(*[False] * 7)):
        encodings = []
        for types, strings in (
            (list(spec.btf), spec.btf.strings),
            raw_types(spec.btf, support),
        ):
            fixed = fixup_hidden(
                fixup_externs(fixup_datasecs(types, sizes, offsets)), spec.hidden_symbols
            )
            encodings.append(encode(sanitize(fixed, support), strings_base=strings))
        assert encodings[0] == encodings[1]
