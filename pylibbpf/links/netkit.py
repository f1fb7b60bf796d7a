"""netkit links (Linux 6.7): a program on a netkit device pair, the primary side (what
the host sends into the pair) or the peer side (what the peer, e.g. a container, sends
out). Both attach through the primary device; like tcx, several programs run in order
(``Anchor``) until one returns a verdict other than NETKIT_NEXT."""

from __future__ import annotations

import errno

from ..errors import AttachError, NotSupportedError
from ..syscall import features
from ..uapi import AttachType
from .base import Attachable, Link
from .order import Anchor, ordered_link
from .xdp import ifindex_of

_SIDES = {"primary": AttachType.NETKIT_PRIMARY, "peer": AttachType.NETKIT_PEER}


def attach_netkit(
    program: Attachable,
    interface: int | str,
    side: str | None = None,
    *,
    anchor: Anchor | None = None,
    expected_revision: int = 0,
) -> Link:
    """A netkit link on the primary device ``interface``; ``side`` ("primary" or
    "peer") defaults to the program's section (``netkit/primary``, ``netkit/peer``)."""
    if side is None:
        sides: dict[int | None, str] = {v: k for k, v in _SIDES.items()}
        side = sides.get(program.expected_attach_type)
    if side not in _SIDES:
        raise AttachError(
            f"program {program.name!r}: which netkit side, primary or peer? "
            f"(not {side!r}; the section netkit/primary or netkit/peer says it)",
            errno.EINVAL,
        )
    if not features.has_netkit():
        raise NotSupportedError(
            f"program {program.name!r}: this kernel has no netkit links (Linux 6.7+)",
            errno.EOPNOTSUPP,
        )
    what = f"program {program.name!r} on netkit {side} of {interface!r}"
    try:
        return ordered_link(
            program, ifindex_of(interface), _SIDES[side], what, anchor, expected_revision
        )
    except AttachError as error:
        hint = {
            errno.ENXIO: f"{interface!r} is not a netkit device",
            errno.EACCES: f"{interface!r} is a netkit peer: attach to its primary device",
            # A kernel built without netkit refuses every netkit attach type this way.
            errno.EINVAL: f"{interface!r} is not a netkit device, or this kernel is built "
            "without netkit (CONFIG_NETKIT)",
        }.get(error.errno or 0)
        if hint is None:
            raise
        raise AttachError(f"{error.message} ({hint})", error.errno) from error
