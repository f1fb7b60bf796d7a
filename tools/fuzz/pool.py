"""A pool of long-lived forked workers, each running many inputs under limits.

Forking once per input is slow; a worker instead runs batches of inputs and is replaced
when it dies or after a number of inputs (so caches and leaks do not pile up). Limits:
a CPU-time alarm per input raises ``InputTimeout`` inside the worker (the traceback
shows where it was spinning); an address-space rlimit turns runaway allocations into
MemoryError; a wall-clock watchdog in the parent kills a worker stuck in C code after
asking faulthandler for its Python stack; a worker killed by a signal (a segfault in
ctypes) is reported with the stack faulthandler wrote. Each worker writes the index of
the input it is running to shared memory, so the parent knows which input killed it
and regenerates it (inputs are a pure function of their index).
"""

from __future__ import annotations

import contextlib
import faulthandler
import mmap
import os
import re
import resource
import signal
import struct
import sys
import time
import traceback
from collections import Counter, deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, Pipe, wait
from pathlib import Path
from typing import Any

from .campaign import Campaign, Input
from .targets import Defect, InputTimeout, Runner

_SLOT = struct.Struct("qd")  # input index (-1: idle), start time (monotonic)
_CPU_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0)


@dataclass
class Limits:
    cpu_seconds: float = 5.0  # per input: over it is a "timeout" defect
    wall_seconds: float = 300.0  # per input: over it the worker is killed ("hang")
    memory_mb: int = 256  # address space a worker may add to what it starts with
    batch: int = 8  # a worker that dies loses the counts of its batch so far
    recycle: int = 3000  # inputs per worker before it is replaced


@dataclass
class DefectRecord:
    signature: str
    kind: str
    exc_type: str
    frame: str
    step: str
    message: str
    trace: str
    first_index: int
    seed: str
    mutators: list[str]
    input_kind: str
    count: int = 0
    file: str = ""


@dataclass
class Tally:
    """Counts one worker sends per batch and the parent adds up."""

    outcomes: Counter[str] = field(default_factory=Counter)  # ok / error / defect / lost
    steps: dict[str, Counter[str]] = field(default_factory=dict)  # step -> outcomes
    step_cpu: Counter[str] = field(default_factory=Counter)  # step -> CPU seconds
    mutators: Counter[str] = field(default_factory=Counter)
    mutators_in_defects: Counter[str] = field(default_factory=Counter)
    defect_kinds: Counter[str] = field(default_factory=Counter)
    cpu_buckets: Counter[str] = field(default_factory=Counter)
    slowest_cpu: float = 0.0

    def add(self, other: Tally) -> None:
        self.outcomes.update(other.outcomes)
        for step, counter in other.steps.items():
            self.steps.setdefault(step, Counter()).update(counter)
        self.step_cpu.update(other.step_cpu)
        self.mutators.update(other.mutators)
        self.mutators_in_defects.update(other.mutators_in_defects)
        self.defect_kinds.update(other.defect_kinds)
        self.cpu_buckets.update(other.cpu_buckets)
        self.slowest_cpu = max(self.slowest_cpu, other.slowest_cpu)

    @property
    def inputs(self) -> int:
        return sum(self.outcomes.values())


@dataclass
class Stats(Tally):
    started: float = field(default_factory=time.monotonic)
    defects: dict[str, DefectRecord] = field(default_factory=dict)
    workers_started: int = 0

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _bucket(seconds: float) -> str:
    for limit in _CPU_BUCKETS:
        if seconds < limit:
            return f"<{limit:g}s"
    return f">={_CPU_BUCKETS[-1]:g}s"


# --------------------------------------------------------------------------- the worker


def _worker(
    conn: Connection,
    slots: mmap.mmap,
    slot: int,
    campaign: Campaign,
    runner: Runner,
    limits: Limits,
    fault_path: Path,
) -> None:
    """A worker's life: run batches until told to stop. Never returns."""
    fault_file = open(fault_path, "w")  # noqa: SIM115 - lives as long as the process
    faulthandler.enable(fault_file)
    faulthandler.register(signal.SIGUSR1, fault_file)
    with contextlib.suppress(OSError):
        os.nice(0)
    size = _vm_size()
    if limits.memory_mb and size:
        limit = size + limits.memory_mb * (1 << 20)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    def alarm(_signum: int, _frame: Any) -> None:
        raise InputTimeout(f"input used more than {limits.cpu_seconds:g} s of CPU time")

    signal.signal(signal.SIGPROF, alarm)
    sys.setrecursionlimit(1000)
    reported: set[str] = set()
    while True:
        task = conn.recv()
        if task is None:
            os._exit(0)
        start, count = task
        tally = Tally()
        processed = 0
        retire = False
        for index in range(start, start + count):
            if retire:
                break
            processed += 1
            _SLOT.pack_into(slots, slot * _SLOT.size, index, time.monotonic())
            try:
                item = campaign.generate(index)
            except Exception as error:  # a fuzzer bug: reported, never retried forever
                tally.outcomes["defect"] += 1
                tally.defect_kinds["harness"] += 1
                defect = Defect(
                    "generate", "harness", type(error).__name__, "mutators", str(error),
                    traceback.format_exc(),
                )  # fmt: skip
                conn.send(("defect", index, "?", "?", [], [_plain(defect)], b""))
                continue
            cpu = time.process_time()
            result = None
            try:
                signal.setitimer(signal.ITIMER_PROF, limits.cpu_seconds)
                try:
                    result = runner.run(item.kind, item.data)
                finally:
                    signal.setitimer(signal.ITIMER_PROF, 0)
            except InputTimeout:  # fired between the input's end and the alarm's reset
                pass
            spent = time.process_time() - cpu
            _SLOT.pack_into(slots, slot * _SLOT.size, -1, 0.0)
            if result is None:
                tally.outcomes["lost"] += 1
                continue
            tally.slowest_cpu = max(tally.slowest_cpu, spent)
            tally.cpu_buckets[_bucket(spent)] += 1
            tally.outcomes[result.outcome] += 1
            for step, outcome in result.steps.items():
                tally.steps.setdefault(step, Counter())[outcome] += 1
            tally.step_cpu.update(result.cpu)
            tally.mutators.update(item.mutators)
            if result.defects:
                # After a MemoryError the heap may stay fragmented near the limit:
                # start afresh rather than fail the next inputs for it.
                retire = any(d.kind == "memory" for d in result.defects)
                tally.mutators_in_defects.update(item.mutators)
                tally.defect_kinds.update({d.kind for d in result.defects})
                fresh = [d for d in result.defects if d.signature not in reported]
                reported.update(d.signature for d in fresh)
                defects = [_plain(d) for d in result.defects]
                data = item.data if fresh else b""
                conn.send(("defect", index, item.kind, item.seed, item.mutators, defects, data))
        conn.send(("batch", start, count, processed, retire, tally))
        if retire:
            conn.close()
            os._exit(0)


def _plain(defect: Defect) -> dict[str, str]:
    return dict(defect.__dict__)


def _vm_size() -> int:
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


# --------------------------------------------------------------------------- the parent


@dataclass
class _Worker:
    pid: int
    conn: Connection
    slot: int
    fault_path: Path
    task: tuple[int, int] | None = None
    done: int = 0
    hung: bool = False


class Pool:
    def __init__(
        self, campaign: Campaign, runner: Runner, workers: int, limits: Limits, out: Path
    ) -> None:
        self.campaign = campaign
        self.runner = runner
        self.size = workers
        self.limits = limits
        self.out = out
        (out / "defects").mkdir(parents=True, exist_ok=True)
        (out / "tmp").mkdir(parents=True, exist_ok=True)
        self.slots = mmap.mmap(-1, _SLOT.size * max(workers, 1) * 4)
        self.workers: dict[int, _Worker] = {}
        self.stats = Stats()
        self.queue: deque[tuple[int, int]] = deque()
        self._free_slots = list(range(max(workers, 1) * 4))
        self._idle_deaths = 0

    def _spawn(self) -> None:
        slot = self._free_slots.pop()
        _SLOT.pack_into(self.slots, slot * _SLOT.size, -1, 0.0)
        fault_path = self.out / "tmp" / f"fault-{os.getpid()}-{self.stats.workers_started}.txt"
        parent, child = Pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                parent.close()
                _worker(
                    child, self.slots, slot, self.campaign, self.runner, self.limits, fault_path
                )
            except BaseException:
                with contextlib.suppress(BaseException), open(fault_path, "a") as fault:
                    traceback.print_exc(file=fault)
            finally:
                os._exit(70)
        child.close()
        self.stats.workers_started += 1
        self.workers[pid] = _Worker(pid, parent, slot, fault_path)

    def run(
        self,
        inputs: int | None,
        seconds: float | None,
        first: int = 0,
        progress: float = 0.0,
        on_progress: Any = None,
    ) -> Stats:
        next_index = first
        end_index = first + inputs if inputs is not None else None
        deadline = time.monotonic() + seconds if seconds is not None else None
        last_progress = time.monotonic()
        for _ in range(self.size):
            self._spawn()
        while True:
            issuing = (end_index is None or next_index < end_index) and (
                deadline is None or time.monotonic() < deadline
            )
            for worker in list(self.workers.values()):
                if worker.task is not None:
                    continue
                if worker.done >= self.limits.recycle:
                    self._retire(worker)
                    self._spawn()
                    continue
                if self.queue:
                    task = self.queue.popleft()
                elif issuing:
                    count = self.limits.batch
                    if end_index is not None:
                        count = min(count, end_index - next_index)
                    task = (next_index, count)
                    next_index += count
                else:
                    continue
                worker.conn.send(task)
                worker.task = task
            if not any(w.task for w in self.workers.values()) and not self.queue and not issuing:
                break
            ready = wait([w.conn for w in self.workers.values()], timeout=0.5)
            for conn in ready:
                worker = next(w for w in self.workers.values() if w.conn is conn)
                assert isinstance(conn, Connection)
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    self._died(worker)
                    continue
                self._handle(worker, message)
            self._watchdog()
            if progress and on_progress and time.monotonic() - last_progress >= progress:
                last_progress = time.monotonic()
                on_progress(self.stats)
        for worker in list(self.workers.values()):
            self._retire(worker)
        return self.stats

    # ----------------------------------------------------------------- messages

    def _handle(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        if message[0] == "defect":
            _, index, kind, seed, mutators, defects, data = message
            for defect in defects:
                self._record(Defect(**defect), index, kind, seed, mutators, data)
            return
        _, start, count, processed, retire, tally = message
        self.stats.add(tally)
        worker.done += processed
        if processed < count:
            self.queue.append((start + processed, count - processed))
        if worker.task is not None and worker.task[0] == start:
            worker.task = None
        if retire:
            self._retire(worker, tell=False)
            self._spawn()

    def _record(
        self, defect: Defect, index: int, kind: str, seed: str, mutators: list[str], data: bytes
    ) -> None:
        record = self.stats.defects.get(defect.signature)
        if record is None:
            record = DefectRecord(
                defect.signature,
                defect.kind,
                defect.exc_type,
                defect.frame,
                defect.step,
                defect.message,
                defect.trace,
                index,
                seed,
                list(mutators),
                kind,
            )
            self.stats.defects[defect.signature] = record
        record.count += 1
        if not record.file:
            record.file = self._save(record, data)

    def _save(self, record: DefectRecord, data: bytes) -> str:
        import hashlib
        import json

        name = hashlib.sha256(record.signature.encode()).hexdigest()[:12]
        base = self.out / "defects" / name
        if data:
            base.with_suffix(".bin").write_bytes(data)
            record.file = str(base.with_suffix(".bin"))
        base.with_suffix(".json").write_text(json.dumps(record.__dict__, indent=1))
        return record.file

    # ----------------------------------------------------------------- deaths

    def _current(self, worker: _Worker) -> tuple[int, float]:
        index, start = _SLOT.unpack_from(self.slots, worker.slot * _SLOT.size)
        return int(index), float(start)

    def _watchdog(self) -> None:
        now = time.monotonic()
        for worker in self.workers.values():
            index, start = self._current(worker)
            if index >= 0 and not worker.hung and now - start > self.limits.wall_seconds:
                worker.hung = True
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGUSR1)  # faulthandler: where is it stuck?
                time.sleep(0.3)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGKILL)

    def _died(self, worker: _Worker) -> None:
        _, status = os.waitpid(worker.pid, 0)
        index, _ = self._current(worker)
        del self.workers[worker.pid]
        worker.conn.close()
        self._free_slots.append(worker.slot)
        fault = ""
        with contextlib.suppress(OSError):
            fault = worker.fault_path.read_text()
            worker.fault_path.unlink()
        if worker.hung:
            kind, what = "hang", "killed"
        elif os.WIFSIGNALED(status):
            kind, what = "signal", signal.Signals(os.WTERMSIG(status)).name
        else:
            kind, what = "exit", f"exit {os.WEXITSTATUS(status)}"
        if index >= 0:
            try:
                item: Input = self.campaign.generate(index)
            except Exception:
                item = Input(index, "?", "?", b"", [])
            defect = Defect("?", kind, what, _fault_frame(fault), f"worker {what}", fault[-6000:])
            self._record(defect, index, item.kind, item.seed, item.mutators, item.data)
            self.stats.outcomes["defect"] += 1
            self.stats.defect_kinds[kind] += 1
            self.stats.mutators.update(item.mutators)
            self.stats.mutators_in_defects.update(item.mutators)
        if worker.task is not None:
            start, count = worker.task
            resume = max(index + 1, start) if index >= 0 else start
            # The batch's inputs before the fatal one ran, but their counts died with it.
            self.stats.outcomes["lost"] += resume - start - (1 if index >= 0 else 0)
            if index < 0:
                self._idle_deaths += 1
                if self._idle_deaths > 20:
                    raise RuntimeError(f"fuzz workers keep dying between inputs:\n{fault}")
            if resume < start + count:
                self.queue.append((resume, start + count - resume))
        self._spawn()

    def _retire(self, worker: _Worker, tell: bool = True) -> None:
        if tell:
            with contextlib.suppress(OSError):
                worker.conn.send(None)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(worker.pid, 0)
        worker.conn.close()
        with contextlib.suppress(OSError):
            worker.fault_path.unlink()
        self._free_slots.append(worker.slot)
        del self.workers[worker.pid]


_FAULT_LINE = re.compile(r'File "([^"]+)", line \d+,? in (\S+)')


def _fault_frame(fault: str) -> str:
    """The innermost pylibbpf frame of a faulthandler dump (most recent call first) or
    of a Python traceback (most recent call last)."""
    from .targets import PACKAGE_DIR

    frames = _FAULT_LINE.findall(fault)
    if "most recent call last" in fault:
        frames.reverse()
    for path, function in frames:
        if path.startswith(PACKAGE_DIR + os.sep):
            return f"{os.path.relpath(path, PACKAGE_DIR)}:{function}"
    return "?"
