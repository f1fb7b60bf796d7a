"""Text lines from a byte source that arrives in pieces: the reader behind the trace pipe
(``trace.TracePipe``) and BPF program streams (``stream.ProgramStream``).

A subclass says how to get the next bytes (``_read_chunk``) and, when the source has a
pollable fd, which one (``fileno``); line assembly, timeouts and asyncio come from here.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)

if TYPE_CHECKING:
    import asyncio  # imported where used: most programs never iterate lines in asyncio

POLL_INTERVAL = 0.05  # for sources without a pollable fd


class LineReader:
    """Text lines from a byte source: subclasses implement ``_read_chunk``, and
    ``fileno`` when the source has a pollable fd (asyncio then waits on it)."""

    def __init__(self) -> None:
        self._pending = b""
        self._lines: list[str] = []
        self.closed = False

    def _read_chunk(self, timeout: float | None) -> bytes:
        """Up to a few KiB of new bytes, waiting at most ``timeout`` seconds (None:
        forever); b"" when nothing came."""
        raise NotImplementedError

    def fileno(self) -> int | None:
        """The source's pollable fd, or None (then asyncio polls on a timer)."""
        return None

    def close(self) -> None:
        """Stop reading: later reads end at once."""
        self.closed = True

    def __enter__(self) -> LineReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _split(self, data: bytes) -> list[str]:
        """Queue the complete lines in ``data`` (and return them)."""
        pieces = (self._pending + data).split(b"\n")
        self._pending = pieces.pop()
        lines = [piece.decode(errors="replace") for piece in pieces]
        self._lines += lines
        return lines

    def readline(self, timeout: float | None = None) -> str | None:
        """The next complete line (without its newline), or None after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._lines:
            if self.closed:
                return None
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            data = self._read_chunk(left)
            if data:
                self._split(data)
            elif deadline is not None and time.monotonic() >= deadline:
                return None
        return self._lines.pop(0)

    def lines(self, timeout: float | None = None) -> Iterator[str]:
        """Lines as they come; stops after ``timeout`` seconds without one (None: never)."""
        while (line := self.readline(timeout)) is not None:
            yield line

    async def lines_async(self) -> AsyncIterator[str]:
        """``async for line in reader.lines_async()``: waits on the fd with the event loop
        (or polls every 50 ms for sources without one)."""
        import asyncio

        loop = asyncio.get_running_loop()
        while not self.closed:
            while self._lines:
                yield self._lines.pop(0)
            data = self._read_chunk(0)
            if data:
                self._split(data)
                continue
            fd = self.fileno()
            if fd is None:
                await asyncio.sleep(POLL_INTERVAL)
                continue
            readable: asyncio.Future[None] = loop.create_future()

            def wake(future: asyncio.Future[None] = readable) -> None:
                if not future.done():
                    future.set_result(None)

            loop.add_reader(fd, wake)
            try:
                await readable
            finally:
                loop.remove_reader(fd)
