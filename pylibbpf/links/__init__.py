"""L3 links: ``Link`` (``base``) and one module per kind family of attachment.

``tracing`` (tracepoint, raw_tp, fentry/fexit/fmod_ret/lsm/tp_btf, iter with its
parameters), ``kprobe`` (kprobe, kretprobe, ksyscall, kprobe.multi and .session, tracefs
probes), ``uprobe`` (uprobe, uprobe.multi and .session), ``usdt``, ``xdp``, ``tc`` (tcx,
clsact), ``netkit``, ``cgroup``, ``sock`` (sockmaps, netns, socket filters), ``netfilter``,
``perf_event``, ``netlink`` (pyroute2, used by ``xdp`` and ``tc`` only); ``order``
(``Anchor`` and ``query()`` for the multi-program hooks: tcx, netkit, cgroup), ``auto``,
the table that attaches a program from its section name, and ``methods``, the
``attach_*`` methods ``Program`` inherits.
"""

from __future__ import annotations

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from .base import InterfaceLink, Link, LinkInfo, ProgAttachLink
    from .order import Anchor, HookOrder, query


def __getattr__(name: str) -> object:
    """The names of ``base`` and ``order`` on first use: a program that attaches
    elsewhere than the multi-program hooks skips ``order`` (the XDP and netlink modules).
    (``Program`` inherits ``links.methods`` through a stand-in, so loading does not import
    this package at all.)"""
    if name in ("InterfaceLink", "Link", "LinkInfo", "ProgAttachLink"):
        from . import base

        return getattr(base, name)
    if name in ("Anchor", "HookOrder", "query"):
        from . import order

        return getattr(order, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Anchor", "HookOrder", "InterfaceLink", "Link", "LinkInfo", "ProgAttachLink", "query"]
