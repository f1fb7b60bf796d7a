"""Prototype for phase 2: batch map operations on natural Python values at C speed.

    PYTHONPATH=. python bench/proto/batch_ops.py [N]

On a HASH map of N 8-byte int keys and values (and a PERCPU_HASH), CPU ns per element
(median of interleaved passes) of today's ``lookup_batch()``, ``dict(m.items())`` and
``update_batch(list, list)`` against one-pass designs: preallocated ctypes buffers and
one attr, ``memoryview.cast('Q').tolist()`` to decode, ``array('Q', ints)`` to encode;
per-CPU values grouped with ``zip(*[iter(flat)] * ncpus)``. libbpf's C figures next to
them (bench/build/libbpf_side maps).
"""

from __future__ import annotations

import ctypes
import errno
import json
import statistics
import subprocess
import sys
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pylibbpf as bpf
from pylibbpf import syscall
from pylibbpf.errors import BpfError
from pylibbpf.uapi import Cmd

CALL, NR = syscall._bpf_slow, syscall.NR_BPF


class BatchReader:
    """Whole-map MAP_LOOKUP_BATCH into buffers allocated once, decoded in one pass."""

    def __init__(self, m: bpf.Map, typecode: str = "Q", slots: int = 1) -> None:
        self.fd, self.n = m.fd, m.max_entries
        self.key_size, self.value_size = m.key_size, 8 * slots
        self.slots, self.typecode = slots, typecode
        self.keys = ctypes.create_string_buffer(self.n * self.key_size)
        self.values = ctypes.create_string_buffer(self.n * self.value_size)
        self.tokens = (ctypes.create_string_buffer(8), ctypes.create_string_buffer(8))
        self.attr = syscall.MapBatchAttr(map_fd=self.fd)
        self.ref = ctypes.byref(self.attr)

    def fill(self) -> int:
        """Every element into the buffers; the count (chunks restart from the token)."""
        attr, total, first = self.attr, 0, True
        key_base, value_base = ctypes.addressof(self.keys), ctypes.addressof(self.values)
        tokens = self.tokens
        while total < self.n:
            attr.in_batch = 0 if first else ctypes.addressof(tokens[0])
            attr.out_batch = ctypes.addressof(tokens[1])
            attr.keys = key_base + total * self.key_size
            attr.values = value_base + total * self.value_size
            attr.count = self.n - total
            result = CALL(NR, int(Cmd.MAP_LOOKUP_BATCH), self.ref, ctypes.sizeof(attr))
            total += attr.count
            if result < 0:
                if ctypes.get_errno() == errno.ENOENT:
                    break
                raise BpfError("lookup_batch failed", ctypes.get_errno())
            tokens = tokens[::-1]
            first = False
        return total

    def pairs(self) -> list[tuple[Any, Any]]:
        count = self.fill()
        keys = memoryview(self.keys).cast("B").cast(self.typecode)[:count].tolist()
        flat = memoryview(self.values).cast("B").cast(self.typecode)[: count * self.slots]
        if self.slots == 1:
            return list(zip(keys, flat.tolist(), strict=True))
        grouped = map(list, zip(*[iter(flat.tolist())] * self.slots, strict=True))
        return list(zip(keys, grouped, strict=True))

    def as_dict(self) -> dict[Any, Any]:
        count = self.fill()
        keys = memoryview(self.keys).cast("B").cast(self.typecode)[:count].tolist()
        values = memoryview(self.values).cast("B").cast(self.typecode)[:count].tolist()
        return dict(zip(keys, values, strict=True))


def update_batch(m: bpf.Map, keys: list[int], values: list[int]) -> int:
    """MAP_UPDATE_BATCH from lists of ints: ``array`` converts (and range-checks) in C."""
    packed_keys, packed_values = array("Q", keys), array("Q", values)
    attr = syscall.MapBatchAttr(
        map_fd=m.fd,
        keys=packed_keys.buffer_info()[0],
        values=packed_values.buffer_info()[0],
        count=len(packed_keys),
    )
    if CALL(NR, int(Cmd.MAP_UPDATE_BATCH), ctypes.byref(attr), ctypes.sizeof(attr)) < 0:
        raise BpfError("update_batch failed", ctypes.get_errno())
    return int(attr.count)


def interleaved(n: int, works: list[Callable[[], object]], rounds: int = 7) -> list[float]:
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
    pc = bpf.Map.create(
        bpf.MapType.PERCPU_HASH, 8, 8, n, name="proto_pc", key_type=int, value_type=int
    )
    m.update_batch(keys, values)
    pc.update_batch(keys, values)
    reader, pc_reader = BatchReader(m), BatchReader(pc, slots=pc._ncpus)
    assert reader.pairs() == sorted(m.lookup_batch()) or sorted(reader.pairs()) == sorted(
        m.lookup_batch()
    )
    assert reader.as_dict() == dict(m.items())
    assert sorted(pc_reader.pairs()) == sorted(pc.lookup_batch())
    rows = [
        ("lookup_batch() -> [(int, int)]", lambda: m.lookup_batch(), reader.pairs, "lookup_batch"),
        ("dict(m.items())", lambda: dict(m.items()), reader.as_dict, "items"),
        (
            "update_batch(list, list)",
            lambda: m.update_batch(keys, values),
            lambda: update_batch(m, keys, values),
            "update_batch",
        ),
        ("per-CPU lookup_batch()", lambda: pc.lookup_batch(), pc_reader.pairs, None),
    ]
    figures = interleaved(n, [work for row in rows for work in (row[1], row[2])])
    c = c_figures(n)
    print(
        f"{n:,} int keys and values (per-CPU: {pc._ncpus} CPUs); CPU ns per element, "
        "median of 7 interleaved passes\n"
    )
    print(
        f"{'operation':34s} {'today':>7s} {'one pass':>9s} {'gain':>6s} {'C':>6s} "
        f"{'today/C':>8s} {'proto/C':>8s}"
    )
    for index, (label, _, _, c_key) in enumerate(rows):
        today, proto = figures[2 * index], figures[2 * index + 1]
        theirs = c.get(c_key or "", float("nan"))
        print(
            f"{label:34s} {today:7.0f} {proto:9.0f} {today / proto:5.1f}x {theirs:6.0f} "
            f"{theirs / today:7.2f}x {theirs / proto:7.2f}x"
        )
    m.close()
    pc.close()
    return 0


def c_figures(n: int) -> dict[str, float]:
    binary = Path(__file__).resolve().parent.parent / "build" / "libbpf_side"
    if not binary.exists():
        return {}
    out = subprocess.run([str(binary), "maps", str(n), "3"], capture_output=True, text=True)
    if out.returncode:
        return {}
    return {k: 1e9 / v for k, v in json.loads(out.stdout).items() if k != "ncpus"}


if __name__ == "__main__":
    sys.exit(main())
