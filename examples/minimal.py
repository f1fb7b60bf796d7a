"""minimal: a tracepoint program's bpf_printk() lines, read back with pylibbpf.trace (like
libbpf-bootstrap's minimal, and bcc's trace_print()).

The program prints on every write() of one process. By default that is this script's own
writes to stderr (a dot every second; its stdout is left out, or printing a line would
trigger the next one); --pid traces another process's writes to any fd. Lines come
through a private tracefs instance, parsed into fields.

    examples/minimal.py [--pid PID [--fd FD]] [--duration S] [--object build/minimal.bpf.o]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from pylibbpf.object import BpfObject
from pylibbpf.trace import TracePipe

BUILD = Path(__file__).resolve().parent.parent / "build"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pid", type=int, default=os.getpid(), help="whose write()s to trace")
    parser.add_argument(
        "--fd", type=int, help="only write()s to this fd (default: any, or stderr for our own)"
    )
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--object", default=str(BUILD / "minimal.bpf.o"))
    options = parser.parse_args()

    # The pipe first: a private instance sees only what is printed after it exists.
    own = options.pid == os.getpid()
    fd = options.fd if options.fd is not None else (2 if own else -1)
    with TracePipe(pids=[options.pid]) as pipe, BpfObject.open(options.object) as obj:
        obj.variables["target_tgid"].value = options.pid
        obj.variables["target_fd"].value = fd
        obj.load()
        obj.attach()
        print(f"tracing write() of PID {options.pid}; trace instance {pipe.instance}", flush=True)
        print(f"{'TIME(s)':<14} {'TASK':<16} {'PID':>7} {'CPU':>3}  MESSAGE", flush=True)
        end = None if options.duration is None else time.monotonic() + options.duration
        next_dot = time.monotonic()
        try:
            while end is None or time.monotonic() < end:
                if own and time.monotonic() >= next_dot:
                    sys.stderr.write(".")  # a write() of our own to see
                    sys.stderr.flush()
                    next_dot += 1
                event = pipe.read_event(timeout=0.2)
                if event is not None:
                    print(
                        f"{event.timestamp:<14.6f} {event.task:<16} {event.pid:>7} "
                        f"{event.cpu:>3}  {event.message}",
                        flush=True,
                    )
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
