"""Benchmarks: pylibbpf against libbpf from C and bcc's Python, side by side, in one run.

    scripts/bench [--reps 5] [--n 100000] [--only maps,ring,...] [--live] [--write]
                  [--baseline] [--cpu N] [--pylibbpf DIR]

Every measurement is a fresh process pinned to one CPU (``taskset``): pylibbpf
(bench/pylibbpf_side.py), libbpf from C (bench/libbpf_side.c, linked against the
libbpf 1.5 static build in /work/wt/cache when there is one, else Debian's libbpf) and
bcc (bench/bcc_side.py under /usr/bin/python3). Each round runs every group on every
side, the sides' order rotating from round to round, so the sides see the same machine
load; a row's figure is the median over rounds. Inside a process, rates are elements
per CPU-second and times CPU-milliseconds: on a machine shared with other work, the
time others hold our CPU is not counted, and the ratios (pylibbpf / C, as the goals
read them) are what matters.

Whole-map batch reads are measured on one map per round that every side reads (the
``batchread`` processes; ``shared_map``): the kernel walks a hash map bucket by bucket
and each map has its own hash seed, so two maps of the same keys cost the kernel
differently. The ``*_ownmap`` rows keep the reads of each side's own map; a whole-map
``update_batch`` of that map's keys and values is measured on it too. The int and
record element rows are measured again the same way (``elemstep``: a C and a pylibbpf
process on one CPU, a pass of each by turns), as ``*_lockstep`` rows.

``--write`` stores RESULTS.md and results.json next to this file; ``--baseline`` also
keeps this run as baseline.json, the "before" column of later runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from report import BCC_PYTHON, GROUPS, Samples, machine, report

HERE = Path(__file__).resolve().parent
BUILD = HERE / "build"
CACHE = Path("/work/wt/cache")
LIBBPF_15 = CACHE / "libbpf-1.5"
BPFTOOL_15 = CACHE / "bpftool-1.5" / "sbin" / "bpftool"
RING_RECORDS = 2_000_000  # 16-byte records: 48 MiB of the 64 MiB ring
SMALL_RING = 1 << 18  # 256 KiB: ~10k records
SMALL_RECORDS, SMALL_CYCLES = 10_000, 100
LOCKSTEP_PASSES = 7  # measured reads of each form per round (and as many C reads per form)


# --------------------------------------------------------------------------- building


def libbpf_flags() -> tuple[list[str], list[str], str]:
    """(compile flags, link flags, description) for the C side."""
    if (LIBBPF_15 / "libbpf.a").exists():
        return (
            [f"-I{LIBBPF_15 / 'include'}"],
            [str(LIBBPF_15 / "libbpf.a"), "-lelf", "-lz", "-lpthread"],
            f"libbpf 1.5 (static, {LIBBPF_15})",
        )
    return [], ["-lbpf", "-lpthread"], "Debian's libbpf 1.1 (-lbpf)"


def build() -> dict[str, Path]:
    """Compile the C side, the BPF objects and vmlinux.h (kept in bench/build/)."""
    BUILD.mkdir(exist_ok=True)
    cflags, ldflags, _ = libbpf_flags()
    out = {"c": BUILD / "libbpf_side", "getppid": BUILD / "getppid_loop"}
    subprocess.run(
        ["gcc", "-O2", *cflags, "-o", str(out["c"]), str(HERE / "libbpf_side.c"), *ldflags],
        check=True,
    )
    subprocess.run(
        ["gcc", "-O2", "-o", str(out["getppid"]), str(HERE / "getppid_loop.c")], check=True
    )
    header = BUILD / "vmlinux.h"
    if not header.exists():
        with header.open("w") as f:
            subprocess.run(
                [bpftool(), "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"],
                stdout=f,
                check=True,
            )
    multiarch = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True)
    includes = [f"-I{BUILD}", f"-I/usr/include/{multiarch.stdout.strip()}", *cflags]
    for name, source, defines in (
        ("xdp", "xdp_parser.bpf.c", []),
        ("core", "core_tp.bpf.c", []),
        ("ring", "ringbuf_producer.bpf.c", []),
        ("smallring", "ringbuf_producer.bpf.c", [f"-DRING_BYTES={SMALL_RING}"]),
        ("live", "live_producer.bpf.c", []),
    ):
        out[name] = BUILD / f"{name}.bpf.o"
        subprocess.run(
            [
                "clang-19",
                "-O2",
                "-g",
                "-target",
                "bpf",
                "-D__TARGET_ARCH_x86",
                *defines,
                *includes,
                "-c",
                str(HERE / source),
                "-o",
                str(out[name]),
            ],
            check=True,
        )
    return out


def bpftool() -> str:
    return str(BPFTOOL_15) if BPFTOOL_15.exists() else "bpftool"


def bcc_env() -> dict[str, str] | str:
    """bcc compiles even map-only programs against kernel headers; for the running kernel
    there are none, so merge Debian's split headers package into one tree (a map or a
    ring definition does not depend on the header version)."""
    if subprocess.run([BCC_PYTHON, "-c", "import bcc"], capture_output=True).returncode:
        return "python3-bpfcc is not installed"
    merged = BUILD / "bcc-headers"
    if not (merged / "include").is_dir():
        common = sorted(Path("/usr/src").glob("linux-headers-*-common"))
        if not common:
            return "no kernel headers for bcc (linux-headers-amd64)"
        merged.mkdir(parents=True, exist_ok=True)
        for tree in (common[-1], Path(str(common[-1]).replace("-common", "-amd64"))):
            subprocess.run(
                ["cp", "-rs", "--remove-destination", f"{tree}/.", str(merged)], check=True
            )
    return dict(os.environ, BCC_KERNEL_SOURCE=str(merged))


# --------------------------------------------------------------------------- running


class Runner:
    """Runs one side's process for one group and files its results as samples."""

    def __init__(self, args: argparse.Namespace, built: dict[str, Path]) -> None:
        self.args = args
        self.built = built
        self.samples: Samples = {}
        self.errors: dict[str, str] = {}
        self.live: dict[str, Any] = {}
        # The tree measured: first on the path, and the working directory of every process
        # (``-c`` and ``-m`` put the working directory ahead of PYTHONPATH).
        self.tree = str(Path(args.pylibbpf).resolve())
        # Bytecode caches on, as an installed package has them (a session's
        # PYTHONDONTWRITEBYTECODE would have every import compile its sources again).
        self.py_env = dict(os.environ, PYTHONPATH=self.tree)
        self.py_env.pop("PYTHONDONTWRITEBYTECODE", None)
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(Path(self.tree) / "pylibbpf")],
            env=self.py_env,
            check=False,
        )
        probe = "import pylibbpf, sys; print(pylibbpf.__file__)"
        where = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            env=self.py_env,
            cwd=self.tree,
            check=True,
        ).stdout.strip()
        if not where.startswith(self.tree):
            raise SystemExit(f"bench: {self.tree} is not what imports as pylibbpf ({where})")
        self.bcc = bcc_env()
        self.index_dir = tempfile.mkdtemp(prefix="pylibbpf-bench-index-")
        self.pin: str | None = None  # the round's shared map (``shared_map``)

    def pinned(self, command: list[str]) -> list[str]:
        return ["taskset", "-c", str(self.args.cpu), *command]

    def run(
        self,
        side: str,
        command: list[str],
        env: dict[str, str] | None = None,
        stdout: Any = subprocess.PIPE,
    ) -> tuple[str, str, float]:
        """(stdout, stderr, CPU seconds of the child) of a pinned process."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = subprocess.run(
            self.pinned(command),
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=self.tree,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        spent = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if result.returncode:
            raise RuntimeError(f"{side}: {' '.join(command[:3])}…: {result.stderr.strip()[-400:]}")
        return result.stdout or "", result.stderr, spent

    def add(
        self,
        side: str,
        results: dict[str, float],
        rename: dict[str, str] | None = None,
    ) -> None:
        for key, value in results.items():
            row = (rename or {}).get(key, key)
            self.samples.setdefault(row, {}).setdefault(side, []).append(float(value))

    def side(self, side: str, group: str) -> None:
        try:
            getattr(self, f"{group}_{side}")()
        except (RuntimeError, ValueError, KeyError) as error:
            self.errors[f"{group}/{side}"] = str(error)

    def json_of(self, side: str, command: list[str], env: dict[str, str] | None) -> Any:
        return json.loads(self.run(side, command, env)[0].strip().splitlines()[-1])

    def py(self, *args: str) -> Any:
        return self.json_of(
            "pylibbpf", [sys.executable, str(HERE / "pylibbpf_side.py"), *args], self.py_env
        )

    def c(self, *args: str) -> Any:
        return self.json_of("c", [str(self.built["c"]), *args], None)

    def bcc_json(self, *args: str) -> Any:
        if isinstance(self.bcc, str):
            raise RuntimeError(self.bcc)
        return self.json_of("bcc", [BCC_PYTHON, str(HERE / "bcc_side.py"), *args], self.bcc)

    # maps
    @contextlib.contextmanager
    def shared_map(self) -> Iterator[None]:
        """A hash map of n keys (i -> 3i) made by the C side and pinned in a bpffs of our
        own (mounted on a temporary directory, so no other process's cleanup of
        /sys/fs/bpf meets it) for one round: both sides' batch reads walk it
        (``self.pin``). The kernel's batch walk goes bucket by bucket, and each map has
        its own hash seed and so its own layout: reading one map compares the libraries,
        not the layouts."""
        directory = tempfile.mkdtemp(prefix="pylibbpf-bench-bpffs-")
        subprocess.run(["mount", "-t", "bpf", "bpf", directory], check=True)
        pin = os.path.join(directory, "shared")
        try:
            subprocess.run([str(self.built["c"]), "mkmap", pin, str(self.args.n)], check=True)
            self.pin = pin
            yield
        finally:
            self.pin = None
            subprocess.run(["umount", directory], check=True)  # the pin goes with it
            os.rmdir(directory)

    def maps_pylibbpf(self) -> None:
        self.add("pylibbpf", self.py("maps", str(self.args.n), "3"))

    def maps_c(self) -> None:
        results = self.c("maps", str(self.args.n), "3")
        results.pop("ncpus", None)
        self.add("c", results)

    def maps_bcc(self) -> None:
        self.add("bcc", self.bcc_json("maps", str(self.args.n), "3"))

    # batch reads of the round's shared map
    def batchread_pylibbpf(self) -> None:
        """pylibbpf's and C's reads in lockstep (``lockstep``)."""
        self.lockstep()

    def batchread_c(self) -> None:
        pass  # read in lockstep with pylibbpf's

    def lockstep(self) -> None:
        """A C process and a pylibbpf process, both pinned to our CPU, read the shared map
        by turns, one whole-map read each at a time (a C read, then a pylibbpf read of one
        form, the order swapping every pass): a pair of reads milliseconds apart sees the
        same machine, where separate processes seconds apart did not (on this shared
        machine, the paired ratios of separate processes scattered by +-25 %). Whole-map
        batch writes of the same keys and values (``update_batch_lockstep``) go the same
        way: each side's own map made the kernel's share differ by up to 2x a round."""
        n = str(self.args.n)
        c_times, py_times = self._in_lockstep(
            [str(self.built["c"]), "batchstep", str(self.pin), n],
            ["batchstep", str(self.pin), n],
            lambda case: "update" if case.startswith("update") else "go",
        )
        self.add("c", {"lookup_batch": self.args.n / statistics.median(c_times["go"])})
        if "update" in c_times:
            self.add(
                "c", {"update_batch_lockstep": self.args.n / statistics.median(c_times["update"])}
            )
        self.add(
            "pylibbpf",
            {case: self.args.n / statistics.median(times) for case, times in py_times.items()},
        )

    # the element rows again, in lockstep
    def elemstep_pylibbpf(self) -> None:
        """The int and record element rows as the batch reads are measured: a C process
        and a pylibbpf process on our CPU, one pass of 1e5 operations each by turns."""
        n = str(self.args.n)
        c_times, py_times = self._in_lockstep(
            [str(self.built["c"]), "elemstep", n], ["elemstep", n], lambda case: case
        )
        for side, times in (("c", c_times), ("pylibbpf", py_times)):
            self.add(
                side,
                {
                    f"{case}_lockstep": self.args.n / statistics.median(spent)
                    for case, spent in times.items()
                },
            )

    def elemstep_c(self) -> None:
        pass  # in lockstep with pylibbpf's

    def elemstep_bcc(self) -> None:
        pass  # bcc's element rows are the maps group's

    def _in_lockstep(
        self, c_command: list[str], py_args: list[str], c_case: Callable[[str], str]
    ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
        """Run the pylibbpf side's cases (it names them on its first line) and the C side's
        ``c_case(case)`` by turns, the order swapping every pass; each side's CPU seconds
        per case."""
        c = self._stepper(c_command, None)
        py = self._stepper([sys.executable, str(HERE / "pylibbpf_side.py"), *py_args], self.py_env)
        try:
            assert py.stdout is not None
            cases = json.loads(py.stdout.readline() or "null")
            if not isinstance(cases, list):
                raise RuntimeError(f"pylibbpf {py_args[0]}: {_stderr_of(py)}")
            c_times: dict[str, list[float]] = {c_case(case): [] for case in cases}
            py_times: dict[str, list[float]] = {case: [] for case in cases}
            for step in range(-1, LOCKSTEP_PASSES):  # a warm-up pass, then the measured ones
                for case in cases:
                    turns = [(c, c_case(case)), (py, case)]
                    for process, what in turns if step % 2 else turns[::-1]:
                        spent = _step(process, what)
                        if step >= 0:
                            (c_times if process is c else py_times)[what].append(spent)
        finally:
            for process in (c, py):
                assert process.stdin is not None
                process.stdin.close()
                process.wait()
        return c_times, py_times

    def _stepper(self, command: list[str], env: dict[str, str] | None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.pinned(command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=tempfile.TemporaryFile(),
            text=True,
            env=env,
            cwd=self.tree,
        )

    def batchread_bcc(self) -> None:
        self.add("bcc", self.bcc_json("batchread", str(self.pin), str(self.args.n), "7"))

    # rings
    def ring_pylibbpf(self) -> None:
        results = self.py("ring", str(self.built["ring"]), str(RING_RECORDS), "3")
        self.add("pylibbpf", results, {"per_event": "ring_per_event", "batch": "ring_batch"})

    def ring_c(self) -> None:
        results = self.c("ring", str(self.built["ring"]), str(RING_RECORDS), "3")
        self.add("c", results, {"per_event": "ring_per_event"})

    def ring_bcc(self) -> None:
        results = self.bcc_json("ring", str((1 << 26) // 4096), str(RING_RECORDS), "3")
        self.add("bcc", results, {"per_event": "ring_per_event"})

    def smallring_pylibbpf(self) -> None:
        results = self.py(
            "smallring", str(self.built["smallring"]), str(SMALL_RECORDS), str(SMALL_CYCLES)
        )
        self.add("pylibbpf", results, {"per_event": "smallring_per_event"})

    def smallring_c(self) -> None:
        results = self.c(
            "smallring", str(self.built["smallring"]), str(SMALL_RECORDS), str(SMALL_CYCLES)
        )
        self.add("c", results, {"per_event": "smallring_per_event"})

    def smallring_bcc(self) -> None:
        results = self.bcc_json(
            "smallring", str(SMALL_RING // 4096), str(SMALL_RECORDS), str(SMALL_CYCLES)
        )
        self.add("bcc", results, {"per_event": "smallring_per_event"})

    # objects
    def objects_pylibbpf(self) -> None:
        for name in ("xdp", "core"):
            results = self.py("objects", str(self.built[name]), "10")
            self.add(
                "pylibbpf", results, {"first": f"{name}_first", "repeated": f"{name}_repeated"}
            )

    def objects_c(self) -> None:
        for name in ("xdp", "core"):
            results = self.c("objects", str(self.built[name]), "10")
            self.add("c", results, {"first": f"{name}_first", "repeated": f"{name}_repeated"})

    def objects_bcc(self) -> None:
        pass  # bcc compiles C at run time: not the same work

    # import
    def _importtime(
        self,
        side: str,
        python: str,
        module: str,
        env: dict[str, str] | None,
    ) -> float:
        stderr = self.run(side, [python, "-X", "importtime", "-c", f"import {module}"], env)[1]
        for line in reversed(stderr.splitlines()):
            parts = [p.strip() for p in line.split("|")]
            if len(parts) == 3 and parts[2] == module:
                return int(parts[1]) / 1e3
        raise RuntimeError(f"no importtime line for {module}")

    def _import_cpu(
        self,
        side: str,
        python: str,
        module: str,
        env: dict[str, str] | None,
    ) -> float:
        """CPU ms of ``python -c 'import module'`` beyond ``python -c pass``: unlike
        -X importtime (wall clock), not inflated by other processes on our CPU."""
        spent = self.run(side, [python, "-c", f"import {module}"], env)[2]
        return (spent - self.run(side, [python, "-c", "pass"], env)[2]) * 1e3

    def import_pylibbpf(self) -> None:
        for _ in range(3):
            ms = self._importtime("pylibbpf", sys.executable, "pylibbpf", self.py_env)
            cpu = self._import_cpu("pylibbpf", sys.executable, "pylibbpf", self.py_env)
            common = self._import_cpu(
                "pylibbpf", sys.executable, "pylibbpf as bpf; bpf.BpfObject", self.py_env
            )
            cli = self._import_cpu("pylibbpf", sys.executable, "pylibbpf.cli", self.py_env)
            self.add(
                "pylibbpf",
                {
                    "import": ms,
                    "import_cpu": cpu,
                    "import_object_cpu": common,
                    "import_cli_cpu": cli,
                },
            )

    def import_c(self) -> None:
        pass

    def import_bcc(self) -> None:
        if not isinstance(self.bcc, str):
            for _ in range(3):
                ms = self._importtime("bcc", BCC_PYTHON, "bcc", self.bcc)
                cpu = self._import_cpu("bcc", BCC_PYTHON, "bcc", self.bcc)
                self.add("bcc", {"import": ms, "import_cpu": cpu})

    # BTF
    def btf_pylibbpf(self) -> None:
        # The ``pylibbpf`` command as users type it: the console script pip made next to
        # this Python (no ``runpy``, ~3 ms), else ``python -m pylibbpf``.
        script = Path(sys.executable).with_name("pylibbpf")
        entry = [str(script)] if script.exists() else [sys.executable, "-m", "pylibbpf"]
        command = [*entry, "btf", "dump", "--format", "c"]
        with open(os.devnull, "w") as sink:
            spent = self.run("pylibbpf", command, self.py_env, stdout=sink)[2]
        self.add("pylibbpf", {"btfdump_cli": spent * 1e3, "btfdump_cli_debian": spent * 1e3})
        self.add("pylibbpf", self.py("dumpc"), {"ms": "dumpc"})
        shutil.rmtree(Path(self.index_dir) / "pylibbpf", ignore_errors=True)
        env = dict(self.py_env, XDG_CACHE_HOME=self.index_dir)
        cold = self.json_of(
            "pylibbpf", [sys.executable, str(HERE / "pylibbpf_side.py"), "btfload"], env
        )
        warm = self.json_of(
            "pylibbpf", [sys.executable, str(HERE / "pylibbpf_side.py"), "btfload"], env
        )
        self.add("pylibbpf", {"btfload_cold": cold["ms"], "btfload_warm": warm["ms"]})

    def btf_c(self) -> None:
        for key, tool in (("btfdump_cli", bpftool()), ("btfdump_debian", "bpftool")):
            command = [tool, "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"]
            with open(os.devnull, "w") as sink:
                spent = self.run("c", command, None, stdout=sink)[2]
            self.add("c", {key: spent * 1e3})
        self.add("c", self.c("btfload"), {"ms": "btfload"})

    def btf_bcc(self) -> None:
        pass

    # live ring (once, not pinned: the producer and the consumer need a CPU each)
    def run_live(self) -> None:
        seconds = "2"
        try:
            out = subprocess.run(
                [
                    sys.executable,
                    str(HERE / "pylibbpf_side.py"),
                    "live",
                    seconds,
                    str(self.built["getppid"]),
                    str(self.built["live"]),
                ],
                capture_output=True,
                text=True,
                env=self.py_env,
                check=True,
            )
            self.live.update(json.loads(out.stdout.strip().splitlines()[-1]))
            if not isinstance(self.bcc, str):
                out = subprocess.run(
                    [
                        BCC_PYTHON,
                        str(HERE / "bcc_side.py"),
                        "live",
                        seconds,
                        str(self.built["getppid"]),
                    ],
                    capture_output=True,
                    text=True,
                    env=self.bcc,
                    check=True,
                )
                self.live["bcc"] = json.loads(out.stdout.strip().splitlines()[-1])
        except subprocess.CalledProcessError as error:
            self.errors["live"] = error.stderr.strip()[-400:]


def _step(process: subprocess.Popen[str], what: str) -> float:
    """Ask a lockstep process for one read; its CPU seconds."""
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(what + "\n")
    process.stdin.flush()
    answer = process.stdout.readline()
    if not answer:
        raise RuntimeError(f"batchstep: {_stderr_of(process)}")
    return float(answer)


def _stderr_of(process: subprocess.Popen[str]) -> str:
    process.kill()
    process.wait()
    stderr: Any = process.stderr
    stderr.seek(0)
    return str(stderr.read().decode(errors="replace").strip()[-400:])


def run_rounds(runner: Runner, groups: list[str], reps: int) -> None:
    sides = ["pylibbpf", "c", "bcc"]
    # Warm the on-disk vmlinux index the CO-RE rows read, untimed.
    subprocess.run(
        [sys.executable, "-c", "import pylibbpf.btf as b; b.Btf.load_vmlinux()"],
        env=runner.py_env,
        cwd=runner.tree,
        check=True,
    )
    for round_no in range(reps):
        for group in groups:
            order = sides[round_no % 3 :] + sides[: round_no % 3]
            with runner.shared_map() if group == "batchread" else contextlib.nullcontext():
                for side in order:
                    runner.side(side, group)
        print(f"round {round_no + 1}/{reps} done", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000, help="map elements")
    parser.add_argument("--reps", type=int, default=5, help="rounds (processes per side)")
    parser.add_argument("--only", help=f"comma-separated groups of {', '.join(GROUPS)}")
    parser.add_argument("--cpu", type=int, default=(os.cpu_count() or 1) - 1)
    parser.add_argument("--pylibbpf", default=str(HERE.parent), help="tree to measure")
    parser.add_argument("--live", action="store_true", help="also the live getppid() ring")
    parser.add_argument("--write", action="store_true", help="update RESULTS.md")
    parser.add_argument("--baseline", action="store_true", help="this run is the 'before'")
    parser.add_argument("--from", dest="saved", help="only report a saved run (results.json)")
    args = parser.parse_args()
    if args.saved:
        saved = json.loads(Path(args.saved).read_text())
        text = report(
            saved["samples"],
            saved["live"],
            saved["errors"],
            saved["machine"],
            args.write,
            args.baseline,
        )
        print(text)
        return 0
    groups = args.only.split(",") if args.only else list(GROUPS)
    if unknown := set(groups) - set(GROUPS):
        parser.error(f"unknown groups {sorted(unknown)}")
    for implied in ("elemstep", "batchread"):  # the maps rows in lockstep
        if "maps" in groups and implied not in groups:
            groups.insert(groups.index("maps") + 1, implied)
    runner = Runner(args, build())
    started = time.monotonic()
    try:
        run_rounds(runner, groups, args.reps)
    except BaseException:
        shutil.rmtree(runner.index_dir, ignore_errors=True)
        raise
    if args.live:
        runner.run_live()
    where = machine(args.reps, libbpf_flags()[2], bpftool())
    (BUILD / "last-run.json").write_text(
        json.dumps(
            {
                "machine": where,
                "samples": runner.samples,
                "live": runner.live,
                "errors": runner.errors,
            },
            indent=1,
        )
    )
    print(report(runner.samples, runner.live, runner.errors, where, args.write, args.baseline))
    print(f"\n({time.monotonic() - started:.0f} s)", file=sys.stderr)
    shutil.rmtree(runner.index_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
