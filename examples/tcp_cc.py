"""tcp_cc: a TCP congestion control written in BPF, registered from Python, carrying a
transfer this script makes over loopback; statistics from the BPF side and from TCP_INFO
are printed, and the algorithm is unregistered on exit.

    examples/tcp_cc.py [--max-cwnd SEGMENTS] [--mib N] [object]
"""

from __future__ import annotations

import argparse
import socket
import struct
import threading
import time
from pathlib import Path

import pylibbpf as bpf
from pylibbpf.btf import Kind

BUILD = Path(__file__).resolve().parent.parent / "build"
AVAILABLE = Path("/proc/sys/net/ipv4/tcp_available_congestion_control")
NAME = "pylibbpf_demo"


def cwnd_offset() -> int:
    """Where tcpi_snd_cwnd sits in struct tcp_info on this kernel (from its BTF)."""
    info = bpf.Btf.load_vmlinux().find("tcp_info", Kind.STRUCT)
    return next(m.bit_offset // 8 for m in info.members if m.name == "tcpi_snd_cwnd")


def transfer(mib: int) -> tuple[float, int, str]:
    """Send ``mib`` MiB to a local sink with our congestion control; (seconds, cwnd, cc)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        received = []

        def sink() -> None:
            connection, _ = server.accept()
            with connection:
                total = 0
                while chunk := connection.recv(1 << 16):
                    total += len(chunk)
                received.append(total)

        thread = threading.Thread(target=sink)
        thread.start()
        with socket.socket() as client:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, NAME.encode())
            client.connect(server.getsockname())
            start = time.monotonic()
            block = bytes(1 << 16)
            for _ in range(mib * 16):
                client.sendall(block)
            info = client.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
            cc = client.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)
            cwnd = struct.unpack_from("I", info, cwnd_offset())[0]
        thread.join()
        elapsed = time.monotonic() - start
    assert received == [mib << 20], received
    return elapsed, cwnd, cc.rstrip(b"\0").decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("object", nargs="?", default=str(BUILD / "tcp_cc.bpf.o"))
    parser.add_argument("--max-cwnd", type=int, default=64, help="window ceiling (segments)")
    parser.add_argument("--mib", type=int, default=32, help="how much to send")
    options = parser.parse_args()

    with bpf.BpfObject.open(options.object) as obj:
        obj.variables["max_cwnd"].value = options.max_cwnd
        obj.load()
        (link,) = obj.attach()  # registers demo_cc: the only struct_ops map
        print(f"registered {NAME}: {NAME in AVAILABLE.read_text().split()} in {AVAILABLE}")
        seconds, cwnd, cc = transfer(options.mib)
        stats = obj.variables["stats"].value
        rate = options.mib / seconds if seconds else float("inf")
        print(
            f"sent {options.mib} MiB in {seconds * 1000:.1f} ms ({rate:.0f} MiB/s) with {cc}, "
            f"final cwnd {cwnd}"
        )
        print(
            f"BPF saw: {stats.acks} ACKs ({stats.slow_start} in slow start, "
            f"{stats.avoidance} in avoidance), {stats.losses} losses, "
            f"window capped {stats.capped} times, largest window {stats.max_seen} "
            f"(ceiling {options.max_cwnd}), {stats.inits} connection(s)"
        )
        link.close()
    print(f"unregistered: {NAME not in AVAILABLE.read_text().split()}")


if __name__ == "__main__":
    main()
