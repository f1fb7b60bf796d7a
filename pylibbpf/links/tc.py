"""tc links: a program on an interface's ingress or egress, through tcx (6.6+) or a
clsact qdisc's direct-action filter made through netlink."""

from __future__ import annotations

import errno

from ..errors import AttachError, NotSupportedError
from ..logs import module_logger
from ..syscall import features
from ..uapi import AttachType
from . import netlink as rtnetlink
from .base import Attachable, Link
from .order import Anchor, ordered_link
from .xdp import ifindex_of

logger = module_logger(__name__)


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
    anchor: Anchor | None = None,
    expected_revision: int = 0,
) -> Link:
    """tc ingress/egress: a tcx link on 6.6+ (``tcx=None`` or ``True``), else (or with
    ``tcx=False``) a direct-action cls_bpf filter on a clsact qdisc through netlink.
    ``anchor`` and ``expected_revision`` place it among the hook's programs (tcx only)."""
    _check_direction(direction, "tc")
    ordered = anchor is not None or expected_revision != 0
    if tcx or (tcx is None and features.has_tcx()):
        link = attach_tcx(
            program, interface, direction, anchor=anchor, expected_revision=expected_revision
        )
        logger.info(
            "program %r: tc %s of %r through a tcx link", program.name, direction, interface
        )
        return link
    if ordered:
        raise NotSupportedError(
            f"program {program.name!r}: ordering tc programs (anchor, expected_revision) "
            "needs tcx links (Linux 6.6+); clsact filters are ordered by priority",
            errno.EOPNOTSUPP,
        )
    link = rtnetlink.attach_tc(program, ifindex_of(interface), interface, direction)
    logger.info(
        "program %r: tc %s of %r through netlink, a clsact qdisc's filter (%s)",
        program.name,
        direction,
        interface,
        "tcx=False" if tcx is False else "this kernel has no tcx links",
    )
    return link


def attach_tcx(
    program: Attachable,
    interface: int | str,
    direction: str = "ingress",
    *,
    anchor: Anchor | None = None,
    expected_revision: int = 0,
) -> Link:
    """A tcx link (Linux 6.6+) on an interface's ingress or egress, last unless
    ``anchor`` says otherwise."""
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
    return ordered_link(program, index, attach_type, what, anchor, expected_revision)
