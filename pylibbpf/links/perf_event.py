"""perf_event links: a program on a perf event (a tracepoint's, a kprobe's, a uprobe's, or
one the caller opened), through a bpf_link (5.15+) or the older ioctl."""

from __future__ import annotations

import errno
import os

from .. import syscall
from ..errors import AttachError, BpfError
from ..logs import module_logger
from ..syscall import perf
from ..syscall.fd import OwnedFd
from ..uapi import AttachType
from .base import Attachable, Link

logger = module_logger(__name__)


def attach_perf_event(program: Attachable, perf_fd: OwnedFd, what: str, *, cookie: int = 0) -> Link:
    """Attach to a perf event (``perf_fd`` is taken over): a bpf_link (5.15+) or, on older
    kernels, the ioctl. A BPF ``cookie`` (``bpf_get_attach_cookie()``) needs the link."""
    opts = syscall.PerfEventLinkOpts(bpf_cookie=cookie) if cookie else None
    try:
        fd = syscall.link_create(
            program.fd, perf_fd.fd, AttachType.PERF_EVENT, opts=opts, what=what
        )
        logger.debug("%s: through a perf_event link", what)
        return Link(OwnedFd(fd, what), what, keepalive=perf_fd)
    except BpfError as error:
        if error.errno not in (errno.EINVAL, errno.EOPNOTSUPP, 524) or cookie:
            perf_fd.close()
            hint = " (BPF cookies need perf_event links, 5.15+)" if cookie else ""
            raise AttachError(f"{what}: {error.message}{hint}", error.errno) from error
    perf.set_bpf(perf_fd.fd, program.fd, what)
    logger.info("%s: through PERF_EVENT_IOC_SET_BPF (no perf_event links here)", what)
    return Link(perf_fd, what)  # closing the perf event detaches


def attach_own_perf_event(program: Attachable, perf_fd: int, *, cookie: int = 0) -> Link:
    """A ``perf_event`` program on a perf event the caller opened (a sampling counter, a
    hardware event…); the link owns a duplicate of ``perf_fd``."""
    what = f"program {program.name!r} on perf event fd {perf_fd}"
    duplicate = OwnedFd(os.dup(perf_fd), what)
    return attach_perf_event(program, duplicate, what, cookie=cookie)
