"""`pylibbpf vmtest` and the pytest plugin for real: guests boot, a failure in a guest fails
the run and is reported for its kernel only, a hung guest is killed.

Boots QEMU (a few minutes in all), so it runs only when asked: scripts/test sets
PYLIBBPF_VM_RUNNER_TEST=1 after the VM suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pylibbpf.vmtest.kernels import resolve

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "vmtest-sample"
pytestmark = pytest.mark.skipif(
    os.environ.get("PYLIBBPF_VM_RUNNER_TEST") != "1",
    reason="boots VMs: set PYLIBBPF_VM_RUNNER_TEST=1 (scripts/test does, after the VM suite)",
)


def run(cwd: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))  # this checkout's pylibbpf, host and guest
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def junit(path: Path) -> dict[str, str]:
    """test case name -> passed / failure / error / skipped."""
    outcomes = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        found = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[str(case.get("name"))] = found[0] if found else "passed"
    return outcomes


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh copy of the sample project, outside this repository."""
    target = tmp_path_factory.mktemp("clone") / "vmtest-sample"
    shutil.copytree(SAMPLE, target, ignore=shutil.ignore_patterns("build", "__pycache__"))
    assert not target.is_relative_to(ROOT)
    return target


def test_sample_project_fails_on_6_1_only(sample: Path, tmp_path: Path) -> None:
    """The sample's iterator test needs kernel 6.4+: it must fail on 6.1 and nowhere else,
    and the map-counting test must pass on both."""
    result = run(
        sample,
        "-m",
        "pylibbpf",
        "vmtest",
        "--kernel",
        "6.1",
        "--kernel",
        "6.12",
        "--results",
        str(tmp_path),
    )
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    on_61, on_612 = junit(tmp_path / "junit-6.1.xml"), junit(tmp_path / "junit-6.12.xml")
    assert on_61 == {
        "test_getppid_calls_are_counted[6.1]": "passed",
        "test_open_coded_iterator_sums_one_to_ten[6.1]": "failure",
    }, result.stdout[-3000:]
    assert on_612 == {
        "test_getppid_calls_are_counted[6.12]": "passed",
        "test_open_coded_iterator_sums_one_to_ten[6.12]": "passed",
    }, result.stdout[-3000:]
    assert "6.1: 1 passed, 1 failed" in result.stdout
    assert "6.12: 2 passed" in result.stdout
    assert "bpf_iter_num" in (tmp_path / "junit-6.1.xml").read_text()  # the reason, from 6.1


def test_pytest_plugin_reports_each_test_per_kernel(sample: Path, tmp_path: Path) -> None:
    host_junit = tmp_path / "host.xml"
    result = run(
        sample,
        "-m",
        "pytest",
        "-p",
        "pylibbpf.vmtest.plugin",
        "-p",
        "no:cacheprovider",
        "--bpf-kernels",
        "6.1,6.12",
        "--bpf-results",
        str(tmp_path / "results"),
        "-v",
        f"--junitxml={host_junit}",
    )
    assert result.returncode == 1, result.stdout[-3000:]
    out = result.stdout
    assert "test_getppid.py::test_getppid_calls_are_counted[6.1] PASSED" in out
    assert "test_getppid.py::test_getppid_calls_are_counted[6.12] PASSED" in out
    assert "test_getppid.py::test_open_coded_iterator_sums_one_to_ten[6.1] FAILED" in out
    assert "test_getppid.py::test_open_coded_iterator_sums_one_to_ten[6.12] PASSED" in out
    assert "1 failed, 3 passed" in out
    assert junit(host_junit)["test_open_coded_iterator_sums_one_to_ten[6.1]"] == "failure"
    assert junit(tmp_path / "results" / "junit-6.12.xml") == {
        "test_getppid_calls_are_counted[6.12]": "passed",
        "test_open_coded_iterator_sums_one_to_ten[6.12]": "passed",
    }


def test_failing_test_on_your_own_image_fails_the_runner(tmp_path: Path) -> None:
    """--image with a label: any vmlinuz, its modules found next to it."""
    image = resolve("6.12").image
    result = run(
        ROOT,
        "-m",
        "pylibbpf",
        "vmtest",
        "--image",
        f"mine={image}",
        "--results",
        str(tmp_path),
        "--",
        "vm-tests/selftest/check_fails.py",
    )
    assert result.returncode == 1, result.stdout[-3000:]
    assert "mine: 0 passed, 1 failed" in result.stdout
    assert "FAILED vm-tests/selftest/check_fails.py::test_fails_on_purpose" in result.stdout
    assert junit(tmp_path / "junit-mine.xml") == {"test_fails_on_purpose[mine]": "failure"}


def test_hung_guest_is_killed_by_the_timeout(tmp_path: Path) -> None:
    result = run(
        ROOT,
        "-m",
        "pylibbpf",
        "vmtest",
        "--kernel",
        "6.12",
        "--timeout",
        "60",
        "--results",
        str(tmp_path),
        "--",
        "vm-tests/selftest/check_hangs.py",
    )
    assert result.returncode == 1, result.stdout[-3000:]
    assert "killed after 6" in result.stdout  # 60 s and the poll interval
    assert "while running vm-tests/selftest/check_hangs.py::test_hangs_on_purpose" in result.stdout
    assert junit(tmp_path / "junit-6.12.xml")["test_hangs_on_purpose[6.12]"] == "error"
    deadline = time.monotonic() + 10  # the killed QEMU must be gone, not orphaned
    while _qemu_for(tmp_path):
        assert time.monotonic() < deadline, "QEMU outlived the runner's timeout"
        time.sleep(0.2)


def _qemu_for(results: Path) -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes()
        except OSError:
            continue
        if b"qemu-system" in text and str(results).encode() in text:
            return True
    return False
