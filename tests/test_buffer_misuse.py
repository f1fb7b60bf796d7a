"""Ring and perf buffers used wrongly (issue #15): each mistake is a ``BpfError`` that
names the map and the mistake when it is made, not a raw ``struct.error``,
``FileExistsError``, a full-map E2BIG or a ``TypeError`` at the first record; and a
failed ``PerfBuffer`` leaves no perf event open."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import pylibbpf as bpf
from pylibbpf.syscall.system import online_cpus

pytestmark = pytest.mark.root


@pytest.fixture
def ring() -> Iterator[bpf.Map]:
    with bpf.Map.create(bpf.MapType.RINGBUF, 0, 0, 4096, name="misuse_ring") as made:
        yield made


@pytest.fixture
def perf_array() -> Iterator[bpf.Map]:
    slots = max(online_cpus()) + 1
    with bpf.Map.create(bpf.MapType.PERF_EVENT_ARRAY, 4, 4, slots, name="misuse_perf") as made:
        yield made


def refused(action: Callable[[], Any], err: int, says: str) -> str:
    with pytest.raises(bpf.BpfError) as info:
        action()
    assert type(info.value) is bpf.BpfError and info.value.errno == err, info.value
    assert says in str(info.value), str(info.value)
    return str(info.value)


def test_ring_buffer_misuse(ring: bpf.Map) -> None:
    with bpf.RingBuffer(ring, lambda view: 0) as consumer:
        refused(
            lambda: consumer.add(ring, lambda view: 0),
            errno.EEXIST,
            "map 'misuse_ring' is already in this ring buffer",
        )
        assert consumer.poll(0) == 0  # the first registration still works
    refused(
        lambda: bpf.RingBuffer(ring, 123),  # type: ignore[arg-type]
        errno.EINVAL,
        "map 'misuse_ring': the callback must be callable, not int 123",
    )
    refused(
        lambda: bpf.RingBuffer(ring, batch=print, record="Zq"),
        errno.EINVAL,
        "map 'misuse_ring': record format 'Zq' is not a struct format",
    )
    refused(
        lambda: bpf.RingBuffer(ring, print, record="<I"),
        errno.EINVAL,
        "a record format is for batch mode: give batch= too",
    )
    declared = bpf.Map(
        None,
        name="misuse_later",
        map_type=bpf.MapType.RINGBUF,
        key_size=0,
        value_size=0,
        max_entries=4096,
    )
    message = refused(lambda: bpf.RingBuffer(declared, print), errno.EBADF, "is not created")
    assert "cannot mmap" not in message  # the old wording blamed mmap


def perf_events() -> int:
    """The perf event descriptors this process holds, as the kernel names them."""
    names = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            names.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue  # the listing's own descriptor, gone
    return names.count("anon_inode:[perf_event]")


def test_perf_buffer_misuse(perf_array: bpf.Map) -> None:
    before = perf_events()
    refused(
        lambda: bpf.PerfBuffer(perf_array, print, pages=0),
        errno.EINVAL,
        "pages must be a power of two (1, 2, 4...), not 0",
    )
    refused(lambda: bpf.PerfBuffer(perf_array, print, pages=3), errno.EINVAL, "not 3")
    refused(
        lambda: bpf.PerfBuffer(perf_array, 5),  # type: ignore[arg-type]
        errno.EINVAL,
        "map 'misuse_perf': the callback must be callable, not int 5",
    )
    refused(
        lambda: bpf.PerfBuffer(perf_array, print, lost_callback="x"),  # type: ignore[arg-type]
        errno.EINVAL,
        "the lost_callback must be callable",
    )
    assert perf_events() == before
    with bpf.PerfBuffer(perf_array, print) as buffer:  # a right one: one event per CPU
        assert perf_events() >= before + len(online_cpus())  # (mmap holds a dup too)
        assert buffer.poll(0) == 0
    assert perf_events() == before


def test_a_perf_array_too_small_for_the_cpus_says_so() -> None:
    cpus = online_cpus()
    if max(cpus) == 0:
        pytest.skip("one CPU: any perf event array has a slot for it")
    with bpf.Map.create(bpf.MapType.PERF_EVENT_ARRAY, 4, 4, 1, name="misuse_small") as small:
        before = perf_events()
        refused(
            lambda: bpf.PerfBuffer(small, print),
            errno.E2BIG,
            f"map 'misuse_small' has 1 slots, but a perf buffer needs one per CPU and this "
            f"machine has CPU {max(cpus)} online",
        )
        assert perf_events() == before  # no perf event left open
