"""Maps against the running kernel: every element and batch command, pins, per-CPU values."""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from pathlib import Path

import pytest

import pylibbpf as bpf
from pylibbpf import insn
from pylibbpf.spec.insn import FP, R0, R1, R2, Alu, Jmp, Size
from pylibbpf.syscall.system import num_possible_cpus

pytestmark = pytest.mark.root


def hash_map(max_entries: int = 128, **kw: object) -> bpf.Map:
    return bpf.Map.create(bpf.MapType.HASH, 8, 8, max_entries, name="t_hash", **kw)  # type: ignore[arg-type]


def test_create_update_lookup_iterate_delete() -> None:
    with hash_map(key_type=int, value_type=int) as m:
        for k in range(10):
            m[k] = k * k
        assert m[3] == 9
        assert m.lookup(42) is None and m.get(42, "absent") == "absent"
        assert sorted(m.keys()) == list(range(10))
        assert sorted(m.items()) == [(k, k * k) for k in range(10)]
        assert 5 in m and 50 not in m
        del m[5]
        assert 5 not in m and m.count() == 9
        with pytest.raises(KeyError):
            del m[5]
        with pytest.raises(KeyError):
            m[5]
        assert m.delete(6) and not m.delete(6)
        assert m.clear() == 8 and m.count() == 0


def test_raw_bytes_and_info_come_from_the_kernel() -> None:
    with hash_map() as m:
        m[b"\x01" * 8] = b"\x02" * 8
        assert m[b"\x01" * 8] == b"\x02" * 8
        # an int key is encoded little-endian to key_size; values stay bytes
        m[7] = 9
        assert m[7] == (9).to_bytes(8, "little")
        info = m.info()
        assert (info.type, info.key_size, info.value_size, info.max_entries) == (1, 8, 8, 128)
        assert info.name == "t_hash" and info.id > 0
        assert bpf.Map.from_id(info.id).info().id == info.id


def test_update_flags() -> None:
    with hash_map(key_type=int, value_type=int) as m:
        m.update(1, 1, bpf.UpdateFlags.NOEXIST)
        with pytest.raises(bpf.BpfError, match="already exists") as exc:
            m.update(1, 2, bpf.UpdateFlags.NOEXIST)
        assert exc.value.errno == errno.EEXIST
        with pytest.raises(bpf.BpfError, match="does not exist"):
            m.update(2, 2, bpf.UpdateFlags.EXIST)
        m.update(1, 3, bpf.UpdateFlags.EXIST)
        assert m[1] == 3


def test_full_map() -> None:
    with hash_map(max_entries=2, key_type=int, value_type=int) as m:
        m[1], m[2] = 1, 2
        with pytest.raises(bpf.MapFullError, match="map 't_hash'.*full"):
            m[3] = 3


def test_array_map_and_clear() -> None:
    with bpf.Map.create(bpf.MapType.ARRAY, 4, 4, 4, key_type=int, value_type=int) as m:
        assert [m[i] for i in range(4)] == [0, 0, 0, 0]
        m[2] = 7
        assert m[2] == 7 and list(m.keys()) == [0, 1, 2, 3]
        m.clear()
        assert m[2] == 0
        with pytest.raises(bpf.BpfError):
            m[4] = 1  # out of range: E2BIG from the kernel


@pytest.mark.parametrize("map_type", [bpf.MapType.HASH, bpf.MapType.ARRAY])
def test_batch_operations(map_type: bpf.MapType) -> None:
    n = 5000
    with bpf.Map.create(map_type, 4, 8, n, key_type=int, value_type=int) as m:
        assert m.update_batch(range(n), [k * 3 for k in range(n)], chunk=1000) == n
        assert m[1234] == 3702  # the single-element path sees what the batch wrote
        # From lists in one call (their packed array handed to the kernel as it is)
        assert m.update_batch(list(range(n)), [k * 5 for k in range(n)]) == n
        assert m[4999] == 24995 and m[0] == 0
        assert m.update_batch(list(range(n)), [k * 3 for k in range(n)], chunk=n // 2) == n
        items = m.lookup_batch(chunk=700)
        assert sorted(items) == [(k, k * 3) for k in range(n)]
        raw = m.lookup_batch_raw()
        assert raw.count == n and len(raw.keys) == 4 * n and len(raw.values) == 8 * n
        if map_type == bpf.MapType.HASH:
            assert m.delete_batch(range(0, n, 2)) == n // 2
            assert m.count() == n // 2
            popped = m.lookup_and_delete_batch()
            assert sorted(popped) == [(k, k * 3) for k in range(1, n, 2)]
            assert m.count() == 0


def test_batch_from_packed_buffers() -> None:
    n = 1000
    keys = struct.pack(f"<{n}Q", *range(n))
    values = struct.pack(f"<{n}Q", *range(n, 2 * n))
    with hash_map(max_entries=n) as m:
        assert m.update_batch(keys, values) == n
        assert m[struct.pack("<Q", 10)] == struct.pack("<Q", n + 10)
        with pytest.raises(bpf.BpfError, match="3 bytes is not a whole number of 8-byte"):
            m.update_batch(b"abc", b"")


def _percpu_increment_prog(counter: bpf.Map) -> bpf.Program:
    """XDP program: counter[0] += 1 on the CPU it runs on."""
    code = insn.assemble(
        insn.st_mem(Size.W, FP, -4, 0),
        insn.mov64_reg(R2, FP),
        insn.alu64_imm(Alu.ADD, R2, -4),
        insn.ld_map_fd(R1, counter.fd),
        insn.call("map_lookup_elem"),
        insn.jmp_imm(Jmp.JEQ, R0, 0, 2),
        insn.mov64_imm(R1, 1),
        insn.atomic_add(Size.DW, R0, R1, 0),
        insn.return_imm(bpf.XdpAction.PASS),
    )
    return bpf.Program.from_insns(code, bpf.ProgType.XDP, name="t_percpu")


def test_percpu_values_one_per_possible_cpu() -> None:
    ncpu = num_possible_cpus()
    with bpf.Map.create(bpf.MapType.PERCPU_ARRAY, 4, 8, 1, key_type=int, value_type=int) as counter:
        counter[0] = list(range(100, 100 + ncpu))
        assert counter[0] == list(range(100, 100 + ncpu))
        with _percpu_increment_prog(counter) as prog:
            prog.test_run(bytes(64), repeat=10)
        after = counter[0]
        assert len(after) == ncpu
        deltas = [a - b for a, b in zip(after, range(100, 100 + ncpu), strict=True)]
        assert sum(deltas) == 10  # every run counted, on the CPUs the runs used
        counter[0] = 5  # one value for every CPU
        assert counter[0] == [5] * ncpu
        with pytest.raises(bpf.BpfError, match=f"needs {ncpu} entries"):
            counter[0] = [1] * (ncpu + 1)


def test_percpu_hash_batch() -> None:
    ncpu = num_possible_cpus()
    with bpf.Map.create(bpf.MapType.PERCPU_HASH, 4, 4, 16, key_type=int, value_type=int) as m:
        m.update_batch([1, 2], [[1] * ncpu, list(range(ncpu))])
        assert dict(m.lookup_batch()) == {1: [1] * ncpu, 2: list(range(ncpu))}


def test_pin_and_from_pinned_is_the_same_map(pin_dir: Path) -> None:
    path = pin_dir / "counts"
    with hash_map(key_type=int, value_type=int) as m:
        m.pin(path)
        with bpf.Map.from_pinned(path, key_type=int, value_type=int) as again:
            assert again.info().id == m.info().id
            again[1] = 11
            assert m[1] == 11
        m.unpin()
        assert not path.exists()
        with pytest.raises(bpf.BpfError, match="nothing is pinned"):
            bpf.Map.from_pinned(path)


def test_pin_outside_bpffs_is_explained(tmp_path: Path) -> None:
    with hash_map() as m, pytest.raises(bpf.BpfError, match="BPF filesystem"):
        m.pin(tmp_path / "x")


def test_freeze_makes_map_read_only_for_user_space() -> None:
    with bpf.Map.create(bpf.MapType.ARRAY, 4, 4, 1, name="t_frozen", value_type=int) as m:
        m[0] = 1
        m.freeze()
        with pytest.raises(bpf.BpfError, match="map 't_frozen'.*frozen") as exc:
            m[0] = 2
        assert exc.value.errno == errno.EPERM
        assert m[0] == 1


def test_queue_and_stack() -> None:
    with bpf.Map.create(bpf.MapType.QUEUE, 0, 4, 8, value_type=int) as q:
        for v in (1, 2, 3):
            q.push(v)
        assert q.peek() == 1
        assert [q.pop(), q.pop(), q.pop(), q.pop()] == [1, 2, 3, None]
    with bpf.Map.create(bpf.MapType.STACK, 0, 4, 8, value_type=int) as s:
        s.push(1)
        s.push(2)
        assert s.pop() == 2


def test_lookup_and_delete_elem() -> None:
    with hash_map(key_type=int, value_type=int) as m:
        m[1] = 10
        assert m.lookup_and_delete(1) == 10
        assert m.lookup_and_delete(1) is None


def test_map_in_map() -> None:
    with (
        bpf.Map.create(bpf.MapType.ARRAY, 4, 4, 1, name="t_inner") as inner,
        bpf.Map.create(
            bpf.MapType.ARRAY_OF_MAPS, 4, 4, 2, inner_map=inner, value_type=int
        ) as outer,
    ):
        outer[0] = inner  # written as the inner map's fd
        assert outer[0] == inner.info().id  # read back as its id
        assert outer.lookup(1) is None


def test_ctypes_struct_values() -> None:
    class Stats(ctypes.Structure):
        _fields_ = [("packets", ctypes.c_uint64), ("bytes", ctypes.c_uint64)]

    with bpf.Map.create(
        bpf.MapType.HASH, 4, 16, 4, key_type=ctypes.c_uint32, value_type=Stats
    ) as m:
        m[1] = Stats(3, 300)
        got = m[1]
        assert isinstance(got, Stats) and (got.packets, got.bytes) == (3, 300)


def test_wrong_key_size_names_the_map() -> None:
    with hash_map() as m:
        with pytest.raises(bpf.BpfError, match="map 't_hash': key must be 8 bytes, got 4 bytes"):
            m[b"abcd"] = b"\0" * 8
        with pytest.raises(bpf.BpfError, match="map 't_hash': value must be 8 bytes, got 2"):
            m[b"\0" * 8] = b"ab"


def test_unknown_map_type_is_a_clear_error() -> None:
    with pytest.raises(bpf.ObjectError, match="unknown map type 999"):
        bpf.Map.create(999, 4, 4, 1)


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("hash", bpf.MapType.HASH),
        ("PERCPU_ARRAY", bpf.MapType.PERCPU_ARRAY),
        ("BPF_MAP_TYPE_LRU_HASH", bpf.MapType.LRU_HASH),
        ("PerCPUHash", bpf.MapType.PERCPU_HASH),  # cilium/ebpf's spelling
    ],
)
def test_map_type_by_name(spelling: str, expected: bpf.MapType) -> None:
    with bpf.Map.create(spelling, 4, 8, 4, name="t_named", key_type=int, value_type=int) as m:
        assert m.info().type == expected  # what the kernel created
        value = [7] * num_possible_cpus() if "PERCPU" in expected.name else 7
        m[1] = value
        assert m[1] == value and m.type == expected


def test_unknown_map_type_name_is_a_clear_error() -> None:
    with pytest.raises(bpf.ObjectError, match="map 't_typo': unknown map type 'hashmap'"):
        bpf.Map.create("hashmap", 4, 4, 1, name="t_typo")


def test_invalid_attributes_name_the_map() -> None:
    with pytest.raises(bpf.BpfError, match="map 't_bad'.*MAP_CREATE failed.*rejected") as exc:
        bpf.Map.create(bpf.MapType.ARRAY, 3, 4, 1, name="t_bad")  # array keys are 4 bytes
    assert exc.value.errno == errno.EINVAL


def test_closed_map_is_a_clear_error() -> None:
    m = hash_map()
    m.close()
    m.close()  # idempotent
    with pytest.raises(bpf.BpfError, match="map 't_hash'.*(closed|bad file descriptor)") as exc:
        m[1] = 1
    assert exc.value.errno == errno.EBADF
    with pytest.raises(bpf.BpfError, match="map 't_hash' is closed"):
        m.info()


def test_fd_is_closed_by_garbage_collection() -> None:
    m = hash_map()
    fd = m.fd
    os.fstat(fd)
    del m
    import gc

    gc.collect()
    with pytest.raises(OSError):
        os.fstat(fd)


def test_names_are_sanitized_for_the_kernel() -> None:
    with bpf.Map.create(bpf.MapType.ARRAY, 4, 4, 1, name="a-very-long name!!") as m:
        assert m.info().name == "a_very_long_nam"
        assert m.name == "a-very-long name!!"
