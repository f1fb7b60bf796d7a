"""cgroup links: a program on a cgroup hook, through a bpf_link (5.7+) or PROG_ATTACH."""

from __future__ import annotations

import errno
import os

from ..errors import AttachError
from ..syscall.fd import OwnedFd
from ..uapi import AttachFlags, AttachType
from .base import Attachable, Link, create_link, prog_attach


def attach_cgroup(
    program: Attachable,
    cgroup: str | os.PathLike[str] | int,
    attach_type: int | None = None,
    *,
    legacy: bool | None = None,
    flags: int = AttachFlags.ALLOW_MULTI,
) -> Link:
    """A cgroup link; the attach type defaults to the program's expected one. Kernels
    without cgroup links (before 5.7), or ``legacy=True``, get PROG_ATTACH with ``flags``
    (ALLOW_MULTI by default; ALLOW_OVERRIDE or 0 for the older exclusive modes)."""
    kind = attach_type if attach_type is not None else program.expected_attach_type
    if kind is None:
        raise AttachError(
            f"program {program.name!r}: which cgroup hook? (attach_type)", errno.EINVAL
        )
    what = f"program {program.name!r} on cgroup {cgroup!r} ({AttachType(kind).name})"

    def open_cgroup() -> OwnedFd:
        if isinstance(cgroup, int):
            return OwnedFd(os.dup(cgroup), what)
        try:
            return OwnedFd(os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), what)
        except OSError as error:
            raise AttachError(
                f"{what}: cannot open the cgroup: {error.strerror}", error.errno
            ) from error

    if not legacy:
        try:
            with open_cgroup() as fd:
                return create_link(program, fd.fd, kind, what)
        except AttachError as error:
            if legacy is False or error.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
                raise
    return prog_attach(program, open_cgroup(), kind, f"{what} (PROG_ATTACH)", flags)
