"""The trace pipe reader: trace lines parsed into fields, line assembly and timeouts over
any byte source, and bpf_printk() lines a BPF program printed because this test made a
system call, read back from private tracefs instances (blocking, with asyncio, filtered
by pid in the kernel) without taking them away from any other reader."""

from __future__ import annotations

import asyncio
import io
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from pylibbpf.errors import BpfError, NotSupportedError
from pylibbpf.object import BpfObject
from pylibbpf.trace import (
    LineReader,
    TraceEvent,
    TracePipe,
    lost_events,
    parse_line,
    trace_print,
    tracefs_root,
)

# --------------------------------------------------------------------------- parsing


def test_lines_parse_into_fields() -> None:
    line = "          python-21562   [001] ...21   610.887078: bpf_trace_printk: hello: 1"
    assert parse_line(line) == TraceEvent(
        task="python",
        pid=21562,
        cpu=1,
        flags="...21",
        timestamp=610.887078,
        event="bpf_trace_printk",
        message="hello: 1",
    )
    event = parse_line("kworker/u4:2-events_unbound-123 (    100) [000] d.h2. 5.000001: x: y\n")
    assert event is not None
    assert (event.task, event.pid, event.tgid, event.flags) == (
        "kworker/u4:2-events_unbound",
        123,
        100,
        "d.h2.",
    )
    assert event.fields() == ("kworker/u4:2-events_unbound", 123, 0, "d.h2.", 5.000001, "y")
    no_irq_info = parse_line("  my task-9 [003] 12.5: sched_switch: prev_comm=a")
    assert no_irq_info is not None
    assert (no_irq_info.task, no_irq_info.flags, no_irq_info.event) == (
        "my task",
        "",
        "sched_switch",
    )
    unknown_tgid = parse_line("<...>-77 (-------) [000] ..... 1.0: bpf_trace_printk: m")
    assert unknown_tgid is not None and (unknown_tgid.task, unknown_tgid.tgid) == ("<...>", None)
    for other in ("CPU:1 [LOST 12 EVENTS]", "# tracer: nop", "", "#  TASK-PID  CPU#"):
        assert parse_line(other) is None
    assert lost_events("CPU:1 [LOST 12 EVENTS]") == 12 and lost_events("x-1 [0] 1.0: a: b") == 0


class Scripted(LineReader):
    """Chunks handed out one read at a time; an empty chunk is a read that timed out."""

    def __init__(self, chunks: list[bytes]) -> None:
        super().__init__()
        self.chunks = chunks
        self.timeouts: list[float | None] = []

    def _read_chunk(self, timeout: float | None) -> bytes:
        self.timeouts.append(timeout)
        return self.chunks.pop(0) if self.chunks else b""


def test_lines_are_assembled_across_reads_and_reads_time_out() -> None:
    reader = Scripted([b"first li", b"ne\nsecond\nthi", b"", b"rd\n", b"\xff\xfe\n"])
    assert reader.readline() == "first line"
    assert reader.readline(5) == "second"
    assert list(reader.lines(timeout=0)) == []  # "thi" is not a line yet; nothing came
    assert reader.readline() == "third"
    assert reader.readline() == "\ufffd\ufffd"  # undecodable bytes do not stop the reader
    assert reader.readline(timeout=0) is None
    reader.close()
    assert reader.readline() is None


def test_async_lines_poll_a_source_without_an_fd() -> None:
    async def first_two() -> list[str]:
        reader = Scripted([b"", b"a\nb", b"", b"\n"])
        lines = []
        async for line in reader.lines_async():
            lines.append(line)
            if len(lines) == 2:
                break
        return lines

    assert asyncio.run(first_two()) == ["a", "b"]


# --------------------------------------------------------------------------- kernel


@pytest.fixture(autouse=True)
def printk_event(request: pytest.FixtureRequest) -> None:
    """Kernel tests need tracefs and the bpf_trace_printk event (Linux 5.10+; before,
    bpf_printk wrote to the top-level buffer only and private instances never see it)."""
    if "root" not in request.keywords:
        return
    try:
        root = tracefs_root()
    except NotSupportedError as error:
        pytest.skip(str(error))
    if not Path(root, "events/bpf_trace/bpf_trace_printk").is_dir():
        pytest.skip(f"no bpf_trace/bpf_trace_printk trace event on {os.uname().release}")


def instances() -> set[str]:
    return {p.name for p in Path(tracefs_root(), "instances").iterdir()}


def printing(bpf_object: Callable[[str], Path], cookie: int, *tgids: int) -> BpfObject:
    obj = BpfObject.open(bpf_object("printk"))
    obj.variables["first_tgid"].value = tgids[0]
    obj.variables["second_tgid"].value = tgids[-1]
    obj.load()
    obj.variables["cookie"].value = cookie
    obj.attach()
    return obj


@pytest.mark.root
def test_a_printk_this_test_caused_is_read_back(bpf_object: Callable[[str], Path]) -> None:
    cookie = random.getrandbits(48)
    before = instances()
    with TracePipe(pids=[os.getpid()]) as pipe, TracePipe() as other:
        assert pipe.instance is not None and Path(pipe.instance).name not in before
        enable = Path(pipe.instance, "events/bpf_trace/bpf_trace_printk/enable")
        assert enable.read_text().strip() == "1"
        with printing(bpf_object, cookie, os.getpid()):
            os.getppid()
            event = pipe.read_event(timeout=5)
            # Another private instance got its own copy: reading one took nothing away.
            copies = [e for e in other.events(timeout=1) if e.pid == os.getpid()]
    assert event is not None
    assert event.message == f"pylibbpf-trace {os.getpid()} {cookie}"
    assert (event.pid, event.event) == (os.getpid(), "bpf_trace_printk")
    assert event.task == Path("/proc/self/comm").read_text().strip()
    assert event.cpu in os.sched_getaffinity(0)
    assert [e.message for e in copies] == [event.message]
    assert instances() == before  # both instances removed


@pytest.mark.root
def test_the_pid_filter_applies_in_the_kernel(bpf_object: Callable[[str], Path]) -> None:
    """The program prints for this process and a child; the pipe asked for the child."""
    go_read, go_write = os.pipe()
    child = os.fork()
    if child == 0:
        os.read(go_read, 1)
        os.getppid()
        os._exit(0)
    os.close(go_read)
    try:
        with TracePipe(pids=[child]) as pipe:
            assert pipe.instance is not None
            filter_file = Path(pipe.instance, "events/bpf_trace/bpf_trace_printk/filter")
            assert filter_file.read_text().strip() == f"common_pid == {child}"
            with printing(bpf_object, 7, os.getpid(), child):
                os.getppid()  # printed, but not for this pipe
                os.write(go_write, b"x")
                os.waitpid(child, 0)
                seen = list(pipe.events(timeout=1))
    finally:
        os.close(go_write)
        try:
            os.kill(child, 9)
            os.waitpid(child, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    assert [(e.pid, e.message) for e in seen] == [(child, f"pylibbpf-trace {child} 7")]


@pytest.mark.root
def test_async_events(bpf_object: Callable[[str], Path]) -> None:
    async def first_event(pipe: TracePipe) -> TraceEvent:
        os.getppid()
        async for event in pipe.events_async():
            return event
        raise AssertionError("no event")

    with TracePipe(pids=[os.getpid()]) as pipe, printing(bpf_object, 99, os.getpid()):
        event = asyncio.run(asyncio.wait_for(first_event(pipe), 5))
    assert (event.pid, event.message) == (os.getpid(), f"pylibbpf-trace {os.getpid()} 99")


@pytest.mark.root
def test_trace_print_formats_like_bcc(bpf_object: Callable[[str], Path]) -> None:
    out = io.StringIO()
    with TracePipe(pids=[os.getpid()]) as pipe, printing(bpf_object, 5, os.getpid()):
        os.getppid()
        trace_print("{1} {5}", pipe=pipe, timeout=1, file=out)  # bcc's positions
        os.getppid()
        trace_print("{task}|{message}", pipe=pipe, timeout=1, file=out)
    comm = Path("/proc/self/comm").read_text().strip()
    assert out.getvalue().splitlines() == [
        f"{os.getpid()} pylibbpf-trace {os.getpid()} 5",
        f"{comm}|pylibbpf-trace {os.getpid()} 5",
    ]


@pytest.mark.root
def test_bad_requests_are_clear_errors_and_leave_nothing() -> None:
    before = instances()
    with pytest.raises(NotSupportedError, match="no_such_system/no_such_event"):
        TracePipe(["no_such_system/no_such_event"])
    with pytest.raises(BpfError, match="needs a private instance"):
        TracePipe(pids=[1], top_level=True)
    assert instances() == before
