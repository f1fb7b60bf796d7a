"""syscall_latency: how long one system call takes, as a log2 histogram (like bcc's
biolatency, for a syscall instead of block I/O).

    examples/syscall_latency.py [--syscall NAME] [--pid PID] [--duration S] [--exec CMD]
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import pylibbpf as bpf

BUILD = Path(__file__).resolve().parent.parent / "build"
UNISTD = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")


def syscall_number(name: str) -> int:
    """From the kernel headers Debian ships (linux-libc-dev)."""
    match = re.search(rf"#define __NR_{re.escape(name)}\s+(\d+)", UNISTD.read_text())
    if match is None:
        raise SystemExit(f"unknown system call {name!r} (not in {UNISTD})")
    return int(match[1])


def print_histogram(counts: list[int], unit: str = "usecs") -> None:
    last = max((i for i, c in enumerate(counts) if c), default=-1)
    if last < 0:
        print("(no calls seen)")
        return
    peak = max(counts)
    print(f"{unit:>20} : {'count':<8} distribution")
    for slot in range(last + 1):
        low, high = (1 << slot) if slot else 0, (1 << (slot + 1)) - 1
        stars = "*" * round(40 * counts[slot] / peak)
        print(f"{low:>8} -> {high:<8} : {counts[slot]:<8} |{stars:<40}|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--syscall", default="clock_nanosleep")
    parser.add_argument("--pid", type=int, default=0, help="only this process (default: all)")
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--exec", help="run this command while tracing")
    parser.add_argument("--object", default=str(BUILD / "syscall_latency.bpf.o"))
    options = parser.parse_args()

    with bpf.BpfObject.open(options.object) as obj:
        obj.variables["syscall_nr"].value = syscall_number(options.syscall)
        obj.variables["only_tgid"].value = options.pid
        obj.variables["skip_tgid"].value = os.getpid()  # not our own sleep below
        obj.load()
        obj.attach()
        print(f"tracing {options.syscall}() for {options.duration:g} s", flush=True)
        start = time.monotonic()
        if options.exec:
            subprocess.run(shlex.split(options.exec), check=False)
        time.sleep(max(0.0, options.duration - (time.monotonic() - start)))
        counts = list(obj.variables["histogram"].value)
        calls = obj.variables["calls"].value
        print_histogram(counts)
        if calls:
            average = obj.variables["total_ns"].value / calls / 1000
            print(f"{calls} calls, average {average:.1f} usecs")


if __name__ == "__main__":
    main()
