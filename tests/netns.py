"""Network-namespace helpers for tests: enter a named netns, a veth pair between two
namespaces (created and removed by the ``veth`` fixture in conftest), UDP reachability."""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator

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


def udp_reaches(ns_a: str, ns_b: str, port: int = 0) -> bool:
    """Send a datagram from A to B (to ``port``, or any free one); True if B's socket
    receives it within a second."""
    with in_netns(ns_b):
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with receiver:
        with in_netns(ns_b):
            receiver.bind(("10.201.0.2", port))
        port = receiver.getsockname()[1]
        receiver.settimeout(1.0)
        send = (
            f"import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            f"[s.sendto(b'ping', ('10.201.0.2', {port})) for _ in range(3)]"
        )
        subprocess.run(["ip", "netns", "exec", ns_a, sys.executable, "-c", send], check=True)
        try:
            return receiver.recv(16) == b"ping"
        except TimeoutError:
            return False


@contextlib.contextmanager
def veth_pair() -> Iterator[tuple[str, str]]:
    """Namespaces A and B joined by a veth pair: vA 10.201.0.1 <-> vB 10.201.0.2."""
    tag = uuid.uuid4().hex[:6]
    ns_a, ns_b = f"pylibbpf-a-{tag}", f"pylibbpf-b-{tag}"
    commands = [
        ["ip", "netns", "add", ns_a],
        ["ip", "netns", "add", ns_b],
        [
            "ip",
            "link",
            "add",
            "vA",
            "netns",
            ns_a,
            "type",
            "veth",
            "peer",
            "name",
            "vB",
            "netns",
            ns_b,
        ],
        ["ip", "-n", ns_a, "addr", "add", "10.201.0.1/24", "dev", "vA"],
        ["ip", "-n", ns_b, "addr", "add", "10.201.0.2/24", "dev", "vB"],
        ["ip", "-n", ns_a, "link", "set", "vA", "up"],
        ["ip", "-n", ns_b, "link", "set", "vB", "up"],
        ["ip", "-n", ns_a, "link", "set", "lo", "up"],  # local delivery goes through lo
        ["ip", "-n", ns_b, "link", "set", "lo", "up"],
    ]
    try:
        for command in commands:
            subprocess.run(command, check=True, capture_output=True)
        yield ns_a, ns_b
    finally:
        for ns in (ns_a, ns_b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
