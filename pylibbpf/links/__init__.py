"""L3 links: ``Link`` (``base``) and one module per kind family of attachment.

``tracing`` (tracepoint, raw_tp, fentry/fexit/fmod_ret/lsm/tp_btf, iter), ``kprobe``
(kprobe, kretprobe, ksyscall, kprobe.multi, tracefs probes), ``uprobe``, ``usdt``,
``xdp``, ``tc`` (tcx, clsact), ``cgroup``, ``sock`` (sockmaps, netns, socket filters),
``netfilter``, ``perf_event``, ``netlink`` (pyroute2, used by ``xdp`` and ``tc`` only) and
``auto``, the table that attaches a program from its section name.
"""

from __future__ import annotations

from .base import InterfaceLink, Link, LinkInfo, ProgAttachLink

__all__ = ["InterfaceLink", "Link", "LinkInfo", "ProgAttachLink"]
