"""cgroup links: a program on a cgroup hook, through a bpf_link (5.7+) or PROG_ATTACH;
placed relative to the hook's other programs with an ``Anchor`` on 6.15+."""

from __future__ import annotations

import errno
import os

from ..errors import AttachError, BpfError, NotSupportedError
from ..syscall import features
from ..uapi import AttachFlags, AttachType
from .base import Attachable, Link, create_link, prog_attach
from .order import Anchor, explain, open_cgroup, ordered_link


def attach_cgroup(
    program: Attachable,
    cgroup: str | os.PathLike[str] | int,
    attach_type: int | None = None,
    *,
    legacy: bool | None = None,
    flags: int = AttachFlags.ALLOW_MULTI,
    anchor: Anchor | None = None,
    expected_revision: int = 0,
) -> Link:
    """A cgroup link; the attach type defaults to the program's expected one. Kernels
    without cgroup links (before 5.7), or ``legacy=True``, get PROG_ATTACH with ``flags``
    (ALLOW_MULTI by default; ALLOW_OVERRIDE or 0 for the older exclusive modes).
    ``anchor`` and ``expected_revision`` order it among the hook's programs (6.15+)."""
    kind = attach_type if attach_type is not None else program.expected_attach_type
    if kind is None:
        raise AttachError(
            f"program {program.name!r}: which cgroup hook? (attach_type)", errno.EINVAL
        )
    what = f"program {program.name!r} on cgroup {cgroup!r} ({AttachType(kind).name})"
    ordered = anchor is not None or expected_revision != 0
    if ordered and not features.has_cgroup_mprog():
        raise NotSupportedError(
            f"{what}: ordering cgroup programs (anchor, expected_revision) needs Linux 6.15",
            errno.EOPNOTSUPP,
        )
    if not legacy:
        try:
            with open_cgroup(cgroup, what) as fd:
                if ordered:
                    return _ordered_link(program, fd.fd, kind, what, anchor, expected_revision)
                return create_link(program, fd.fd, kind, what)
        except AttachError as error:
            if ordered or legacy is False or error.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
                raise
    anchor_flags, relative = anchor.encode() if anchor is not None else (0, 0)
    if anchor_flags:
        flags |= AttachFlags.ALLOW_MULTI
    try:
        return prog_attach(
            program,
            open_cgroup(cgroup, what),
            kind,
            f"{what} (PROG_ATTACH)",
            flags | anchor_flags,
            relative_fd=relative,
            expected_revision=expected_revision,
        )
    except BpfError as error:
        raise explain(error, anchor, expected_revision) from error


def _ordered_link(
    program: Attachable,
    target: int,
    kind: int,
    what: str,
    anchor: Anchor | None,
    expected_revision: int,
) -> Link:
    try:
        return ordered_link(program, target, kind, what, anchor, expected_revision)
    except AttachError as error:
        if anchor is None or anchor.target is None or anchor.flags & AttachFlags.LINK:
            raise
        if error.errno != errno.EINVAL:
            raise
        raise AttachError(
            f"{error.message} (anchor {anchor}: at a cgroup, a program attached through a "
            "link is anchored by that link)",
            error.errno,
        ) from error
