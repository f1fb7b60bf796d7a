"""Perf buffers: the consumer of a ``BPF_MAP_TYPE_PERF_EVENT_ARRAY``, one perf ring per
online CPU, for programs that ``bpf_perf_event_output()`` (kernels before ring buffers,
or code written for them).

As with ring buffers: a callback that raises consumes its sample (and those before it)
and the exception propagates out of ``poll()``/``consume()``; each CPU's ring is consumed
under a lock, so several threads may poll one ``PerfBuffer``.
"""

from __future__ import annotations

import errno
import mmap
import select
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .errors import BpfError
from .maps import Map
from .syscall import perf
from .syscall.fd import Closing
from .syscall.system import online_cpus
from .uapi import MapType

PAGE = mmap.PAGESIZE

PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9
_DATA_HEAD = 1024  # offsets in struct perf_event_mmap_page
_DATA_TAIL = 1032


class ConsumerLock:
    """The lock a ring is consumed under (ring and perf buffers): one consumer at a time,
    and an error, not a deadlock, when a callback asks to consume its own ring."""

    def __init__(self, what: str) -> None:
        self._lock = threading.Lock()
        self._owner = 0
        self._what = what

    @contextmanager
    def held(self) -> Iterator[None]:
        """Consume under the lock; another thread waits, this thread's callback fails."""
        me = threading.get_ident()
        if not self._lock.acquire(blocking=False):
            if self._owner == me:
                raise BpfError(
                    f"{self._what} is being consumed by this thread: a callback cannot "
                    "consume or close its own buffer",
                    errno.EDEADLK,
                )
            self._lock.acquire()
        self._owner = me
        try:
            yield
        finally:
            self._owner = 0
            self._lock.release()


@dataclass
class _PerfRing:
    cpu: int
    fd: Any
    mem: mmap.mmap
    size: int
    lock: ConsumerLock


class PerfBuffer(Closing):
    """Consumer of a ``BPF_MAP_TYPE_PERF_EVENT_ARRAY``: one perf ring per online CPU."""

    def __init__(
        self,
        map_: Map,
        callback: Callable[[int, bytes], Any],
        lost_callback: Callable[[int, int], Any] | None = None,
        *,
        pages: int = 8,
    ) -> None:
        if map_.type != MapType.PERF_EVENT_ARRAY:
            raise BpfError(f"map {map_.name!r} is not a PERF_EVENT_ARRAY", errno.EINVAL)
        if not isinstance(pages, int) or pages < 1 or pages & (pages - 1):
            raise BpfError(
                f"map {map_.name!r}: pages must be a power of two (1, 2, 4...), not {pages!r}",
                errno.EINVAL,
            )
        for label, function in (("callback", callback), ("lost_callback", lost_callback)):
            if function is not None and not callable(function):
                raise BpfError(
                    f"map {map_.name!r}: the {label} must be callable, not "
                    f"{type(function).__name__} {function!r}",
                    errno.EINVAL,
                )
        map_.fileno()  # not created, or closed: say so before opening perf events
        cpus = online_cpus()
        if cpus and max(cpus) >= map_.max_entries:
            raise BpfError(
                f"map {map_.name!r} has {map_.max_entries} slots, but a perf buffer needs one "
                f"per CPU and this machine has CPU {max(cpus)} online (leave max_entries unset "
                "in the object: the loader gives it one slot per possible CPU)",
                errno.E2BIG,
            )
        self.map = map_
        self.callback = callback
        self.lost_callback = lost_callback
        self._epoll = select.epoll()
        self._rings: dict[int, _PerfRing] = {}
        try:
            self._open_rings(map_, cpus, pages)
        except BaseException:
            self.close()  # what was opened before the failure
            raise

    def _open_rings(self, map_: Map, cpus: list[int], pages: int) -> None:
        for cpu in cpus:
            attr = perf.PerfEventAttr(
                type=perf.PERF_TYPE_SOFTWARE,
                config=perf.PERF_COUNT_SW_BPF_OUTPUT,
                sample_type=perf.PERF_SAMPLE_RAW,
                sample_period=1,
                wakeup_events=1,
            )
            fd = perf.perf_event_open(attr, pid=-1, cpu=cpu, what=f"perf buffer cpu {cpu}")
            try:
                mem = mmap.mmap(
                    fd.fd, PAGE * (pages + 1), mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
                )
            except OSError as error:
                fd.close()
                raise BpfError(
                    f"perf buffer cpu {cpu}: mmap failed: {error.strerror}", error.errno
                ) from error
            self._rings[fd.fd] = _PerfRing(
                cpu, fd, mem, PAGE * pages, ConsumerLock(f"perf buffer of map {map_.name!r}")
            )
            perf.enable(fd.fd)
            map_.update(cpu, fd.fd)
            self._epoll.register(fd.fd, select.EPOLLIN)

    def fileno(self) -> int:
        """The epoll fd: readable when any CPU's ring has data."""
        self._check_open()
        return self._epoll.fileno()

    def _consume_ring(self, ring: _PerfRing) -> int:
        with ring.lock.held():
            mem, size = ring.mem, ring.size
            head = struct.unpack_from("<Q", mem, _DATA_HEAD)[0]
            tail = struct.unpack_from("<Q", mem, _DATA_TAIL)[0]
            count = 0
            try:
                while tail < head:
                    start = PAGE + tail % size
                    record_type, _misc, record_size = struct.unpack_from(
                        "<IHH", self._read(mem, start, 8, size)
                    )
                    if record_size < 8:  # not a record the kernel writes: stop, not spin
                        tail = head
                        break
                    raw = self._read(mem, start, record_size, size)
                    tail += record_size  # consumed, whatever the callback does
                    if record_type == PERF_RECORD_SAMPLE:
                        length = struct.unpack_from("<I", raw, 8)[0]
                        count += 1
                        self.callback(ring.cpu, raw[12 : 12 + length])
                    elif record_type == PERF_RECORD_LOST and self.lost_callback is not None:
                        self.lost_callback(ring.cpu, struct.unpack_from("<Q", raw, 16)[0])
            finally:
                struct.pack_into("<Q", mem, _DATA_TAIL, tail)
            return count

    @staticmethod
    def _read(mem: mmap.mmap, start: int, length: int, size: int) -> bytes:
        """Bytes of a record that may wrap around the end of the data area."""
        end = PAGE + size
        if start + length <= end:
            return mem[start : start + length]
        first = end - start
        return mem[start:end] + mem[PAGE : PAGE + length - first]

    def _check_open(self) -> None:
        if self._epoll.closed:
            raise BpfError(f"perf buffer of map {self.map.name!r} is closed", errno.EBADF)

    def consume(self) -> int:
        """Consume everything available on every CPU; returns the samples handed on."""
        self._check_open()
        return sum(self._consume_ring(ring) for ring in self._rings.values())

    def poll(self, timeout_ms: int = -1) -> int:
        """Wait up to ``timeout_ms`` (-1: forever) for data, consume it; samples handed on."""
        self._check_open()
        try:
            ready = self._epoll.poll(timeout_ms / 1000 if timeout_ms >= 0 else -1)
        except InterruptedError:
            return 0
        return sum(self._consume_ring(self._rings[fd]) for fd, _ in ready)

    def close(self) -> None:
        """Unmap and close every CPU's perf event."""
        for ring in self._rings.values():
            with ring.lock.held():
                ring.mem.close()
                ring.fd.close()
        self._rings.clear()
        self._epoll.close()


__all__ = ["ConsumerLock", "PerfBuffer"]
