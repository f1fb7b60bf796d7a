"""How close to C a whole-map batch read into Python lists can get: the floor under the
``lookup_batch_lists()`` row of RESULTS.md.

A list read is the arrays read (the kernel writes keys and values into two ``array.array``
buffers: that row is at C's speed) plus making one Python int per key and per value.
This times, per read of a 1e5-element hash map in a fresh process pinned to one CPU, in
CPU time, each read's result used and dropped at once (as bench/run.py's reads do):
- ``arrays``: ``lookup_batch_arrays()``;
- ``lists``: ``lookup_batch_lists()``;
- ``ints only``: ``keys.tolist(); values.tolist()`` of arrays already read: CPython
  making the ints and nothing else (no syscall, no pylibbpf code), the least any list
  form can add to the arrays read;
- ``pairs``: ``lookup_batch()``, and ``pairs only``: ``list(zip(keys, values))`` of
  arrays already read, CPython making the ints and a tuple each;
- ``dict only``: ``dict(zip(keys, values))`` of arrays already read, the ints and a
  dict's entries (``dict(zip(*m.lookup_batch_lists()))`` is RESULTS.md's dict row).
The best a form could reach is then ``arrays / (arrays + its "only" row)`` of the arrays
row's ratio to C. The page faults are part of it: CPython unmaps the memory of ints it
freed (its 1 MiB arenas) when nothing else lives there, and the next read faults it in
again; a small object allocated while a result is alive can keep an arena mapped, so
how a loop is written moves this figure (holding each result until the next read gave
~360 faults instead of ~1,600 here).

    PYTHONPATH=. .venv/bin/python bench/batch_floor.py [ROUNDS]
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time

N = 100_000


def python_side() -> dict[str, float]:
    """Median ms per read of each form, and minor page faults per read of ``ints only``."""
    import pylibbpf as bpf
    from pylibbpf.gcpause import gc_paused

    m = bpf.Map.create(bpf.MapType.HASH, 8, 8, N, name="batch_floor", key_type=int, value_type=int)
    try:
        m.update_batch(list(range(N)), [k * 3 for k in range(N)])
        keys, values = m.lookup_batch_arrays()

        def ints_only() -> tuple[list[int], list[int]]:
            return keys.tolist(), values.tolist()

        def pairs_only() -> tuple[int, list[tuple[int, int]]]:
            return N, list(zip(keys, values, strict=True))

        def dict_only() -> tuple[int, dict[int, int]]:
            return N, dict(zip(keys, values, strict=True))

        def pairs() -> tuple[int, list[tuple[int, int]]]:
            return N, m.lookup_batch()

        out: dict[str, float] = {}
        for name, read in (
            ("arrays", m.lookup_batch_arrays),
            ("lists", m.lookup_batch_lists),
            ("ints_only", ints_only),
            ("pairs", pairs),
            ("pairs_only", pairs_only),
            ("dict_only", dict_only),
        ):
            times, faults = [], []
            for _ in range(15):
                fault0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                start = time.process_time()
                # (each form's data, used and dropped at once, as bench/run.py does; the
                # pairs and dict forms are timed in the GC's pauses, as pylibbpf's are)
                if len(gc_paused(read)[1]) != N:
                    raise SystemExit(f"{name}: short read")
                times.append((time.process_time() - start) * 1e3)
                faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - fault0)
            out[name] = statistics.median(times[3:])
            out[f"{name}_faults"] = statistics.median(faults[3:])
        return out
    finally:
        m.close()


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    samples: dict[str, list[float]] = {}
    for _ in range(rounds):
        command = ["taskset", "-c", "1", sys.executable, __file__, "--python"]
        for name, value in json.loads(subprocess.check_output(command)).items():
            samples.setdefault(name, []).append(value)
    med = {name: statistics.median(values) for name, values in samples.items()}
    print(f"{rounds} fresh processes, medians of per-read CPU ms (1e5 elements, 8-byte ints)")
    for name in ("arrays", "lists", "ints_only", "pairs", "pairs_only", "dict_only"):
        print(f"  {name:10} {med[name]:6.2f} ms  ({med[name + '_faults']:.0f} page faults)")
    for form, only in (("list", "ints_only"), ("pairs", "pairs_only"), ("dict", "dict_only")):
        best = med["arrays"] / (med["arrays"] + med[only])
        print(f"  a {form} form can reach at best {best:.2f} of the arrays form's ratio to C")


if __name__ == "__main__":
    if sys.argv[1:] == ["--python"]:
        print(json.dumps(python_side()))
    else:
        main()
