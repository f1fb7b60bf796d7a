"""tc links: a program on an interface's ingress or egress, through tcx (6.6+) or a
clsact qdisc's direct-action filter made through netlink."""

from __future__ import annotations

import errno

from .. import syscall
from ..errors import AttachError, NotSupportedError
from ..syscall import features
from ..uapi import AttachType
from . import netlink as rtnetlink
from .base import Attachable, Link, create_link
from .xdp import ifindex_of


def _check_direction(direction: str, kind: str) -> None:
    if direction not in ("ingress", "egress"):
        raise AttachError(
            f"{kind} direction must be ingress or egress, not {direction!r}", errno.EINVAL
        )


def attach_tc(
    program: Attachable,
    interface: int | str,
    direction: str = "ingress",
    *,
    tcx: bool | None = None,
) -> Link:
    """tc ingress/egress: a tcx link on 6.6+ (``tcx=None`` or ``True``), else (or with
    ``tcx=False``) a direct-action cls_bpf filter on a clsact qdisc through netlink."""
    _check_direction(direction, "tc")
    if tcx or (tcx is None and features.has_tcx()):
        return attach_tcx(program, interface, direction)
    return rtnetlink.attach_tc(program, ifindex_of(interface), interface, direction)


def attach_tcx(program: Attachable, interface: int | str, direction: str = "ingress") -> Link:
    """A tcx link (Linux 6.6+) on an interface's ingress or egress."""
    _check_direction(direction, "tcx")
    if not features.has_tcx():
        raise NotSupportedError(
            f"program {program.name!r}: this kernel has no tcx links (Linux 6.6+); "
            "attach_tc() falls back to a clsact filter through netlink",
            errno.EOPNOTSUPP,
        )
    index = ifindex_of(interface)
    attach_type = AttachType.TCX_INGRESS if direction == "ingress" else AttachType.TCX_EGRESS
    what = f"program {program.name!r} on tcx {direction} of {interface!r}"
    return create_link(program, index, attach_type, what, opts=syscall.TcxLinkOpts())
