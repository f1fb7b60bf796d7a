"""Owned file descriptors: the one way every kernel object's fd is held.

An ``OwnedFd`` closes its descriptor exactly once: on ``close()``, on leaving a ``with``
block, or when it is garbage collected. Descriptors from ``bpf(2)`` are created
``O_CLOEXEC`` by the kernel, and ``dup()`` keeps that, so an ``exec`` never leaks them.

fork(): the child gets its own copy of every descriptor and of every ``OwnedFd``. The kernel
object stays alive while any process holds a descriptor to it, so closing (or collecting)
the child's copy never affects the parent's, and vice versa. Nothing needs re-opening in
the child; pinned objects are the way to share across unrelated processes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import weakref
from collections.abc import Callable
from types import TracebackType

from ..errors import BpfError

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing_extensions import Self  # (typing.Self: Python 3.11+)


class Closing:
    """``with`` support for anything that has ``close()``."""

    __slots__ = ()

    def close(self) -> None:
        """Release what the object holds."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _close(fd: int, before_close: Callable[[int], None] | None) -> None:
    try:
        if before_close is not None:
            before_close(fd)
    finally:
        os.close(fd)


class OwnedFd(Closing):
    """A file descriptor this process owns, with a label used in error messages."""

    __slots__ = ("__weakref__", "_fd", "_finalizer", "label")

    def __init__(
        self,
        fd: int,
        label: str = "bpf object",
        *,
        before_close: Callable[[int], None] | None = None,
    ) -> None:
        """``before_close(fd)`` runs just before the descriptor is closed, on every path
        (close, ``with``, garbage collection): for undoing what the fd registered."""
        if fd < 0:
            raise ValueError(f"{label}: invalid file descriptor {fd}")
        self._fd = fd
        self.label = label
        self._finalizer = weakref.finalize(self, _close, fd, before_close)

    @property
    def fd(self) -> int:
        """The descriptor number; raises a ``BpfError`` (EBADF) naming the object if closed."""
        if self._fd < 0:
            raise BpfError(f"{self.label} is closed", errno.EBADF)
        return self._fd

    def fileno(self) -> int:
        """The descriptor number, for APIs that take file-like objects."""
        return self.fd

    @property
    def closed(self) -> bool:
        """Whether ``close()`` ran."""
        return self._fd < 0

    def close(self) -> None:
        """Close the descriptor; calling it again does nothing."""
        if self._fd >= 0:
            self._fd = -1
            self._finalizer()

    def dup(self, label: str | None = None) -> OwnedFd:
        """A second owned descriptor for the same kernel object (also close-on-exec)."""
        return OwnedFd(fcntl.fcntl(self.fd, fcntl.F_DUPFD_CLOEXEC, 3), label or self.label)

    def __repr__(self) -> str:
        state = "closed" if self._fd < 0 else f"fd={self._fd}"
        return f"<OwnedFd {self.label} {state}>"
