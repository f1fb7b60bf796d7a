"""One map, one ring buffer, several threads: exact results (issue #15).

Threads switch between any two bytecodes (the switch interval is cut to a microsecond
here, so they do, often); every result is checked against the kernel.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator

import pytest

import pylibbpf as bpf

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
