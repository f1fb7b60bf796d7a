"""Attach order at the multi-program hooks (tcx 6.6, netkit 6.7, cgroup links 6.15).

The kernel keeps the programs of such a hook in a list and runs them in order until one
returns a final verdict. Where a new one goes is an ``Anchor``: first, last, or before or
after a program or link already there (cilium/ebpf's ``link.Anchor``, libbpf's
``relative_fd``/``relative_id`` with ``BPF_F_BEFORE``/``BPF_F_AFTER``/``BPF_F_ID``/
``BPF_F_LINK``). Every change bumps the hook's revision; attaching with
``expected_revision`` fails with ESTALE if someone else changed the hook since the caller
looked (``query()``), so a read-decide-attach sequence cannot race silently.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import Any

from .. import syscall
from ..errors import AttachError, BpfError
from ..syscall import features
from ..syscall.fd import OwnedFd
from ..uapi import AttachFlags, AttachType
from .base import Attachable, Link, create_link
from .xdp import ifindex_of

_INTERFACE_HOOKS = {
    "ingress": AttachType.TCX_INGRESS,
    "egress": AttachType.TCX_EGRESS,
    "primary": AttachType.NETKIT_PRIMARY,
    "peer": AttachType.NETKIT_PEER,
}


@dataclass(frozen=True)
class Anchor:
    """Where a new program goes among those already at a hook. Build one with
    ``first()``, ``last()``, ``before(x)`` or ``after(x)``, where ``x`` is a program or a
    link (held until the attach call reads its fd), or with ``before_id``/``after_id``."""

    flags: int
    target: Any = None  # a Link, a program, or an id (int)

    @classmethod
    def first(cls) -> Anchor:
        """Ahead of every program at the hook."""
        return cls(AttachFlags.BEFORE)

    @classmethod
    def last(cls) -> Anchor:
        """Behind every program at the hook (also where no anchor puts it)."""
        return cls(AttachFlags.AFTER)

    @classmethod
    def before(cls, target: Link | Attachable) -> Anchor:
        """Right before ``target``, a program or a link attached at the same hook."""
        return cls(AttachFlags.BEFORE | _kind(target), target)

    @classmethod
    def after(cls, target: Link | Attachable) -> Anchor:
        """Right after ``target``, a program or a link attached at the same hook."""
        return cls(AttachFlags.AFTER | _kind(target), target)

    @classmethod
    def before_id(cls, object_id: int, *, link: bool = False) -> Anchor:
        """Right before the program (``link=True``: the link) with this kernel id."""
        return cls(
            AttachFlags.BEFORE | AttachFlags.ID | (AttachFlags.LINK if link else 0), object_id
        )

    @classmethod
    def after_id(cls, object_id: int, *, link: bool = False) -> Anchor:
        """Right after the program (``link=True``: the link) with this kernel id."""
        return cls(
            AttachFlags.AFTER | AttachFlags.ID | (AttachFlags.LINK if link else 0), object_id
        )

    def encode(self) -> tuple[int, int]:
        """The LINK_CREATE/PROG_ATTACH ``flags`` and ``relative_fd``/``relative_id``."""
        if self.target is None:
            return int(self.flags), 0
        if isinstance(self.target, int):
            return int(self.flags), self.target
        return int(self.flags), self.target.fileno()

    def __str__(self) -> str:
        side = "before" if self.flags & AttachFlags.BEFORE else "after"
        if self.target is None:
            return "first" if side == "before" else "last"
        if isinstance(self.target, int):
            kind = "link" if self.flags & AttachFlags.LINK else "program"
            return f"{side} {kind} id {self.target}"
        return f"{side} {getattr(self.target, 'description', None) or self.target.name!r}"


def _kind(target: Link | Attachable) -> int:
    if isinstance(target, Link):
        return AttachFlags.LINK
    if isinstance(target, int) or not hasattr(target, "fileno"):
        raise AttachError(
            f"an anchor is a program or a link (ids: Anchor.before_id), not {target!r}",
            errno.EINVAL,
        )
    return 0


@dataclass(frozen=True)
class HookOrder:
    """The programs at a hook in the order they run, the link behind each (0: attached
    without one) and the hook's revision (pass it as ``expected_revision``)."""

    prog_ids: list[int]
    link_ids: list[int]
    revision: int


def ordered_link(
    program: Attachable,
    target: int,
    attach_type: int,
    what: str,
    anchor: Anchor | None,
    expected_revision: int,
) -> Link:
    """LINK_CREATE at a multi-program hook, placed by ``anchor``; ordering failures are
    explained (ESTALE: the hook changed; ENOENT: the anchor is not at this hook)."""
    flags, relative = anchor.encode() if anchor is not None else (0, 0)
    opts = syscall.MprogLinkOpts(relative_fd=relative, expected_revision=expected_revision)
    try:
        return create_link(program, target, attach_type, what, opts=opts, flags=flags)
    except AttachError as error:
        raise explain(error, anchor, expected_revision) from error


def explain(error: BpfError, anchor: Anchor | None, expected_revision: int) -> AttachError:
    """An ``AttachError`` that says what an ordering errno means."""
    hint = ""
    if error.errno == errno.ESTALE and expected_revision:
        hint = (
            f" (the hook is no longer at revision {expected_revision}: something was "
            "attached or detached since; query() it again)"
        )
    elif error.errno in (errno.ENOENT, errno.EBADF) and anchor is not None:
        hint = f" (anchor {anchor}: not attached at this hook)"
    elif error.errno == errno.ERANGE and anchor is not None:
        hint = f" (anchor {anchor}: conflicts with where the program already is)"
    return AttachError(f"{error.message}{hint}", error.errno)


def query(target: int | str | os.PathLike[str], hook: str | int) -> HookOrder:
    """The programs at a multi-program hook in run order, with the hook's revision:
    ``query("eth0", "ingress")`` (tcx), ``query("nk0", "primary")`` (netkit, on the
    primary device), ``query("/sys/fs/cgroup/x", AttachType.CGROUP_INET_EGRESS)``."""
    attach_type = _INTERFACE_HOOKS.get(hook) if isinstance(hook, str) else AttachType(hook)
    if attach_type is None:
        raise AttachError(
            f"hook {hook!r}: ingress, egress, primary, peer or an AttachType", errno.EINVAL
        )
    what = f"{attach_type.name} programs of {target!r}"
    try:
        if attach_type in _INTERFACE_HOOKS.values():
            if not isinstance(target, int | str):
                raise AttachError(f"{what}: an interface is a name or an index", errno.EINVAL)
            result = syscall.prog_query(ifindex_of(target), attach_type, link_ids=True, what=what)
        else:
            with open_cgroup(target, what) as fd:
                result = syscall.prog_query(
                    fd.fd, attach_type, link_ids=features.has_tcx(), what=what
                )
    except BpfError as error:
        if isinstance(error, AttachError):
            raise
        raise AttachError(error.message, error.errno) from error
    links = result.link_ids or [0] * len(result.prog_ids)
    return HookOrder(result.prog_ids, links, result.revision)


def open_cgroup(cgroup: int | str | os.PathLike[str], what: str) -> OwnedFd:
    """An fd of a cgroup given by path or fd (duplicated: the caller's stays its own)."""
    if isinstance(cgroup, int):
        return OwnedFd(os.dup(cgroup), what)
    try:
        return OwnedFd(os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), what)
    except OSError as error:
        raise AttachError(
            f"{what}: cannot open the cgroup: {error.strerror}", error.errno
        ) from error
