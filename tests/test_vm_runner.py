"""The VM runner itself: a failing test in the guest fails the run; a hung guest is killed.

Boots QEMU twice (about a minute), so it runs only when asked: scripts/test sets
PYLIBBPF_VM_RUNNER_TEST=1 after the VM suite.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(
    os.environ.get("PYLIBBPF_VM_RUNNER_TEST") != "1",
    reason="boots VMs: set PYLIBBPF_VM_RUNNER_TEST=1 (scripts/test does, after the VM suite)",
)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "vm-tests/run"), "--kernel", "6.12", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_failing_test_in_the_guest_fails_the_runner(tmp_path: Path) -> None:
    result = run("--results", str(tmp_path), "--", "vm-tests/selftest/check_fails.py")
    assert result.returncode == 1, result.stdout[-2000:]
    assert "linux-6.12: 0 passed, 1 failed" in result.stdout
    assert "FAILED" in result.stdout and "test_fails_on_purpose" in result.stdout


def test_hung_guest_is_killed_by_the_timeout(tmp_path: Path) -> None:
    result = run(
        "--results", str(tmp_path), "--timeout", "60", "--", "vm-tests/selftest/check_hangs.py"
    )
    assert result.returncode == 1, result.stdout[-2000:]
    assert "did not finish within 60s: killed" in result.stdout
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
