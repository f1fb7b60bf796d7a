"""The bcc-style examples (minimal, opensnoop, biolatency, profile), built by
scripts/build-examples and run for real, each checked for what the kernel did: a
bpf_printk() line this test triggered, an open() it made with the fd it got, its block
I/O in the right disk's histogram, its own functions in a profile."""

from __future__ import annotations

import mmap
import os
import re
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CACHE
from spin_target import build_spin, nm_functions

pytestmark = pytest.mark.root
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def build() -> Path:
    """scripts/build-examples into the test cache (it rebuilds only what changed)."""
    out = CACHE / "examples-build"
    result = subprocess.run(
        [str(ROOT / "scripts" / "build-examples"), str(out)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def start(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(EXAMPLES / script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 60) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, out + err
    return out


def own_comm() -> str:
    return Path("/proc/self/comm").read_text().strip()


def test_minimal_prints_the_printk_line_this_test_triggered(build: Path) -> None:
    if not Path("/sys/kernel/tracing/events/bpf_trace/bpf_trace_printk").is_dir():
        pytest.skip(f"no bpf_trace_printk trace event (tracefs) on {os.uname().release}")
    tracer = start(
        "minimal.py",
        "--pid",
        str(os.getpid()),
        "--duration",
        "3",
        "--object",
        str(build / "minimal.bpf.o"),
    )
    assert tracer.stdout is not None
    assert tracer.stdout.readline().startswith(f"tracing write() of PID {os.getpid()}")
    assert tracer.stdout.readline().split() == ["TIME(s)", "TASK", "PID", "CPU", "MESSAGE"]
    with open(os.devnull, "wb") as sink:
        for size in (4321, 1234):
            assert os.write(sink.fileno(), bytes(size)) == size
        fd = sink.fileno()
    out = finish(tracer)
    rows = [line.split(None, 4) for line in out.splitlines()]  # after the header
    seen = [(task, int(pid), message) for _time, task, pid, _cpu, message in rows]
    for size in (4321, 1234):
        message = f"BPF triggered from PID {os.getpid()}: write({fd}, ..., {size})"
        assert (own_comm(), os.getpid(), message) in seen, out
    assert all(pid == os.getpid() for _, pid, _ in seen)  # the instance's pid filter


def test_opensnoop_shows_this_tests_opens_with_their_results(build: Path, tmp_path: Path) -> None:
    snoop = start(
        "opensnoop.py",
        "--pid",
        str(os.getpid()),
        "--duration",
        "3",
        "--extended",
        "--object",
        str(build / "opensnoop.bpf.o"),
    )
    assert snoop.stdout is not None
    assert snoop.stdout.readline().split() == ["PID", "COMM", "FD", "ERR", "FLAGS", "PATH"]
    present = tmp_path / "opensnoop-present"
    present.write_text("x")
    missing = tmp_path / "opensnoop-missing"
    fd = os.open(present, os.O_RDONLY | os.O_CLOEXEC)
    os.close(fd)
    with pytest.raises(FileNotFoundError):
        os.open(missing, os.O_RDONLY)
    out = finish(snoop)
    rows = {line.split()[-1]: line.split() for line in out.splitlines()}  # after the header
    assert rows[str(present)][:5] == [
        str(os.getpid()),
        own_comm(),
        str(fd),
        "0",
        f"{os.O_RDONLY | os.O_CLOEXEC:08o}",
    ], out
    assert rows[str(missing)][:4] == [str(os.getpid()), own_comm(), "-1", "2"], out


def block_disk(path: Path) -> str | None:
    """The disk (not partition) holding ``path``, if it is a block device."""
    device = os.stat(path).st_dev
    sysfs = Path(f"/sys/dev/block/{os.major(device)}:{os.minor(device)}")
    if not sysfs.exists():
        return None
    real = sysfs.resolve()
    return real.parent.name if (real / "partition").exists() else real.name


@pytest.fixture
def direct_io_file() -> Iterator[Path]:
    """A 256 KiB file on a block device, written and synced (so O_DIRECT reads hit it)."""
    directory = Path("/var/tmp")
    if block_disk(directory) is None:
        pytest.skip(
            f"{directory} is not on a block device here (the VM's root is shared from the "
            "host): biolatency needs block I/O to see"
        )
    path = directory / f"pylibbpf-biolatency-{os.getpid()}"
    path.write_bytes(os.urandom(256 * 1024))
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    try:
        yield path
    finally:
        path.unlink()


def test_biolatency_counts_this_tests_direct_reads(build: Path, direct_io_file: Path) -> None:
    disk = block_disk(direct_io_file)
    assert disk is not None
    if not Path("/sys/kernel/tracing/events/block/block_rq_issue").exists():
        pytest.skip(f"no block tracepoints on {os.uname().release}")
    tracer = start(
        "biolatency.py",
        "-D",
        "--disk",
        disk,
        "--duration",
        "3",
        "--object",
        str(build / "biolatency.bpf.o"),
    )
    assert tracer.stdout is not None
    assert tracer.stdout.readline().startswith("tracing block device I/O")
    reads = 32
    buffer = mmap.mmap(-1, 4096)  # page-aligned, as O_DIRECT wants
    fd = os.open(direct_io_file, os.O_RDONLY | os.O_DIRECT)
    try:
        for block in range(reads):
            assert os.preadv(fd, [buffer], block * 4096) == 4096
    finally:
        os.close(fd)
    out = finish(tracer)
    sections = re.split(r"^disk = ", out, flags=re.MULTILINE)
    assert [s.split("\n", 1)[0] for s in sections[1:]] == [disk], out  # the filter held
    rows = re.findall(r"^\s*(\d+) -> (\d+)\s+: (\d+)\s+\|\**\s*\|$", sections[1], re.MULTILINE)
    assert sum(int(count) for _, _, count in rows) >= reads, out
    assert [int(low) for low, _, _ in rows] == [0] + [1 << n for n in range(1, len(rows))]


def folded_stacks(out: str) -> list[tuple[list[str], int]]:
    stacks = []
    for line in out.splitlines()[1:]:
        frames, _, count = line.rpartition(" ")
        stacks.append((frames.split(";"), int(count)))
    return stacks


def test_profile_resolves_a_c_programs_functions(build: Path) -> None:
    spin = subprocess.Popen([str(build_spin()), "6"])
    try:
        out = finish(
            start(
                "profile.py",
                "-p",
                str(spin.pid),
                "-F",
                "199",
                "--duration",
                "2",
                "--folded",
                "--object",
                str(build / "profile.bpf.o"),
            )
        )
    finally:
        spin.kill()
        spin.wait()
    assert out.startswith(f"sampling PID {spin.pid} at 199 Hz")
    stacks = folded_stacks(out)
    assert stacks and all(frames[0] == "spin" for frames, _ in stacks), out
    chain = ["main", "spin_outer", "spin_inner"]
    inside = sum(
        count
        for frames, count in stacks
        if any(frames[i : i + 3] == chain for i in range(len(frames)))
    )
    assert inside >= sum(count for _, count in stacks) // 2, out  # where it spends its time


def test_profile_shows_this_process_with_its_function_names(build: Path) -> None:
    profiler = start(
        "profile.py",
        "-p",
        str(os.getpid()),
        "-F",
        "199",
        "--duration",
        "2",
        "--folded",
        "--object",
        str(build / "profile.bpf.o"),
    )
    assert profiler.stdout is not None
    first = profiler.stdout.readline()
    end = time.monotonic() + 2.5  # on CPU, in Python and in system calls, while sampled
    while time.monotonic() < end and profiler.poll() is None:
        sum(i * i for i in range(2000))
        for _ in range(20):  # more time in the kernel: ~27 of ~400 samples have its frames
            os.stat("/")
    out = first + finish(profiler)
    stacks = folded_stacks(out)
    assert stacks and all(frames[0] == own_comm() for frames, _ in stacks), out
    binaries = [os.path.realpath(sys.executable)]
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):  # (pyenv's: the code is in libpython)
        libdir, library = sysconfig.get_config_vars("LIBDIR", "LDLIBRARY")
        binaries.append(os.path.join(libdir, library))
    interpreter = {name for binary in binaries for _, _, name in nm_functions(binary, dynamic=True)}
    user = {f for frames, _ in stacks for f in frames[1:] if not f.endswith("_[k]")}
    assert user & interpreter, out  # the interpreter's own (exported) functions
    kernel = {f.removesuffix("_[k]") for frames, _ in stacks for f in frames if f.endswith("_[k]")}
    kallsyms = {line.split()[2] for line in Path("/proc/kallsyms").read_text().splitlines()}
    assert kernel and kernel <= kallsyms | {"[unknown]"}, out
    assert "do_syscall_64" in kernel, out  # its os.stat() calls
