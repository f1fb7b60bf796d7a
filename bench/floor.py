"""How close to C a map element operation can get from Python: the floors under the
int element rows of RESULTS.md.

Side by side, fresh processes pinned to one CPU, alternating: libbpf from C
(``bench/build/libbpf_side maps``: ``bpf_map_lookup_elem``/``update_elem`` in a loop),
pylibbpf's ``m[k]``/``m[k] = v`` with Python ints, and two bare floors, loops that do
nothing else but write each key (and value) into the buffers with one item assignment
and enter the kernel, so it walks the same keys as C does:
- ``libc``: libc's ``syscall()`` through ctypes (``PyDLL``, ``use_errno``), the cheapest
  way any ctypes-based library calls ``bpf(2)``;
- ``direct``: pylibbpf's direct entry point for the buffers (``syscall/direct.py``, a
  stub called with no arguments), what ``m[k]`` uses on x86-64.

    PYTHONPATH=. .venv/bin/python bench/floor.py [ROUNDS]    (after bench/run.py built C)
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
N = 100_000


def python_side() -> dict[str, float]:
    """Rates (per CPU-second) of the natural forms and of the bare ctypes call."""
    import pylibbpf as bpf
    from pylibbpf.syscall import elem

    m = bpf.Map.create(bpf.MapType.HASH, 8, 8, N, name="floor", key_type=int, value_type=int)
    keys = list(range(N))

    def update() -> None:
        for k in keys:
            m[k] = k

    def lookup() -> None:
        for k in keys:
            m[k]

    ops = m._elems.any_ops()  # the pool's buffers: the calls below are the ones m[k] makes
    key, value = ops.key_dst, ops.value_dst  # typed memoryviews: [0] is the element
    call, nr, ref, size = elem._bpf_fast, elem.NR_BPF, ops.ref, elem.ATTR_SIZE
    direct_update, direct_lookup = ops.update, ops.lookup  # libc-bound where no stubs

    def libc_update() -> None:
        for k in keys:
            key[0] = value[0] = k
            call(nr, elem.UPDATE, ref, size)

    def libc_lookup() -> None:
        for k in keys:
            key[0] = k
            call(nr, elem.LOOKUP, ref, size)

    def bare_direct_update() -> None:
        for k in keys:
            key[0] = value[0] = k
            direct_update()

    def bare_direct_lookup() -> None:
        for k in keys:
            key[0] = k
            direct_lookup()

    out = {"direct": float(ops.direct)}
    for name, work in (
        ("int_update", update),
        ("int_lookup", lookup),
        ("libc_update", libc_update),
        ("libc_lookup", libc_lookup),
        ("direct_update", bare_direct_update),
        ("direct_lookup", bare_direct_lookup),
    ):
        work()
        samples = []
        for _ in range(5):
            start = time.process_time()
            work()
            samples.append(N / (time.process_time() - start))
        out[name] = statistics.median(samples)
    m.close()
    return out


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    c_side = HERE / "build" / "libbpf_side"
    if not c_side.exists():
        sys.exit("build the C side first: bench/run.py --only maps --reps 1")
    samples: dict[str, list[float]] = {}
    for _ in range(rounds):
        c = json.loads(subprocess.check_output(["taskset", "-c", "1", c_side, "maps", str(N), "5"]))
        py = json.loads(
            subprocess.check_output(["taskset", "-c", "1", sys.executable, __file__, "--python"])
        )
        for name in ("int_update", "int_lookup"):
            samples.setdefault(f"c_{name}", []).append(c[name])
        for name, value in py.items():
            samples.setdefault(name, []).append(value)
    if not samples.pop("direct")[0]:
        print("(no direct entry points on this machine: the direct rows are libc's)")
    med = {name: statistics.median(values) for name, values in samples.items()}
    print(f"{rounds} rounds, medians, elements per CPU-second (ratio to C)")
    for op in ("update", "lookup"):
        c = med[f"c_int_{op}"]
        print(f"  {op}: C {c / 1e3:7.0f} k/s ({1e9 / c:4.0f} ns)", end="")
        for row in (f"int_{op}", f"libc_{op}", f"direct_{op}"):
            rate = med[row]
            print(f" | {row} {rate / 1e3:5.0f} k/s ({1e9 / rate:4.0f} ns) {rate / c:.2f}x", end="")
        print()


if __name__ == "__main__":
    if sys.argv[1:] == ["--python"]:
        print(json.dumps(python_side()))
    else:
        main()
