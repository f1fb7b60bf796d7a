"""The active half of the pytest plugin: every collected test becomes one item per kernel,
the guests run in a background thread, and each item reports what its guest recorded, in
the order the results arrive."""

from __future__ import annotations

import queue
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest

from .kernels import Kernel, KernelError, default_cache, resolve
from .results import CaseResult, KernelResults, error_line, kernel_id, summary
from .runner import Options, Run, load_durations, plan
from .session import durations_path, finish
from .warmup import warm_up

# Options of the host's pytest that must not reach the guests' (flag, takes a value).
_HOST_ONLY = {
    "--bpf-kernels": True,
    "--bpf-jobs": True,
    "--bpf-shards": True,
    "--bpf-cpus": True,
    "--bpf-timeout": True,
    "--bpf-results": True,
    "--junitxml": True,
    "--junit-xml": True,
    "-n": True,
    "--numprocesses": True,
    "--dist": True,
    "--lf": False,
    "--last-failed": False,
    "--ff": False,
    "--failed-first": False,
    "--sw": False,
    "--stepwise": False,
    "--co": False,
    "--collect-only": False,
}


def guest_args(args: list[str] | tuple[str, ...]) -> list[str]:
    """The host's pytest arguments minus the host-only ones (the guests get the selection)."""
    kept: list[str] = []
    skip_value = False
    for arg in args:
        if skip_value:
            skip_value = False
            continue
        name = arg.split("=", 1)[0]
        if name in _HOST_ONLY:
            skip_value = _HOST_ONLY[name] and "=" not in arg
            continue
        kept.append(arg)
    return kept


class GuestOutcome(Exception):
    """A test failed in a guest; its text is the guest's report."""


class KernelItem(pytest.Item):
    """One collected test on one kernel; running it waits for the guest's verdict."""

    def __init__(
        self, *, original: pytest.Item, kernel: str, matrix: KernelMatrix, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.original = original.nodeid
        self.kernel = kernel
        self.matrix = matrix
        self._where = original.location

    def runtest(self) -> None:
        result = self.matrix.result(self.kernel, self.original)
        if result.outcome == "passed":
            return
        if result.outcome == "skipped":
            raise pytest.skip.Exception(result.text, _use_item_location=True)
        if result.outcome == "xfailed":
            pytest.xfail(result.text)
        raise GuestOutcome(result.text or result.outcome)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, GuestOutcome):
            text = str(excinfo.value)
            return f"[{self.kernel}] {error_line(text)}\n\n{text}"
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, self._where[1], self.name


class KernelMatrix:
    """Registered by ``plugin.py`` when ``--bpf-kernels`` is given."""

    def __init__(self, config: pytest.Config, names: list[str]) -> None:
        self.config = config
        self.names = names
        self.kernels: list[Kernel] = []
        self.selected: list[str] = []
        self.outcome: dict[str, KernelResults] = {}
        self.results: dict[tuple[str, str], CaseResult] = {}
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.results_dir: Path | None = None
        self.failure = ""

    @pytest.hookimpl(trylast=True)  # after -k/-m have deselected
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        try:
            self.kernels = [resolve(name) for name in self.names]
        except KernelError as error:
            raise pytest.UsageError(f"--bpf-kernels: {error}") from error
        self.selected = [item.nodeid for item in items]
        assert all(item.parent is not None for item in items)  # collected items have one
        items[:] = [
            KernelItem.from_parent(
                item.parent,  # type: ignore[arg-type]
                name=kernel_id(item.name, kernel.label),
                original=item,
                kernel=kernel.label,
                matrix=self,
            )
            for item in items
            for kernel in self.kernels
        ]

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            raise session.Interrupted(f"{session.testsfailed} errors during collection")
        if session.config.option.collectonly or not session.items:
            return True
        run = self._start()
        worker = threading.Thread(target=self._run, args=(run,), daemon=True)
        worker.start()
        waiting = {(i.kernel, i.original): i for i in session.items if isinstance(i, KernelItem)}
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        finished = False
        try:
            while waiting:
                kind, value = self.events.get()
                if kind == "log" and reporter is not None:
                    reporter.write_line(f"[vmtest] {value}")
                elif kind == "result" and value in waiting:
                    self._report(session, waiting.pop(value))
                elif kind == "done":
                    for item in list(waiting.values()):  # never reported: the guest died
                        self._report(session, item)
                    waiting.clear()
                if session.shouldfail or session.shouldstop:
                    break
            finished = not (session.shouldfail or session.shouldstop)
        finally:
            if not finished:  # -x, --maxfail or an interrupt: kill the guests
                run.stop()
            worker.join()
        if session.shouldfail:
            raise session.Failed(session.shouldfail)
        if session.shouldstop:
            raise session.Interrupted(session.shouldstop)
        return True

    def _report(self, session: pytest.Session, item: pytest.Item) -> None:
        item.config.hook.pytest_runtest_protocol(item=item, nextitem=None)

    def _start(self) -> Run:
        get = self.config.getoption
        self.results_dir = Path(get("bpf_results") or tempfile.mkdtemp(prefix="pylibbpf-vmtest-"))
        self.results_dir.mkdir(parents=True, exist_ok=True)
        options = Options(
            kernels=self.kernels,
            pytest_args=guest_args(self.config.invocation_params.args),
            results=self.results_dir.resolve(),
            cache=default_cache(),
            jobs=get("bpf_jobs"),
            shards=get("bpf_shards"),
            select=self.selected,
            timeout=get("bpf_timeout"),
            cwd=self.config.invocation_params.dir,
            cpus=get("bpf_cpus"),
        )
        self._durations = durations_path(options)
        self._options = options
        warm_up(options)  # bytecode for the guests (the host's items are the selection)
        units = plan(options, load_durations(self._durations))
        return Run(options, units, lambda m: self.events.put(("log", m)), self._on_result)

    def _run(self, run: Run) -> None:
        try:
            self.outcome = run.run()
            finish(self._options, self.outcome, self._durations)
        except Exception as error:  # no guest could start (say, QEMU is missing): tell why
            self.failure = f"{type(error).__name__}: {error}"
        finally:
            self.events.put(("done", None))

    def _on_result(self, kernel: Kernel, result: CaseResult) -> None:
        self.results[(kernel.label, result.nodeid)] = result
        self.events.put(("result", (kernel.label, result.nodeid)))

    def result(self, kernel: str, nodeid: str) -> CaseResult:
        found = self.results.get((kernel, nodeid))
        if found is not None:
            return found
        problems = self.outcome.get(kernel, KernelResults(kernel)).problems
        why = "\n".join(problems) or self.failure or "the guest reported nothing for it"
        return CaseResult(nodeid, "error", f"did not run in the {kernel} guest: {why}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.outcome:
            return
        terminalreporter.section("vmtest: per kernel")
        for kernel in self.outcome.values():
            terminalreporter.write_line(summary(kernel))
        terminalreporter.write_line(f"logs and junit-<kernel>.xml in {self.results_dir}")
