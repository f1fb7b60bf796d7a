"""bashreadline: print every command typed into any interactive bash, as bcc's
bashreadline does — a uretprobe on bash's readline() (auto-attached from its section
name, ``uretprobe//bin/bash:readline``) and a perf buffer.

    examples/bashreadline.py [--duration S]
"""

from __future__ import annotations

import argparse
import ctypes
import time
from pathlib import Path

import pylibbpf as bpf

BUILD = Path(__file__).resolve().parent.parent / "build"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=0, help="seconds (0: until Ctrl-C)")
    parser.add_argument("--object", default=str(BUILD / "bashreadline.bpf.o"))
    options = parser.parse_args()

    with bpf.BpfObject.open(options.object) as obj:
        assert obj.spec.btf is not None
        record = obj.spec.btf.ctype(obj.spec.btf.find("line").id)  # struct line, from BTF
        obj.load()
        (link,) = obj.attach()
        print(f"attached: {link.description}")
        print(f"{'TIME':<9} {'PID':>7}  COMMAND", flush=True)

        def on_line(cpu: int, data: bytes) -> None:
            line = record.from_buffer_copy(data[: ctypes.sizeof(record)])
            text = line.text.decode(errors="replace")
            print(f"{time.strftime('%H:%M:%S')} {line.pid:>7}  {text}", flush=True)

        def on_lost(cpu: int, count: int) -> None:
            print(f"(lost {count} lines on CPU {cpu})", flush=True)

        with bpf.PerfBuffer(obj.maps["lines"], on_line, on_lost) as perf:
            deadline = time.monotonic() + options.duration if options.duration else None
            try:
                while deadline is None or time.monotonic() < deadline:
                    perf.poll(100)
            except KeyboardInterrupt:
                pass


if __name__ == "__main__":
    main()
