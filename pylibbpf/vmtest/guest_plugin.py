"""The pytest plugin each guest loads (``-p pylibbpf.vmtest.guest_plugin``).

It writes one JSON line per event to ``$PYLIBBPF_VMTEST_RECORDS`` as the run goes (the
file is on the results directory the host shares), so the host shows progress, knows which
test was running when a guest hung, and keeps every result a guest produced before dying.
``$PYLIBBPF_VMTEST_SELECT`` names a file of node ids: only those run (the host's shard).
The same plugin lists node ids when the host collects (``--collect-only``) to plan shards.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import IO, Any

import pytest

_MAX_TEXT = 20000
_stream: IO[str] | None = None
_selected: set[str] | None = None
_exitstatus = 0


def _write(event: str, **fields: Any) -> None:
    if _stream is not None:
        _stream.write(json.dumps({"event": event, "t": round(time.time(), 2), **fields}) + "\n")
        _stream.flush()


def pytest_configure(config: pytest.Config) -> None:
    global _stream
    path = os.environ.get("PYLIBBPF_VMTEST_RECORDS")
    if path and _stream is None:
        _stream = open(path, "a", encoding="utf-8")  # noqa: SIM115 (lives for the session)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Everything is reported: leave without the interpreter's teardown, which frees every
    object the tests left behind (parsed kernel BTF: millions) and under TCG takes tens of
    seconds. Only in a guest (the records file is set) and only after the other plugins'
    unconfigure hooks (this one runs last)."""
    global _stream
    if _stream is None:
        return
    _write("exit", status=_exitstatus)
    _stream.close()
    _stream = None
    if os.environ.get("PYLIBBPF_VMTEST_FAST_EXIT") == "1":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exitstatus)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With a shard's selection, test modules holding none of its tests are not imported."""
    modules = _selected_modules(config)
    if modules is None or collection_path.suffix != ".py":
        return None
    return collection_path not in modules or None


def _selected_modules(config: pytest.Config) -> set[Path] | None:
    selection = _selection()
    if selection is None:
        return None
    return {config.rootpath / nodeid.split("::")[0] for nodeid in selection}


def _selection() -> set[str] | None:
    global _selected
    path = os.environ.get("PYLIBBPF_VMTEST_SELECT")
    if not path:
        return None
    if _selected is None:
        with open(path, encoding="utf-8") as file:
            _selected = set(file.read().splitlines())
    return _selected


@pytest.hookimpl(trylast=True)  # after -k/-m deselection
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    wanted = _selection()
    if wanted is not None:
        dropped = [item for item in items if item.nodeid not in wanted]
        items[:] = [item for item in items if item.nodeid in wanted]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
    _write("collected", count=len(items), nodeids=[item.nodeid for item in items])


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:  # an import error in a test module: the host must see it
        _write(
            "report",
            nodeid=report.nodeid,
            when="collect",
            outcome="failed",
            text=str(report.longrepr)[-_MAX_TEXT:],
            duration=0.0,
        )


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    _write("start", nodeid=nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    text = ""
    if report.skipped and isinstance(report.longrepr, tuple):
        text = str(report.longrepr[2]).removeprefix("Skipped: ")
    elif report.failed:
        text = report.longreprtext[-_MAX_TEXT:]
    fields: dict[str, Any] = {}
    if hasattr(report, "wasxfail"):
        fields["xfail"] = str(report.wasxfail)
    _write(
        "report",
        nodeid=report.nodeid,
        when=report.when,
        outcome=report.outcome,
        text=text,
        duration=round(report.duration, 3),
        **fields,
    )


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Also drops Hypothesis's plugin when no test imported Hypothesis: it has nothing to
    summarise then, and its summary would import all of Hypothesis (half a minute in a
    TCG guest) just to find that out."""
    global _exitstatus
    manager = session.config.pluginmanager
    if _stream is not None and "hypothesis" not in sys.modules:
        plugin = manager.get_plugin("hypothesispytest")
        if plugin is not None:
            manager.unregister(plugin)
    _exitstatus = int(exitstatus)
    _write("finish", exitstatus=_exitstatus)
