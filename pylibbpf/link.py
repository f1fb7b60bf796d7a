"""Links: a program attached to a hook, detached when the link is closed.

One small class per way of attaching, sharing ``Link``'s lifetime rules: ``close()`` (or
leaving a ``with`` block, or garbage collection) detaches unless the link is pinned, in
which case the pin keeps it attached after this process exits.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import perf, syscall
from .errors import AttachError, BpfError
from .fd import Closing, OwnedFd
from .uapi import AttachType

if TYPE_CHECKING:
    from .program import Program


@dataclass(frozen=True)
class LinkInfo:
    id: int
    type: int
    prog_id: int


class Link(Closing):
    """An attachment owned by this process (a bpf_link fd, or what stands in for one)."""

    def __init__(self, fd: OwnedFd, description: str, *, keepalive: OwnedFd | None = None):
        self._fd = fd
        self.description = description
        self._keepalive = keepalive  # e.g. the perf event a perf_event link hangs on
        self._pin_path: str | None = None

    @property
    def fd(self) -> int:
        return self._fd.fd

    def fileno(self) -> int:
        return self._fd.fd

    def info(self) -> LinkInfo:
        raw = syscall.obj_get_info_by_fd(self.fd, syscall.LinkInfo(), what=self.description)
        return LinkInfo(raw.id, raw.type, raw.prog_id)

    def pin(self, path: str | os.PathLike[str]) -> None:
        syscall.obj_pin(self.fd, path, what=self.description)
        self._pin_path = os.fspath(path)

    def unpin(self) -> None:
        if self._pin_path is not None:
            os.unlink(self._pin_path)
            self._pin_path = None

    @classmethod
    def from_pinned(cls, path: str | os.PathLike[str]) -> Link:
        what = f"pinned link {os.fspath(path)!r}"
        return cls(OwnedFd(syscall.obj_get(path, what=what), what), what)

    def update_program(self, program: Program) -> None:
        syscall.link_update(self.fd, program.fd, what=self.description)

    def detach(self) -> None:
        """Detach now, even if pinned elsewhere (LINK_DETACH), then close."""
        try:
            syscall.link_detach(self.fd, what=self.description)
        except BpfError as error:
            if error.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
                raise
        self.close()

    def close(self) -> None:
        self._fd.close()
        if self._keepalive is not None:
            self._keepalive.close()

    @property
    def closed(self) -> bool:
        return self._fd.closed

    def __repr__(self) -> str:
        return f"<Link {self.description} {'closed' if self.closed else f'fd={self.fd}'}>"


def attach_perf_event(program: Program, perf_fd: OwnedFd, what: str) -> Link:
    """Attach to a perf event: a bpf_link (5.15+) or, on older kernels, the ioctl."""
    try:
        fd = syscall.link_create(program.fd, perf_fd.fd, AttachType.PERF_EVENT, what=what)
        return Link(OwnedFd(fd, what), what, keepalive=perf_fd)
    except BpfError as error:
        if error.errno not in (errno.EINVAL, errno.EOPNOTSUPP, 524):
            perf_fd.close()
            raise AttachError(f"{what}: {error.message}", error.errno) from None
    perf.set_bpf(perf_fd.fd, program.fd, what)
    return Link(perf_fd, what)  # closing the perf event detaches


def attach_tracepoint(program: Program, category: str, name: str) -> Link:
    what = f"program {program.name!r} on tracepoint {category}:{name}"
    attr = perf.PerfEventAttr(
        type=perf.PERF_TYPE_TRACEPOINT,
        config=perf.tracepoint_id(category, name),
        sample_period=1,
        wakeup_events=1,
    )
    return attach_perf_event(program, perf.perf_event_open(attr, what=what), what)


def attach_raw_tracepoint(program: Program, name: str) -> Link:
    what = f"program {program.name!r} on raw tracepoint {name}"
    try:
        fd = syscall.raw_tracepoint_open(name, program.fd, what=what)
    except BpfError as error:
        hint = " (no such tracepoint)" if error.errno == errno.ENOENT else ""
        raise AttachError(f"{error.message}{hint}", error.errno) from None
    return Link(OwnedFd(fd, what), what)


def attach_from_section(program: Program) -> Link | None:
    """Auto-attach from the section name, in libbpf's formats; None if it cannot."""
    from .sections import find_section_def

    definition = find_section_def(program.section)
    if definition is None or not definition.attach:
        return None
    section = program.section.lstrip("?")
    target = section.split("/", 1)[1] if "/" in section else ""
    if definition.attach == "tracepoint":
        category, _, name = target.partition("/")
        if not name:
            raise AttachError(
                f"program {program.name!r}: section {section!r} should be tp/<category>/<name>",
                errno.EINVAL,
            )
        return attach_tracepoint(program, category, name)
    if definition.attach == "raw_tp":
        if not target:
            raise AttachError(
                f"program {program.name!r}: section {section!r} should be raw_tp/<name>",
                errno.EINVAL,
            )
        return attach_raw_tracepoint(program, target)
    raise AttachError(
        f"program {program.name!r}: automatic attachment of {definition.attach!r} programs "
        f"(section {section!r}) is not implemented yet",
        errno.EOPNOTSUPP,
    )
