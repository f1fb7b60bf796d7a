"""How fast pylibbpf.symbols turns stacks into names, and bcc's resolver on the same
addresses for comparison (when python3-bpfcc is installed).

    PYTHONPATH=. python bench/symbols_bench.py [--stacks 5000] [--depth 20]

Stacks are ``depth`` addresses drawn at random inside real functions: kernel ones from
/proc/kallsyms, user ones inside libc (its debug file, when installed, adds the static
functions and DWARF lines) and the Python interpreter, in this process. "cold" resolves
every address for the first time in a fresh resolver (file and kallsyms parsing not
counted, reported apart); "warm" resolves the same stacks again, as a profiler does
with the stacks that repeat. Needs root for kallsyms addresses.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pylibbpf.symbols import ElfSymbols, KernelSymbols, ProcessSymbols, Symbolizer

BCC_PYTHON = "/usr/bin/python3"
BCC_SCRIPT = """
import json, sys, time
from bcc import BPF
stacks, pid = json.load(open(sys.argv[1])), int(sys.argv[2])
result = {}
for label, frames in stacks.items():
    resolve = (lambda a: BPF.ksym(a, show_offset=True)) if label == "kernel" else (
        lambda a: BPF.sym(a, pid, show_offset=True))
    resolve(frames[0][0])  # symbol tables loaded outside the timing
    for run in ("cold", "warm"):
        start = time.perf_counter()
        for stack in frames:
            for address in stack:
                resolve(address)
        result[f"{label} {run}"] = time.perf_counter() - start
print(json.dumps(result))
"""


def kernel_stacks(count: int, depth: int, rng: random.Random) -> list[list[int]]:
    rows = []
    with open("/proc/kallsyms") as f:
        for line in f:
            address, kind, _ = line.split(" ", 2)
            if kind in "tT":
                rows.append(int(address, 16))
    rows.sort()
    if rows[0] == 0:
        raise SystemExit("kallsyms hides addresses: run as root")
    picks = []
    for _ in range(count * depth):
        index = rng.randrange(len(rows) - 1)
        span = max(1, min(rows[index + 1] - rows[index], 512))
        picks.append(rows[index] + rng.randrange(span))
    return [picks[i : i + depth] for i in range(0, len(picks), depth)]


def user_stacks(count: int, depth: int, rng: random.Random) -> list[list[int]]:
    """Addresses inside functions of libc and the interpreter, as mapped here."""
    process = ProcessSymbols(os.getpid())
    picks: list[int] = []
    for mapping in process._mappings:
        if not mapping.path.startswith("/") or not (
            "libc.so" in mapping.path or mapping.path == os.path.realpath(sys.executable)
        ):
            continue
        symbols = ElfSymbols.open(mapping.path)
        for start, size in zip(symbols._starts, symbols._sizes, strict=True):
            runtime = _runtime(process, symbols, mapping.path, start)
            if runtime is not None and size:
                picks.append(runtime + rng.randrange(size))
    rng.shuffle(picks)
    while len(picks) < count * depth:
        picks += picks
    return [picks[i : i + depth] for i in range(0, count * depth, depth)]


def _runtime(process: ProcessSymbols, symbols: ElfSymbols, path: str, vaddr: int) -> int | None:
    """The run-time address of link-time ``vaddr`` (the inverse of what resolve does)."""
    for file_offset, size, seg_vaddr in symbols._segments:
        if seg_vaddr <= vaddr < seg_vaddr + size:
            offset = vaddr - seg_vaddr + file_offset
            for mapping in process._mappings:
                if mapping.path == path and mapping.offset <= offset < mapping.offset + (
                    mapping.end - mapping.start
                ):
                    return mapping.start + offset - mapping.offset
    return None


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", type=int, default=5000)
    parser.add_argument("--depth", type=int, default=20)
    options = parser.parse_args()
    rng = random.Random(21)
    kernel = kernel_stacks(options.stacks, options.depth, rng)
    user = user_stacks(options.stacks, options.depth, rng)

    load = timed(KernelSymbols)
    print(f"kallsyms parsed in {load * 1000:.0f} ms")
    results: dict[str, float] = {}
    pid = os.getpid()
    for label, stacks, lines in (
        ("kernel", kernel, False),
        ("user", user, False),
        ("user+lines", user, True),
    ):
        symbolizer = Symbolizer(lines=lines)
        if label == "kernel":
            symbolizer.kernel  # noqa: B018  (kallsyms parsed outside the timing)
        else:
            symbolizer.resolve(user[0][0], pid)  # files opened outside the timing
        for run in ("cold", "warm"):
            results[f"{label} {run}"] = timed(
                lambda s=stacks, z=symbolizer: [z.frames(stack, pid) for stack in s]
            )
    bcc = bcc_results({"kernel": kernel, "user": user}, pid)
    count = len(kernel)
    print(f"\n{count} stacks of {options.depth} frames; stacks/s (higher is better)\n")
    print("| stacks | pylibbpf | bcc |\n|---|---:|---:|")
    for key, seconds in results.items():
        other = bcc.get(key)
        bcc_text = f"{count / other:,.0f}" if other else "-"
        print(f"| {key} | {count / seconds:,.0f} | {bcc_text} |")


def bcc_results(stacks: dict[str, list[list[int]]], pid: int) -> dict[str, float]:
    if not Path(BCC_PYTHON).exists():
        return {}
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(stacks, f)
        f.flush()
        result = subprocess.run(
            [BCC_PYTHON, "-c", BCC_SCRIPT, f.name, str(pid)], capture_output=True, text=True
        )
    if result.returncode:
        print(f"(bcc not measured: {result.stderr.strip().splitlines()[-1:]})")
        return {}
    return dict(json.loads(result.stdout))


if __name__ == "__main__":
    main()
