"""XDP links: a program on a network interface, through a bpf_link (5.9+) or netlink."""

from __future__ import annotations

import errno
import socket

from ..errors import AttachError
from ..logs import module_logger
from ..uapi import AttachType
from . import netlink as rtnetlink
from .base import Attachable, Link, create_link

logger = module_logger(__name__)


def ifindex_of(interface: int | str) -> int:
    """The index of a network interface given by name or index."""
    if isinstance(interface, int):
        return interface
    try:
        return socket.if_nametoindex(interface)
    except OSError as error:
        raise AttachError(
            f"network interface {interface!r} does not exist", errno.ENODEV
        ) from error


def attach_xdp(
    program: Attachable,
    interface: int | str,
    *,
    flags: int = 0,
    netlink: bool | None = None,
    replace: bool = False,
) -> Link:
    """XDP on an interface: a bpf_link (5.9+), or through netlink when ``netlink=True``,
    when links are missing, or to ``replace`` what is attached; closing detaches."""
    index = ifindex_of(interface)
    what = f"program {program.name!r} on XDP of {interface!r} (ifindex {index})"
    reason = "netlink=True" if netlink else "replace=True"
    if not netlink and not replace:
        try:
            link = create_link(program, index, AttachType.XDP, what, flags=flags)
            logger.info("%s: through a bpf_link", what)
            return link
        except AttachError as error:
            if netlink is False or error.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
                raise
            reason = f"the kernel refused an XDP link: {error.message}"
    link = rtnetlink.attach_xdp(program, index, interface, flags=flags, replace=replace)
    logger.info("%s: through netlink (%s)", what, reason)
    return link
