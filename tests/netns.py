"""Network-namespace helpers for tests: enter a named netns, a veth or netkit pair between
two namespaces (created and removed by the ``veth`` and ``netkit`` fixtures in conftest),
UDP reachability."""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import struct
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator

CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Run this thread inside a named network namespace for the duration."""
    libc = ctypes.CDLL(None, use_errno=True)
    original = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET):
            raise OSError(ctypes.get_errno(), "setns")
        yield
    finally:
        libc.setns(original, CLONE_NEWNET)
        os.close(target)
        os.close(original)


def udp_reaches(ns_a: str, ns_b: str, port: int = 0, address: str = "10.201.0.2") -> bool:
    """Send a datagram from A to B's ``address`` (to ``port``, or any free one); True if
    B's socket receives it within a second."""
    with in_netns(ns_b):
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with receiver:
        with in_netns(ns_b):
            receiver.bind((address, port))
        port = receiver.getsockname()[1]
        receiver.settimeout(1.0)
        send = (
            f"import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            f"[s.sendto(b'ping', ({address!r}, {port})) for _ in range(3)]"
        )
        subprocess.run(["ip", "netns", "exec", ns_a, sys.executable, "-c", send], check=True)
        try:
            return receiver.recv(16) == b"ping"
        except TimeoutError:
            return False


# The veth ends' link-layer addresses, fixed so that each side's neighbour entry for the
# other can be made permanent (``_static_neighbours``).
MAC_A, MAC_B = "02:00:0a:c9:00:01", "02:00:0a:c9:00:02"


@contextlib.contextmanager
def veth_pair() -> Iterator[tuple[str, str]]:
    """Namespaces A and B joined by a veth pair: vA 10.201.0.1 <-> vB 10.201.0.2, each
    knowing the other's link-layer address for good (no ARP: see ``_static_neighbours``)."""
    with _pair("vA", "vB", _add_veth, _static_neighbours) as namespaces:
        yield namespaces


@contextlib.contextmanager
def netkit_pair() -> Iterator[tuple[str, str]]:
    """Namespaces A and B joined by a netkit pair (L3 mode): the primary nkA 10.201.0.1
    in A, its peer nkB 10.201.0.2 in B. Made through rtnetlink, as this iproute2 may
    predate netkit; OSError if the kernel has no netkit (CONFIG_NETKIT)."""
    with _pair("nkA", "nkB", _add_netkit) as namespaces:
        yield namespaces


def _add_veth(ns_a: str, ns_b: str) -> None:
    command = ["ip", "link", "add", "vA", "address", MAC_A, "netns", ns_a, "type", "veth"]
    peer = ["peer", "name", "vB", "address", MAC_B, "netns", ns_b]
    subprocess.run([*command, *peer], check=True, capture_output=True)


def _static_neighbours(ns_a: str, ns_b: str) -> None:
    """Permanent neighbour entries on both ends. The tests drop traffic and then let it
    through again; a program dropping all of it drops ARP too, and a neighbour entry left
    failing discards the datagrams that waited on it: with ARP, "traffic flows again"
    depended on where the kernel was in its once-a-second retries (it lost that race in a
    6.12 VM and once on the host)."""
    for ns, device, peer_address, peer_mac in (
        (ns_a, "vA", "10.201.0.2", MAC_B),
        (ns_b, "vB", "10.201.0.1", MAC_A),
    ):
        command = ["neigh", "replace", peer_address, "lladdr", peer_mac, "dev", device]
        subprocess.run(
            ["ip", "-n", ns, *command, "nud", "permanent"], check=True, capture_output=True
        )


def _attr(kind: int, data: bytes) -> bytes:
    """One rtattr, padded to 4 bytes."""
    raw = struct.pack("=HH", 4 + len(data), kind) + data
    return raw + b"\0" * (-len(raw) % 4)


def _add_netkit(ns_a: str, ns_b: str) -> None:
    ifinfomsg = struct.pack("=BxHiII", 0, 0, 0, 0, 0)
    peer_ns = os.open(f"/run/netns/{ns_b}", os.O_RDONLY)
    try:
        peer = ifinfomsg + _attr(3, b"nkB\0") + _attr(28, struct.pack("=i", peer_ns))
        info = _attr(1, b"netkit\0") + _attr(2, _attr(1, peer))  # kind; data: peer info
        body = ifinfomsg + _attr(3, b"nkA\0") + _attr(18, info)  # IFLA_IFNAME, LINKINFO
        flags = 0x1 | 0x4 | 0x200 | 0x400  # REQUEST, ACK, EXCL, CREATE
        message = struct.pack("=IHHII", 16 + len(body), 16, flags, 1, 0) + body  # NEWLINK
        with in_netns(ns_a):
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE
        with sock:
            sock.sendto(message, (0, 0))
            reply = sock.recv(4096)
    finally:
        os.close(peer_ns)
    kind, error = struct.unpack_from("=H", reply, 4)[0], struct.unpack_from("=i", reply, 16)[0]
    if kind == 2 and error:  # NLMSG_ERROR with an errno
        raise OSError(-error, f"cannot create a netkit pair: {os.strerror(-error)}")


@contextlib.contextmanager
def _pair(
    name_a: str,
    name_b: str,
    add: Callable[[str, str], None],
    finish: Callable[[str, str], None] | None = None,
) -> Iterator[tuple[str, str]]:
    tag = uuid.uuid4().hex[:6]
    ns_a, ns_b = f"pylibbpf-a-{tag}", f"pylibbpf-b-{tag}"
    try:
        for ns in (ns_a, ns_b):
            subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
        add(ns_a, ns_b)
        for ns, name, address in ((ns_a, name_a, "10.201.0.1"), (ns_b, name_b, "10.201.0.2")):
            for command in (
                ["addr", "add", f"{address}/24", "dev", name],
                ["link", "set", name, "up"],
                ["link", "set", "lo", "up"],  # local delivery goes through lo
            ):
                subprocess.run(["ip", "-n", ns, *command], check=True, capture_output=True)
        if finish is not None:
            finish(ns_a, ns_b)
        yield ns_a, ns_b
    finally:
        for ns in (ns_a, ns_b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
