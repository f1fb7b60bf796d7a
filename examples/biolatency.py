"""biolatency: block device I/O latency as log2 histograms, per disk with -D, like bcc's
biolatency. Printed with pylibbpf.histogram from a map of per-disk bucket arrays.

    examples/biolatency.py [-D] [--disk NAME] [--milliseconds] [--duration S] [--interval S]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from pylibbpf.histogram import Histogram, print_log2_hist
from pylibbpf.object import BpfObject

BUILD = Path(__file__).resolve().parent.parent / "build"
MINORBITS = 20  # the kernel's dev_t: major << 20 | minor


def kernel_dev(major: int, minor: int) -> int:
    return major << MINORBITS | minor


def disk_names() -> dict[int, str]:
    """The kernel's dev_t of every block device -> its name (from sysfs)."""
    names = {}
    for entry in Path("/sys/class/block").iterdir():
        try:
            major, minor = (entry / "dev").read_text().split(":")
        except OSError:
            continue
        names[kernel_dev(int(major), int(minor))] = entry.name
    return names


def disk_dev(name: str) -> int:
    try:
        major, minor = Path(f"/sys/class/block/{name}/dev").read_text().split(":")
    except OSError:
        raise SystemExit(f"no block device named {name!r} (see /sys/class/block)") from None
    if Path(f"/sys/class/block/{name}/partition").exists():
        raise SystemExit(f"{name} is a partition: give its disk (latency is per disk)")
    return kernel_dev(int(major), int(minor))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-D", "--disks", action="store_true", help="one histogram per disk")
    parser.add_argument("--disk", help="only this disk (e.g. vda, sda, nvme0n1)")
    parser.add_argument("--milliseconds", action="store_true", help="buckets in ms, not us")
    parser.add_argument("--duration", type=float, default=5, help="seconds to trace")
    parser.add_argument("--interval", type=float, help="print (and reset) every this often")
    parser.add_argument("--object", default=str(BUILD / "biolatency.bpf.o"))
    options = parser.parse_args()
    unit = "msecs" if options.milliseconds else "usecs"

    with BpfObject.open(options.object) as obj:
        if options.disk:
            obj.variables["target_dev"].value = disk_dev(options.disk)
        obj.variables["milliseconds"].value = options.milliseconds
        obj.load()
        obj.attach()
        hists = obj.maps["hists"]
        print(f"tracing block device I/O for {options.duration:g} s", flush=True)
        end = time.monotonic() + options.duration
        try:
            while (left := end - time.monotonic()) > 0:
                time.sleep(min(left, options.interval or left))
                if options.interval and end - time.monotonic() > 0:
                    show(hists, unit, options.disks)
                    hists.clear()
        except KeyboardInterrupt:
            pass
        show(hists, unit, options.disks)


def show(hists: Any, unit: str, per_disk: bool) -> None:
    print(time.strftime("\n%H:%M:%S"), flush=True)
    if per_disk:
        names = disk_names()
        print_log2_hist(
            hists,
            unit,
            section_header="disk",
            section_print_fn=lambda dev: names.get(dev, f"{dev >> MINORBITS}:{dev & 0xFFFFF}"),
        )
        return
    total = sum(Histogram.per_key(hists).values(), Histogram())
    total.print(unit)
    if total.total:
        print(
            f"{total.total} I/O, p50 <= {total.percentile(0.5)} {unit}, "
            f"p99 <= {total.percentile(0.99)} {unit}",
            flush=True,
        )
    else:
        print("(no I/O seen)")


if __name__ == "__main__":
    main()
