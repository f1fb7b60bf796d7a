"""opensnoop: every open()/openat() as it happens, with the result, like bcc's opensnoop.

Tracepoints on the system call's entry and exit; one record per call through a ring
buffer, decoded with the record type from the object's BTF (no hand-written layout).

    examples/opensnoop.py [--pid PID] [--uid UID] [--failed] [--duration S] [--timestamp]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from pylibbpf.btf import Btf, Kind
from pylibbpf.object import BpfObject
from pylibbpf.ringbuf import RingBuffer

BUILD = Path(__file__).resolve().parent.parent / "build"


def row(event: Any, options: argparse.Namespace, first_ns: list[int]) -> str:
    fd, err = (event.ret, 0) if event.ret >= 0 else (-1, -event.ret)
    comm = bytes(event.comm).rstrip(b"\0").decode(errors="replace")
    path = bytes(event.fname).split(b"\0", 1)[0].decode(errors="replace")
    text = f"{event.pid:<7} {comm:<16} {fd:>4} {err:>3} "
    if options.extended:
        text += f"{event.flags:08o} "
    if options.timestamp:
        first_ns[0] = first_ns[0] or event.ts
        text = f"{(event.ts - first_ns[0]) / 1e9:<12.6f} " + text
    return text + path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pid", type=int, help="only this process")
    parser.add_argument("--uid", type=int, help="only this user")
    parser.add_argument("--failed", action="store_true", help="only failed opens")
    parser.add_argument("--timestamp", action="store_true", help="print a timestamp column")
    parser.add_argument("--extended", action="store_true", help="print the open flags (octal)")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--object", default=str(BUILD / "opensnoop.bpf.o"))
    options = parser.parse_args()

    btf = Btf.from_file(options.object)
    event_type = btf.ctype(btf.find("event", Kind.STRUCT).id)
    first_ns = [0]

    def on_event(record: memoryview) -> None:
        print(row(event_type.from_buffer_copy(record), options, first_ns), flush=True)

    with BpfObject.open(options.object) as obj:
        if options.pid is not None:
            obj.variables["target_tgid"].value = options.pid
        if options.uid is not None:
            obj.variables["target_uid"].value = options.uid
        obj.variables["failed_only"].value = options.failed
        obj.load()
        obj.attach()
        ring = RingBuffer(obj.maps["events"], on_event)
        header = f"{'PID':<7} {'COMM':<16} {'FD':>4} {'ERR':>3} "
        header += "FLAGS    " if options.extended else ""
        header = ("TIME(s)      " if options.timestamp else "") + header + "PATH"
        print(header, flush=True)
        end = None if options.duration is None else time.monotonic() + options.duration
        try:
            while end is None or (left := end - time.monotonic()) > 0:
                ring.poll(100 if end is None else max(1, min(100, int(left * 1000))))
        except KeyboardInterrupt:
            pass
        ring.consume()
        ring.close()
        lost = obj.variables["lost_events"].value
        if lost:
            print(f"{lost} events lost (ring buffer full)", file=sys.stderr)


if __name__ == "__main__":
    main()
