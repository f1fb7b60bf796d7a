"""Ring, perf and user ring buffers with real producers; every event accounted for."""

from __future__ import annotations

import asyncio
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import pylibbpf as bpf
from pylibbpf.loader import BpfObject
from pylibbpf.perfbuf import PerfBuffer
from pylibbpf.ringbuf import RingBuffer, UserRingBuffer
from pylibbpf.syscall.system import online_cpus

pytestmark = pytest.mark.root
PACKET = bytes(64)


@pytest.fixture
def obj(bpf_object: Callable[[str], Path]) -> Iterator[BpfObject]:
    with BpfObject.open(bpf_object("ringbuf")) as loaded:
        loaded.load()
        yield loaded


def test_records_of_several_sizes_wrap_and_discard(obj: BpfObject) -> None:
    seen: list[int] = []
    sizes: set[int] = set()

    def on_record(view: memoryview) -> None:
        seen.append(struct.unpack_from("<Q", view)[0])
        sizes.add(len(view))

    emit = obj.programs["emit_sizes"]
    with RingBuffer(obj.maps["ring"], on_record) as ring:
        # A 4 KiB ring and ~10 KiB of records per round: many laps around the end.
        for _ in range(40):
            emit.test_run(PACKET, repeat=200)
            ring.consume()
        assert ring.poll(0) == 0  # nothing left
    produced = obj.variables["produced"].value
    dropped = obj.variables["dropped"].value
    discarded = obj.variables["discarded"].value
    assert produced + dropped + discarded == 40 * 200  # every event accounted for
    assert len(seen) == produced and discarded > 0
    assert sizes == {8, 56}
    assert len(set(seen)) == len(seen)  # no record delivered twice
    assert not any(n % 5 and n % 7 == 3 for n in seen)  # discarded ones never delivered


def test_shared_ring_and_two_rings_in_one_poll(obj: BpfObject) -> None:
    first: list[bytes] = []
    second: list[bytes] = []
    with RingBuffer(obj.maps["ring"], lambda v: first.append(bytes(v))) as ring:
        ring.add(obj.maps["other_ring"], lambda v: second.append(bytes(v)))
        obj.programs["emit_sizes"].test_run(PACKET, repeat=3)  # program 1 into ring
        obj.programs["emit_other"].test_run(PACKET, repeat=2)  # program 2 into both rings
        total = 0
        while (count := ring.poll(100)) and total < 7:
            total += count
    marker = (0xABCDEF).to_bytes(8, "little")
    assert len([r for r in first if r[:8] == marker]) == 2  # two programs, one ring
    assert second == [marker, marker]  # the other ring, in the same poll set


def test_callback_returning_non_zero_stops_the_poll(obj: BpfObject) -> None:
    got: list[int] = []

    def stop_after_two(view: memoryview) -> int:
        got.append(1)
        return 1 if len(got) == 2 else 0

    with RingBuffer(obj.maps["other_ring"], stop_after_two) as ring:
        obj.programs["emit_other"].test_run(PACKET, repeat=5)
        assert ring.consume() == 2 and len(got) == 2  # stopped after the second record
        assert ring.consume() == 3  # the rest, on the next call


def test_batches_of_fixed_size_records(obj: BpfObject) -> None:
    batches: list[list[tuple[int, int, int]]] = []
    with RingBuffer(obj.maps["fixed_ring"], batch=batches.append, record="<QII") as ring:
        obj.programs["emit_fixed"].test_run(PACKET, repeat=50_000)
        consumed = ring.consume()
    produced = obj.variables["fixed_produced"].value
    records = [r for batch in batches for r in batch]
    assert consumed == len(records) == produced == 50_000 - obj.variables["fixed_dropped"].value
    assert [r[0] for r in records] == list(range(produced))  # in order, none lost
    assert all(r[1:] == (1, 2) for r in records)


def test_long_runs_across_windows_and_the_ring_end(obj: BpfObject) -> None:
    """Runs of one record length are handed out in windows of ``RUN_CHUNK`` records: a
    stop and an error in a later window, and a run across the end of the ring, consume
    exactly the records up to theirs."""
    from pylibbpf.ringbuf import RUN_CHUNK

    got: list[tuple[int, int, int]] = []
    stop_at = fail_at = -1  # none in the first fill

    def on_record(view: memoryview) -> int:
        got.append(struct.unpack("<QII", view))
        if got[-1][0] == fail_at:
            raise BadRecord("bad record")
        return 1 if got[-1][0] == stop_at else 0

    emit = obj.programs["emit_fixed"]
    with RingBuffer(obj.maps["fixed_ring"], on_record) as ring:
        # a short run first (slices for 4 records), then one that needs a window's worth
        emit.test_run(PACKET, repeat=3)
        assert ring.consume() == 3
        # 4 MiB of 24-byte strides: 170,000 records in all first, so the next ones wrap
        emit.test_run(PACKET, repeat=170_000 - 3)
        assert ring.consume() == 170_000 - 3
        stop_at, fail_at = 170_000 + RUN_CHUNK + 188, 170_000 + 2 * RUN_CHUNK + 276
        got.clear()
        emit.test_run(PACKET, repeat=3_000)
        assert ring.consume() == RUN_CHUNK + 189  # the stopping record included
        with pytest.raises(BadRecord):
            ring.consume()
        assert ring.consume() == 173_000 - fail_at - 1
        assert ring.poll(0) == 0
    assert obj.variables["fixed_dropped"].value == 0
    assert [r[0] for r in got] == list(range(170_000, 173_000))  # each once, in order
    assert all(r[1:] == (1, 2) for r in got)


PRODUCER = (
    "import os, sys, time\n"
    "sys.stdin.read()\n"
    "end = time.monotonic() + 1.0\n"
    "while time.monotonic() < end:\n"
    "    os.getppid()\n"
)


@pytest.mark.parametrize("mode", ["per_record", "batch"])
def test_a_ring_consumed_while_another_cpu_produces(
    bpf_object: Callable[[str], Path], mode: str
) -> None:
    """Records committed while a run of equal headers is being checked: every record
    delivered once and whole, the rest counted as dropped by the producer."""
    if len(online_cpus()) < 2:
        pytest.skip("needs a second CPU for the producer")
    records: list[tuple[int, int]] = []
    child = subprocess.Popen([sys.executable, "-c", PRODUCER], stdin=subprocess.PIPE)
    try:
        with BpfObject.open(bpf_object("ringbuf")) as obj:
            obj.variables["live_tgid"].value = child.pid
            obj.load()
            with obj.programs["emit_live"].attach():
                ring = (
                    RingBuffer(
                        obj.maps["live_ring"],
                        lambda view: records.append(struct.unpack("<QQ", view)),
                    )
                    if mode == "per_record"
                    else RingBuffer(obj.maps["live_ring"], batch=records.extend, record="<QQ")
                )
                with ring:
                    assert child.stdin is not None
                    child.stdin.close()  # go
                    while child.poll() is None:
                        ring.poll(10)
                    ring.consume()
            produced = obj.variables["live_sequence"].value
            dropped = obj.variables["live_dropped"].value
    finally:
        child.kill()
        child.wait()
    sequence = [r[0] for r in records]
    assert produced > 0
    assert len(records) + dropped == produced
    assert len(set(sequence)) == len(sequence)  # none delivered twice
    assert all(r[1] == 0x5EED for r in records)  # none torn


def test_asyncio_events(obj: BpfObject) -> None:
    async def collect() -> list[bytes]:
        ring = RingBuffer(obj.maps["other_ring"], lambda v: None)
        out: list[bytes] = []

        async def produce() -> None:
            await asyncio.sleep(0.05)  # the consumer is already waiting
            obj.programs["emit_other"].test_run(PACKET, repeat=3)

        producer = asyncio.create_task(produce())
        async for record in ring.events():
            out.append(record)
            if len(out) == 3:
                break
        await producer
        ring.close()
        return out

    records = asyncio.run(asyncio.wait_for(collect(), 10))
    assert records == [(0xABCDEF).to_bytes(8, "little")] * 3


def test_perf_buffer_on_every_cpu_with_lost_events(obj: BpfObject) -> None:
    samples: dict[int, int] = {}
    lost: dict[int, int] = {}
    emit = obj.programs["emit_perf"]
    cpus = online_cpus()
    with PerfBuffer(
        obj.maps["perf"],
        lambda cpu, data: samples.__setitem__(cpu, samples.get(cpu, 0) + 1),
        lambda cpu, count: lost.__setitem__(cpu, lost.get(cpu, 0) + count),
        pages=1,
    ) as buffer:
        for cpu in cpus:  # 1 page per CPU cannot hold 500 48-byte samples: some are lost
            for _ in range(500):  # raw_tp test runs take no repeat count
                emit.test_run(flags=bpf.uapi.TestRunFlags.RUN_ON_CPU, cpu=cpu)
        buffer.consume()
        for cpu in cpus:  # the kernel writes a LOST record with the next sample that fits
            emit.test_run(flags=bpf.uapi.TestRunFlags.RUN_ON_CPU, cpu=cpu)
        buffer.consume()
    assert set(samples) == set(cpus) == set(lost)  # samples and losses on every CPU
    attempted = 501 * len(cpus)
    assert sum(lost.values()) > 0
    assert sum(samples.values()) + sum(lost.values()) == attempted
    assert obj.variables["perf_produced"].value == sum(samples.values())


def test_user_ring_buffer_drained_by_bpf(obj: BpfObject) -> None:
    producer = UserRingBuffer(obj.maps["from_user"])
    try:
        for value in (1, 2, 3, 4):
            producer.write(struct.pack("<Q", value))
        view = producer.reserve(8)
        view[:] = struct.pack("<Q", 1000)
        producer.discard(view)  # discarded: BPF must not see it
        obj.programs["drain_user"].test_run(ctx=bytes(8))
    finally:
        producer.close()
    assert obj.variables["user_records"].value == 4
    assert obj.variables["user_sum"].value == 10


class BadRecord(Exception):
    pass


def test_a_callback_that_raises_consumes_its_record(obj: BpfObject) -> None:
    """As libbpf: the failing record is consumed and the error propagates; the next poll
    goes on with the next record (it does not deliver the failing one again)."""
    got: list[int] = []

    def fail_on_second(view: memoryview) -> None:
        got.append(struct.unpack_from("<Q", view)[0])
        if len(got) == 2:
            raise BadRecord("bad record")

    emit = obj.programs["emit_fixed"]
    with RingBuffer(obj.maps["fixed_ring"], fail_on_second) as ring:  # runs of one length
        emit.test_run(PACKET, repeat=5)
        with pytest.raises(BadRecord):
            ring.consume()
        assert got == [0, 1]
        assert ring.consume() == 3 and got == [0, 1, 2, 3, 4]
        assert ring.poll(0) == 0

    sizes: list[int] = []

    def fail_on_56_bytes(view: memoryview) -> None:
        sizes.append(len(view))
        if len(view) == 56 and sizes.count(56) == 1:
            raise BadRecord("bad record")

    with RingBuffer(obj.maps["ring"], fail_on_56_bytes) as ring:  # records of mixed lengths
        obj.programs["emit_sizes"].test_run(PACKET, repeat=3)  # sequence 0, 1, 2: 8, 56, 56
        with pytest.raises(BadRecord):
            ring.poll(100)
        assert sizes == [8, 56]
        assert ring.consume() == 1 and sizes == [8, 56, 56]


def test_a_batch_callback_that_raises_consumes_its_batch(obj: BpfObject) -> None:
    batches: list[list[tuple[int, int, int]]] = []

    def fail_once(records: list[tuple[int, int, int]]) -> None:
        batches.append(records)
        if len(batches) == 1:
            raise BadRecord("bad batch")

    with RingBuffer(obj.maps["fixed_ring"], batch=fail_once, record="<QII", max_batch=100) as ring:
        obj.programs["emit_fixed"].test_run(PACKET, repeat=250)
        with pytest.raises(BadRecord):
            ring.consume()
        assert [len(b) for b in batches] == [100]
        assert ring.consume() == 150
    assert [len(b) for b in batches] == [100, 100, 50]
    assert [r[0] for b in batches for r in b] == list(range(250))  # none lost, none again


def test_a_callback_cannot_consume_its_own_ring(obj: BpfObject) -> None:
    errors: list[str] = []
    ring: RingBuffer

    def reenter(view: memoryview) -> None:
        try:
            ring.consume()
        except bpf.BpfError as error:
            errors.append(str(error))

    with RingBuffer(obj.maps["other_ring"], reenter) as ring:
        obj.programs["emit_other"].test_run(PACKET, repeat=2)
        assert ring.consume() == 2
    assert len(errors) == 2 and "callback cannot consume" in errors[0]


def test_a_perf_callback_that_raises_consumes_its_sample(obj: BpfObject) -> None:
    got: list[int] = []

    def fail_on_second(cpu: int, data: bytes) -> None:
        got.append(cpu)
        if len(got) == 2:
            raise BadRecord("bad sample")

    cpu = online_cpus()[0]
    emit = obj.programs["emit_perf"]
    with PerfBuffer(obj.maps["perf"], fail_on_second) as buffer:
        for _ in range(4):
            emit.test_run(flags=bpf.uapi.TestRunFlags.RUN_ON_CPU, cpu=cpu)
        with pytest.raises(BadRecord):
            buffer.consume()
        assert buffer.consume() == 2 and got == [cpu] * 4
        assert buffer.consume() == 0
