"""Whole-map batch reads in every form agree with what the test wrote (issue #18).

One loop serves every batch read (``lookup_batch``, ``lookup_batch_lists``,
``lookup_batch_arrays``, ``lookup_batch_raw``, iteration): it resumes each call where the
last one stopped and retries with twice the room when the kernel answers ENOSPC (a hash
bucket with more elements than the call asked for). These tests write every element
through the untyped handle (bytes, one MAP_UPDATE_ELEM each), then read it back through
each form, in one call and in calls of 1, 7 and 999 elements, across hash, LRU, array
and per-CPU maps; and read a map that the test changes between two calls of one read.
No timing assertions.
"""

from __future__ import annotations

import ctypes
import errno
from collections.abc import Iterator
from typing import Any

import pytest

import pylibbpf as bpf
from pylibbpf import syscall
from pylibbpf.syscall.system import num_possible_cpus

pytestmark = pytest.mark.root

NCPUS = num_possible_cpus()
ENTRIES = 3000
TYPES = [
    bpf.MapType.HASH,
    bpf.MapType.LRU_HASH,
    bpf.MapType.ARRAY,
    bpf.MapType.PERCPU_HASH,
    bpf.MapType.PERCPU_ARRAY,
    bpf.MapType.LRU_PERCPU_HASH,
]
CHUNKS = [None, 1, 7, 999]


@pytest.fixture
def maps() -> Iterator[list[bpf.Map]]:
    made: list[bpf.Map] = []
    yield made
    for map_ in made:
        map_.close()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(count asked, errno or 0) of every MAP_*_BATCH call the library makes (the kernel
    answers each; this only records them)."""
    made: list[tuple[int, int]] = []
    real = syscall.map_batch

    def recording(*args: Any, **kwargs: Any) -> Any:
        try:
            result = real(*args, **kwargs)
        except bpf.BpfError as error:
            made.append((kwargs["count"], error.errno or 0))
            raise
        made.append((kwargs["count"], 0))
        return result

    monkeypatch.setattr(syscall, "map_batch", recording)
    return made


def _value(key: int, cpu: int = 0) -> int:
    return (key * 0x9E3779B97F4A7C15 + cpu * 977 + 1) & ((1 << 64) - 1)


def _filled(maps: list[bpf.Map], map_type: bpf.MapType) -> tuple[bpf.Map, bpf.Map, dict[int, Any]]:
    """A typed (int) and an untyped handle on one new map, every element written through
    the untyped one; and what the kernel holds, read back by MAP_GET_NEXT_KEY and a
    lookup per key (an LRU map may evict some elements while it fills)."""
    key_size = 4 if "ARRAY" in map_type.name else 8
    typed = bpf.Map.create(
        map_type, key_size, 8, ENTRIES, name="t_batchrd", key_type=int, value_type=int
    )
    raw = bpf.Map.from_fd(typed.fd)
    maps += [typed, raw]
    percpu = typed.percpu
    keys = range(ENTRIES) if "ARRAY" in map_type.name else range(5, 5 + 2 * ENTRIES // 3 * 3, 3)
    written: dict[int, Any] = {}
    for key in keys:
        if percpu:
            written[key] = [_value(key, cpu) for cpu in range(NCPUS)]
            raw.update(
                key.to_bytes(key_size, "little"), [v.to_bytes(8, "little") for v in written[key]]
            )
        else:
            written[key] = _value(key)
            raw.update(key.to_bytes(key_size, "little"), written[key].to_bytes(8, "little"))
    held = {
        int.from_bytes(k, "little"): [int.from_bytes(v, "little") for v in value]
        if percpu
        else int.from_bytes(value, "little")
        for k, value in raw._items_by_next_key()
    }
    assert all(written[k] == v for k, v in held.items())
    if "LRU" not in map_type.name:
        assert held == written
    else:
        assert len(held) > ENTRIES // 2
    return typed, raw, held


def _every_form(typed: bpf.Map, raw: bpf.Map, chunk: int | None) -> dict[str, dict[int, Any]]:
    """The map read through each batch form, as {key: value}; per-CPU values as lists."""
    forms: dict[str, dict[int, Any]] = {}
    pairs = typed.lookup_batch(chunk=chunk)
    forms["pairs"] = dict(pairs)
    assert len(forms["pairs"]) == len(pairs)  # each key once
    keys, values = typed.lookup_batch_lists(chunk=chunk)
    assert isinstance(keys, list) and isinstance(values, list) and len(keys) == len(values)
    forms["lists"] = dict(zip(keys, values, strict=True))
    assert len(forms["lists"]) == len(keys)
    akeys, avalues = typed.lookup_batch_arrays(chunk=chunk)
    step = NCPUS if typed.percpu else 1
    assert len(avalues) == len(akeys) * step
    forms["arrays"] = {
        key: avalues[i * step : (i + 1) * step].tolist() if typed.percpu else avalues[i]
        for i, key in enumerate(akeys)
    }
    data = raw.lookup_batch_raw(chunk=chunk)
    key_size, value_size = typed.key_size, 8 * step
    assert len(data.keys) == data.count * key_size and len(data.values) == data.count * value_size
    decoded = {}
    for i in range(data.count):
        key = int.from_bytes(data.keys[i * key_size : (i + 1) * key_size], "little")
        slots = data.values[i * value_size : (i + 1) * value_size]
        cpus = [int.from_bytes(slots[c * 8 : c * 8 + 8], "little") for c in range(step)]
        decoded[key] = cpus if typed.percpu else cpus[0]
    forms["raw"] = decoded
    assert len(forms["arrays"]) == len(akeys) and len(decoded) == data.count  # each key once
    return forms


@pytest.mark.parametrize("map_type", TYPES, ids=lambda t: t.name)
def test_every_batch_form_reads_what_was_written(
    maps: list[bpf.Map], calls: list[tuple[int, int]], map_type: bpf.MapType
) -> None:
    typed, raw, held = _filled(maps, map_type)
    for chunk in CHUNKS:
        calls.clear()
        forms = _every_form(typed, raw, chunk)
        for name, read in forms.items():
            assert read == held, f"{name}, chunk={chunk}"
        assert dict(typed.items()) == held and typed.count() == len(held)
        asked = [count for count, err in calls if not err]
        if chunk is None:
            # a whole-map read asks for all of it in one call (lookups), iteration in 4096s
            assert max(asked) == ENTRIES
        elif chunk == 7:
            assert len(calls) > 4 * (len(held) // 7)  # partial batches: many calls per form
        if chunk == 1 and "HASH" in map_type.name:
            # 2,000 keys in 4,096 buckets: some buckets hold two or more, and a call for
            # one element is refused (ENOSPC) and made again with twice the room
            refused = [i for i, (_count, err) in enumerate(calls) if err == errno.ENOSPC]
            assert refused and calls[refused[0]][0] == 1
            assert all(calls[i + 1][0] == 2 * calls[i][0] for i in refused)


@pytest.mark.parametrize("map_type", [bpf.MapType.HASH, bpf.MapType.PERCPU_HASH], ids=str)
def test_a_pairs_read_leaves_the_collector_as_it_found_it(
    maps: list[bpf.Map], map_type: bpf.MapType
) -> None:
    """Pairs are built with the cyclic GC paused (a tuple per element): it is on again
    after the read if it was on, and stays off if the caller turned it off."""
    import gc

    typed, _raw, held = _filled(maps, map_type)
    assert gc.isenabled()
    assert dict(typed.lookup_batch()) == held and gc.isenabled()
    gc.disable()
    try:
        assert dict(typed.lookup_batch()) == held and not gc.isenabled()
        _keys, values = typed.lookup_batch_lists()
        assert not gc.isenabled() and len(values) == len(held)
    finally:
        gc.enable()


@pytest.mark.parametrize(
    "map_type",
    [bpf.MapType.HASH, bpf.MapType.ARRAY, bpf.MapType.PERCPU_HASH],
    ids=lambda t: t.name,
)
@pytest.mark.parametrize("form", ["pairs", "lists", "arrays", "raw"])
def test_a_map_changed_during_a_read(
    maps: list[bpf.Map], monkeypatch: pytest.MonkeyPatch, map_type: bpf.MapType, form: str
) -> None:
    """After the first call of a read in calls of 50, the test deletes, adds and changes
    elements. The read sees each key once; every key the test left alone with its value;
    a changed key with its old or new value; a deleted or added key or not, with the value
    it had; and a read afterwards sees the map as the test left it."""
    typed, raw, held = _filled(maps, map_type)
    is_array = "ARRAY" in map_type.name
    ordered = list(held)
    deleted = set() if is_array else set(ordered[1::5])
    changed = set(ordered[2::5])
    added = set() if is_array else {k + 1 for k in ordered[3::50]}  # (keys are 5 + 3i)
    new = {k: _value(k, 7) for k in changed | added}
    typed_new = {k: [v] * NCPUS if typed.percpu else v for k, v in new.items()}
    real = syscall.map_batch
    done = [0]

    def change_after_first(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        done[0] += 1
        if done[0] == 1:
            for key in deleted:
                del typed[key]
            for key, value in new.items():
                typed[key] = value  # per-CPU: the same value on every CPU
        return result

    monkeypatch.setattr(syscall, "map_batch", change_after_first)
    read = _every_form(typed, raw, 50)[form]
    monkeypatch.undo()
    assert done[0] > 2 and len(held) > 100
    for key, value in read.items():
        if key in changed:
            assert value in (held[key], typed_new[key]), key
        elif key in added:
            assert value == typed_new[key], key
        else:
            assert value == held[key], key
    untouched = set(held) - deleted - changed
    assert untouched <= set(read)
    final = {k: v for k, v in held.items() if k not in deleted} | typed_new
    assert _every_form(typed, raw, 50)[form] == final == dict(typed.items())


@pytest.mark.parametrize(
    "map_type", [bpf.MapType.HASH, bpf.MapType.PERCPU_HASH], ids=lambda t: t.name
)
@pytest.mark.parametrize("form", ["pairs", "lists", "arrays", "raw"])
def test_read_and_delete_in_every_form(
    maps: list[bpf.Map], map_type: bpf.MapType, form: str
) -> None:
    """``delete=True`` returns every element the map held, and the kernel's map is empty
    afterwards (MAP_GET_NEXT_KEY finds no key)."""
    typed, raw, held = _filled(maps, map_type)
    handle = raw if form == "raw" else typed
    if form == "pairs":
        read = dict(typed.lookup_and_delete_batch(chunk=7))
    elif form == "lists":
        keys, values = typed.lookup_batch_lists(chunk=7, delete=True)
        read = dict(zip(keys, values, strict=True))
    elif form == "arrays":
        akeys, avalues = typed.lookup_batch_arrays(chunk=7, delete=True)
        step = NCPUS if typed.percpu else 1
        read = {
            key: avalues[i * step : (i + 1) * step].tolist() if typed.percpu else avalues[i]
            for i, key in enumerate(akeys)
        }
    else:
        data = handle.lookup_batch_raw(chunk=7, delete=True)
        value_size = len(data.values) // data.count
        read = {
            int.from_bytes(data.keys[i * 8 : i * 8 + 8], "little"): [
                int.from_bytes(data.values[i * value_size + c * 8 :][:8], "little")
                for c in range(value_size // 8)
            ]
            for i in range(data.count)
        }
        if not typed.percpu:
            read = {k: v[0] for k, v in read.items()}
    assert read == held
    assert list(raw._keys_by_next_key()) == []


class Pair(ctypes.Structure):
    _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_uint16)]  # 8 bytes with padding


@pytest.mark.parametrize("chunk", CHUNKS)
def test_struct_values_in_chunks(maps: list[bpf.Map], chunk: int | None) -> None:
    """Maps whose values are not ints read through reused buffers (not arrays): pairs and
    lists hold what MAP_UPDATE_ELEM wrote, in one call and in partial batches."""
    typed = bpf.Map.create(
        bpf.MapType.HASH, 8, 8, 1000, name="t_batchst", key_type=int, value_type=Pair
    )
    raw = bpf.Map.from_fd(typed.fd)
    maps += [typed, raw]
    written = {k * 11: (k, k % 65536) for k in range(700)}
    for key, (a, b) in written.items():
        raw.update(key.to_bytes(8, "little"), bytes(Pair(a, b)))
    pairs = typed.lookup_batch(chunk=chunk)
    keys, values = typed.lookup_batch_lists(chunk=chunk)
    assert len(pairs) == len(keys) == len(written)
    assert {k: (v.a, v.b) for k, v in pairs} == written
    assert {k: (v.a, v.b) for k, v in zip(keys, values, strict=True)} == written
    with pytest.raises(bpf.BpfError, match="lookup_batch_arrays") as refused:
        typed.lookup_batch_arrays(chunk=chunk)
    assert refused.value.errno == errno.EINVAL


def test_keyless_maps_name_their_type(maps: list[bpf.Map]) -> None:
    queue = bpf.Map.create(bpf.MapType.QUEUE, 0, 4, 8, name="t_queue", value_type=int)
    maps.append(queue)
    queue.push(7)
    with pytest.raises(bpf.BpfError, match="map 't_queue': QUEUE maps have no keys"):
        list(queue.keys())
    assert "QUEUE" in repr(queue) and queue.pop() == 7  # the kernel still holds the value


@pytest.mark.parametrize("by_batch", [True, False], ids=["batches", "next_key"])
def test_iteration_reads_every_element_across_batches(maps: list[bpf.Map], by_batch: bool) -> None:
    """``keys()``, ``values()`` and ``items()`` of a map of more elements than one
    iteration batch (runs chained after each other) read what the kernel holds, in one
    order; an iteration stopped early gives its buffers back."""
    from pylibbpf.map_batch import ITER_CHUNK

    n = 2 * ITER_CHUNK + 5
    m = bpf.Map.create(bpf.MapType.HASH, 8, 8, n, name="t_iterruns", key_type=int, value_type=int)
    maps.append(m)
    m.update_batch(list(range(n)), [k * 7 + 1 for k in range(n)])
    m._no_batch = not by_batch
    held = dict(m.items())
    assert held == {k: k * 7 + 1 for k in range(n)}
    assert list(m.keys()) == list(held) and list(m.values()) == list(held.values())
    assert [m[k] for k in m] == list(held.values())  # (m[k]: a lookup of its own)
    pool = len(m._pool)
    walk = m.items()
    assert next(walk) == next(iter(held.items()))
    del walk  # (stopped early: a next_key walk's buffers go back to the pool)
    assert len(m._pool) == pool
