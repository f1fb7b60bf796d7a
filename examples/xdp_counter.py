"""xdp_counter: packets and bytes per IP protocol arriving on an interface, counted by XDP
in per-CPU maps and summed here once a second.

    examples/xdp_counter.py IFACE [--duration S] [--mode skb|native]
"""

from __future__ import annotations

import argparse
import socket
import time
from pathlib import Path

import pylibbpf as bpf

BUILD = Path(__file__).resolve().parent.parent / "build"
NAMES = {socket.getprotobyname(name): name.upper() for name in ("icmp", "tcp", "udp", "ipv6-icmp")}
NAMES[0] = "HOPOPT"  # IPv6 hop-by-hop options (multicast listener reports)
NAMES[255] = "non-IP"


def totals(obj: bpf.BpfObject) -> dict[int, tuple[int, int]]:
    """Sum each protocol's per-CPU counters (one lookup per protocol: a batch would do too)."""
    out = {}
    for protocol, per_cpu in obj.maps["by_protocol"].items():
        packets = sum(c.packets for c in per_cpu)
        if packets:
            out[protocol] = (packets, sum(c.bytes for c in per_cpu))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("interface")
    parser.add_argument("--duration", type=float, default=0, help="seconds (0: until Ctrl-C)")
    parser.add_argument("--mode", choices=("skb", "native"), default="skb")
    parser.add_argument("--object", default=str(BUILD / "xdp_counter.bpf.o"))
    options = parser.parse_args()

    flags = bpf.XdpFlags.SKB_MODE if options.mode == "skb" else bpf.XdpFlags.DRV_MODE
    with bpf.BpfObject.open(options.object) as obj:
        obj.load()
        with obj.programs["count_packets"].attach_xdp(options.interface, flags=flags):
            print(f"counting on {options.interface} ({options.mode} mode)", flush=True)
            deadline = time.monotonic() + options.duration if options.duration else None
            try:
                while deadline is None or time.monotonic() < deadline:
                    time.sleep(1 if deadline is None else min(1, deadline - time.monotonic()))
                    summary = totals(obj)
                    print(
                        "  ".join(
                            f"{NAMES.get(p, f'proto {p}')}: {n} pkts {b} B"
                            for p, (n, b) in sorted(summary.items())
                        )
                        or "(nothing yet)",
                        flush=True,
                    )
            except KeyboardInterrupt:
                pass
    print("detached")


if __name__ == "__main__":
    main()
