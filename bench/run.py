"""Benchmarks: pylibbpf against libbpf (C) and bcc (Python) in one run, as ratios.

    scripts/bench [--n 100000] [--reps 5] [--write]

Each implementation runs the same operations on a BPF_MAP_TYPE_HASH of ``n`` 8-byte keys
and 8-byte values, best of ``reps``: per-element update and lookup, and batch update and
lookup of all elements. A ratio is pylibbpf's speed divided by the other's (above 1:
pylibbpf is faster). ``--write`` stores the table in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pylibbpf as bpf
from pylibbpf import syscall

HERE = Path(__file__).resolve().parent
BUILD = HERE / "build"
OPS = ("update", "lookup", "update_batch", "lookup_batch")
Result = dict[str, float]


def bench_pylibbpf(n: int, reps: int) -> Result:
    keys = [struct.pack("<Q", i) for i in range(n)]
    values = [struct.pack("<Q", i * 3) for i in range(n)]
    packed_keys, packed_values = b"".join(keys), b"".join(values)
    best = dict.fromkeys(OPS, float("inf"))
    with bpf.Map.create(bpf.MapType.HASH, 8, 8, n, name="bench") as m:
        update, lookup = m.update, m.lookup

        def per_op_update() -> None:
            for k, v in zip(keys, values, strict=True):
                update(k, v)

        def per_op_lookup() -> None:
            for k in keys:
                lookup(k)

        runs: dict[str, Callable[[], object]] = {
            "update": per_op_update,
            "lookup": per_op_lookup,
            "update_batch": lambda: m.update_batch(packed_keys, packed_values),
            "lookup_batch": lambda: m.lookup_batch_raw(),
        }
        for _ in range(reps):
            for name, run in runs.items():
                start = time.perf_counter_ns()
                run()
                best[name] = min(best[name], (time.perf_counter_ns() - start) / n)
        assert m.lookup_batch_raw().count == n
        best["floor"] = _syscall_floor(m, keys, reps)
    return best


def _syscall_floor(m: bpf.Map, keys: list[bytes], reps: int) -> float:
    """Lookups with the key copy and the foreign call inlined in the loop: no Python
    function call per element. The ceiling any per-element Python API can reach."""
    ops = m._ops
    view, ref, call, nr = ops._kview, ops._ref, syscall._bpf_fast, syscall.NR_BPF
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter_ns()
        for k in keys:
            view[:] = k
            call(nr, 1, ref, 32)
        best = min(best, (time.perf_counter_ns() - start) / len(keys))
    return best


def bench_libbpf(n: int, reps: int) -> Result | str:
    if not Path("/usr/include/bpf/bpf.h").exists():
        return "libbpf-dev is not installed"
    BUILD.mkdir(exist_ok=True)
    binary = BUILD / "map_bench"
    source = HERE / "map_bench.c"
    if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
        subprocess.run(["gcc", "-O2", "-o", str(binary), str(source), "-lbpf"], check=True)
    out = subprocess.run([str(binary), str(n), str(reps)], capture_output=True, text=True)
    if out.returncode:
        return f"map_bench failed: {out.stderr.strip()}"
    return dict(json.loads(out.stdout))


def _bcc_headers() -> Path | None:
    """bcc compiles even map-only programs against kernel headers; for the running kernel
    there are none, so merge Debian's split headers package into one tree (a map
    definition does not depend on the header version)."""
    merged = BUILD / "bcc-headers"
    if (merged / "include").is_dir():
        return merged
    common = sorted(Path("/usr/src").glob("linux-headers-*-common"))
    if not common:
        return None
    arch = Path(str(common[-1]).replace("-common", "-amd64"))
    merged.mkdir(parents=True, exist_ok=True)
    for tree in (common[-1], arch):
        subprocess.run(["cp", "-rs", "--remove-destination", f"{tree}/.", str(merged)], check=True)
    return merged


def bench_bcc(n: int, reps: int) -> Result | str:
    return _bcc_script("bcc_map_bench.py", str(n), str(reps))


# --------------------------------------------------------------------------- BTF

_BTF_PROBE = """
import json, time, resource
import pylibbpf.btf as B, pylibbpf.syscall.kernel_btf
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
before = rss()
start = time.perf_counter()
btf = B.Btf.load_vmlinux()
assert btf.find("task_struct", B.Kind.STRUCT).id > 0
ms = (time.perf_counter() - start) * 1e3
print(json.dumps({"ms": ms, "rss_kib": rss() - before}))
"""


def _median_run(command: list[str], env: dict[str, str], runs: int, key: str = "ms") -> Result:
    samples = []
    for _ in range(runs):
        out = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
        samples.append(json.loads(out.stdout))
    samples.sort(key=lambda s: s[key])
    return dict(samples[len(samples) // 2])


def bench_btf(runs: int) -> tuple[Result, Result, Result | str]:
    """(pylibbpf cold, pylibbpf warm, libbpf): vmlinux ready for lookups, fresh processes."""
    import tempfile

    cache = tempfile.mkdtemp(prefix="pylibbpf-bench-")
    env = dict(os.environ, XDG_CACHE_HOME=cache)
    command = [sys.executable, "-c", _BTF_PROBE]
    colds = []
    for _ in range(runs):
        shutil.rmtree(Path(cache) / "pylibbpf", ignore_errors=True)
        colds.append(_median_run(command, env, 1))
    colds.sort(key=lambda s: s["ms"])
    warm = _median_run(command, env, runs)
    shutil.rmtree(cache, ignore_errors=True)
    libbpf: Result | str = "libbpf-dev is not installed"
    if Path("/usr/include/bpf/btf.h").exists():
        BUILD.mkdir(exist_ok=True)
        binary = BUILD / "btf_bench"
        subprocess.run(
            ["gcc", "-O2", "-o", str(binary), str(HERE / "btf_bench.c"), "-lbpf"], check=True
        )
        libbpf = _median_run([str(binary)], dict(os.environ), runs)
    return colds[len(colds) // 2], warm, libbpf


def btf_table(cold: Result, warm: Result, libbpf: Result | str) -> str:
    lines = [
        "vmlinux BTF ready for name lookups (load + first `find`) in a fresh process, median;",
        "ratio = libbpf time / pylibbpf time (above 1: pylibbpf faster).",
        "",
        "| case | pylibbpf ms | libbpf ms | ratio | RSS added (MiB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, ours in (("cold (no on-disk index)", cold), ("warm (on-disk index)", warm)):
        other = "n/a" if isinstance(libbpf, str) else f"{libbpf['ms']:.1f}"
        ratio = "n/a" if isinstance(libbpf, str) else f"{libbpf['ms'] / ours['ms']:.2f}x"
        lines.append(
            f"| {label} | {ours['ms']:.1f} | {other} | {ratio} | {ours['rss_kib'] / 1024:.1f} |"
        )
    if not isinstance(libbpf, str):
        lines.append(f"\nlibbpf added {libbpf['rss_kib'] / 1024:.1f} MiB of RSS.")
    return "\n".join(lines)


# --------------------------------------------------------------------------- objects

_OBJ_PROBE = """
import json, sys, time
from pylibbpf.loader import BpfObject
def once(path):
    start = time.perf_counter()
    obj = BpfObject.open(path)
    obj.load()
    elapsed = (time.perf_counter() - start) * 1e3
    obj.close()
    return elapsed
path, reps = sys.argv[1], int(sys.argv[2])
first = once(path)
print(json.dumps({"first": first, "repeated": min(once(path) for _ in range(reps))}))
"""


def _compile(source: Path, include: Path) -> Path:
    out = BUILD / (source.stem + ".o")
    multiarch = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True)
    subprocess.run(
        [
            "clang-19",
            "-O2",
            "-g",
            "-target",
            "bpf",
            "-D__TARGET_ARCH_x86",
            f"-I{include}",
            f"-I/usr/include/{multiarch.stdout.strip()}",
            "-c",
            str(source),
            "-o",
            str(out),
        ],
        check=True,
    )
    return out


def bench_objects(reps: int) -> list[tuple[str, Result, Result | str]]:
    """open + load of a non-CO-RE and a CO-RE object: pylibbpf vs libbpf, fresh processes."""
    BUILD.mkdir(exist_ok=True)
    header = BUILD / "vmlinux.h"
    if not header.exists():
        from pylibbpf.btf import Btf

        header.write_text(Btf.load_vmlinux().dump_c())
    loader = BUILD / "obj_bench"
    subprocess.run(
        ["gcc", "-O2", "-o", str(loader), str(HERE / "obj_bench.c"), "-lbpf"], check=True
    )
    rows: list[tuple[str, Result, Result | str]] = []
    for label, source in (
        ("XDP parser, no CO-RE", "xdp_parser.bpf.c"),
        ("CO-RE tracepoint, 3 maps, globals", "core_tp.bpf.c"),
    ):
        obj = _compile(HERE / source, BUILD)
        ours = _median_run(
            [sys.executable, "-c", _OBJ_PROBE, str(obj), str(reps)],
            dict(os.environ),
            3,
            key="first",
        )
        theirs: Result | str = _median_run(
            [str(loader), str(obj), str(reps)], dict(os.environ), 3, key="first"
        )
        rows.append((label, ours, theirs))
    return rows


def objects_table(rows: list[tuple[str, Result, Result | str]]) -> str:
    lines = [
        "open + load of a BPF object, ms (median of 3 fresh processes; 'repeated' is the",
        "best of further loads in the same process). Ratio = libbpf time / pylibbpf time.",
        "",
        "| object | pylibbpf first | libbpf first | ratio | pylibbpf repeated | "
        "libbpf repeated | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, ours, theirs in rows:
        if isinstance(theirs, str):
            lines.append(
                f"| {label} | {ours['first']:.1f} | n/a | n/a | "
                f"{ours['repeated']:.1f} | n/a | n/a |"
            )
            continue
        lines.append(
            f"| {label} | {ours['first']:.1f} | {theirs['first']:.1f} | "
            f"{theirs['first'] / ours['first']:.2f}x | {ours['repeated']:.1f} | "
            f"{theirs['repeated']:.1f} | {theirs['repeated'] / ours['repeated']:.2f}x |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- ring buffer

RING_RECORDS = 2_000_000


def bench_ringbuf(reps: int) -> tuple[Result, Result | str, Result | str]:
    """Drain rate of a pre-filled ring (records of 16 bytes): pylibbpf, libbpf in C, bcc."""
    from pylibbpf.loader import BpfObject
    from pylibbpf.ringbuf import RingBuffer

    BUILD.mkdir(exist_ok=True)
    obj_path = _compile(HERE / "ringbuf_producer.bpf.c", BUILD)
    packet = bytes(64)
    ours: Result = {"per_event": 0.0, "batch": 0.0}
    with BpfObject.open(obj_path) as obj:
        obj.load()
        produce, events = obj.programs["produce"], obj.maps["events"]
        counter = [0]

        def on_event(view: memoryview) -> None:
            counter[0] += 1

        def on_batch(records: list[Any]) -> None:
            counter[0] += len(records)

        for mode, ring in (
            ("per_event", RingBuffer(events, on_event)),
            ("batch", RingBuffer(events, batch=on_batch, record="<QQ")),
        ):
            for _ in range(reps):
                produce.test_run(packet, repeat=RING_RECORDS)
                counter[0] = 0
                start = time.perf_counter()
                ring.consume()
                elapsed = time.perf_counter() - start
                if counter[0] == RING_RECORDS:
                    ours[mode] = max(ours[mode], RING_RECORDS / elapsed)
            ring.close()
    binary = BUILD / "ringbuf_bench"
    subprocess.run(
        ["gcc", "-O2", "-o", str(binary), str(HERE / "ringbuf_bench.c"), "-lbpf"], check=True
    )
    out = subprocess.run(
        [str(binary), str(obj_path), str(RING_RECORDS), str(reps)], capture_output=True, text=True
    )
    theirs: Result | str = json.loads(out.stdout) if out.returncode == 0 else "C loader failed"
    bcc = _bcc_script("bcc_ringbuf_bench.py", "prefill", str(RING_RECORDS), str(reps))
    return ours, theirs, bcc


def _bcc_script(script: str, *args: str) -> Result | str:
    """Run a bcc baseline under the system Python (where python3-bpfcc lives)."""
    python = "/usr/bin/python3"
    if subprocess.run([python, "-c", "import bcc"], capture_output=True).returncode:
        return "python3-bpfcc is not installed"
    headers = _bcc_headers()
    if headers is None:
        return "no kernel headers for bcc (linux-headers-amd64)"
    env = dict(os.environ, BCC_KERNEL_SOURCE=str(headers))
    out = subprocess.run(
        [python, str(HERE / script), *args], capture_output=True, text=True, env=env, cwd=BUILD
    )
    if out.returncode:
        return f"bcc failed: {out.stderr.strip().splitlines()[-1:]}"
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


LIVE_SECONDS = 2.0


def bench_live(seconds: float = LIVE_SECONDS) -> dict[str, Result | str]:
    """A C loop calling getppid() as fast as it can on one CPU, a 4 MiB ring, and the
    consumer on the other: the rate it sustains and what the ring had to drop."""
    from pylibbpf.loader import BpfObject
    from pylibbpf.ringbuf import RingBuffer

    producer = BUILD / "getppid_loop"
    subprocess.run(["gcc", "-O2", "-o", str(producer), str(HERE / "getppid_loop.c")], check=True)
    obj_path = _compile(HERE / "live_producer.bpf.c", BUILD)
    results: dict[str, Result | str] = {}
    consumed = [0]

    def on_event(view: memoryview) -> None:
        consumed[0] += 1

    def on_batch(records: list[Any]) -> None:
        consumed[0] += len(records)

    for mode in ("per_event", "batch"):
        consumed[0] = 0
        child = subprocess.Popen([str(producer), str(seconds)], stdin=subprocess.PIPE)
        with BpfObject.open(obj_path) as obj:
            obj.variables["target_tgid"].value = child.pid
            obj.load()
            obj.attach()
            ring = (
                RingBuffer(obj.maps["events"], on_event)
                if mode == "per_event"
                else RingBuffer(obj.maps["events"], batch=on_batch, record="<QQ")
            )
            assert child.stdin is not None
            child.stdin.close()  # go
            start = time.perf_counter()
            while child.poll() is None:
                ring.poll(100)
            elapsed = time.perf_counter() - start
            ring.consume()
            ring.close()
            produced = obj.variables["produced"].value
            dropped = obj.variables["dropped"].value
        results[mode] = {
            "rate": (produced + dropped) / elapsed,
            "produced": produced,
            "dropped": dropped,
            "consumed": consumed[0],
        }
    results["bcc"] = _bcc_script("bcc_ringbuf_bench.py", "live", str(seconds), str(producer))
    return results


def ringbuf_table(
    ours: Result, theirs: Result | str, bcc: Result | str, live: dict[str, Result | str]
) -> str:
    lines = [
        f"Draining {RING_RECORDS:,} pre-filled 16-byte records (best of runs), events/s.",
        "Ratios: pylibbpf rate / other rate.",
        "",
        "| mode | pylibbpf events/s | libbpf (C) events/s | ratio vs C | bcc events/s "
        "| ratio vs bcc |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for mode, label in (("per_event", "callback per record"), ("batch", "batches (struct)")):
        row = f"| {label} | {ours[mode]:,.0f} |"
        for other in (theirs, bcc):
            if isinstance(other, str):
                row += " n/a | n/a |"
            else:
                rate = other["per_event"]
                row += f" {rate:,.0f} | {ours[mode] / rate:.2f}x |"
        lines.append(row)
    for other, name in ((theirs, "libbpf"), (bcc, "bcc")):
        if isinstance(other, str):
            lines.append(f"\n{name}: {other}")
    lines += [
        "",
        f"Live: a C loop calling getppid() for {LIVE_SECONDS:g} s on one CPU, each call a "
        "record in a 4 MiB ring, the consumer polling on the other CPU.",
        "",
        "| consumer | records/s produced | consumed | dropped (ring full) |",
        "|---|---:|---:|---:|",
    ]
    for key, label in (
        ("per_event", "pylibbpf, callback per record"),
        ("batch", "pylibbpf, batches"),
        ("bcc", "bcc, callback per record"),
    ):
        entry = live.get(key)
        if isinstance(entry, dict):
            lines.append(
                f"| {label} | {entry['rate']:,.0f} | {entry['consumed']:,} | {entry['dropped']:,} |"
            )
        else:
            lines.append(f"| {label} | {entry} | | |")
    return "\n".join(lines)


def table(n: int, ours: Result, libbpf: Result | str, bcc: Result | str) -> str:
    lines = [
        f"Hash map, {n:,} keys of 8 bytes, 8-byte values; ns per element (best of runs).",
        "Ratio = pylibbpf speed / other speed (above 1: pylibbpf faster).",
        "",
        "| operation | pylibbpf ns | libbpf (C) ns | ratio vs C | bcc ns | ratio vs bcc |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for op in OPS:
        row = [op, f"{ours[op]:.1f}"]
        for other in (libbpf, bcc):
            if isinstance(other, str):
                row += ["n/a", "n/a"]
            else:
                row += [f"{other[op]:.1f}", f"{other[op] / ours[op]:.2f}x"]
        lines.append("| " + " | ".join(row) + " |")
    if not isinstance(libbpf, str):
        lines.append(
            f"\nFloor: a lookup with the foreign call inlined in the loop (no Python call per "
            f"element) takes {ours['floor']:.1f} ns, {libbpf['lookup'] / ours['floor']:.2f}x "
            "C's speed: the most a per-element Python API can reach here."
        )
    for name, other in (("libbpf", libbpf), ("bcc", bcc)):
        if isinstance(other, str):
            lines.append(f"\n{name} column skipped: {other}")
    return "\n".join(lines)


def machine() -> str:
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{datetime.date.today()}, Linux {platform.release()}, {os.cpu_count()} CPUs ({cpu}), "
        f"Python {platform.python_version()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    parser.add_argument(
        "--only", choices=("maps", "btf", "objects", "ringbuf"), help="run one benchmark"
    )
    args = parser.parse_args()
    sections = []
    if args.only in (None, "ringbuf"):
        drained = bench_ringbuf(args.reps)
        sections.append(f"## Ring buffer\n\n{ringbuf_table(*drained, bench_live())}\n")
    if args.only == "ringbuf":
        return _report(machine(), sections, args.write)
    if args.only in (None, "objects"):
        sections.append(f"## Objects\n\n{objects_table(bench_objects(args.reps))}\n")
    if args.only == "objects":
        return _report(machine(), sections, args.write)
    if args.only in (None, "btf"):
        sections.append(f"## BTF\n\n{btf_table(*bench_btf(args.reps))}\n")
    if args.only == "btf":
        return _report(machine(), sections, args.write)
    if shutil.which("gcc") is None:
        print("gcc is needed for the libbpf baseline", file=sys.stderr)
    libbpf = bench_libbpf(args.n, args.reps)
    bcc = bench_bcc(args.n, args.reps)
    ours = bench_pylibbpf(args.n, args.reps)
    sections.insert(0, f"## Map operations\n\n{table(args.n, ours, libbpf, bcc)}\n")
    return _report(machine(), sections, args.write)


def _report(where: str, sections: list[str], write: bool) -> int:
    report = f"{where}\n\n" + "\n".join(sections)
    print(report)
    if write:
        header = "# Benchmark results\n\nProduced by `scripts/bench --write`.\n\n"
        (HERE / "RESULTS.md").write_text(header + report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
