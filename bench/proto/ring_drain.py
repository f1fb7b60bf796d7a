"""Prototype for phase 2: a ring buffer consumer whose per-record cost does not depend on
the ring's size, one callback per record.

    PYTHONPATH=. python bench/proto/ring_drain.py [RECORDS_PER_DRAIN]

For rings of 256 KiB, 4 MiB and 64 MiB (the bench producer, built here with
-DRING_BYTES), CPU ns per record of draining RECORDS_PER_DRAIN 16-byte records with:
today's ``RingBuffer(map, callback)``; the prototype ``RunConsumer``, which checks the
headers of a run of equal-length records at C speed (as the batch mode does) and then
hands out the records with ``map``/``compress`` instead of a bytecode loop per record
(variable-length records keep the per-record loop); and the batch mode, for reference.
The first drain of a fresh ring (page faults on first touch) is reported apart.
"""

from __future__ import annotations

import itertools
import mmap
import resource
import statistics
import struct
import subprocess
import sys
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pylibbpf.object import BpfObject
from pylibbpf.ringbuf import BUSY, DISCARD, HEADER, PAGE, RingBuffer

HERE = Path(__file__).resolve().parent
BUILD = HERE.parent / "build"
SIZES = (1 << 18, 1 << 22, 1 << 26)


class RunConsumer:
    """A ring's records to ``callback(view)``; a non-zero return stops after that record."""

    def __init__(self, map_: Any, callback: Callable[[memoryview], Any]) -> None:
        self.callback = callback
        self.size = map_.max_entries
        self.mask = self.size - 1
        self._consumer = mmap.mmap(map_.fd, PAGE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._producer = mmap.mmap(
            map_.fd, PAGE + 2 * self.size, mmap.MAP_SHARED, mmap.PROT_READ, offset=PAGE
        )
        self._cons = memoryview(self._consumer)[:8].cast("Q")
        view = memoryview(self._producer)
        self._prod = view[:8].cast("Q")
        self.data = view[PAGE:]
        self.words = self.data.cast("I")

    def consume(self) -> int:
        cons, prod = self._cons[0], self._prod[0]
        data, words, mask, callback = self.data, self.words, self.mask, self.callback
        total = 0
        while cons < prod:
            offset = cons & mask
            header = words[offset >> 2]
            if header & BUSY:
                break
            length = header & 0x3FFFFFFF
            stride = (length + 15) & ~7
            # A run of records of this length with nothing busy or discarded: its headers
            # compared in C (the data area is mapped twice: a run never wraps).
            count = min(prod - cons, self.size) // stride
            if count > 1:
                firsts = words[offset >> 2 : (offset + count * stride) >> 2 : stride >> 2]
                if firsts != array("I", [header]) * count:
                    count = next(
                        (i for i, h in enumerate(firsts) if h != header), count
                    )  # up to the first different header
            if header & DISCARD:
                cons += stride
                continue
            starts = range(offset + HEADER, offset + HEADER + count * stride, stride)
            views = map(
                data.__getitem__,
                map(
                    slice,
                    starts,
                    range(
                        offset + HEADER + length, offset + HEADER + length + count * stride, stride
                    ),
                ),
            )
            stopped = next(itertools.compress(itertools.count(), map(callback, views)), None)
            done = count if stopped is None else stopped + 1
            cons += done * stride
            total += done
            self._cons[0] = cons
            if stopped is not None:
                return total
        self._cons[0] = cons
        return total

    def consume_batches(self, batch: Callable[[list[Any]], Any], chunk: int) -> int:
        """Batch mode for "<QQ" records, at most ``chunk`` records per callback: lists
        of millions of tuples make the cyclic GC walk them again and again."""
        stride, plain = 24, 16  # header + two u64
        unpack = struct.Struct("<8xQQ")
        cons, prod, total = self._cons[0], self._prod[0], 0
        while cons < prod:
            start = cons & self.mask
            count = min((prod - cons) // stride, chunk)
            region = self.data[start : start + count * stride]
            if region.cast("I")[:: stride // 4] != array("I", [plain]) * count:
                break  # (the prototype leaves mixed runs to the per-record path)
            batch(list(unpack.iter_unpack(region)))
            cons += count * stride
            total += count
            self._cons[0] = cons
        return total

    def close(self) -> None:
        for view in (self.words, self.data, self._prod, self._cons):
            view.release()
        self._consumer.close()
        self._producer.close()


def producer(size: int) -> Path:
    out = BUILD / f"ring-{size}.bpf.o"
    if not out.exists():
        BUILD.mkdir(exist_ok=True)
        multiarch = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True)
        subprocess.run(
            [
                "clang-19",
                "-O2",
                "-g",
                "-target",
                "bpf",
                f"-DRING_BYTES={size}",
                f"-I/usr/include/{multiarch.stdout.strip()}",
                "-c",
                str(HERE.parent / "ringbuf_producer.bpf.c"),
                "-o",
                str(out),
            ],
            check=True,
        )
    return out


def main() -> int:
    per_drain = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    print(
        f"CPU ns per 16-byte record, drains of {per_drain:,} records, median of 15 drains, "
        "the consumers taking turns (the first drain of a fresh ring apart)\n"
    )
    print(f"{'ring':>8s}  {'consumer':28s} {'first':>7s} {'steady':>7s} {'faults/drain':>13s}")
    count = [0]

    def on_event(view: memoryview) -> None:
        count[0] += 1

    def on_batch(batch: list[Any]) -> None:
        count[0] += len(batch)

    for size in SIZES:
        with BpfObject.open(producer(size)) as obj:
            obj.load()
            produce, events = obj.programs["produce"], obj.maps["events"]
            consumers = {
                "prototype: runs via map()": RunConsumer(events, on_event),
                "today: callback per record": RingBuffer(events, on_event),
                "today: batch mode": RingBuffer(events, batch=on_batch, record="<QQ"),
            }
            samples: dict[str, list[float]] = {label: [] for label in consumers}
            faults: dict[str, list[int]] = {label: [] for label in consumers}
            for _ in range(16):  # the consumers take turns: a busy moment hits them alike
                for label, consumer in consumers.items():
                    produce.test_run(bytes(64), repeat=per_drain)
                    count[0] = 0
                    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                    start = time.process_time()
                    consumer.consume()
                    samples[label].append((time.process_time() - start) / per_drain * 1e9)
                    faults[label].append(
                        resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
                    )
                    assert count[0] == per_drain, (label, count[0])
            for label, consumer in consumers.items():
                consumer.close()
                print(
                    f"{size >> 10:>6d}Ki  {label:28s} {samples[label][0]:7.0f} "
                    f"{statistics.median(samples[label][1:]):7.0f} "
                    f"{statistics.median(faults[label][1:]):13.0f}"
                )
    large_drains(on_event, on_batch, count)
    return 0


def large_drains(
    on_event: Callable[[memoryview], None], on_batch: Callable[[list[Any]], None], count: list[int]
) -> None:
    """The bench's case: 2M records in the 64 MiB ring drained by one consume()."""
    records = 2_000_000
    print(f"\nOne drain of {records:,} records from the 64 MiB ring (median of 3)\n")
    with BpfObject.open(producer(1 << 26)) as obj:
        obj.load()
        produce, events = obj.programs["produce"], obj.maps["events"]
        cases: dict[str, Callable[[], Any]] = {}
        today_event = RingBuffer(events, on_event)
        today_batch = RingBuffer(events, batch=on_batch, record="<QQ")
        runs = RunConsumer(events, on_event)
        cases["today: callback per record"] = today_event.consume
        cases["prototype: runs via map()"] = runs.consume
        cases["today: batch mode (one list)"] = today_batch.consume
        for chunk in (512, 4096, 65536):
            cases[f"prototype: batches of {chunk}"] = lambda c=chunk: runs.consume_batches(
                on_batch, c
            )
        samples: dict[str, list[float]] = {label: [] for label in cases}
        for _ in range(3):
            for label, consume in cases.items():
                produce.test_run(bytes(64), repeat=records)
                count[0] = 0
                start = time.process_time()
                consume()
                samples[label].append((time.process_time() - start) / records * 1e9)
                assert count[0] == records, (label, count[0])
        for label, values in samples.items():
            median = statistics.median(values)
            print(f"  {label:34s} {median:6.0f} ns/record  {1e3 / median:6.2f} M records/s")
        for consumer in (today_event, today_batch, runs):
            consumer.close()


if __name__ == "__main__":
    sys.exit(main())
