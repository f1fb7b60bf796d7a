"""The ``attach_*`` methods of ``Program``, one line each: the work is in the kind's
module. A mixin over the ``Attachable`` protocol, so that links never import ``Program``
and ``program.py`` stays about loading."""

from __future__ import annotations

import errno
import os

from ..errors import AttachError

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:
    from ..uapi import CgroupIterOrder
    from .base import Attachable, Link
    from .order import Anchor
    from .tracing import IterLink


class AttachMethods:
    """``Program.attach()`` and ``Program.attach_*()``. Each imports its kind's module when
    called: a program that is never attached (or attached one way) does not pay for the
    others (netlink, sockets, ELF symbol lookup, USDT notes…)."""

    def attach(self: Attachable, **options: Any) -> Link:
        """Attach as the section name says (libbpf's formats: ``tp/cat/name``, ``raw_tp/x``…);
        ``options`` complete it: ``interface=`` (tcx, netkit), ``cgroup=``, ``anchor=``,
        an iterator's parameters (``attach_iter``)."""
        from . import auto

        link = auto.attach_from_section(self, **options)
        if link is None:
            raise AttachError(
                f"program {self.name!r}: section {self.section!r} does not say where to "
                "attach; use an explicit attach_* method (or interface=/cgroup= options)",
                errno.EINVAL,
            )
        return link

    def attach_tracepoint(self: Attachable, category: str, name: str) -> Link:
        """A tracepoint program on ``category:name``."""
        from . import tracing

        return tracing.attach_tracepoint(self, category, name)

    def attach_raw_tracepoint(self: Attachable, name: str) -> Link:
        """A raw tracepoint program on tracepoint ``name``."""
        from . import tracing

        return tracing.attach_raw_tracepoint(self, name)

    def attach_trace(self: Attachable) -> Link:
        """fentry/fexit/fmod_ret/lsm/tp_btf (the target was chosen at load time)."""
        from . import tracing

        return tracing.attach_trace(self)

    def attach_iter(
        self: Attachable,
        map_: Any = None,
        *,
        tid: int | None = None,
        pid: int | None = None,
        pidfd: int | None = None,
        cgroup: str | os.PathLike[str] | int | None = None,
        cgroup_id: int | None = None,
        order: CgroupIterOrder | str | None = None,
    ) -> IterLink:
        """An iterator program: ``map_`` (map element iterators), ``tid``/``pid``/``pidfd``
        (task iterators), ``cgroup``/``cgroup_id`` and ``order`` (cgroup iterators)."""
        from . import tracing

        return tracing.attach_iter(
            self,
            map_,
            tid=tid,
            pid=pid,
            pidfd=pidfd,
            cgroup=cgroup,
            cgroup_id=cgroup_id,
            order=order,
        )

    def attach_xdp(
        self: Attachable,
        interface: int | str,
        *,
        flags: int = 0,
        netlink: bool | None = None,
        replace: bool = False,
    ) -> Link:
        """XDP: a bpf_link, or netlink (``netlink=True``, old kernels, ``replace``);
        ``flags`` choose the mode (``XdpFlags.SKB_MODE``, ``DRV_MODE``, ``HW_MODE``)."""
        from . import xdp as xdp_links

        return xdp_links.attach_xdp(self, interface, flags=flags, netlink=netlink, replace=replace)

    def attach_tc(
        self: Attachable,
        interface: int | str,
        direction: str = "ingress",
        *,
        tcx: bool | None = None,
        anchor: Anchor | None = None,
        expected_revision: int = 0,
    ) -> Link:
        """tc ingress/egress: tcx on Linux 6.6+ (placed by ``anchor``, refused with ESTALE
        unless the hook is at ``expected_revision``), a clsact filter before (or with
        ``tcx=False``)."""
        from . import tc

        return tc.attach_tc(
            self, interface, direction, tcx=tcx, anchor=anchor, expected_revision=expected_revision
        )

    def attach_netkit(
        self: Attachable,
        interface: int | str,
        side: str | None = None,
        *,
        anchor: Anchor | None = None,
        expected_revision: int = 0,
    ) -> Link:
        """netkit (6.7+) on primary device ``interface``: the ``primary`` or ``peer`` side
        (default: the section's), placed by ``anchor`` as with tcx."""
        from . import netkit

        return netkit.attach_netkit(
            self, interface, side, anchor=anchor, expected_revision=expected_revision
        )

    def attach_cgroup(
        self: Attachable,
        cgroup: str | os.PathLike[str] | int,
        attach_type: int | None = None,
        *,
        legacy: bool | None = None,
        flags: int = 2,
        anchor: Anchor | None = None,
        expected_revision: int = 0,
    ) -> Link:
        """A cgroup hook: a bpf_link (5.7+), else (or with ``legacy=True``) PROG_ATTACH
        with ``flags`` (``AttachFlags.ALLOW_MULTI`` by default); ``anchor`` and
        ``expected_revision`` order it among the hook's programs (6.15+)."""
        from . import cgroup as cgroup_links

        return cgroup_links.attach_cgroup(
            self,
            cgroup,
            attach_type,
            legacy=legacy,
            flags=flags,
            anchor=anchor,
            expected_revision=expected_revision,
        )

    def attach_netns(self: Attachable, netns: str | os.PathLike[str] = "/proc/self/ns/net") -> Link:
        """sk_lookup and flow_dissector programs, on a network namespace."""
        from . import sock as sock_links

        return sock_links.attach_netns(self, netns)

    def attach_kprobe(
        self: Attachable, function: str, *, retprobe: bool = False, offset: int = 0
    ) -> Link:
        """A kprobe (``retprobe``: kretprobe) on kernel function ``function+offset``."""
        from . import kprobe

        return kprobe.attach_kprobe(self, function, retprobe=retprobe, offset=offset)

    def attach_kprobe_multi(
        self: Attachable,
        pattern: str | list[str],
        *,
        retprobe: bool = False,
        session: bool | None = None,
    ) -> Link:
        """One link over many kernel functions (names, or a glob); Linux 5.18+. ``session``
        (6.10, default for ``kprobe.session``): entry and return in one program."""
        from . import kprobe

        return kprobe.attach_kprobe_multi(self, pattern, retprobe=retprobe, session=session)

    def attach_uprobe(
        self: Attachable,
        binary: str,
        function: str | None = None,
        *,
        offset: int = 0,
        retprobe: bool = False,
        pid: int = -1,
        ref_ctr_offset: int = 0,
        cookie: int = 0,
    ) -> Link:
        """A uprobe/uretprobe on ``binary:function+offset`` (``function=None``: ``offset``
        is a file offset); ``binary`` may be a path, a library name or a command."""
        from . import uprobe

        return uprobe.attach_uprobe(
            self,
            binary,
            function,
            offset=offset,
            retprobe=retprobe,
            pid=pid,
            ref_ctr_offset=ref_ctr_offset,
            cookie=cookie,
        )

    def attach_uprobe_multi(
        self: Attachable,
        binary: str,
        functions: str | list[str],
        *,
        retprobe: bool = False,
        pid: int = 0,
        session: bool | None = None,
    ) -> Link:
        """One link on many functions of ``binary`` (names or a glob); Linux 6.6+.
        ``session`` (6.13, default for ``uprobe.session``): entry and return in one."""
        from . import uprobe

        return uprobe.attach_uprobe_multi(
            self, binary, functions, retprobe=retprobe, pid=pid, session=session
        )

    def attach_usdt(
        self: Attachable, binary: str, provider: str, name: str, *, pid: int = -1, cookie: int = 0
    ) -> Link:
        """Every ``provider:name`` USDT probe in ``binary``, for a program using libbpf's
        ``usdt.bpf.h`` (``bpf_usdt_arg()``, ``bpf_usdt_cookie()``)."""
        from . import usdt

        return usdt.attach_usdt(self, binary, provider, name, pid=pid, cookie=cookie)

    def attach_perf_event(self: Attachable, perf_fd: int, *, cookie: int = 0) -> Link:
        """A ``perf_event`` program on a perf event the caller opened (a sampling counter,
        a hardware event…); the link owns a duplicate of ``perf_fd``."""
        from . import perf_event

        return perf_event.attach_own_perf_event(self, perf_fd, cookie=cookie)

    def attach_sockmap(
        self: Attachable, map_: Any, attach_type: int | None = None, *, legacy: bool | None = None
    ) -> Link:
        """sk_msg/sk_skb programs on a SOCKMAP/SOCKHASH: a sockmap link (6.10+), else (or
        with ``legacy=True``) PROG_ATTACH to the map; closing the link detaches them."""
        from . import sock as sock_links

        return sock_links.attach_sockmap(self, map_, attach_type, legacy=legacy)

    def attach_netfilter(
        self: Attachable, family: int, hook: int, priority: int, *, defrag: bool = False
    ) -> Link:
        """A netfilter hook (6.4+): ``family`` NFPROTO_IPV4 (2) or IPV6 (10), ``hook``
        NF_INET_PRE_ROUTING (0) … POST_ROUTING (4), in this thread's network namespace."""
        from . import netfilter

        return netfilter.attach_netfilter(self, family, hook, priority, defrag=defrag)

    def attach_socket(self: Attachable, sock: Any) -> None:
        """Attach as a socket filter (SO_ATTACH_BPF) to ``sock`` or a socket fd."""
        from . import sock as sock_links

        sock_links.attach_socket(self, sock)

    def detach_socket(self: Attachable, sock: Any) -> None:
        """Remove the socket filter of ``sock`` (SO_DETACH_BPF)."""
        from . import sock as sock_links

        sock_links.detach_socket(sock)
