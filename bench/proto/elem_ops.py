"""Prototype for phase 2: single-element map operations with Python ints as fast as bytes.

    PYTHONPATH=. python bench/proto/elem_ops.py [N]

Measures, on a HASH map of N 8-byte keys and values (CPU ns per operation, median of
passes), today's ``m[k] = v`` / ``m[k]`` against designs that encode ints straight
into one preallocated key+value buffer with a precompiled ``struct.Struct`` and decode
the value with ``unpack_from``, with and without thread safety (a lock, or per-thread
buffers), next to the floor (the same work inlined in the loop, no Python call) and
libbpf's C figure (bench/build/libbpf_side maps, if built).
"""

from __future__ import annotations

import ctypes
import errno
import json
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pylibbpf as bpf
from pylibbpf import syscall
from pylibbpf.errors import BpfError

CALL, NR = syscall._bpf_fast, syscall.NR_BPF
LOOKUP, UPDATE = 1, 2


class IntPairOps:
    """A map's key and value buffer in one block (key, then value) with its attr: an
    int key and value are one ``pack_into``, a looked-up value one ``unpack_from``."""

    def __init__(self, fd: int, key_format: str, value_format: str) -> None:
        self.pair = struct.Struct("<" + key_format + value_format)
        self.key = struct.Struct("<" + key_format)
        self.value = struct.Struct("<" + value_format)
        self.buf = ctypes.create_string_buffer(self.pair.size)
        self.attr = syscall.MapElemAttr(map_fd=fd)
        self.attr.key = ctypes.addressof(self.buf)
        self.attr.value = ctypes.addressof(self.buf) + self.key.size
        self.ref = ctypes.byref(self.attr)
        self.lock = threading.Lock()

    def update(self, key: int, value: int) -> None:
        try:
            self.pair.pack_into(self.buf, 0, key, value)
        except struct.error:
            raise BpfError(f"{key}/{value} does not fit", errno.ERANGE) from None
        if CALL(NR, UPDATE, self.ref, 32) < 0:
            raise BpfError("update failed", ctypes.get_errno())

    def lookup(self, key: int) -> int:
        try:
            self.key.pack_into(self.buf, 0, key)
        except struct.error:
            raise BpfError(f"{key} does not fit", errno.ERANGE) from None
        if CALL(NR, LOOKUP, self.ref, 32) < 0:
            raise KeyError(key)
        return self.value.unpack_from(self.buf, self.key.size)[0]  # type: ignore[no-any-return]

    def locked_update(self, key: int, value: int) -> None:
        with self.lock:
            self.update(key, value)

    def locked_lookup(self, key: int) -> int:
        with self.lock:
            return self.lookup(key)


class PerThread(threading.local):
    """Per-thread buffers: what each thread's first operation on a map allocates."""

    ops: IntPairOps


class FastIntMap:
    """What Map could become for int keys/values: the dunder methods do the work."""

    def __init__(self, ops: IntPairOps) -> None:
        self._ops = ops
        self._pack_pair, self._pack_key = ops.pair.pack_into, ops.key.pack_into
        self._unpack = ops.value.unpack_from
        self._buf, self._ref, self._vat = ops.buf, ops.ref, ops.key.size

    def __setitem__(self, key: int, value: int) -> None:
        try:
            self._pack_pair(self._buf, 0, key, value)
        except struct.error:
            raise BpfError(f"{key}/{value} does not fit", errno.ERANGE) from None
        if CALL(NR, UPDATE, self._ref, 32) < 0:
            raise BpfError("update failed", ctypes.get_errno())

    def __getitem__(self, key: int) -> int:
        try:
            self._pack_key(self._buf, 0, key)
        except struct.error:
            raise BpfError(f"{key} does not fit", errno.ERANGE) from None
        if CALL(NR, LOOKUP, self._ref, 32) < 0:
            raise KeyError(key)
        return self._unpack(self._buf, self._vat)[0]  # type: ignore[no-any-return]


class ThreadSafeIntMap(FastIntMap):
    """FastIntMap with per-thread buffers (#15: costs one attribute read when unused)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._local = PerThread()

    def _mine(self) -> IntPairOps:
        ops = IntPairOps(self._fd, "Q", "Q")
        self._local.ops = ops
        return ops

    def __setitem__(self, key: int, value: int) -> None:
        try:
            ops = self._local.ops
        except AttributeError:
            ops = self._mine()
        try:
            ops.pair.pack_into(ops.buf, 0, key, value)
        except struct.error:
            raise BpfError(f"{key}/{value} does not fit", errno.ERANGE) from None
        if CALL(NR, UPDATE, ops.ref, 32) < 0:
            raise BpfError("update failed", ctypes.get_errno())

    def __getitem__(self, key: int) -> int:
        try:
            ops = self._local.ops
        except AttributeError:
            ops = self._mine()
        try:
            ops.key.pack_into(ops.buf, 0, key)
        except struct.error:
            raise BpfError(f"{key} does not fit", errno.ERANGE) from None
        if CALL(NR, LOOKUP, ops.ref, 32) < 0:
            raise KeyError(key)
        return ops.value.unpack_from(ops.buf, 8)[0]  # type: ignore[no-any-return]


def interleaved(n: int, works: list[Callable[[], object]], rounds: int = 7) -> list[float]:
    """CPU ns per element of each work: the median of ``rounds`` passes, the works taking
    turns (so a busy moment of the machine hits them all alike)."""
    samples: list[list[float]] = [[] for _ in works]
    for work in works:
        work()
    for _ in range(rounds):
        for index, work in enumerate(works):
            start = time.process_time()
            work()
            samples[index].append((time.process_time() - start) / n * 1e9)
    return [statistics.median(s) for s in samples]


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    keys = list(range(n))
    values = [k * 3 for k in keys]
    m = bpf.Map.create(bpf.MapType.HASH, 8, 8, n, name="proto", key_type=int, value_type=int)
    ops = IntPairOps(m.fd, "Q", "Q")
    fast, safe = FastIntMap(ops), ThreadSafeIntMap(m.fd)
    pack_pair, pack_key, unpack, buf, ref = (
        ops.pair.pack_into,
        ops.key.pack_into,
        ops.value.unpack_from,
        ops.buf,
        ops.ref,
    )

    def floor_update() -> None:
        for k, v in zip(keys, values, strict=True):
            pack_pair(buf, 0, k, v)
            CALL(NR, UPDATE, ref, 32)

    def floor_lookup() -> None:
        for k in keys:
            pack_key(buf, 0, k)
            CALL(NR, LOOKUP, ref, 32)
            unpack(buf, 8)

    def loop_set(target: Any) -> Callable[[], None]:
        def run() -> None:
            for k, v in zip(keys, values, strict=True):
                target[k] = v

        return run

    def loop_get(target: Any) -> Callable[[], None]:
        def run() -> None:
            for k in keys:
                target[k]

        return run

    def loop_call(method: Callable[..., Any], pair: bool) -> Callable[[], None]:
        def run() -> None:
            if pair:
                for k, v in zip(keys, values, strict=True):
                    method(k, v)
            else:
                for k in keys:
                    method(k)

        return run

    rows = [
        ("today: m[k] = v", loop_set(m), "today: m[k]", loop_get(m)),
        (
            "IntPairOps.update(k, v)",
            loop_call(ops.update, True),
            "IntPairOps.lookup(k)",
            loop_call(ops.lookup, False),
        ),
        (
            "  + a lock per call",
            loop_call(ops.locked_update, True),
            "  + a lock per call",
            loop_call(ops.locked_lookup, False),
        ),
        ("FastIntMap: m[k] = v", loop_set(fast), "FastIntMap: m[k]", loop_get(fast)),
        ("  per-thread buffers", loop_set(safe), "  per-thread buffers", loop_get(safe)),
        ("floor (inlined pack + call)", floor_update, "floor (inlined)", floor_lookup),
    ]
    c = c_figures(n)
    print(
        f"HASH map, {n:,} int keys and values; CPU ns per operation "
        "(median of 7 interleaved passes)"
    )
    print(
        f"libbpf from C: update {c.get('update', float('nan')):.0f} ns, "
        f"lookup {c.get('lookup', float('nan')):.0f} ns\n"
    )
    print(f"{'update':34s} {'ns':>6s} {'vs C':>6s}   {'lookup':28s} {'ns':>6s} {'vs C':>6s}")
    figures = interleaved(n, [work for row in rows for work in (row[1], row[3])])
    for index, (set_label, _, get_label, _) in enumerate(rows):
        u, g = figures[2 * index], figures[2 * index + 1]
        print(
            f"{set_label:34s} {u:6.0f} {c.get('update', u) / u:5.2f}x   "
            f"{get_label:28s} {g:6.0f} {c.get('lookup', g) / g:5.2f}x"
        )
    assert fast[7] == 21 and safe[9] == 27 and m[11] == 33
    m.close()
    return 0


def c_figures(n: int) -> dict[str, float]:
    binary = Path(__file__).resolve().parent.parent / "build" / "libbpf_side"
    if not binary.exists():
        return {}
    out = subprocess.run([str(binary), "maps", str(n), "3"], capture_output=True, text=True)
    if out.returncode:
        return {}
    rates = json.loads(out.stdout)
    return {"update": 1e9 / rates["int_update"], "lookup": 1e9 / rates["int_lookup"]}


if __name__ == "__main__":
    sys.exit(main())
