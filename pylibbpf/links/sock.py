"""Socket-side attachments: sk_msg/sk_skb programs on sockmaps (a bpf_link on 6.10+,
PROG_ATTACH before), sk_lookup and flow_dissector programs on a network namespace
(bpf_link), and socket filters (SO_ATTACH_BPF)."""

from __future__ import annotations

import errno
import os
import socket
from typing import Any

from ..errors import AttachError, NotSupportedError
from ..syscall import features, system
from ..syscall.fd import OwnedFd
from ..uapi import AttachType
from .base import Attachable, Link, create_link, prog_attach

_SOL_SOCKET = 1
_SO_DETACH_BPF = 27
_SO_ATTACH_BPF = 50


def attach_sockmap(
    program: Attachable, map_: Any, attach_type: int | None = None, *, legacy: bool | None = None
) -> Link:
    """sk_msg/sk_skb programs on a SOCKMAP/SOCKHASH: a sockmap bpf_link on 6.10+
    (pinnable, ``info()`` shows it), else (or with ``legacy=True``) PROG_ATTACH to the
    map; closing the returned link detaches them either way."""
    kind = attach_type if attach_type is not None else program.expected_attach_type
    if kind is None:
        raise AttachError(
            f"program {program.name!r}: which sockmap hook? (attach_type)", errno.EINVAL
        )
    what = f"program {program.name!r} on {map_.name!r} ({AttachType(kind).name})"
    if not legacy:
        if features.has_sockmap_link():
            return create_link(program, map_.fileno(), kind, what)
        if legacy is False:
            raise NotSupportedError(
                f"{what}: this kernel has no sockmap links (Linux 6.10+); legacy=None "
                "falls back to PROG_ATTACH",
                errno.EOPNOTSUPP,
            )
    return prog_attach(program, OwnedFd(os.dup(map_.fileno()), what), kind, f"{what} (PROG_ATTACH)")


def attach_netns(program: Attachable, netns: str | os.PathLike[str] = system.PROCESS_NETNS) -> Link:
    """sk_lookup and flow_dissector programs, on a network namespace (this process's by
    default, or the one at path ``netns``)."""
    kind = program.expected_attach_type
    if kind is None:
        raise AttachError(f"program {program.name!r} has no netns attach type", errno.EINVAL)
    what = f"program {program.name!r} on netns {os.fspath(netns)!r}"
    with system.open_netns(netns) as fd:
        return create_link(program, fd.fd, kind, what)


def attach_socket(program: Attachable, sock: Any) -> None:
    """Attach as a socket filter (SO_ATTACH_BPF) to ``sock`` or a socket fd."""
    fd = sock if isinstance(sock, int) else sock.fileno()
    try:
        _setsockopt_int(fd, _SO_ATTACH_BPF, program.fd)
    except OSError as error:
        raise AttachError(
            f"program {program.name!r}: cannot attach to socket fd {fd}: "
            f"{os.strerror(error.errno or 0)}",
            error.errno,
        ) from error


def detach_socket(sock: Any) -> None:
    """Remove the socket filter of ``sock`` (SO_DETACH_BPF)."""
    fd = sock if isinstance(sock, int) else sock.fileno()
    _setsockopt_int(fd, _SO_DETACH_BPF, 0)


def _setsockopt_int(fd: int, option: int, value: int) -> None:
    sock = socket.socket(fileno=os.dup(fd))
    try:
        sock.setsockopt(_SOL_SOCKET, option, value)
    finally:
        sock.close()
