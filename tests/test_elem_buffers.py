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
import sys
import threading
from collections.abc import Iterator

import pytest

import pylibbpf as bpf
from pylibbpf.btf.ctype import CStruct
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
CPYTHON_BUILTINS = sys.implementation.name == "cpython" and hasattr(ctypes, "pythonapi")


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


# ----------------------------------------------------------------- records looked up in place


class Small(ctypes.Structure):
    """12 bytes: ctypes keeps it inside the instance (16 bytes or less)."""

    _fields_ = [("a", ctypes.c_uint8), ("b", ctypes.c_uint32), ("c", ctypes.c_uint16)]


class Inner(ctypes.Structure):
    _fields_ = [("x", ctypes.c_uint16), ("y", ctypes.c_uint64)]


class Nested(ctypes.Structure):
    """Padding after ``flag`` and inside ``Inner``, a nested array of records."""

    _fields_ = [
        ("flag", ctypes.c_uint8),
        ("inner", Inner),
        ("pairs", Inner * 3),
        ("tail", ctypes.c_char * 5),
    ]


class Choice(ctypes.Union):
    _fields_ = [("word", ctypes.c_uint64), ("half", ctypes.c_uint32 * 2)]


class Large(ctypes.Structure):
    _fields_ = [("n", ctypes.c_uint32), ("blob", ctypes.c_uint8 * 300)]


class FromBtf(CStruct):
    """As BTF-derived records are made (``CStruct``: repr, asdict)."""

    _fields_ = [("pid", ctypes.c_uint32), ("_pad1_0", ctypes.c_uint8 * 4), ("ts", ctypes.c_uint64)]


class Built(ctypes.Structure):
    """A record with its own ``__init__``: a lookup does not run it (nor does a copy)."""

    _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_uint32)]

    def __init__(self, a: int) -> None:
        super().__init__(a, a + 1)


class Made(ctypes.Structure):
    """A record with its own ``__new__``: lookups copy, as before (no ``__new__`` runs)."""

    _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_uint32)]

    def __new__(cls, *args: object) -> Made:
        raise AssertionError("a lookup must not call __new__")


def _pattern(size: int, seed: int) -> bytes:
    """Bytes with no zero run, so any byte read from the wrong place shows."""
    return bytes((seed * 31 + i * 7) % 251 + 1 for i in range(size))


RECORD_TYPES = [Small, Nested, Choice, Large, FromBtf, ctypes.c_uint16 * 3, ctypes.c_uint64 * 5]


@pytest.mark.parametrize("record", RECORD_TYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize(("on", "builtin"), PATHS)
def test_record_lookups_read_what_the_kernel_holds(
    path_toggle: None, on: bool, builtin: bool, record: type
) -> None:
    """Every path returns a new instance of the value type with the bytes the test wrote
    through another handle (raw bytes); the kernel writes straight into it on builtin
    stubs (``new_record``), and the attr points at the buffers again afterwards."""
    size = ctypes.sizeof(record)
    with bpf.Map.create(bpf.MapType.HASH, 4, size, 8, name="t_eget") as raw:
        m = _open(raw.fd, on, builtin, key_type=int, value_type=record)
        ops = m._elems.any_ops()  # type: ignore[union-attr]
        in_place = on and builtin and direct.enabled() and CPYTHON_BUILTINS
        assert (ops.new_record is record) is in_place
        for key in range(4):
            raw[key.to_bytes(4, "little")] = _pattern(size, key)
        for key in range(4):
            for got in (m[key], m.lookup(key), m.get(key)):
                assert type(got) is record and bytes(got) == _pattern(size, key)
                assert ctypes.addressof(got) != ctypes.addressof(ops.vbuf)
        raw[(2).to_bytes(4, "little")] = _pattern(size, 9)  # changed behind its back
        assert bytes(m[2]) == _pattern(size, 9)
        with pytest.raises(KeyError):
            m[7]
        assert m.get(7, "absent") == "absent" and m.lookup(7) is None
        assert ops.attr.value == ctypes.addressof(ops.vbuf) and len(m._pool) == 1
        assert _kernel_state(raw, size) == {
            k.to_bytes(4, "little"): _pattern(size, 9 if k == 2 else k) for k in range(4)
        }


@pytest.mark.parametrize(("on", "builtin"), PATHS)
def test_looked_up_records_are_independent(path_toggle: None, on: bool, builtin: bool) -> None:
    """A record owns its memory: changing it changes neither the map nor another record,
    and reading or updating the map again does not change it."""
    size = ctypes.sizeof(Nested)
    with bpf.Map.create(bpf.MapType.HASH, 4, size, 4, name="t_eown") as raw:
        m = _open(raw.fd, on, builtin, key_type=int, value_type=Nested)
        raw[(1).to_bytes(4, "little")] = _pattern(size, 1)
        raw[(2).to_bytes(4, "little")] = _pattern(size, 2)
        first, again, other = m[1], m[1], m[2]
        assert first is not again and ctypes.addressof(first) != ctypes.addressof(again)
        first.inner.y = 12345
        first.pairs[1].x = 7
        assert bytes(again) == _pattern(size, 1) == bytes(m[1])
        assert _kernel_state(raw, size)[(1).to_bytes(4, "little")] == _pattern(size, 1)
        m[1] = Nested(5)  # an update through the same buffers, then more reads
        raw[(2).to_bytes(4, "little")] = _pattern(size, 3)
        assert bytes(m[1]) == bytes(Nested(5)) and bytes(m[2]) == _pattern(size, 3)
        assert bytes(again) == _pattern(size, 1) and bytes(other) == _pattern(size, 2)
        assert first.inner.y == 12345 and first.pairs[1].x == 7


@pytest.mark.skipif(not direct.enabled(), reason="direct entry points are off here")
def test_record_lookups_keep_nothing_and_refuse_without_a_type(path_toggle: None) -> None:
    """The in-place stub makes one instance a lookup and keeps none: a failed lookup frees
    its instance (the type's reference count comes back), and the attr points at the
    buffers again. Without a record type it fails with EINVAL and makes nothing. A type's
    own ``__init__`` does not run (as for a copy); one with its own ``__new__`` is copied
    into."""
    direct.set_enabled(True)
    direct.set_builtin(True)
    for record, in_place in ((Built, CPYTHON_BUILTINS), (Made, False)):
        with bpf.Map.create(bpf.MapType.HASH, 4, 8, 4, name="t_ebad", value_type=record) as m:
            raw = bpf.Map.from_fd(m.fd)
            raw[(1).to_bytes(4, "little")] = bytes(Built(4))
            assert m._elems is not None
            assert (m._elems.any_ops().new_record is record) is in_place
            got = m[1]
            assert type(got) is record and (got.a, got.b) == (4, 5)
    with bpf.Map.create(bpf.MapType.HASH, 4, 12, 4, name="t_ebad", value_type=Small) as m:
        ops = m._elems.any_ops()  # type: ignore[union-attr]
        if ops.lookup_record is None:
            pytest.skip("no builtin stubs here (not CPython's ctypes layout)")
        m[1] = Small(1, 2, 3)
        references = sys.getrefcount(Small)  # each instance holds one
        for _ in range(100):
            with pytest.raises(KeyError):
                m[2]
            assert m.get(2) is None and m.lookup(2) is None
            assert ops.record_error() == -errno.ENOENT
        assert sys.getrefcount(Small) == references
        kept = [m[1] for _ in range(100)]
        assert sys.getrefcount(Small) == references + 100
        assert len({ctypes.addressof(record) for record in kept}) == 100
        del kept
        assert sys.getrefcount(Small) == references
        assert ops.attr.value == ctypes.addressof(ops.vbuf)
        ops.entry.set_record_type(None)
        assert ops.lookup_record() is None and ops.record_error() == -errno.EINVAL
        assert sys.getrefcount(Small) == references - 1  # (the slot held one)
        ops.bind_calls()
        assert bytes(m[1]) == bytes(Small(1, 2, 3)) and ops.attr.value == ctypes.addressof(ops.vbuf)


@pytest.mark.skipif(not direct.enabled(), reason="direct entry points are off here")
def test_threads_read_their_own_records(path_toggle: None) -> None:
    """Four threads looking up records at once: each gets the record of its own key, in an
    instance of its own, and every thread's operation gives its buffers back."""
    direct.set_enabled(True)
    direct.set_builtin(True)
    size = ctypes.sizeof(Large)
    with bpf.Map.create(bpf.MapType.HASH, 4, size, 64, name="t_ethr") as raw:
        m = bpf.Map.from_fd(raw.fd, key_type=int, value_type=Large)
        for key in range(64):
            raw[key.to_bytes(4, "little")] = _pattern(size, key)
        errors: list[BaseException] = []
        old_interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # switch threads as often as CPython can

        def work(base: int) -> None:
            try:
                kept = []
                for round_ in range(200):
                    key = base + round_ % 16
                    got = m[key]
                    assert bytes(got) == _pattern(size, key)
                    kept.append((key, got))
                    with pytest.raises(KeyError):
                        m[100 + key]
                assert all(bytes(got) == _pattern(size, key) for key, got in kept)
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=work, args=(i * 16,)) for i in range(4)]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            sys.setswitchinterval(old_interval)
        assert not errors
        assert 1 <= len(m._pool) <= 4
        assert all(ops.attr.value == ctypes.addressof(ops.vbuf) for ops in m._pool)
