"""Direct entry points (``syscall/direct.py``) do exactly what libc's ``syscall()`` does.

Every element operation is run through a handle with direct stubs and through one on the
same kernel map without them: what one writes the other reads, and failures carry the
kernel's errno either way (EEXIST, ENOENT, E2BIG, EBADF). The stub page must be mapped
read+execute and never writable, the syscall seam must still see every call of a map made
before it was installed, and ``PYLIBBPF_DIRECT_SYSCALL=0`` must turn the stubs off.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import pylibbpf as bpf
from pylibbpf.syscall import direct, seam
from pylibbpf.uapi import Cmd

pytestmark = pytest.mark.root

X86_64 = os.uname().machine == "x86_64"
CPYTHON = sys.implementation.name == "cpython"
needs_direct = pytest.mark.skipif(
    not (X86_64 and direct.enabled()),
    reason=f"direct entry points are x86-64 only (this is {os.uname().machine})",
)


@pytest.fixture
def toggle() -> Iterator[None]:
    previous, builtin = direct.enabled(), direct.set_builtin(True)
    direct.set_builtin(builtin)
    yield
    direct.set_enabled(previous)
    direct.set_builtin(builtin)


def _ops(m: bpf.Map) -> Any:
    """A buffer set of the map's pool (the one a single-threaded test's operations use)."""
    assert m._elems is not None
    return m._elems.any_ops()


def _kernel_state(m: bpf.Map) -> dict[bytes, bytes]:
    """What the kernel holds, read by another path than the element operations: one batch
    read of the raw bytes."""
    data, ks, vs = m.lookup_batch_raw(), m.key_size, m.value_size
    return {
        data.keys[i * ks : (i + 1) * ks]: data.values[i * vs : (i + 1) * vs]
        for i in range(data.count)
    }


def _handle(fd: int, on: bool, builtin: bool = True, **types: object) -> bpf.Map:
    direct.set_enabled(on)
    direct.set_builtin(builtin)
    handle = bpf.Map.from_fd(fd, **types)  # type: ignore[arg-type]
    ops = _ops(handle)
    assert ops.direct is (on and X86_64)
    if ops.direct:  # a builtin function (CPython), else a ctypes function pointer
        assert isinstance(ops.lookup, ctypes._CFuncPtr) is not (builtin and CPYTHON)
    return handle


def _page_permissions(address: int) -> str:
    with open("/proc/self/maps") as maps:
        for line in maps:
            span, perms = line.split()[:2]
            start, end = (int(part, 16) for part in span.split("-"))
            if start <= address < end:
                return perms
    return ""


@needs_direct
@pytest.mark.parametrize("builtin", [True, False])
def test_stub_page_is_read_execute_only(toggle: None, builtin: bool) -> None:
    direct.set_enabled(True)
    direct.set_builtin(builtin)
    with bpf.Map.create(bpf.MapType.HASH, 4, 8, 4, name="t_direct", value_type=int) as m:
        m[1] = 2
        entry = _ops(m).entry
        assert entry is not None
        assert _page_permissions(entry._slab.base) == "r-xp"
        if not builtin:
            address = ctypes.cast(entry.calls[0], ctypes.c_void_p).value
            assert address == entry._slab.base + entry._index * 5 * 32
        assert m[1] == 2


@pytest.mark.parametrize("builtin", [True, False])
@pytest.mark.parametrize("writer_direct", [True, False])
def test_both_paths_agree_on_a_hash_map(toggle: None, writer_direct: bool, builtin: bool) -> None:
    with bpf.Map.create(bpf.MapType.HASH, 8, 8, 4, name="t_direct") as made:
        writer = _handle(made.fd, writer_direct, builtin, key_type=int, value_type=int)
        reader = _handle(made.fd, not writer_direct, builtin, key_type=int, value_type=int)
        writer[7] = 70
        writer.update(8, 80, bpf.UpdateFlags.NOEXIST)
        assert reader[7] == 70 and reader.get(8) == 80
        assert 7 in reader and 9 not in reader and reader.get(9, -1) == -1
        with pytest.raises(KeyError):
            reader[9]
        with pytest.raises(bpf.BpfError) as exists:
            reader.update(7, 1, bpf.UpdateFlags.NOEXIST)
        assert exists.value.errno == errno.EEXIST
        with pytest.raises(bpf.BpfError) as missing:
            reader.update(9, 1, bpf.UpdateFlags.EXIST)
        assert missing.value.errno == errno.ENOENT
        writer[9] = 90
        writer[10] = 100
        with pytest.raises(bpf.BpfError) as full:
            writer[11] = 110  # max_entries 4
        assert full.value.errno == errno.E2BIG
        keys = []
        key = reader.next_key()
        while key is not None:
            keys.append(key)
            key = reader.next_key(key)
        assert sorted(keys) == [7, 8, 9, 10]
        assert reader.lookup_and_delete(9) == 90 and 9 not in writer
        assert writer.delete(10) and not writer.delete(10)
        with pytest.raises(KeyError):
            del reader[10]
        assert dict(writer.items()) == {7: 70, 8: 80}
        assert _kernel_state(made) == {
            (7).to_bytes(8, "little"): (70).to_bytes(8, "little"),
            (8).to_bytes(8, "little"): (80).to_bytes(8, "little"),
        }
        writer.close()
        with pytest.raises(bpf.BpfError) as closed:
            writer[7]
        assert closed.value.errno == errno.EBADF
        assert reader[7] == 70  # the other handle's fd is still open


def test_queue_push_pop_peek(toggle: None) -> None:
    for on in (True, False):
        with bpf.Map.create(bpf.MapType.QUEUE, 0, 4, 2, name="t_dq") as made:
            queue = _handle(made.fd, on, value_type=int)
            queue.push(1)
            queue.push(2)
            with pytest.raises(bpf.BpfError) as full:
                queue.push(3)
            assert full.value.errno == errno.E2BIG
            assert (queue.peek(), queue.pop(), queue.pop(), queue.pop()) == (1, 1, 2, None)
            queue.close()


@needs_direct
def test_threads_take_buffers_from_the_pool_and_give_them_back(toggle: None) -> None:
    """Four threads at once: each operation has buffers no other holds (every value read
    is the one that thread wrote), and the pool ends with at most one set per thread."""
    direct.set_enabled(True)
    with bpf.Map.create(
        bpf.MapType.HASH, 8, 8, 4096, name="t_dthr", key_type=int, value_type=int
    ) as m:
        errors: list[BaseException] = []
        old_interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # switch threads as often as CPython can

        def work(base: int) -> None:
            try:
                for key in range(base, base + 500):
                    m[key] = key * 3
                    assert m[key] == key * 3 and m.get(key + 500) is None
                    with pytest.raises(KeyError):
                        m[key + 500]
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=work, args=(i * 1000,)) for i in range(4)]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            sys.setswitchinterval(old_interval)
        assert not errors
        assert 1 <= len(m._pool) <= 4
        assert len({id(ops) for ops in m._pool}) == len(m._pool)
        assert all(ops.entry is not None for ops in m._pool)
        assert _kernel_state(m) == {
            key.to_bytes(8, "little"): (key * 3).to_bytes(8, "little")
            for i in range(4)
            for key in range(i * 1000, i * 1000 + 500)
        }


def test_the_seam_sees_calls_of_maps_made_before_it(toggle: None) -> None:
    direct.set_enabled(True)
    with bpf.Map.create(
        bpf.MapType.HASH, 8, 8, 4, name="t_dseam", key_type=int, value_type=int
    ) as m:
        m[1] = 10
        seen: list[Cmd] = []

        def handler(cmd: Cmd, attr: object, size: int) -> int:
            seen.append(cmd)
            return seam.call_kernel(cmd, attr, size)  # type: ignore[arg-type]

        with seam.override_syscall(handler):
            assert not _ops(m).direct
            assert m[1] == 10
            m[2] = 20
        assert seen == [Cmd.MAP_LOOKUP_ELEM, Cmd.MAP_UPDATE_ELEM]
        assert _ops(m).direct is X86_64
        assert m[2] == 20


def test_the_environment_turns_direct_calls_off() -> None:
    code = (
        "import pylibbpf as bpf\n"
        "m = bpf.Map.create(bpf.MapType.ARRAY, 4, 8, 2, name='t_denv', value_type=int)\n"
        "m[1] = 5\n"
        "print(m._elems.any_ops().direct, m[1])\n"
    )
    env = {**os.environ, "PYLIBBPF_DIRECT_SYSCALL": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["False", "5"], out.stderr


@needs_direct
def test_slots_are_shared_and_reused(toggle: None) -> None:
    """One page of stubs serves many buffers, and a closed map's slot serves the next."""
    direct.set_enabled(True)
    maps = [
        bpf.Map.create(bpf.MapType.ARRAY, 4, 8, 1, name="t_dslot", value_type=int)
        for _ in range(60)
    ]
    for index, m in enumerate(maps):
        m[0] = index
    assert [m[0] for m in maps] == list(range(60))
    pages = {id(_ops(m).entry._slab) for m in maps}
    per_page = len(_ops(maps[0]).entry._slab.calls)  # ~17 buffers (builtin stubs), or ~25
    assert -(-60 // per_page) <= len(pages) <= -(-60 // per_page) + 1
    for m in maps:
        m.close()
    del maps, m
    gc.collect()
    slabs = sum(len(group) for group in direct._slabs.values())
    for round_ in range(5):
        again = [
            bpf.Map.create(bpf.MapType.ARRAY, 4, 8, 1, name="t_dslot", value_type=int)
            for _ in range(60)
        ]
        for index, m in enumerate(again):
            m[0] = index + round_
        assert [m[0] for m in again] == [index + round_ for index in range(60)]
        for m in again:
            m.close()
        del again, m
        gc.collect()
    assert sum(len(group) for group in direct._slabs.values()) == slabs


@needs_direct
def test_a_refused_exec_page_falls_back_to_libc(
    toggle: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a W^X policy (SELinux execmem, PaX) mprotect(PROT_EXEC) fails with EACCES:
    maps keep working through libc and no further page is tried."""

    def refuse(_address: int, _size: int, _prot: int) -> int:
        ctypes.set_errno(errno.EACCES)
        return -1

    direct.set_enabled(True)
    monkeypatch.setattr(direct, "_mprotect", refuse)
    monkeypatch.setattr(direct, "_slabs", {})  # no free slot: a new page must be made
    with bpf.Map.create(bpf.MapType.HASH, 4, 4, 2, name="t_dwx", key_type=int, value_type=int) as m:
        assert not _ops(m).direct and not direct.enabled()
        m[1] = 11
        assert m[1] == 11 and m.get(2) is None
        with pytest.raises(bpf.BpfError) as exists:
            m.update(1, 12, bpf.UpdateFlags.NOEXIST)
        assert exists.value.errno == errno.EEXIST


@needs_direct
def test_a_buffer_freed_while_a_slot_is_being_allocated(toggle: None) -> None:
    """The garbage collector may free a map's buffers (giving their slot back) while the
    same thread is inside ``allocate``: giving back must not wait for ``allocate``'s lock.
    (It once did: a test run hung there.)"""
    direct.set_enabled(True)
    m = bpf.Map.create(bpf.MapType.ARRAY, 4, 8, 1, name="t_dgc", value_type=int)
    m[0] = 5
    done = threading.Event()

    def free_inside_allocate() -> None:
        nonlocal m
        with direct._lock:  # as if the collector ran inside allocate()
            del m
            gc.collect()
        done.set()

    worker = threading.Thread(target=free_inside_allocate, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert done.is_set(), "giving a slot back waited for allocate()'s lock"
    with bpf.Map.create(bpf.MapType.ARRAY, 4, 8, 1, name="t_dgc", value_type=int) as again:
        again[0] = 6
        assert again[0] == 6 and _ops(again).direct
