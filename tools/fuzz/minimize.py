"""Shrink a reproducer to the fewest bytes that differ from its seed.

Offsets inside an ELF object make deleting bytes meaningless, so this reduces the
*difference* from the seed instead (delta debugging over the changed byte ranges), then
tries cutting what was appended. Every candidate runs in a forked child under the
fuzzer's limits, so reproducers that segfault or hang minimise too. The result keeps
the defect's signature (kind, exception type, innermost pylibbpf frame).
"""

from __future__ import annotations

import faulthandler
import json
import os
import pickle
import resource
import signal
import sys
import time
from pathlib import Path

from .targets import InputTimeout, Runner


def signatures(
    runner: Runner, kind: str, data: bytes, cpu: float = 5.0, wall: float = 120.0
) -> set[str]:
    """The defect signatures of one input, run in a child under limits."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        faulthandler.disable()  # a crash is the expected answer here, not news
        try:
            from .pool import Limits, _vm_size

            limit = _vm_size() + Limits().memory_mb * (1 << 20)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

            def alarm(_signum: int, _frame: object) -> None:
                raise InputTimeout("over the CPU limit")

            signal.signal(signal.SIGPROF, alarm)
            signal.setitimer(signal.ITIMER_PROF, cpu)
            result = runner.run(kind, data)
            os.write(write, pickle.dumps({d.signature for d in result.defects}))
        finally:
            os._exit(0)
    os.close(write)
    started, chunks = time.monotonic(), []
    os.set_blocking(read, False)
    while True:
        try:
            chunk = os.read(read, 1 << 16)
        except BlockingIOError:
            chunk = None
        if chunk:
            chunks.append(chunk)
        elif chunk == b"":
            break
        if time.monotonic() - started > wall:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) != signal.SIGKILL:
        return {f"signal:{signal.Signals(os.WTERMSIG(status)).name}"}
    if not chunks:
        return {"hang"}
    found: set[str] = pickle.loads(b"".join(chunks))
    return found


def _ranges(data: bytes, seed: bytes) -> list[tuple[int, int]]:
    """Maximal runs of differing bytes over the common length."""
    out: list[tuple[int, int]] = []
    start = None
    for index in range(min(len(data), len(seed))):
        if data[index] != seed[index]:
            if start is None:
                start = index
        elif start is not None:
            out.append((start, index))
            start = None
    if start is not None:
        out.append((start, min(len(data), len(seed))))
    return out


def _build(data: bytes, seed: bytes, keep: list[tuple[int, int]], length: int) -> bytes:
    out = bytearray(seed[: min(length, len(seed))])
    if length > len(seed):
        out += data[len(seed) : length]
    for start, end in keep:
        if start < len(out):
            out[start : min(end, len(out))] = data[start : min(end, len(out))]
    return bytes(out)


def minimize(
    runner: Runner, kind: str, data: bytes, seed: bytes, wanted: str, log: bool = True
) -> bytes:
    """The input closest to ``seed`` that still shows the defect ``wanted``."""

    def still(candidate: bytes) -> bool:
        return wanted in signatures(runner, kind, candidate)

    length = len(data)
    keep = _ranges(data, seed)
    if length != len(seed) and still(_build(data, seed, keep, len(seed))):
        length = len(seed)
    # ddmin over the changed ranges: drop chunks of them while the defect stays.
    chunk = max(len(keep) // 2, 1)
    while keep:
        changed = False
        for start in range(0, len(keep), chunk):
            trial = keep[:start] + keep[start + chunk :]
            if still(_build(data, seed, trial, length)):
                keep = trial
                changed = True
                break
        if log:
            print(f"minimize: {len(keep)} ranges, chunk {chunk}", file=sys.stderr)
        if not changed:
            if chunk == 1:
                break
            chunk = max(chunk // 2, 1)
    # Then byte by byte inside what is left (a changed 8-byte field may need one byte).
    if sum(end - start for start, end in keep) <= 256:
        single = [(i, i + 1) for start, end in keep for i in range(start, end)]
        for byte in list(single):
            trial = [b for b in single if b != byte]
            if still(_build(data, seed, trial, length)):
                single = trial
        keep = single
    if length > len(seed):  # appended bytes: keep the shortest tail that still fails
        low, high = len(seed), length
        while low < high:
            middle = (low + high) // 2
            if still(_build(data, seed, keep, middle)):
                high = middle
            else:
                low = middle + 1
        length = high
    return _build(data, seed, keep, length)


def minimize_file(path: Path, against: Path | None, kind: str | None, with_vmlinux: bool) -> int:
    from .__main__ import _vmlinux

    data = path.read_bytes()
    kind = kind or ("object" if data[:4] == b"\x7fELF" else "btf")
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if against is not None:
        seed = against.read_bytes()
    else:
        from .seeds import corpus

        named = {s.name: s.data for s in corpus(selftests=True)}
        seed = named.get(meta.get("seed", ""), b"")
        if not seed:
            print(f"{path}: give --against (seed {meta.get('seed')!r} not found)", file=sys.stderr)
            return 2
    runner = Runner(_vmlinux() if with_vmlinux else None)
    found = signatures(runner, kind, data)
    wanted = (
        meta.get("signature") if meta.get("signature") in found else next(iter(sorted(found)), "")
    )
    if not wanted:
        print(f"{path}: no defect reproduces", file=sys.stderr)
        return 1
    small = minimize(runner, kind, data, seed, wanted)
    out = path.with_name(path.stem + ".min" + path.suffix)
    out.write_bytes(small)
    diff = sum(a != b for a, b in zip(small, seed, strict=False)) + abs(len(small) - len(seed))
    print(f"{out}: {len(small)} bytes, {diff} differ from the seed; {wanted}")
    return 0
