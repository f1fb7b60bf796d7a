"""One map, one ring buffer, several threads: exact results (issue #15).

Threads switch between any two bytecodes (the switch interval is cut to a microsecond
here, so they do, often); every result is checked against the kernel.
"""

from __future__ import annotations

import struct
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import pylibbpf as bpf
from pylibbpf.loader import BpfObject
from pylibbpf.ringbuf import RingBuffer

pytestmark = pytest.mark.root


@pytest.fixture
def busy_switching() -> Iterator[None]:
    saved = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(saved)


def run_threads(*targets: Callable[[], None]) -> None:
    failures: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as error:  # reported by the test, not the thread
                failures.append(error)

        return run

    threads = [threading.Thread(target=guarded(t)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    if failures:
        raise failures[0]


def test_one_map_two_readers_one_writer(busy_switching: None) -> None:
    """Each value encodes its key (high half) and the writer's round (low half): every
    lookup must return its own key's value, and the kernel map must end exactly as
    written."""
    keys, rounds = 256, 40
    with bpf.Map.create(
        bpf.MapType.HASH, 8, 8, keys, name="t_threads", key_type=int, value_type=int
    ) as m:
        for k in range(keys):
            m[k] = k << 32
        done = threading.Event()
        wrong: list[tuple[int, int]] = []
        looked_up = [0, 0]

        def reader(index: int) -> Callable[[], None]:
            def run() -> None:
                while not done.is_set():
                    for k in range(keys):
                        value = m[k] if k % 2 else m.lookup(k)
                        if value >> 32 != k:
                            wrong.append((k, value))
                    looked_up[index] += keys

            return run

        def writer() -> None:
            try:
                for r in range(1, rounds + 1):
                    for k in range(keys):
                        if k % 2:
                            m[k] = (k << 32) | r
                        else:
                            m.update(k, (k << 32) | r)
            finally:
                done.set()

        run_threads(reader(0), reader(1), writer)
        assert not wrong, f"{len(wrong)} lookups returned another key's value: {wrong[:5]}"
        assert min(looked_up) > 0
        # The kernel's view, through another handle (bytes, MAP_GET_NEXT_KEY).
        with bpf.Map.from_fd(m.fd) as raw:
            stored = {
                int.from_bytes(k, "little"): int.from_bytes(v, "little")
                for k, v in raw._items_by_next_key()
            }
        assert stored == {k: (k << 32) | rounds for k in range(keys)}


def test_a_map_closed_in_one_thread_fails_in_every_thread() -> None:
    m = bpf.Map.create(bpf.MapType.HASH, 4, 4, 8, name="t_closed", key_type=int, value_type=int)
    m[1] = 2
    seen: list[object] = []
    ready, closed = threading.Event(), threading.Event()

    def other() -> None:
        seen.append(m[1])  # this thread's buffers exist before the close
        ready.set()
        closed.wait(10)
        try:
            seen.append(m[1])
        except bpf.BpfError as error:
            seen.append(error)

    thread = threading.Thread(target=other)
    thread.start()
    ready.wait(10)
    m.close()
    closed.set()
    thread.join(10)
    assert seen[0] == 2
    assert isinstance(seen[1], bpf.BpfError) and "is closed" in str(seen[1])
    with pytest.raises(bpf.BpfError, match="is closed"):
        m[1]


@pytest.mark.parametrize("mode", ["callback", "batch"])
def test_one_ring_two_consumer_threads_under_load(
    bpf_object: Callable[[str], Path], busy_switching: None, mode: str
) -> None:
    """A producer thread fills a ring while two threads poll the same RingBuffer: every
    record arrives exactly once, none lost, none garbled, and the ring keeps working."""
    rounds, per_round = 30, 5000
    with BpfObject.open(bpf_object("ringbuf")) as obj:
        obj.load()
        emit = obj.programs["emit_fixed"]
        records: list[tuple[int, int, int]] = []  # list.append is atomic
        by_thread: dict[int, int] = {}

        def note(batch: list[tuple[int, int, int]]) -> None:
            records.extend(batch)
            me = threading.get_ident()
            by_thread[me] = by_thread.get(me, 0) + len(batch)

        if mode == "callback":
            ring = RingBuffer(
                obj.maps["fixed_ring"], lambda view: note([struct.unpack("<QII", view)])
            )
        else:
            ring = RingBuffer(obj.maps["fixed_ring"], batch=note, record="<QII", max_batch=64)
        produced = threading.Event()

        def producer() -> None:
            try:
                for _ in range(rounds):
                    emit.test_run(bytes(64), repeat=per_round)
            finally:
                produced.set()

        def consumer() -> None:
            while not produced.is_set():
                ring.poll(5)
            ring.consume()

        with ring:
            run_threads(producer, consumer, consumer)
            ring.consume()
            total = obj.variables["fixed_produced"].value
            dropped = obj.variables["fixed_dropped"].value
            assert total + dropped == rounds * per_round
            seqs = sorted(r[0] for r in records)
            assert seqs == list(range(total)), "records lost or delivered twice"
            assert all(r[1:] == (1, 2) for r in records), "garbled records"
            # the consumer position is where the producer's is: later events still arrive
            emit.test_run(bytes(64), repeat=3)
            assert ring.consume() == 3 and sorted(r[0] for r in records[-3:]) == [
                total,
                total + 1,
                total + 2,
            ]
