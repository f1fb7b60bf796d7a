"""BPF ring buffers: reading events out of the kernel (``RingBuffer``) and writing them in
(``UserRingBuffer``). Perf buffers are ``perfbuf``.

``RingBuffer`` maps a ``BPF_MAP_TYPE_RINGBUF`` the way the kernel lays it out: the
consumer page read-write, the producer page and the data area (mapped twice in a row, so
a record never wraps) read-only. Records carry an 8-byte header (length, busy and
discard bits); the consumer walks them up to the producer position, stops at a record
still being written, skips discarded ones, and publishes its new position.

Two ways to consume:

* a callback per record, handed a zero-copy ``memoryview`` valid during the call; a
  non-zero return stops the current poll (as in libbpf). Runs of records of one length
  (the usual case: one event struct) have their headers checked at C speed and are handed
  out by ``map`` rather than a bytecode loop per record, as slices (made once per record
  length) of a window over the run, so the cost per record is a view and the callback's,
  and does not depend on the ring's size;
* batches of fixed-size records: headers are checked with C-speed slicing instead of a
  Python loop, and records decoded by ``struct.iter_unpack``, at most ``max_batch`` per
  call (lists of millions of tuples make the cyclic GC walk them again and again) — for
  daemons that must keep up with millions of events per second.

A callback that raises consumes its record (and the records before it), then the
exception propagates out of ``poll()``/``consume()``: the next poll goes on with the next
record, as libbpf does with a callback's error, instead of delivering the failing record
forever. In batch mode the whole batch is consumed.

Thread-safe: each ring has a lock held while it is consumed, so two threads polling one
``RingBuffer`` get every record exactly once (a callback runs with its ring's lock held;
consuming the same ring from inside its own callback is an error, not a deadlock).

Several rings share one epoll set; ``fileno()`` exposes it for event loops, and
``events()`` is an async iterator built on ``loop.add_reader`` (no thread).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import mmap
import select
import struct
from array import array
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from itertools import compress, count, repeat
from operator import getitem, length_hint, ne
from typing import TYPE_CHECKING, Any, cast

from .errors import BpfError
from .maps import Map
from .perfbuf import (
    ConsumerLock,
    PerfBuffer,  # its old home: ``from pylibbpf.ringbuf import PerfBuffer``
)
from .syscall.fd import Closing
from .uapi import MapType

if TYPE_CHECKING:
    import asyncio  # imported where used: asyncio costs a tenth of importing pylibbpf

BUSY = 1 << 31
DISCARD = 1 << 30
HEADER = 8
PAGE = mmap.PAGESIZE
MAX_BATCH = 1024  # records per batch callback, by default
RUN_CHUNK = 512  # records per window in a run of one length (its slices are kept)

Callback = Callable[[memoryview], Any]
BatchCallback = Callable[[list[Any]], Any]


def _round8(value: int) -> int:
    return (value + 7) & ~7


class _Ring:
    """One mmapped ring buffer map and how to consume it."""

    def __init__(
        self,
        map_: Map,
        callback: Callback | None,
        batch: BatchCallback | None,
        record: struct.Struct | None,
        max_batch: int = MAX_BATCH,
    ) -> None:
        if map_.type != MapType.RINGBUF:
            raise BpfError(
                f"map {map_.name!r} is {map_type_name(map_.type)}, not RINGBUF", errno.EINVAL
            )
        map_fd = map_.fd  # not created, or closed: that error, not an mmap failure
        self.map = map_
        self.callback = callback
        self.batch = batch
        self.record = record
        self.max_batch = max_batch
        self.size = map_.max_entries
        self.mask = self.size - 1
        self.lock = ConsumerLock(f"ring buffer of map {map_.name!r}")
        try:
            self._consumer = mmap.mmap(
                map_fd, PAGE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
            )
            self._producer = mmap.mmap(
                map_fd, PAGE + 2 * self.size, mmap.MAP_SHARED, mmap.PROT_READ, offset=PAGE
            )
        except OSError as error:
            raise BpfError(
                f"map {map_.name!r}: cannot mmap the ring buffer: {error.strerror}", error.errno
            ) from error
        self._cons = ctypes.c_uint64.from_buffer(self._consumer)
        self._prod_view = memoryview(self._producer)
        self._prod = self._prod_view[:8].cast("Q")
        self.data = self._prod_view[PAGE:]
        self._words = self.data.cast("I")
        self.stride = _round8(record.size + HEADER) if record is not None else 0
        self._run_slices: dict[int, tuple[slice, ...]] = {}
        if record is not None:
            # header skipped, the record, then the padding up to the next header
            self._unpack = struct.Struct(
                f"<{HEADER}x{record.format.lstrip('<=>@!')}{self.stride - HEADER - record.size}x"
            )

    def close(self) -> None:
        with self.lock.held():
            self._words.release()
            self.data.release()
            self._prod.release()
            self._prod_view.release()
            del self._cons
            for memory in (self._consumer, self._producer):
                with contextlib.suppress(BufferError):
                    # A record view someone kept (in a traceback, say) pins the mapping:
                    # it is unmapped when the last such view goes.
                    memory.close()

    # ----------------------------------------------------------------- per record

    def consume(self, callback: Callback | None = None) -> tuple[int, Any]:
        """Records handed to the callback (this ring's, unless one is given), and a non-zero
        callback result if one stopped us."""
        if callback is None:
            if self.batch is not None:
                with self.lock.held():
                    return self._consume_batch(), 0
            callback = self.callback
        if callback is None:
            raise BpfError(
                f"map {self.map.name!r} has no callback: read it with events()", errno.EINVAL
            )
        with self.lock.held():
            return self._consume_records(callback)

    def _consume_records(self, callback: Callback) -> tuple[int, Any]:
        cons_ref = self._cons
        words, data, mask, size = self._words, self.data, self.mask, self.size
        cons = cons_ref.value
        prod = self._prod[0]
        delivered = 0
        while cons < prod:
            offset = cons & mask
            header = words[offset >> 2]
            if header & BUSY:
                break
            length = header & 0x3FFFFFFF
            stride = (length + 15) & ~7  # header + length, rounded up to 8
            if cons + stride < prod and words[((cons + stride) & mask) >> 2] == header:
                # A run of records with this header: how long, checked in C (the data
                # area is mapped twice, so a run of up to a ring's size never wraps).
                run = min(prod - cons, size) // stride
                step = stride >> 2
                first = offset >> 2
                heads = words[first : first + run * step : step]
                if heads != array("I", [header]) * run:
                    # The producer may commit a busy record between this comparison and
                    # the next read: the run ends at the first header still unequal then.
                    run = next(compress(count(), map(ne, heads.tolist(), repeat(header))), run)
                if header & DISCARD:
                    cons += run * stride
                    continue
                done, stopped = self._deliver_run(callback, cons, run, length, stride)
                cons += done * stride
                delivered += done
                cons_ref.value = cons
                if stopped:
                    return delivered, 1
                continue
            cons += stride
            if header & DISCARD:
                continue
            delivered += 1
            start = offset + HEADER
            try:
                result = callback(data[start : start + length])
            except BaseException:
                cons_ref.value = cons
                raise
            if result:
                cons_ref.value = cons
                return delivered, result
        cons_ref.value = cons
        return delivered, 0

    def _deliver_run(
        self, callback: Callback, cons: int, run: int, length: int, stride: int
    ) -> tuple[int, bool]:
        """Hand ``run`` records of one length, from position ``cons`` on, to the callback: how
        many went (up to and including one whose callback returned non-zero), and whether
        one did. A callback that raises consumes its record and those before it.

        A view is a slice of a window over at most ``RUN_CHUNK`` records, by slice objects
        made once per record length (as many as its longest run so far needed): they do
        not depend on where the window lies, so a record costs one view and the callback,
        with no int or slice made for it."""
        slices = self._run_slices.get(length, ())
        if len(slices) < min(run, RUN_CHUNK):
            # As many as this run needs, to the next power of two: a short run of a rare
            # length (records of varying lengths) does not pay for a whole window's.
            if len(self._run_slices) >= 8:  # many lengths in runs: keep memory bounded
                self._run_slices.clear()
            room = min(RUN_CHUNK, 1 << (min(run, RUN_CHUNK) - 1).bit_length())
            slices = tuple(slice(at, at + length) for at in range(HEADER, room * stride, stride))
            self._run_slices[length] = slices
        data, offset = self.data, cons & self.mask
        done = 0
        while done < run:
            chunk = min(run - done, RUN_CHUNK)
            start = offset + done * stride
            window = data[start : start + chunk * stride]
            pending = iter(slices if chunk == len(slices) else slices[:chunk])
            try:
                views = cast("Iterator[memoryview]", map(getitem, repeat(window), pending))
                stopped = any(map(callback, views))
            except BaseException:
                self._cons.value = cons + (done + chunk - length_hint(pending)) * stride
                raise
            if stopped:
                return done + chunk - length_hint(pending), True
            done += chunk
        return done, False

    def copies(self) -> list[bytes]:
        """Take every available record as bytes (for the async iterator)."""
        out: list[bytes] = []
        with self.lock.held():
            self._consume_records(lambda view: out.append(bytes(view)))
        return out

    # ----------------------------------------------------------------- batches

    def _consume_batch(self) -> int:
        """Fixed-size records in runs: headers checked and records decoded at C speed."""
        record, batch = self.record, self.batch
        assert record is not None and batch is not None
        stride, size, unpack = self.stride, record.size, self._unpack
        plain, discarded = size, size | DISCARD
        cons = self._cons.value
        prod = self._prod[0]
        total = 0
        while cons < prod:
            start = cons & self.mask
            # The data area is mapped twice, so a run never needs splitting at the end.
            n = min((prod - cons) // stride, self.size // stride, self.max_batch)
            if n == 0:
                break
            region = self.data[start : start + n * stride]
            headers = region.cast("I")[:: stride // 4]
            if headers == array("I", [plain]) * n:  # the usual case, compared in C
                records = list(unpack.iter_unpack(region))
            else:
                values = headers.tolist()
                end = next((i for i, h in enumerate(values) if h not in (plain, discarded)), n)
                if end == 0:
                    if values[0] & BUSY:
                        break
                    raise BpfError(
                        f"map {self.map.name!r}: a {values[0] & 0x3FFFFFFF}-byte record in a "
                        f"batch of {size}-byte records",
                        errno.EINVAL,
                    )
                n = end
                records = [
                    r
                    for r, h in zip(unpack.iter_unpack(region[: n * stride]), values, strict=False)
                    if h == plain
                ]
            cons += n * stride
            self._cons.value = cons  # consumed even if the callback raises
            if records:
                total += len(records)
                batch(records)
        return total


class RingBuffer(Closing):
    """Consumer of one or more BPF ring buffer maps."""

    def __init__(
        self,
        map_: Map | None = None,
        callback: Callback | None = None,
        *,
        batch: BatchCallback | None = None,
        record: str | struct.Struct | None = None,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._epoll = select.epoll()
        self._rings: dict[int, _Ring] = {}
        self._names: list[str] = []  # of the maps, for errors (kept after close)
        if map_ is not None:
            self.add(map_, callback, batch=batch, record=record, max_batch=max_batch)

    def _check_open(self) -> None:
        if self._epoll.closed:
            names = ", ".join(repr(name) for name in self._names) or "no map"
            raise BpfError(f"ring buffer of map {names} is closed", errno.EBADF)

    def add(
        self,
        map_: Map,
        callback: Callback | None = None,
        *,
        batch: BatchCallback | None = None,
        record: str | struct.Struct | None = None,
        max_batch: int = MAX_BATCH,
    ) -> None:
        """Consume ``map_`` too: ``callback(view)`` per record, or ``batch(records)`` with
        ``record`` (a struct format) decoding fixed-size records, at most ``max_batch``
        per call; with neither, records are only delivered by ``events()``."""
        if callback is not None and batch is not None:
            raise BpfError(f"map {map_.name!r}: give callback or batch, not both", errno.EINVAL)
        if batch is not None and record is None:
            raise BpfError(f"map {map_.name!r}: batch mode needs the record format", errno.EINVAL)
        if record is not None and batch is None:
            raise BpfError(
                f"map {map_.name!r}: a record format is for batch mode: give batch= too",
                errno.EINVAL,
            )
        check_callable(callback or batch, f"map {map_.name!r}: the callback")
        self._check_open()
        if map_.fd in self._rings:
            raise BpfError(f"map {map_.name!r} is already in this ring buffer", errno.EEXIST)
        if not isinstance(max_batch, int) or max_batch < 1:
            raise BpfError(
                f"map {map_.name!r}: max_batch must be a positive int, not {max_batch!r}",
                errno.EINVAL,
            )
        layout = record_layout(record, map_.name)
        ring = _Ring(map_, callback, batch, layout, max_batch)
        self._rings[map_.fd] = ring
        self._names.append(map_.name)
        self._epoll.register(map_.fd, select.EPOLLIN)

    def fileno(self) -> int:
        """The epoll fd: readable when any ring has data."""
        self._check_open()
        return self._epoll.fileno()

    def consume(self) -> int:
        """Consume everything available in every ring; returns the number of records."""
        self._check_open()
        total = 0
        for ring in self._rings.values():
            count, stopped = ring.consume()
            total += count
            if stopped:
                break
        return total

    def poll(self, timeout_ms: int = -1) -> int:
        """Wait up to ``timeout_ms`` (-1: forever) for data, consume it; records consumed."""
        self._check_open()
        try:
            ready = self._epoll.poll(timeout_ms / 1000 if timeout_ms >= 0 else -1)
        except InterruptedError:
            return 0
        total = 0
        for fd, _ in ready:
            count, stopped = self._rings[fd].consume()
            total += count
            if stopped:
                break
        return total

    async def wait_readable(self) -> None:
        """Wait (in asyncio) until a ring has data; cancellation-safe."""
        import asyncio

        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def on_readable() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(self.fileno(), on_readable)
        try:
            await ready
        finally:
            loop.remove_reader(self.fileno())
        self._epoll.poll(0)  # clear the edge

    async def events(self) -> AsyncIterator[bytes]:
        """``async for record in ring.events()``: copies of records as they arrive."""
        self._check_open()
        while True:
            pending = [r for ring in self._rings.values() for r in ring.copies()]
            for item in pending:
                yield item
            if not pending:
                await self.wait_readable()

    def close(self) -> None:
        """Unmap every ring and close the epoll set."""
        for ring in self._rings.values():
            ring.close()
        self._rings.clear()
        self._epoll.close()


def map_type_name(map_type: int) -> str:
    """A map type's name for messages (its number when this module does not know it)."""
    try:
        return MapType(map_type).name
    except ValueError:
        return f"map type {map_type}"


def check_callable(callback: object, what: str) -> None:
    """Refuse a callback that cannot be called now, not at the first record."""
    if callback is not None and not callable(callback):
        raise BpfError(
            f"{what} must be callable, not {type(callback).__name__} {callback!r}", errno.EINVAL
        )


def record_layout(record: str | struct.Struct | None, name: str) -> struct.Struct | None:
    """The batch record format as a ``struct.Struct``; a bad one named with its map."""
    if record is None or isinstance(record, struct.Struct):
        return record
    try:
        return struct.Struct(record)
    except (struct.error, TypeError) as error:
        raise BpfError(
            f"map {name!r}: record format {record!r} is not a struct format: {error}",
            errno.EINVAL,
        ) from error


def decode_ctype(ctype: Any) -> Callable[[memoryview], Any]:
    """A decoder turning a record into an instance of ``ctype`` (a copy)."""
    return lambda view: ctype.from_buffer_copy(view)


# --------------------------------------------------------------------------- user ring buffer


class UserRingBuffer:
    """Producer side of a ``BPF_MAP_TYPE_USER_RINGBUF``: user space writes, BPF drains."""

    def __init__(self, map_: Map) -> None:
        if map_.type != MapType.USER_RINGBUF:
            raise BpfError(f"map {map_.name!r} is not a USER_RINGBUF", errno.EINVAL)
        self.map = map_
        self.size = map_.max_entries
        self.mask = self.size - 1
        try:
            self._consumer = mmap.mmap(map_.fd, PAGE, mmap.MAP_SHARED, mmap.PROT_READ)
            self._producer = mmap.mmap(
                map_.fd,
                PAGE + 2 * self.size,
                mmap.MAP_SHARED,
                mmap.PROT_READ | mmap.PROT_WRITE,
                offset=PAGE,
            )
        except OSError as error:
            raise BpfError(
                f"map {map_.name!r}: cannot mmap the user ring buffer: {error.strerror}",
                error.errno,
            ) from error
        self._pending: list[tuple[int, int]] = []

    def reserve(self, size: int) -> memoryview:
        """Space for one record; fill it, then ``submit`` (or ``discard``) it."""
        if self._producer.closed:
            raise BpfError(f"user ring buffer of map {self.map.name!r} is closed", errno.EBADF)
        total = _round8(size + HEADER)
        prod = struct.unpack_from("<Q", self._producer, 0)[0]
        cons = struct.unpack_from("<Q", self._consumer, 0)[0]
        if prod - cons + total > self.size:
            raise BpfError(f"map {self.map.name!r}: user ring buffer is full", errno.ENOSPC)
        offset = PAGE + (prod & self.mask)
        struct.pack_into("<II", self._producer, offset, size | BUSY, 0)
        struct.pack_into("<Q", self._producer, 0, prod + total)
        self._pending.append((offset, size))
        return memoryview(self._producer)[offset + HEADER : offset + HEADER + size]

    def _finish(self, view: memoryview, flags: int) -> None:
        for index, (offset, size) in enumerate(self._pending):
            if len(view) == size:
                struct.pack_into("<I", self._producer, offset, size | flags)
                del self._pending[index]
                view.release()
                return
        raise BpfError(f"map {self.map.name!r}: record was not reserved here", errno.EINVAL)

    def submit(self, view: memoryview) -> None:
        """Hand a reserved record to the BPF side."""
        self._finish(view, 0)

    def discard(self, view: memoryview) -> None:
        """Give a reserved record back without the BPF side seeing it."""
        self._finish(view, DISCARD)

    def write(self, data: bytes) -> None:
        """Reserve, copy and submit in one step."""
        view = self.reserve(len(data))
        view[:] = data
        self.submit(view)

    def close(self) -> None:
        """Unmap the ring."""
        self._consumer.close()
        self._producer.close()


__all__: Sequence[str] = ("PerfBuffer", "RingBuffer", "UserRingBuffer", "decode_ctype")
