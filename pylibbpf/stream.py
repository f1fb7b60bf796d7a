"""BPF streams (Linux 6.17): a program's own stdout and stderr.

A program writes to them with ``bpf_stream_printk(BPF_STDOUT, ...)`` (libbpf 1.6's
``bpf_helpers.h``; the kfunc ``bpf_stream_vprintk``, ``_impl`` from 6.18), and the kernel
writes its runtime error reports about the program to stderr: a ``may_goto`` loop that
timed out, a ``bpf_res_spin_lock`` deadlock, a fault in an arena, each with the CPU, task
and call trace. The text is per program, not per CPU or task, and reading consumes it
(``BPF_PROG_STREAM_READ_BY_FD``): ``bpftool prog tracelog {stdout|stderr} PROG`` reads the
same. Each stream holds at most 100 000 bytes until read. For example::

    with program.stream("stderr") as errors:
        program.test_run()
        for line in errors.lines(timeout=0):   # what is there now
            print(line)
"""

from __future__ import annotations

import fcntl
import time

from . import syscall
from .lines import POLL_INTERVAL, LineReader
from .syscall import features
from .syscall.fd import OwnedFd
from .uapi import StreamId

READ_SIZE = 4096


def stream_id(stream: StreamId | int | str) -> StreamId:
    """``StreamId`` from "stdout"/"stderr", 1/2 or the enum."""
    if isinstance(stream, str):
        try:
            return StreamId[stream.upper()]
        except KeyError:
            raise ValueError(f"no BPF stream {stream!r}: stdout or stderr") from None
    return StreamId(stream)


class ProgramStream(LineReader):
    """Lines a program (or the kernel, about it) wrote to one of its streams, as they come.

    Nothing wakes a reader when a program writes, so waiting reads poll every 50 ms;
    ``lines(timeout=0)`` and ``read()`` take what is there and return.
    """

    def __init__(self, program_fd: int, stream: StreamId | int | str, *, what: str) -> None:
        super().__init__()
        features.require(
            features.has_prog_streams(), "BPF streams (PROG_STREAM_READ_BY_FD)", "6.17"
        )
        self.stream = stream_id(stream)
        self._what = f"{what} {self.stream.name.lower()}"
        # Our own reference: the stream stays readable (and the program loaded) while open.
        self._fd = OwnedFd(fcntl.fcntl(program_fd, fcntl.F_DUPFD_CLOEXEC, 3), self._what)

    def read(self, size: int = READ_SIZE) -> bytes:
        """Up to ``size`` bytes waiting in the stream now (b"" if none); consumed."""
        return syscall.prog_stream_read(self._fd.fd, self.stream, size, what=self._what)

    def read_all(self) -> str:
        """Everything waiting in the stream now, as text (what ``bpftool prog tracelog``
        prints), including a last line without its newline."""
        data = b"".join(self._pending_chunks())
        text = (self._pending + data).decode(errors="replace")
        self._pending = b""
        queued, self._lines = self._lines, []
        return "".join(line + "\n" for line in queued) + text

    def _pending_chunks(self) -> list[bytes]:
        chunks = []
        while chunk := self.read():
            chunks.append(chunk)
        return chunks

    def _read_chunk(self, timeout: float | None) -> bytes:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.closed:
            data = self.read()
            if data:
                return data
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            time.sleep(POLL_INTERVAL if left is None else min(POLL_INTERVAL, left))
        return b""

    def close(self) -> None:
        """Stop reading and drop this reader's reference to the program."""
        super().close()
        self._fd.close()

    def __enter__(self) -> ProgramStream:
        return self

    def __repr__(self) -> str:
        return f"<ProgramStream {self._what}{' closed' if self.closed else ''}>"
