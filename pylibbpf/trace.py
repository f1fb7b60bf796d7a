"""Reading what BPF programs print: ``bpf_printk()`` lines from the kernel's trace pipe,
as raw lines or parsed fields (task, pid, cpu, timestamp, message), blocking, with
timeouts, or with asyncio.

``bpf_printk()`` emits the ``bpf_trace/bpf_trace_printk`` trace event. Every tracefs
instance with that event enabled gets its own copy, so ``TracePipe`` creates a private
instance (``/sys/kernel/tracing/instances/pylibbpf-…``), enables the event there and
removes the instance on close: reading it consumes nothing another reader of the
top-level ``trace_pipe`` (bcc, ``cat``) would see, and a ``pids`` filter applies in the
kernel. It sees lines printed after it was opened; ``top_level=True`` reads the shared
pipe instead, as bcc's ``trace_print()`` does (including older lines, which it takes away
from other readers). For example::

    with TracePipe(pids=[os.getpid()]) as pipe:
        ...                                   # load, attach, make the program print
        for event in pipe.events(timeout=1):  # stops after 1 s without a line
            print(event.pid, event.message)

``LineReader`` (``pylibbpf.lines``) is the seam for text sources: ``TracePipe`` reads
tracefs with it, and ``Program.stream()`` (``pylibbpf.stream``, Linux 6.17+) reads what
a program wrote with ``bpf_stream_printk()`` over ``BPF_PROG_STREAM_READ_BY_FD``.
"""

from __future__ import annotations

import errno
import itertools
import os
import re
import select
import sys
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import IO, Any

from .errors import BpfError, BpfPermissionError, NotSupportedError
from .lines import LineReader
from .syscall.perf import tracefs_refused

TRACEFS_ROOTS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
PRINTK_EVENT = "bpf_trace/bpf_trace_printk"
DEFAULT_BUFFER_KB = 256

_LINE = re.compile(
    r"^\s*(?P<task>.+?)-(?P<pid>\d+)\s+"
    r"(?:\(\s*(?P<tgid>[\d-]+)\)\s+)?"  # with the record-tgid option
    r"\[(?P<cpu>\d+)\]\s+"
    r"(?:(?P<flags>[^\s\d][^\s]*)\s+)?"  # irq-info: "d.h2." and friends
    r"(?P<timestamp>\d+\.\d+):\s+"
    r"(?P<event>[^:\s]+):\s?(?P<message>.*)$"
)
_LOST = re.compile(r"\[LOST (\d+) EVENTS\]")
_instances = itertools.count()


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One trace pipe line, split into its fields."""

    task: str  # the comm of the task that emitted it
    pid: int  # its thread id
    cpu: int
    flags: str  # irq-info flags ("d.h2." …), "" when the option is off
    timestamp: float  # seconds, on the instance's trace clock
    event: str  # "bpf_trace_printk" for bpf_printk()
    message: str  # what the program printed
    tgid: int | None = None  # only with the record-tgid option

    def fields(self) -> tuple[str, int, int, str, float, str]:
        """bcc's ``trace_fields()`` tuple: (task, pid, cpu, flags, timestamp, message)."""
        return self.task, self.pid, self.cpu, self.flags, self.timestamp, self.message


def parse_line(line: str) -> TraceEvent | None:
    """Fields of one trace line; None for lines that are not events (``LOST`` markers,
    headers of the ``trace`` file)."""
    match = _LINE.match(line.rstrip("\n"))
    if match is None:
        return None
    tgid = match["tgid"]
    return TraceEvent(
        task=match["task"],
        pid=int(match["pid"]),
        cpu=int(match["cpu"]),
        flags=match["flags"] or "",
        timestamp=float(match["timestamp"]),
        event=match["event"],
        message=match["message"],
        tgid=int(tgid) if tgid and tgid.strip("-") else None,
    )


def lost_events(line: str) -> int:
    """How many events a ``CPU:1 [LOST 12 EVENTS]`` line says were dropped (else 0)."""
    lost = _LOST.search(line)
    return int(lost[1]) if lost else 0


def tracefs_root() -> str:
    """Where tracefs is mounted (NotSupportedError if it is not; BpfPermissionError,
    with the kernel's errno, where it is but this process may not use it)."""
    refused: tuple[str, OSError] | None = None
    for root in TRACEFS_ROOTS:
        path = os.path.join(root, "trace_pipe")
        try:
            os.stat(path)
            return root
        except PermissionError as error:
            refused = refused or (path, error)
        except OSError:
            continue
    if refused is not None:
        raise tracefs_refused(*refused, "trace pipe")
    raise NotSupportedError(
        f"tracefs is not mounted at {' or '.join(TRACEFS_ROOTS)} "
        "(mount -t tracefs nodev /sys/kernel/tracing)",
        errno.ENOENT,
    )


class TracePipe(LineReader):
    """A reader of trace events, by default from a private tracefs instance.

    ``events``: ``"system/event"`` names to enable in the instance (default: what
    ``bpf_printk()`` emits). ``pids``: only events from these thread ids (a filter the
    kernel applies; private instances only). ``buffer_kb``: the instance's per-CPU buffer.
    """

    def __init__(
        self,
        events: Iterable[str] = (PRINTK_EVENT,),
        *,
        pids: Iterable[int] | None = None,
        top_level: bool = False,
        buffer_kb: int | None = DEFAULT_BUFFER_KB,
        tracefs: str | None = None,
    ) -> None:
        super().__init__()
        self.lost = 0  # events the kernel dropped because the buffer was full
        self._fd = -1
        self.instance: str | None = None  # the private instance directory
        root = tracefs or tracefs_root()
        self._events = list(events)
        pid_list = None if pids is None else [int(pid) for pid in pids]
        if top_level:
            if pid_list is not None:
                raise BpfError(
                    "trace pipe: a pid filter needs a private instance (top_level=False)",
                    errno.EINVAL,
                )
            self.directory = root
        else:
            self.directory = self.instance = _make_instance(root)
        try:
            if self.instance is not None:
                if buffer_kb:
                    self._write("buffer_size_kb", str(buffer_kb))
                for event in self._events:
                    if pid_list:
                        self._write(
                            f"events/{event}/filter",
                            " || ".join(f"common_pid == {pid}" for pid in pid_list),
                        )
                    self._write(f"events/{event}/enable", "1")
            self._fd = os.open(
                os.path.join(self.directory, "trace_pipe"),
                os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC,
            )
        except BaseException:
            self.close()
            raise

    def _write(self, name: str, value: str) -> None:
        path = os.path.join(self.directory, name)
        try:
            with open(path, "w") as f:
                f.write(value)
        except FileNotFoundError:
            raise NotSupportedError(
                f"trace pipe: {path} does not exist (no such trace event on this kernel)",
                errno.ENOENT,
            ) from None
        except OSError as error:
            raise BpfError(
                f"trace pipe: writing {value!r} to {path}: {error.strerror}", error.errno
            ) from None

    def fileno(self) -> int:
        """The trace pipe's fd, for select/epoll and asyncio."""
        if self._fd < 0:
            raise BpfError("trace pipe: closed", errno.EBADF)
        return self._fd

    def _read_chunk(self, timeout: float | None) -> bytes:
        if self._fd < 0:
            return b""
        try:
            data = os.read(self._fd, 1 << 16)
        except BlockingIOError:
            data = b""
        if data or timeout == 0:
            return data
        try:
            ready, _, _ = select.select([self._fd], [], [], timeout)
        except InterruptedError:
            return b""
        if not ready:
            return b""
        try:
            return os.read(self._fd, 1 << 16)
        except BlockingIOError:
            return b""

    def _split(self, data: bytes) -> list[str]:
        lines = super()._split(data)
        self.lost += sum(lost_events(line) for line in lines if "LOST" in line)
        return lines

    def read_event(self, timeout: float | None = None) -> TraceEvent | None:
        """The next parsed event (lines that are not events are skipped), or None after
        ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            line = self.readline(left)
            if line is None:
                return None
            event = parse_line(line)
            if event is not None:
                return _with_task(event)

    def events(self, timeout: float | None = None) -> Iterator[TraceEvent]:
        """Events as they come; stops after ``timeout`` seconds without one."""
        while (event := self.read_event(timeout)) is not None:
            yield event

    __iter__ = events

    async def events_async(self) -> AsyncIterator[TraceEvent]:
        """``async for event in pipe.events_async()``."""
        async for line in self.lines_async():
            event = parse_line(line)
            if event is not None:
                yield _with_task(event)

    def __enter__(self) -> TracePipe:
        return self

    def close(self) -> None:
        """Stop reading; a private instance is disabled and removed."""
        super().close()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self.instance is not None:
            instance, self.instance = self.instance, None
            _remove_instance(instance)

    def __del__(self) -> None:
        if getattr(self, "instance", None) is not None or getattr(self, "_fd", -1) >= 0:
            self.close()


def _with_task(event: TraceEvent) -> TraceEvent:
    """Name a task the kernel shows as ``<...>`` (its comm was not cached yet, which is
    usual in a fresh instance) from /proc, while the task is still there."""
    if event.task != "<...>":
        return event
    try:
        with open(f"/proc/{event.pid}/comm") as f:
            return replace(event, task=f.read().rstrip("\n"))
    except OSError:
        return event


def _make_instance(root: str) -> str:
    instances = os.path.join(root, "instances")
    for _ in range(100):
        path = os.path.join(instances, f"pylibbpf-{os.getpid()}-{next(_instances)}")
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue
        except PermissionError:
            raise BpfPermissionError(
                f"trace pipe: cannot create a tracefs instance in {instances} (needs root)",
                errno.EPERM,
            ) from None
        except OSError as error:
            raise BpfError(
                f"trace pipe: cannot create {path}: {error.strerror}", error.errno
            ) from None
    raise BpfError(f"trace pipe: no free instance name in {instances}", errno.EEXIST)


def _remove_instance(path: str) -> None:
    """rmdir disables the instance's events and frees its buffers; EBUSY while a reader
    (a forked child holding trace_pipe) still has it open, so try for a moment."""
    for attempt in range(20):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as error:
            if error.errno != errno.EBUSY or attempt == 19:
                print(
                    f"pylibbpf: could not remove tracefs instance {path}: {error.strerror}",
                    file=sys.stderr,
                )
                return
            time.sleep(0.05)


def trace_print(
    fmt: str | None = None,
    *,
    pipe: TracePipe | None = None,
    timeout: float | None = None,
    file: IO[str] | None = None,
) -> None:
    """bcc's ``trace_print()``: print events until ``timeout`` seconds pass without one
    (None: until Ctrl-C). ``fmt`` formats each event: ``"{pid} {message}"`` by field
    name, or bcc's ``"{1} {5}"`` by position in ``TraceEvent.fields()``."""
    out = file or sys.stdout
    reader = pipe or TracePipe()
    try:
        if fmt is None:
            for line in reader.lines(timeout):
                print(line, file=out, flush=True)
            return
        for event in reader.events(timeout):
            print(_format(fmt, event), file=out, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        if pipe is None:
            reader.close()


def _format(fmt: str, event: TraceEvent) -> str:
    names: dict[str, Any] = {name: getattr(event, name) for name in event.__slots__}
    return fmt.format(*event.fields(), **names)
