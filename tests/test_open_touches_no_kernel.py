"""``BpfObject.open()`` only parses: no bpf(2), nothing opened under /proc or /sys, no
uname — so opening an object (or generating its skeleton) on a build machine never reads
that machine's kernel. kconfig values, possible CPUs, ring sizes and ksyms come at load.

Checked twice: in-process (the bpf(2) seam refuses every call, ``os.uname`` raises, an
audit hook sees every open) and from outside with strace. No privileges needed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# __kconfig and __ksym externs (loader), struct_ops (tcp_cc), ring buffer and perf event
# array sizes (ringbuf), CO-RE (core_sample), pin by name (rollback).
OBJECTS = ("loader", "tcp_cc", "ringbuf", "core_sample", "rollback")

_IN_PROCESS = """
import json, os, sys
import pylibbpf as bpf
import pylibbpf.loader
from pylibbpf.syscall.seam import override_syscall

opened = []
def audit(event, args):
    if event == "open" and isinstance(args[0], (str, bytes)):
        opened.append(os.fsdecode(args[0]))
sys.addaudithook(audit)

def no_uname():
    raise AssertionError("uname during open()")
os.uname = no_uname

calls = []
def no_kernel(cmd, attr, size):
    calls.append(cmd.name)
    raise OSError(1, "no kernel here")

with override_syscall(no_kernel):
    for path in sys.argv[1:]:
        obj = bpf.BpfObject.open(path)
        values = {name: v.raw for name, v in obj.variables.items()}
        sizes = {name: m.max_entries for name, m in obj.maps.items()}
print(json.dumps({"opened": opened, "calls": calls}))
"""

_UNDER_STRACE = """
import sys
import pylibbpf as bpf
import pylibbpf.loader

def marker(name):
    try:
        open(f"/nonexistent-pylibbpf-marker-{name}")
    except OSError:
        pass

marker("start")
for path in sys.argv[1:]:
    obj = bpf.BpfObject.open(path)
    values = {name: v.raw for name, v in obj.variables.items()}
marker("end")
"""


@pytest.fixture(scope="module")
def objects(bpf_object: Callable[[str], Path]) -> list[str]:
    return [str(bpf_object(name)) for name in OBJECTS]


def test_open_makes_no_syscall_reads_no_proc_or_sys_and_calls_no_uname(
    objects: list[str],
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _IN_PROCESS, *objects],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout)
    assert seen["calls"] == []
    kernel_files = [p for p in seen["opened"] if p.startswith(("/proc", "/sys"))]
    assert kernel_files == []
    assert set(objects) <= set(seen["opened"])  # it did read the objects


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_open_under_strace(objects: list[str], tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    subprocess.run(
        [
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=bpf,openat,uname",
            "-o",
            str(trace),
            sys.executable,
            "-c",
            _UNDER_STRACE,
            *objects,
        ],
        check=True,
        cwd=ROOT,
    )
    lines = trace.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "pylibbpf-marker-start" in line)
    end = next(i for i, line in enumerate(lines) if "pylibbpf-marker-end" in line)
    during = lines[start + 1 : end]
    assert any(objects[0] in line for line in during)  # the trace does see open()'s reads
    assert not [line for line in during if " bpf(" in line or line.startswith("bpf(")]
    assert not [line for line in during if "uname(" in line]
    assert not [line for line in during if '"/proc' in line or '"/sys' in line]
