"""Run pytest on several kernels at once: plan the guests (one or more shards per kernel),
keep ``jobs`` of them running, report progress, kill guests that overrun, and merge what
they recorded into per-kernel results.

Measured on a 2-core TCG host (vm-tests, 2 kernels): one vCPU per guest with the guests
side by side beats two vCPUs per guest one after the other; pytest in a guest is single
threaded, so a second vCPU mostly idles while it competes with the other guest for the host.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .guest import GUEST_RESULTS, Guest, GuestSpec
from .kernels import Kernel
from .results import CaseResult, KernelResults, Records

# Environment the guest inherits from the host, besides PYLIBBPF_*/PYTEST_* and --env.
PASSED_ENV = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHASHSEED",
    "TZ",
)
EXIT_NO_TESTS = 5  # pytest: nothing collected (a shard or a -k that selects nothing)


@dataclass
class Unit:
    """One guest: a kernel and the tests it runs (None: whatever the pytest args select)."""

    name: str
    kernel: Kernel
    select: list[str] | None = None
    estimate: float = 0.0


@dataclass
class Options:
    kernels: list[Kernel]
    pytest_args: list[str]
    results: Path
    cache: Path
    jobs: int = 0  # 0: one guest per host CPU
    shards: int = 0  # guests per kernel; 0: spread the jobs over the kernels
    select: list[str] | None = None  # node ids to run (the pytest plugin knows them)
    timeout: float = 1800.0
    cwd: Path = field(default_factory=Path.cwd)
    python: str = sys.executable
    env: dict[str, str] = field(default_factory=dict)
    writable: list[Path] = field(default_factory=list)
    cpus: int = 1
    memory: str = "2G"
    kernel_args: list[str] = field(default_factory=list)
    progress_every: float = 30.0


def host_cpus() -> int:
    return len(os.sched_getaffinity(0))


def plan(options: Options, durations: dict[str, float] | None = None) -> list[Unit]:
    """The guests to run, the longest expected first (so the last to start is short)."""
    jobs = options.jobs or host_cpus()
    shards = options.shards or max(1, jobs // max(1, len(options.kernels)))
    units: list[Unit] = []
    for kernel in options.kernels:
        if options.select is None or shards == 1:
            known = durations or {}
            cost = sum(known.get(f"{kernel.label}:{n}", 1.0) for n in options.select or [])
            units.append(Unit(kernel.label, kernel, options.select, cost))
            continue
        for index, (tests, cost) in enumerate(_shard(options.select, shards, kernel, durations)):
            units.append(Unit(f"{kernel.label}.{index + 1}", kernel, tests, cost))
    return sorted(units, key=lambda unit: -unit.estimate)


def _shard(
    nodeids: Sequence[str], shards: int, kernel: Kernel, durations: dict[str, float] | None
) -> list[tuple[list[str], float]]:
    """Split a kernel's tests into ``shards`` of about equal expected time, keeping a test
    module together where it fits (module fixtures are set up once per guest)."""
    known = durations or {}
    default = sum(known.values()) / len(known) if known else 1.0
    cost = {n: known.get(f"{kernel.label}:{n}", default) for n in nodeids}
    modules: dict[str, list[str]] = {}
    for nodeid in nodeids:
        modules.setdefault(nodeid.split("::")[0], []).append(nodeid)
    share = sum(cost.values()) / shards
    pieces: list[list[str]] = []
    for tests in modules.values():  # a module bigger than a share is cut into shares
        piece: list[str] = []
        for nodeid in tests:
            if piece and sum(cost[n] for n in piece) + cost[nodeid] > share:
                pieces.append(piece)
                piece = []
            piece.append(nodeid)
        pieces.append(piece)
    bins: list[tuple[list[str], float]] = [([], 0.0) for _ in range(shards)]
    for piece in sorted(pieces, key=lambda p: -sum(cost[n] for n in p)):
        index = min(range(shards), key=lambda i: bins[i][1])
        bins[index] = (bins[index][0] + piece, bins[index][1] + sum(cost[n] for n in piece))
    order = {nodeid: i for i, nodeid in enumerate(nodeids)}
    return [(sorted(tests, key=order.__getitem__), c) for tests, c in bins if tests]


class Run:
    """Runs the planned guests; ``on_result`` hears of every test as its guest reports it."""

    def __init__(
        self,
        options: Options,
        units: list[Unit],
        log: Callable[[str], None],
        on_result: Callable[[Kernel, CaseResult], None] | None = None,
    ) -> None:
        self.options = options
        self.units = units
        self.log = log
        self.on_result = on_result
        self.kernels = {k.label: KernelResults(k.label) for k in options.kernels}
        self.records = {u.name: Records(options.results / f"{u.name}.jsonl") for u in units}
        self.started = 0.0
        self.stopped = False

    def run(self) -> dict[str, KernelResults]:
        """Run every unit; a Ctrl-C or ``stop()`` kills the guests still running."""
        jobs = self.options.jobs or host_cpus()
        pending = list(self.units)
        running: dict[str, tuple[Unit, Guest]] = {}
        self.started = time.monotonic()
        last_progress = self.started
        try:
            while (pending and not self.stopped) or running:
                while pending and len(running) < jobs and not self.stopped:
                    unit = pending.pop(0)
                    running[unit.name] = (unit, self._start(unit))
                time.sleep(0.5)
                for name, (unit, guest) in list(running.items()):
                    self._collect(unit)
                    overrun = guest.elapsed > self.options.timeout
                    if guest.poll() is None and not overrun and not self.stopped:
                        continue
                    del running[name]
                    self._finish(unit, guest)
                if time.monotonic() - last_progress >= self.options.progress_every and running:
                    last_progress = time.monotonic()
                    self.log(self._progress(running))
        finally:
            for _, guest in running.values():
                guest.kill()
        return self.kernels

    def stop(self) -> None:
        """Kill the running guests and start no more (pytest -x, an interrupt)."""
        self.stopped = True

    def _start(self, unit: Unit) -> Guest:
        options = self.options
        env = {k: v for k, v in os.environ.items() if k in PASSED_ENV}
        env |= {k: v for k, v in os.environ.items() if k.startswith(("PYLIBBPF_", "PYTEST_"))}
        env |= options.env
        env |= {
            "PYLIBBPF_VMTEST_KERNEL": unit.kernel.label,
            "PYLIBBPF_VMTEST_RECORDS": f"{GUEST_RESULTS}/{unit.name}.jsonl",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",  # the log follows the run (and shows where a hang is)
            "PYLIBBPF_VMTEST_FAST_EXIT": "1",
        }
        if unit.select is not None:
            (options.results / f"{unit.name}.select").write_text("\n".join(unit.select) + "\n")
            env["PYLIBBPF_VMTEST_SELECT"] = f"{GUEST_RESULTS}/{unit.name}.select"
        if options.python != sys.executable:  # that Python may lack pylibbpf: lend ours
            ours = str(Path(__file__).resolve().parent.parent.parent)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), ours]))
        command = [
            options.python,
            "-m",
            "pytest",
            "-p",
            "pylibbpf.vmtest.guest_plugin",
            "-p",
            "no:cacheprovider",
            *options.pytest_args,
        ]
        spec = GuestSpec(
            name=unit.name,
            kernel=unit.kernel,
            results=options.results,
            command=command,
            cwd=options.cwd,
            env=env,
            writable=[Path(env.get("HOME", "/root")), options.cwd, *options.writable],
            cpus=options.cpus,
            memory=options.memory,
            python=options.python,
            kernel_args=options.kernel_args,
        )
        tests = f"{len(unit.select)} tests" if unit.select is not None else "its tests"
        self.log(f"{unit.name}: booting {unit.kernel.release} for {tests}")
        return Guest(spec, options.cache)

    def _collect(self, unit: Unit) -> None:
        for result in self.records[unit.name].update():
            self.kernels[unit.kernel.label].results[result.nodeid] = result
            if self.on_result is not None:
                self.on_result(unit.kernel, result)

    def _finish(self, unit: Unit, guest: Guest) -> None:
        timed_out = guest.poll() is None and not self.stopped
        guest.kill()
        self._collect(unit)
        records = self.records[unit.name]
        kernel = self.kernels[unit.kernel.label]
        kernel.elapsed = max(kernel.elapsed, guest.elapsed)
        status = guest.status()
        mine = set(unit.select if unit.select is not None else records.nodeids)
        done = len([n for n in records.results if n in mine])
        problem = ""
        if self.stopped:
            problem = f"{unit.name}: stopped" if status is None else ""
        elif timed_out:
            problem = f"{unit.name}: killed after {guest.elapsed:.0f} s (--timeout)"
            if records.running:
                problem += f" while running {records.running}"
                self._record(unit, CaseResult(records.running, "error", problem))
        elif status is None:
            tail = _tail(guest.spec.path("console"), 15)
            problem = f"{unit.name}: the guest stopped without a test status; console:\n{tail}"
        elif status not in (0, 1, EXIT_NO_TESTS) or records.exitstatus is None:
            log = _tail(guest.spec.path("log"), 25)
            problem = f"{unit.name}: pytest exited with status {status}:\n{log}"
        if problem:
            kernel.problems.append(problem)
            if records.collected is not None and records.collected > done:
                kernel.problems[-1] += f"\n({records.collected - done} tests did not run)"
        result = "ok" if not problem and status in (0, EXIT_NO_TESTS) else "FAILED"
        self.log(f"{unit.name}: {result}, {done} tests in {guest.elapsed:.0f} s")
        if problem:
            self.log(problem)

    def _record(self, unit: Unit, result: CaseResult) -> None:
        self.kernels[unit.kernel.label].results[result.nodeid] = result
        if self.on_result is not None:
            self.on_result(unit.kernel, result)

    def _progress(self, running: dict[str, tuple[Unit, Guest]]) -> str:
        parts = []
        for name, (_, guest) in running.items():
            records = self.records[name]
            if records.collected is None:
                state = "collecting" if guest.spec.path("log").exists() else "booting"
                parts.append(f"{name} {state} ({guest.elapsed:.0f} s)")
                continue
            failed = sum(r.outcome in ("failed", "error") for r in records.results.values())
            parts.append(
                f"{name} {len(records.results)}/{records.collected}"
                + (f" ({failed} failed)" if failed else "")
            )
        return f"{time.monotonic() - self.started:.0f} s: " + ", ".join(parts)


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(nothing)"
    return "\n".join("    " + line for line in text.rstrip().splitlines()[-lines:])


def load_durations(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}


def save_durations(path: Path, kernels: dict[str, KernelResults]) -> None:
    """Per-test times of this run, for the next run's shards (keyed kernel:nodeid)."""
    data = load_durations(path)
    for kernel in kernels.values():
        for result in kernel.results.values():
            data[f"{kernel.label}:{result.nodeid}"] = round(result.duration, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}")
    tmp.write_text(json.dumps(data, sort_keys=True))
    tmp.replace(path)
