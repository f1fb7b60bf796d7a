"""The element operations' buffers: the pool they come from, and the record fast path.

Every operation takes a buffer set from its map's pool and gives it back, also when it
raises (KeyError, a bad key, a closed map), so the pool holds one set per operation that
ran at once. Record keys and values (ctypes types) are copied into their buffers by an
``mmap`` slice assignment: any buffer of the element's size goes in as it is, anything
else goes to the codec, exactly as before. The fast paths are compared with the slow ones
(the codec's bytes, libc's ``syscall()``, ctypes-called stubs) through what the kernel
holds, read by another path (a batch read of the raw bytes).
"""

from __future__ import annotations

import array
import ctypes
import errno
import itertools
from collections.abc import Iterator

import pytest

import pylibbpf as bpf
from pylibbpf.syscall import direct
from pylibbpf.syscall.system import num_possible_cpus

pytestmark = pytest.mark.root


class Rec(ctypes.Structure):
    _fields_ = [
        ("pid", ctypes.c_uint32),
        ("tgid", ctypes.c_uint32),
        ("start_time", ctypes.c_uint64),
        ("comm", ctypes.c_char * 16),
    ]


class Other(ctypes.Structure):
    """Another type of Rec's size: its bytes are taken, as the codec takes them."""

    _fields_ = [("words", ctypes.c_uint64 * 4)]


class Key(ctypes.Structure):
    _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_uint16), ("c", ctypes.c_uint16)]


# direct stubs called as builtins, direct stubs called through ctypes, libc's syscall()
PATHS = [(True, True), (True, False), (False, True)]


@pytest.fixture
def path_toggle() -> Iterator[None]:
    previous, builtin = direct.enabled(), direct.set_builtin(True)
    direct.set_builtin(builtin)
    yield
    direct.set_enabled(previous)
    direct.set_builtin(builtin)


def _kernel_state(m: bpf.Map, value_size: int) -> dict[bytes, bytes]:
    """The map's raw keys and values as the kernel holds them (one batch read)."""
    data, ks = m.lookup_batch_raw(), m.key_size
    return {
        data.keys[i * ks : (i + 1) * ks]: data.values[i * value_size : (i + 1) * value_size]
        for i in range(data.count)
    }


def _open(fd: int, on: bool, builtin: bool, **types: object) -> bpf.Map:
    direct.set_enabled(on)
    direct.set_builtin(builtin)
    return bpf.Map.from_fd(fd, **types)  # type: ignore[arg-type]


@pytest.mark.parametrize(("on", "builtin"), PATHS)
def test_records_in_every_form_reach_the_kernel(path_toggle: None, on: bool, builtin: bool) -> None:
    size = ctypes.sizeof(Rec)
    with bpf.Map.create(bpf.MapType.HASH, 8, size, 16, name="t_erec") as made:
        m = _open(made.fd, on, builtin, key_type=Key, value_type=Rec)
        first = Rec(1, 2, 3, b"one")
        m[Key(1, 2, 3)] = first
        m[Key(2, 0, 0)] = bytes(Rec(4, 5, 6, b"bytes"))
        m[Key(3, 0, 0)] = Other((ctypes.c_uint64 * 4)(7, 8, 9, 10))
        m[bytes(Key(4, 0, 0))] = memoryview(bytearray(bytes(Rec(11, 12, 13, b"view"))))
        m[Key(5, 0, 0)] = array.array("B", bytes(Rec(14, 15, 16, b"array")))
        doubled = bytes(
            itertools.chain.from_iterable(zip(bytes(Rec(17)), b"\0" * size, strict=True))
        )
        m[Key(6, 0, 0)] = memoryview(doubled)[::2]  # not contiguous: the codec copies it
        m.update(Key(7, 0, 0), Rec(18, 19, 20, b"upd"), bpf.UpdateFlags.NOEXIST)
        first.pid = 99  # the map holds a copy
        expected = {
            bytes(Key(1, 2, 3)): bytes(Rec(1, 2, 3, b"one")),
            bytes(Key(2, 0, 0)): bytes(Rec(4, 5, 6, b"bytes")),
            bytes(Key(3, 0, 0)): bytes(Other((ctypes.c_uint64 * 4)(7, 8, 9, 10))),
            bytes(Key(4, 0, 0)): bytes(Rec(11, 12, 13, b"view")),
            bytes(Key(5, 0, 0)): bytes(Rec(14, 15, 16, b"array")),
            bytes(Key(6, 0, 0)): bytes(Rec(17)),
            bytes(Key(7, 0, 0)): bytes(Rec(18, 19, 20, b"upd")),
        }
        assert _kernel_state(made, size) == expected
        got = m[Key(1, 2, 3)]
        assert isinstance(got, Rec) and (got.pid, got.tgid, got.start_time) == (1, 2, 3)
        assert got.comm == b"one" and bytes(m.lookup(Key(5, 0, 0))) == bytes(
            Rec(14, 15, 16, b"array")
        )
        got.pid = 50  # a copy: the map keeps its value
        assert m[Key(1, 2, 3)].pid == 1
        assert m.get(Key(9, 0, 0)) is None and Key(9, 0, 0) not in m


@pytest.mark.parametrize(("on", "builtin"), PATHS)
def test_record_input_of_another_size_or_kind_is_refused(
    path_toggle: None, on: bool, builtin: bool
) -> None:
    size = ctypes.sizeof(Rec)
    with bpf.Map.create(bpf.MapType.HASH, 4, size, 4, name="t_erecbad") as made:
        m = _open(made.fd, on, builtin, key_type=int, value_type=Rec)
        m[1] = Rec(1)
        for bad in (b"short", bytes(size + 1), Key(1, 2, 3), list(bytes(size)), "x" * size, 2.5):
            with pytest.raises(bpf.BpfError) as refused:
                m[1] = bad
            assert refused.value.errno == errno.EINVAL
            assert "t_erecbad" in str(refused.value)
        with pytest.raises(bpf.BpfError) as wrong_key:
            m[Key(1, 2, 3)] = Rec(2)  # an 8-byte key for a 4-byte map
        assert "t_erecbad" in str(wrong_key.value)
        assert _kernel_state(made, size) == {(1).to_bytes(4, "little"): bytes(Rec(1))}
        assert len(m._pool) == 1  # every refused operation gave its buffers back


@pytest.mark.parametrize(("on", "builtin"), PATHS)
def test_percpu_values_agree_across_paths(path_toggle: None, on: bool, builtin: bool) -> None:
    ncpus = num_possible_cpus()
    with bpf.Map.create(bpf.MapType.PERCPU_HASH, 4, 8, 8, name="t_epc") as made:
        m = _open(made.fd, on, builtin, key_type=int, value_type=int)
        m[1] = 5
        m[2] = list(range(ncpus))
        m[3] = b"".join(i.to_bytes(8, "little") for i in range(10, 10 + ncpus))
        assert _kernel_state(made, 8 * ncpus) == {
            (1).to_bytes(4, "little"): (5).to_bytes(8, "little") * ncpus,
            (2).to_bytes(4, "little"): b"".join(i.to_bytes(8, "little") for i in range(ncpus)),
            (3).to_bytes(4, "little"): b"".join(
                i.to_bytes(8, "little") for i in range(10, 10 + ncpus)
            ),
        }
        assert m[1] == [5] * ncpus and m[2] == list(range(ncpus))
        assert m.lookup(3) == list(range(10, 10 + ncpus)) and m.get(4) is None


def test_every_operation_gives_its_buffers_back() -> None:
    with bpf.Map.create(
        bpf.MapType.HASH, 4, 8, 2, name="t_epool", key_type=int, value_type=int
    ) as m:
        m[1] = 10
        m.update(2, 20, bpf.UpdateFlags.NOEXIST)
        with pytest.raises(KeyError):
            m[3]
        with pytest.raises(bpf.BpfError) as full:
            m[3] = 30
        assert full.value.errno == errno.E2BIG
        with pytest.raises(bpf.BpfError):
            m["not a key"] = 1
        with pytest.raises(bpf.BpfError):
            m.lookup(b"toolongkey")
        assert m.get(3, -1) == -1 and 1 in m and m.lookup(1) == 10
        assert m.next_key() in (1, 2) and sorted(m.keys()) == [1, 2]
        assert dict(m.items()) == {1: 10, 2: 20}
        assert m.lookup_and_delete(2) == 20 and not m.delete(2)
        with pytest.raises(KeyError):
            del m[2]
        assert m.clear() == 1
        assert len(m._pool) == 1
        m.close()
        with pytest.raises(bpf.BpfError) as closed:
            m[1]
        assert closed.value.errno == errno.EBADF
        assert len(m._pool) == 1


def test_an_iteration_holds_its_own_buffers() -> None:
    """Element operations inside a ``keys()`` loop take other buffers than the loop's."""
    with bpf.Map.create(
        bpf.MapType.HASH, 4, 8, 8, name="t_eiter", key_type=int, value_type=int
    ) as m:
        for key in range(8):
            m[key] = key
        m._no_batch = True  # iterate by MAP_GET_NEXT_KEY, on buffers from the pool
        seen = []
        for key in m:
            seen.append(key)
            # (a lookup: replacing a hash map's element while walking it can restart the walk)
            assert m[key] == key and m.get(key + 8) is None
            assert len(m._pool) == 1  # the loop holds the other set
        assert sorted(seen) == list(range(8))
        assert len(m._pool) == 2


def test_a_map_not_created_yet_says_so() -> None:
    spec_map = bpf.Map(
        None, name="t_enot", map_type=bpf.MapType.HASH, key_size=4, value_size=8, max_entries=4
    )
    for operation in (lambda: spec_map[1], lambda: spec_map.update(1, 2), lambda: 1 in spec_map):
        with pytest.raises(bpf.BpfError) as not_created:
            operation()
        assert not_created.value.errno == errno.EBADF
        assert "t_enot" in str(not_created.value) and "not created" in str(not_created.value)
    assert len(spec_map._pool) == 0
