"""tc_firewall: drop TCP/UDP traffic to the ports in a BPF map, editable while it runs.

The program sits on the interface's tc ingress hook (a tcx link on Linux 6.6+, a clsact
filter through netlink before). Commands on stdin change the map live:
``+PORT`` blocks, ``-PORT`` unblocks, ``stats`` prints drop counts; EOF or Ctrl-C ends.

    examples/tc_firewall.py IFACE [--block PORT ...] [--clsact]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pylibbpf as bpf

BUILD = Path(__file__).resolve().parent.parent / "build"


def report(obj: bpf.BpfObject) -> None:
    drops = dict(sorted(obj.maps["blocked_ports"].items()))
    listing = ", ".join(f"{port} ({count} dropped)" for port, count in drops.items())
    print(f"blocking: {listing or 'nothing'}; passed: {obj.variables['passed'].value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("interface")
    parser.add_argument("--block", type=int, nargs="*", default=[], metavar="PORT")
    parser.add_argument("--clsact", action="store_true", help="netlink clsact even with tcx")
    parser.add_argument("--object", default=str(BUILD / "tc_firewall.bpf.o"))
    options = parser.parse_args()

    with bpf.BpfObject.open(options.object) as obj:
        obj.load()
        ports = obj.maps["blocked_ports"]
        for port in options.block:
            ports[port] = 0
        program = obj.programs["filter_ports"]
        tcx = False if options.clsact else None
        with program.attach_tc(options.interface, "ingress", tcx=tcx) as link:
            print(f"attached: {link.description}")
            report(obj)
            sys.stdout.flush()
            try:
                for line in sys.stdin:
                    command = line.strip()
                    if command[:1] == "+" and command[1:].isdigit():
                        ports[int(command[1:])] = 0
                    elif command[:1] == "-" and command[1:].isdigit():
                        ports.delete(int(command[1:]))
                    elif command != "stats":
                        print(f"? {command!r}: use +PORT, -PORT or stats")
                    report(obj)
                    sys.stdout.flush()
            except KeyboardInterrupt:
                pass
    print("detached")


if __name__ == "__main__":
    main()
