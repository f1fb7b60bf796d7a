"""netfilter links: a program on a netfilter hook (6.4+)."""

from __future__ import annotations

from .. import syscall
from ..uapi import AttachType
from .base import Attachable, Link, create_link


def attach_netfilter(
    program: Attachable, family: int, hook: int, priority: int, *, defrag: bool = False
) -> Link:
    """A netfilter hook: ``family`` NFPROTO_IPV4 (2) or IPV6 (10), ``hook``
    NF_INET_PRE_ROUTING (0) … POST_ROUTING (4), in this thread's network namespace."""
    what = f"program {program.name!r} on netfilter (family {family}, hook {hook}, prio {priority})"
    opts = syscall.NetfilterLinkOpts(
        pf=family, hooknum=hook, priority=priority, flags=1 if defrag else 0
    )
    return create_link(program, 0, AttachType.NETFILTER, what, opts=opts)
