"""profile: a CPU profiler sampling stacks at a fixed frequency, like bcc's profile.

A perf_event program runs on every cpu-clock sample of every CPU (a software event: it
needs no hardware PMU, so it works in VMs too) and counts (process, user stack, kernel
stack). The stacks are symbolised with pylibbpf.symbols: kernel frames from kallsyms, user
frames from each binary's symbols (and DWARF lines, and build-id debug files). --folded
prints one line per stack for flamegraph.pl (kernel frames marked ``_[k]``).

    examples/profile.py [-p PID] [-F HZ] [--duration S] [--folded] [-U | -K] [--exec CMD]
"""

from __future__ import annotations

import argparse
import errno
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

from pylibbpf import BpfObject, BpfPermissionError, open_sampling_event
from pylibbpf.symbols import Frame, Symbolizer, stack_trace
from pylibbpf.syscall.system import online_cpus

BUILD = Path(__file__).resolve().parent.parent / "build"


def missing(stack_id: int) -> bool:
    """A stack the program wanted but did not get (-EFAULT only means there is none, such
    as the user stack of a kernel thread)."""
    return stack_id < 0 and stack_id != -errno.EFAULT


def sample_frames(key: Any, symbolizer: Symbolizer, stacks: Any) -> tuple[list[Frame], list[Frame]]:
    user = stack_trace(stacks, key.user_stack_id, key.pid, symbolizer=symbolizer)
    kernel = stack_trace(stacks, key.kernel_stack_id, symbolizer=symbolizer)
    return user, kernel


def folded(key: Any, comm: str, user: list[Frame], kernel: list[Frame]) -> str:
    """``comm;outermost;...;innermost`` (user frames, then kernel frames marked _[k])."""
    parts = [comm]
    if missing(key.user_stack_id):
        parts.append("[Missed User Stack]")
    parts += [f.function for f in reversed(user)]
    if missing(key.kernel_stack_id):
        parts.append("[Missed Kernel Stack]")
    parts += [f"{f.function}_[k]" for f in reversed(kernel)]
    return ";".join(part.replace(";", ":") for part in parts)


def report(obj: BpfObject, options: argparse.Namespace) -> None:
    symbolizer = Symbolizer(lines=not options.folded)
    stacks = obj.maps["stacks"]
    samples = sorted(obj.maps["counts"].items(), key=lambda item: item[1])
    if options.folded:
        lines: dict[str, int] = {}
        for key, count in samples:
            comm = bytes(key.comm).rstrip(b"\0").decode(errors="replace")
            line = folded(key, comm, *sample_frames(key, symbolizer, stacks))
            lines[line] = lines.get(line, 0) + count
        for line, count in sorted(lines.items(), key=lambda item: item[1]):
            print(f"{line} {count}")
        return
    for key, count in samples:
        comm = bytes(key.comm).rstrip(b"\0").decode(errors="replace")
        user, kernel = sample_frames(key, symbolizer, stacks)
        for frame in kernel:
            print(f"    {frame}")
        if missing(key.kernel_stack_id):
            print("    [Missed Kernel Stack]")
        if kernel and user:
            print("    --")
        for frame in user:
            print(f"    {frame}")
        if missing(key.user_stack_id):
            print("    [Missed User Stack]")
        print(f"    -                {comm} ({key.pid})\n        {count}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-p", "--pid", type=int, help="only this process")
    parser.add_argument("-F", "--frequency", type=int, default=49, help="samples/s per CPU")
    parser.add_argument("--duration", type=float, default=5, help="seconds to sample")
    parser.add_argument("-f", "--folded", action="store_true", help="folded output")
    stacks = parser.add_mutually_exclusive_group()
    stacks.add_argument("-U", "--user-only", action="store_true", help="only user stacks")
    stacks.add_argument("-K", "--kernel-only", action="store_true", help="only kernel stacks")
    parser.add_argument("-I", "--include-idle", action="store_true", help="the idle task too")
    parser.add_argument("--exec", help="run this command while sampling")
    parser.add_argument("--object", default=str(BUILD / "profile.bpf.o"))
    options = parser.parse_args()

    with BpfObject.open(options.object) as obj:
        obj.variables["target_tgid"].value = options.pid or 0
        obj.variables["include_idle"].value = options.include_idle
        obj.variables["user_stacks"].value = not options.kernel_only
        obj.variables["kernel_stacks"].value = not options.user_only
        obj.load()
        program = obj.programs["do_sample"]
        links = []
        for cpu in online_cpus():
            try:  # cpu-clock: a software event, so it needs no hardware PMU (VMs too)
                event = open_sampling_event(cpu, frequency=options.frequency)
            except BpfPermissionError as error:
                raise SystemExit(str(error)) from None
            with event:
                links.append(program.attach_perf_event(event.fd))  # the link keeps a copy
        who = f"PID {options.pid}" if options.pid else "all processes"
        print(
            f"sampling {who} at {options.frequency} Hz on {len(links)} CPUs "
            f"for {options.duration:g} s",
            flush=True,
        )
        start = time.monotonic()
        try:
            if options.exec:
                subprocess.run(shlex.split(options.exec), check=False)
            time.sleep(max(0.0, options.duration - (time.monotonic() - start)))
        except KeyboardInterrupt:
            pass
        for link in links:
            link.detach()
        report(obj, options)


if __name__ == "__main__":
    main()
