"""Links: a program attached to a hook, detached when the link is closed.

``Link`` is the one interface every kind of attachment has (libbpf's ``bpf_link``,
cilium/ebpf's ``link.Link``): ``close()`` (or leaving a ``with`` block, or dropping the
last reference) detaches unless the link is pinned, in which case the pin keeps it
attached after this process exits. Attachments that are not bpf_links — PROG_ATTACH
(``ProgAttachLink``) and netlink (``InterfaceLink``) — behave the same way; what they
cannot do (pin, query) raises ``NotSupportedError``.

One module per kind family lives next to this one; ``auto`` maps section names to them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import weakref
from collections.abc import Callable

from .. import syscall
from ..errors import AttachError, BpfError, NotSupportedError
from ..records import dataclass
from ..syscall.fd import Closing, OwnedFd
from ..syscall.pins import pin_object, unpin_object
from ..uapi import LinkType

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any, Protocol
else:
    Protocol = object  # (the protocols below are for the type checker only)


class Attachable(Protocol):
    """What attaching needs from a program (``Program`` is one): its name for messages,
    its fd, its section and attach type for auto-attach, and the object it came from
    (USDT reads that object's spec map). Links depend on this, never on ``Program``."""

    @property
    def name(self) -> str:
        """The program's name, for messages."""
        ...

    @property
    def section(self) -> str:
        """Its ELF section (``SEC()``), which auto-attach reads."""
        ...

    @property
    def type(self) -> int:
        """Its ``ProgType``."""
        ...

    @property
    def fd(self) -> int:
        """Its fd (the program must be loaded)."""
        ...

    @property
    def expected_attach_type(self) -> int | None:
        """The ``AttachType`` it was loaded for, if any."""
        ...

    @property
    def obj(self) -> Any:
        """The object it came from (a ``BpfObject``), or None."""
        ...

    def fileno(self) -> int:
        """Its fd, for APIs that take file-like objects."""
        ...


@dataclass(frozen=True)
class LinkInfo:
    """What the kernel reports about a bpf_link (``bpf_link_info``'s common part)."""

    id: int
    type: LinkType | int  # a LinkType (prints as its name); the number if this is newer
    prog_id: int


class Link(Closing):
    """An attachment owned by this process (a bpf_link fd, or what stands in for one)."""

    def __init__(self, fd: OwnedFd, description: str, *, keepalive: OwnedFd | None = None) -> None:
        self._fd = fd
        self.description = description
        self._keepalive = keepalive  # e.g. the perf event a perf_event link hangs on
        self._pin_path: str | None = None
        self._cleanups: list[Callable[[], None]] = []
        # Also on garbage collection, after the fds (what the cleanups undo needs them gone).
        self._finalizer = weakref.finalize(self, _run_cleanups, self._cleanups)

    def on_close(self, cleanup: Callable[[], None]) -> None:
        """Run ``cleanup`` once the link is closed or collected (a tracefs probe to
        remove, a netlink attachment to undo, …); it must not refer to the link."""
        self._cleanups.append(cleanup)

    @property
    def fd(self) -> int:
        """The link's descriptor (EBADF ``BpfError`` once closed)."""
        return self._fd.fd

    def fileno(self) -> int:
        """The link's descriptor, for APIs that take file-like objects."""
        return self._fd.fd

    def info(self) -> LinkInfo:
        """The kernel's id, type and program id of this link."""
        raw = syscall.obj_get_info_by_fd(self.fd, syscall.LinkInfo(), what=self.description)
        kind = LinkType(raw.type) if raw.type in LinkType._value2member_map_ else raw.type
        return LinkInfo(raw.id, kind, raw.prog_id)

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Pin on bpffs: the attachment then outlives this process until ``unpin()``."""
        self._pin_path = pin_object(self.fd, path, self.description)

    def unpin(self, path: str | os.PathLike[str] | None = None) -> None:
        """Remove the pin (``path`` defaults to where this link was pinned or opened)."""
        self._pin_path = unpin_object(path, self._pin_path, self.description)

    @property
    def pin_path(self) -> str | None:
        """Where this link is pinned (by ``pin()`` or ``from_pinned()``), if anywhere."""
        return self._pin_path

    @classmethod
    def from_pinned(cls, path: str | os.PathLike[str]) -> Link:
        """Open a pinned link; ``unpin()`` then removes that pin."""
        what = f"pinned link {os.fspath(path)!r}"
        link = cls(OwnedFd(syscall.obj_get(path, what=what), what), what)
        link._pin_path = os.fspath(path)
        return link

    def update_program(self, program: Attachable) -> None:
        """Atomically replace the attached program (LINK_UPDATE)."""
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
        """Release the link: detaches unless pinned; calling it again does nothing."""
        self._fd.close()
        if self._keepalive is not None:
            self._keepalive.close()
        self._finalizer()

    @property
    def closed(self) -> bool:
        """Whether ``close()`` ran."""
        return self._fd.closed

    def __repr__(self) -> str:
        return f"<Link {self.description} {'closed' if self.closed else f'fd={self.fd}'}>"


def _run_cleanups(cleanups: list[Callable[[], None]]) -> None:
    while cleanups:
        with contextlib.suppress(OSError):
            cleanups.pop(0)()


def create_link(
    program: Attachable,
    target_fd: int,
    attach_type: int,
    what: str,
    opts: Any = None,
    flags: int = 0,
    *,
    link_class: type[Link] = Link,
) -> Link:
    """LINK_CREATE for ``program`` on ``target_fd``; a failure raises ``AttachError``."""
    try:
        fd = syscall.link_create(
            program.fd, target_fd, attach_type, flags=flags, opts=opts, what=what
        )
    except BpfError as error:
        raise AttachError(error.message, error.errno) from error
    return link_class(OwnedFd(fd, what), what)


class InterfaceLink(Link):
    """An XDP or tc attachment made through netlink: detached on close; there is no
    bpf_link behind it, so it cannot be pinned or queried."""

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Refused: a netlink attachment has no bpf_link to pin."""
        raise NotSupportedError(
            f"{self.description}: a netlink attachment has no bpf_link to pin", errno.EOPNOTSUPP
        )

    def info(self) -> LinkInfo:
        """Refused: a netlink attachment has no bpf_link to query."""
        raise NotSupportedError(
            f"{self.description}: a netlink attachment has no bpf_link", errno.EOPNOTSUPP
        )

    def update_program(self, program: Attachable) -> None:
        """Refused: re-attach with ``replace=True`` instead."""
        raise NotSupportedError(
            f"{self.description}: re-attach with replace=True instead", errno.EOPNOTSUPP
        )

    def detach(self) -> None:
        """Detach through netlink (the same as ``close()``)."""
        self.close()


class ProgAttachLink(Link):
    """An attachment made with PROG_ATTACH (sockmaps; cgroups on kernels without cgroup
    links): no bpf_link, so it is detached with PROG_DETACH when the link is closed or
    garbage collected, never left behind."""

    def __init__(self, program: Attachable, target: OwnedFd, attach_type: int, what: str):
        target_fd = os.dup(target.fd)  # owned by the hook below, which runs exactly once
        target.close()

        def detach(prog_fd: int) -> None:
            try:
                syscall.prog_detach(target_fd, prog_fd, attach_type, what=what)
            except BpfError:
                pass  # the target went away first: nothing is attached any more
            finally:
                os.close(target_fd)

        super().__init__(OwnedFd(os.dup(program.fd), what, before_close=detach), what)

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Refused: PROG_ATTACH makes no bpf_link to pin."""
        raise NotSupportedError(f"{self.description}: not a bpf_link", errno.EOPNOTSUPP)

    def info(self) -> LinkInfo:
        """Refused: PROG_ATTACH makes no bpf_link to query."""
        raise NotSupportedError(f"{self.description}: not a bpf_link", errno.EOPNOTSUPP)


def prog_attach(
    program: Attachable,
    target: OwnedFd,
    kind: int,
    what: str,
    flags: int = 0,
    *,
    relative_fd: int = 0,
    expected_revision: int = 0,
) -> ProgAttachLink:
    """PROG_ATTACH ``program`` to ``target`` (taken over) as a ``ProgAttachLink``."""
    try:
        syscall.prog_attach(
            target.fd,
            program.fd,
            kind,
            flags=flags,
            relative_fd=relative_fd,
            expected_revision=expected_revision,
            what=what,
        )
    except BpfError as error:
        target.close()
        raise AttachError(error.message, error.errno) from error
    return ProgAttachLink(program, target, kind, what)
