"""Demo: a CO-RE tracepoint program written in C, loaded and attached by pylibbpf.

Three child processes call getppid() a few times each; the BPF program, attached to the
syscalls:sys_enter_getppid tracepoint, records each caller and its parent by reading
task_struct (offsets relocated to this kernel by CO-RE), and this script prints what the
kernel saw, straight from the map (values decoded with the object's BTF).
"""

from __future__ import annotations

import ctypes
import os
import sys

import pylibbpf as bpf


def main(object_path: str) -> None:
    with bpf.BpfObject.open(object_path) as obj:
        obj.load()
        relocated = obj.core_results("on_getppid")
        print(f"loaded {object_path}: {len(relocated)} CO-RE relocations, e.g.")
        for result in relocated[:3]:
            print(f"  {result.access}: byte offset {result.target_value} on this kernel")
        links = obj.attach()
        print(f"attached: {', '.join(link.description for link in links)}")

        libc = ctypes.CDLL(None)
        for index, calls in enumerate((1, 2, 3)):
            child = os.fork()
            if child == 0:
                libc.prctl(15, f"demo-child-{index}".encode(), 0, 0, 0)  # PR_SET_NAME
                for _ in range(calls):
                    os.getppid()
                os._exit(0)
            os.waitpid(child, 0)

        print(f"\n{'tgid':>8} {'comm':<16} {'calls':>5}   parent (tgid comm)")
        for caller in sorted(obj.maps["callers"].values(), key=lambda c: c.comm):
            comm = bytes(caller.comm).rstrip(b"\0").decode()
            parent = bytes(caller.parent_comm).rstrip(b"\0").decode()
            print(f"{caller.tgid:>8} {comm:<16} {caller.calls:>5}   {caller.parent_tgid} {parent}")
        print(f"\ngetppid() calls seen system-wide: {obj.variables['total_calls'].value}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/getppid_watch.bpf.o")
