"""XDP and tc through rtnetlink (pyroute2): for kernels, drivers and modes without links.

XDP bpf_links need Linux 5.9 and tcx links 6.6; before that, and for XDP modes a driver
only offers through netlink, programs are attached the way ``ip link set xdp`` and
``tc filter add ... bpf da`` do it. The returned ``Link`` behaves like the others: closing
it detaches (and removes a clsact qdisc it had to create), but it cannot be pinned — the
attachment belongs to the interface, not to an fd.
"""

from __future__ import annotations

import errno
import importlib
import os
from collections.abc import Callable
from typing import Any

from ..errors import AttachError, NotSupportedError
from ..syscall import system
from ..syscall.fd import OwnedFd
from .base import Attachable, InterfaceLink, Link

XDP_FLAGS_UPDATE_IF_NOEXIST = 1 << 0
TC_H_CLSACT_INGRESS = 0xFFFFFFF2
TC_H_CLSACT_EGRESS = 0xFFFFFFF3
_ETH_P_ALL = 0x0003


def _iproute(netns: int | None = None) -> Any:
    """An rtnetlink socket in this thread's network namespace, or in ``netns`` (an fd):
    detaching must talk to the namespace the program was attached in."""
    try:  # imported by name: pyroute2 ships no type information
        IPRoute = importlib.import_module("pyroute2").IPRoute
    except ImportError as error:
        raise NotSupportedError(
            "attaching through netlink needs pyroute2 (pip install pyroute2)", errno.ENOTSUP
        ) from error
    if netns is None:
        return IPRoute()
    with system.open_netns() as current:
        system.setns(netns)
        try:
            return IPRoute()
        finally:
            system.setns(current.fd)


def _netlink_error(what: str, error: Exception) -> AttachError:
    code = getattr(error, "code", 0) or errno.EINVAL
    return AttachError(f"{what}: netlink refused it: {os.strerror(code)}", code)


def _interface_link(program: Attachable, description: str, detach: Callable[[Any], None]) -> Link:
    """A Link holding a duplicate of the program fd (it keeps the program alive as long as
    the attachment is ours) that detaches through netlink, in the network namespace it was
    attached in, when closed."""
    netns = system.open_netns()
    duplicate = OwnedFd(os.dup(program.fd), description)
    link = InterfaceLink(duplicate, description)

    def detach_in_namespace() -> None:
        try:
            with _iproute(netns.fd) as ipr:
                detach(ipr)
        except Exception as error:
            if getattr(error, "code", 0) in (errno.ENODEV, errno.ENOENT):
                return  # the interface (or the filter) went away with it
            raise _netlink_error(f"{description}: detaching", error) from error
        finally:
            netns.close()

    link.on_close(detach_in_namespace)
    return link


def attach_xdp(
    program: Attachable, index: int, interface: int | str, *, flags: int = 0, replace: bool = False
) -> Link:
    """``ip link set dev IFACE xdp{generic,drv,offload} fd PROG``; refuses to replace a
    program already there unless ``replace``."""
    what = f"program {program.name!r} on XDP of {interface!r} (ifindex {index}, netlink)"
    mode_flags = flags if replace else flags | XDP_FLAGS_UPDATE_IF_NOEXIST
    with _iproute() as ipr:
        try:
            ipr.link(
                "set",
                index=index,
                xdp={"attrs": [("IFLA_XDP_FD", program.fd), ("IFLA_XDP_FLAGS", mode_flags)]},
            )
        except Exception as error:  # pyroute2 raises NetlinkError (and OSError subclasses)
            failure = _netlink_error(what, error)
            if failure.errno == errno.EBUSY:
                failure = AttachError(
                    f"{what}: the interface already has an XDP program (pass replace=True "
                    "to swap it)",
                    errno.EBUSY,
                )
            raise failure from error

    def detach(ipr: Any) -> None:
        ipr.link(
            "set", index=index, xdp={"attrs": [("IFLA_XDP_FD", -1), ("IFLA_XDP_FLAGS", flags)]}
        )

    return _interface_link(program, what, detach)


def attach_tc(program: Attachable, index: int, interface: int | str, direction: str) -> Link:
    """A direct-action cls_bpf filter on the interface's clsact ingress/egress hook,
    creating the clsact qdisc if needed (and deleting it again if it did)."""
    what = f"program {program.name!r} on tc {direction} of {interface!r} (clsact, netlink)"
    parent = TC_H_CLSACT_INGRESS if direction == "ingress" else TC_H_CLSACT_EGRESS
    with _iproute() as ipr:
        created_qdisc = False
        try:
            ipr.tc("add", "clsact", index=index)
            created_qdisc = True
        except Exception as error:
            if getattr(error, "code", 0) != errno.EEXIST:
                raise _netlink_error(f"{what}: clsact qdisc", error) from error
        handle = 1
        existing = {f.get("handle") for f in ipr.get_filters(index=index, parent=parent)}
        while handle in existing:
            handle += 1
        try:
            ipr.tc(
                "add-filter",
                "bpf",
                index=index,
                handle=handle,
                fd=program.fd,
                name=program.name,
                parent=parent,
                classid=1,
                direct_action=True,
                protocol=_ETH_P_ALL,
                prio=handle,
            )
        except Exception as error:
            if created_qdisc:
                ipr.tc("del", "clsact", index=index)
            raise _netlink_error(what, error) from error

    def detach(ipr: Any) -> None:
        ipr.tc(
            "del-filter",
            "bpf",
            index=index,
            handle=handle,
            parent=parent,
            prio=handle,
            protocol=_ETH_P_ALL,
        )
        if created_qdisc and not any(
            ipr.get_filters(index=index, parent=p)
            for p in (TC_H_CLSACT_INGRESS, TC_H_CLSACT_EGRESS)
        ):
            ipr.tc("del", "clsact", index=index)

    return _interface_link(program, what, detach)
