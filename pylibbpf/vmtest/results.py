"""What the guests reported: per-test outcomes read from their record files, merged per
kernel, summarised (with skip reasons) and written as one JUnit XML file per kernel."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


def kernel_id(name: str, label: str) -> str:
    """A test's name on one kernel, as pytest writes parameters: test_x[6.1], test_y[a-6.1]."""
    if name.endswith("]") and "[" in name:
        return f"{name[:-1]}-{label}]"
    return f"{name}[{label}]"


@dataclass
class CaseResult:
    nodeid: str
    outcome: str  # passed failed error skipped xfailed xpassed
    text: str = ""  # the skip reason or the failure
    duration: float = 0.0


@dataclass
class Records:
    """One guest's record file, read as it grows."""

    path: Path
    collected: int | None = None
    nodeids: list[str] = field(default_factory=list)
    running: str | None = None  # the test started and not yet reported
    exitstatus: int | None = None
    results: dict[str, CaseResult] = field(default_factory=dict)
    _offset: int = 0

    def update(self) -> list[CaseResult]:
        """Read what was appended since the last call; returns the tests finished since."""
        try:
            with self.path.open("rb") as file:
                file.seek(self._offset)
                data = file.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1  # a line the guest is still writing waits for next time
        self._offset += end
        finished = []
        for line in data[:end].splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            result = self._apply(event)
            if result is not None:
                finished.append(result)
        return finished

    def _apply(self, event: dict[str, object]) -> CaseResult | None:
        kind = event.get("event")
        if kind == "collected":
            self.collected = int(event["count"])  # type: ignore[call-overload]
            self.nodeids = [str(n) for n in event.get("nodeids", [])]  # type: ignore[attr-defined]
        elif kind == "start":
            self.running = str(event["nodeid"])
        elif kind == "finish":
            self.exitstatus = int(event["exitstatus"])  # type: ignore[call-overload]
        elif kind == "report":
            return self._report(event)
        return None

    def _report(self, event: dict[str, object]) -> CaseResult | None:
        nodeid, when, outcome = str(event["nodeid"]), event["when"], event["outcome"]
        text, duration = str(event.get("text", "")), float(event.get("duration", 0.0))  # type: ignore[arg-type]
        result = self.results.get(nodeid) or CaseResult(nodeid, "passed")
        result.duration += duration
        self.results[nodeid] = result
        if outcome == "failed":
            result.outcome = "failed" if when == "call" else "error"
            if when == "teardown" and result.text:
                text = f"{result.text}\n--- teardown ---\n{text}"
            result.text = text
        elif outcome == "skipped" and result.outcome == "passed":
            result.outcome = "xfailed" if "xfail" in event else "skipped"
            result.text = str(event.get("xfail") or text)
        elif outcome == "passed" and when == "call" and "xfail" in event:
            result.outcome = "xpassed"
        if when in ("teardown", "collect"):
            self.running = None
            return result
        return None


@dataclass
class KernelResults:
    """Every guest's results for one kernel, and what went wrong with the guests."""

    label: str
    results: dict[str, CaseResult] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # killed, crashed, pytest errors
    elapsed: float = 0.0  # the longest guest of this kernel

    @property
    def failed(self) -> list[CaseResult]:
        return [r for r in self.results.values() if r.outcome in ("failed", "error", "xpassed")]

    @property
    def ok(self) -> bool:
        return not self.problems and not self.failed

    def counts(self) -> Counter[str]:
        return Counter(result.outcome for result in self.results.values())


def summary(kernel: KernelResults) -> str:
    """``6.1: 300 passed, 2 failed, 40 skipped (312 s)`` then skip reasons and failures."""
    counts = kernel.counts()
    order = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
    parts = [f"{counts[name]} {name}" for name in order if counts[name] or name == "passed"]
    lines = [f"{kernel.label}: {', '.join(parts)} ({kernel.elapsed:.0f} s)"]
    reasons = Counter(
        _first_line(r.text) for r in kernel.results.values() if r.outcome == "skipped"
    )
    lines += [f"    skipped x{n}: {reason}" for reason, n in reasons.most_common()]
    for result in kernel.failed:
        lines.append(f"    {result.outcome.upper()} {result.nodeid}: {error_line(result.text)}")
    lines += [f"    GUEST {problem}" for problem in kernel.problems]
    return "\n".join(lines)


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:200]


def error_line(text: str) -> str:
    """The line that says what failed: pytest's first ``E   ...`` line."""
    lines = [line for line in text.strip().splitlines() if line.startswith("E ")]
    return (lines[0][1:].strip() if lines else _first_line(text))[:200]


def write_junit(kernel: KernelResults, path: Path) -> None:
    """JUnit XML for one kernel; a guest problem is one more error test case."""
    counts = kernel.counts()
    suite = ET.Element(
        "testsuite",
        name=f"vmtest-{kernel.label}",
        tests=str(len(kernel.results) + len(kernel.problems)),
        failures=str(counts["failed"] + counts["xpassed"]),
        errors=str(counts["error"] + len(kernel.problems)),
        skipped=str(counts["skipped"] + counts["xfailed"]),
        time=f"{kernel.elapsed:.3f}",
    )
    for result in kernel.results.values():
        module, _, name = result.nodeid.rpartition("::")
        case = ET.SubElement(
            suite,
            "testcase",
            classname=module.replace("/", ".").removesuffix(".py").replace(".py::", "."),
            name=kernel_id(name, kernel.label),
            time=f"{result.duration:.3f}",
        )
        tag = {"failed": "failure", "xpassed": "failure", "error": "error"}.get(result.outcome)
        if tag:
            ET.SubElement(case, tag, message=error_line(result.text)).text = result.text
        elif result.outcome in ("skipped", "xfailed"):
            ET.SubElement(case, "skipped", message=_first_line(result.text))
    for problem in kernel.problems:
        case = ET.SubElement(suite, "testcase", classname="vmtest", name=f"guest[{kernel.label}]")
        ET.SubElement(case, "error", message=problem).text = problem
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    path.write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))
