"""Test harness: privilege markers, BPF C compilation (cached by content), kernel cleanup.

BPF C test programs live in tests/bpf/*.bpf.c and are compiled by clang on first use,
cached outside the tree under ~/.cache/pylibbpf-tests keyed by the hash of the source, the
headers and the compiler. vmlinux.h for them is generated from the running kernel's BTF.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from pylibbpf.syscall.system import effective_capabilities

# No timing assertions (the project's rule): hypothesis's per-example deadline would be
# one, and it fails on a loaded 2-CPU machine.
settings.register_profile("pylibbpf", deadline=None)
settings.load_profile("pylibbpf")

TESTS = Path(__file__).parent
BPF_SRC = TESTS / "bpf"
CACHE = Path(os.environ.get("PYLIBBPF_TEST_CACHE", Path.home() / ".cache" / "pylibbpf-tests"))
BPFFS = Path("/sys/fs/bpf")


TESTMOD_BTF = Path("/sys/kernel/btf/bpf_testmod")
TESTMOD_FILE = Path("/sys/kernel/bpf_testmod")


@pytest.fixture(scope="session")
def bpf_testmod() -> Iterator[bool]:
    """Whether the selftests' bpf_testmod kernel module is loaded. Where
    ``PYLIBBPF_TESTMOD_DIR`` names the modules vm-tests/testmod/build made
    (``<dir>/<release>/bpf_testmod.ko``; the VM runner sets it), the one for the running
    kernel is inserted for the session and removed after it."""
    if TESTMOD_BTF.exists():
        yield True
        return
    directory = os.environ.get("PYLIBBPF_TESTMOD_DIR")
    module = Path(directory, os.uname().release, "bpf_testmod.ko") if directory else None
    if module is None or not module.is_file() or shutil.which("insmod") is None:
        yield False
        return
    inserted = subprocess.run(["insmod", str(module)], capture_output=True, text=True)
    if inserted.returncode:
        pytest.fail(f"insmod {module} failed: {inserted.stderr.strip()}")
    try:
        yield TESTMOD_BTF.exists()
    finally:
        subprocess.run(["rmmod", "bpf_testmod"], capture_output=True)  # busy: left loaded


def require_testmod(request: pytest.FixtureRequest) -> None:
    """Skip unless the selftests' bpf_testmod is loaded (or can be: ``bpf_testmod``)."""
    if not request.getfixturevalue("bpf_testmod"):
        release = os.uname().release
        directory = os.environ.get("PYLIBBPF_TESTMOD_DIR")
        where = (
            f"none built for {release} in {directory}"
            if directory
            else f"not loaded in {release}; vm-tests/run builds it for Debian's 6.12"
        )
        pytest.skip(f"needs the selftests' bpf_testmod kernel module ({where})")


def read_testmod_file(length: int) -> None:
    """Read ``length`` bytes of /sys/kernel/bpf_testmod, as the selftests'
    trigger_module_test_read does: bpf_testmod_test_read runs (and fails with EIO)."""
    fd = os.open(TESTMOD_FILE, os.O_RDONLY)
    try:
        os.read(fd, length)
    except OSError as error:
        if error.errno != errno.EIO:
            raise
    finally:
        os.close(fd)


def _privileged() -> bool:
    return os.geteuid() == 0 and bool({"CAP_BPF", "CAP_SYS_ADMIN"} & effective_capabilities())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _privileged():
        return
    skip = pytest.mark.skip(reason="needs root with CAP_BPF/CAP_SYS_ADMIN to use bpf(2)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


def _clang() -> str:
    for name in ("clang-19", "clang"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("clang is not installed (scripts/setup installs clang-19)")


def vmlinux_h_dir() -> Path:
    """Directory holding a vmlinux.h of the running kernel, written by pylibbpf's dumper.

    ``PYLIBBPF_TEST_VMLINUX_H`` overrides it: the VM suite compiles every object once on
    the host, against the host kernel's header, and runs those objects on other kernels.
    """
    override = os.environ.get("PYLIBBPF_TEST_VMLINUX_H")
    if override:
        return Path(override)
    btf = Path("/sys/kernel/btf/vmlinux")
    if not btf.exists():
        pytest.skip("the running kernel has no BTF (/sys/kernel/btf/vmlinux)")
    digest = hashlib.sha256(btf.read_bytes()).hexdigest()[:16]
    header_dir = CACHE / f"vmlinux-{digest}-{_dumper_digest()}"
    header = header_dir / "vmlinux.h"
    if not header.exists():
        from pylibbpf.btf import Btf

        header_dir.mkdir(parents=True, exist_ok=True)
        tmp = header.with_suffix(f".{os.getpid()}")
        tmp.write_text(Btf.load_vmlinux().dump_c())
        tmp.replace(header)
    return header_dir


def _dumper_digest() -> str:
    """Changes to the dumper invalidate cached headers."""
    import pylibbpf.btf.dump_c as dumper

    return hashlib.sha256(Path(dumper.__file__).read_bytes()).hexdigest()[:8]


def _clang_compile(clang: str, source: Path, out: Path, includes: list[Path]) -> None:
    """Compile a BPF C file to ``out`` unless it is there (written atomically)."""
    if out.exists():
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.o")
    flags = [arg for path in includes for arg in ("-I", str(path))]
    result = subprocess.run(
        [
            clang,
            "-O2",
            "-g",
            "-target",
            "bpf",
            "-D__TARGET_ARCH_x86",
            *flags,
            "-c",
            str(source),
            "-o",
            str(tmp),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise RuntimeError(f"clang failed on {source}:\n{result.stderr[-3000:]}")
    tmp.replace(out)


def compile_test_object(name: str) -> Path:
    """Compile ``tests/bpf/<name>.bpf.c`` (cached by content) and return the object."""
    clang = _clang()
    include = vmlinux_h_dir()
    version = _compiler_version(clang)
    source = BPF_SRC / f"{name}.bpf.c"
    digest = hashlib.sha256()
    # The source's path too: DWARF records it, and line-info tests read that file back.
    for part in (source.read_bytes(), version.encode(), str(include).encode(), bytes(source)):
        digest.update(part)
    for header in sorted(BPF_SRC.glob("*.h")):
        digest.update(header.read_bytes())
    includes = [include, Path(f"/usr/include/{_multiarch()}"), BPF_SRC]
    if "needs: the kernel's libbpf headers" in source.read_text().split("\n", 1)[0]:
        includes.insert(0, kernel_selftests_dir() / "lib" / "bpf")  # its usdt.bpf.h, newer
        digest.update(b"kernel libbpf headers")
    out = CACHE / "objects" / digest.hexdigest()[:16] / f"{name}.bpf.o"
    _clang_compile(clang, source, out, includes)
    return out


def compile_user_program(name: str) -> Path:
    """Build ``tests/programs/<name>.c`` with gcc (cached by content): probe targets."""
    source = TESTS / "programs" / f"{name}.c"
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed (scripts/setup installs it)")
    digest = hashlib.sha256(source.read_bytes() + bytes(source)).hexdigest()[:16]
    out = CACHE / "programs" / digest / name
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".{os.getpid()}")
        result = subprocess.run(
            [gcc, "-O2", "-g", "-o", str(tmp), str(source)], capture_output=True, text=True
        )
        if result.returncode:
            raise RuntimeError(f"gcc failed on {source}:\n{result.stderr[-3000:]}")
        tmp.replace(out)
    return out


@pytest.fixture(scope="session")
def bpf_object() -> Callable[[str], Path]:
    """Compile ``tests/bpf/<name>.bpf.c`` (cached) and return the object's path."""
    return compile_test_object


@functools.cache
def _compiler_version(compiler: str) -> str:
    """Asked once per session: in a TCG guest each ``clang --version`` costs seconds."""
    return subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout


@functools.cache
def _multiarch() -> str:
    """Debian keeps asm/ headers (needed by <linux/bpf.h>) under a multiarch directory."""
    out = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True)
    return out.stdout.strip() or "x86_64-linux-gnu"


KERNEL_SOURCE = Path("/usr/src/linux-source-6.12.tar.xz")


def kernel_selftests_dir() -> Path:
    """tools/ of Debian's linux-source-6.12 (BPF selftests and libbpf headers), extracted
    once into the test cache."""
    if not KERNEL_SOURCE.exists():
        pytest.skip("linux-source-6.12 is not installed (scripts/setup installs it)")
    root = CACHE / "linux-source-6.12"
    done = root / ".extracted"
    if not done.exists():
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "tar",
                "-xaf",
                str(KERNEL_SOURCE),
                "-C",
                str(root),
                "--strip-components=1",
                "linux-source-6.12/tools/testing/selftests/bpf",
                "linux-source-6.12/tools/lib/bpf",
                "linux-source-6.12/tools/include",
            ],
            check=True,
        )
        done.touch()
    return root / "tools"


def compile_selftest(name: str) -> Path:
    """Compile ``tools/testing/selftests/bpf/progs/<name>.c`` like the kernel's build does."""
    clang = _clang()
    include = vmlinux_h_dir()
    tools = kernel_selftests_dir()
    progs = tools / "testing/selftests/bpf/progs"
    source = progs / f"{name}.c"
    digest = hashlib.sha256(source.read_bytes() + str(include).encode()).hexdigest()[:16]
    out = CACHE / "selftests" / digest / f"{name}.bpf.o"
    includes = [include, tools / "lib", Path("/usr/include/bpf"), progs, progs.parent]
    includes += [tools / "include/uapi", Path(f"/usr/include/{_multiarch()}")]
    _clang_compile(clang, source, out, includes)
    return out


@pytest.fixture(scope="session")
def selftest_object() -> Callable[[str], Path]:
    return compile_selftest


def _kernel_state() -> set[str]:
    """What a test may leave behind where everyone sees it: pins at the top of the bpffs
    and network namespaces (``ip netns``)."""
    found: set[str] = set()
    for where, label in ((BPFFS, "pin"), (Path("/run/netns"), "netns")):
        with contextlib.suppress(OSError):
            found |= {f"{label} {where / name}" for name in os.listdir(where)}
    # pin_dir's directories remove themselves (and may be another test run's, on a shared
    # machine); what the tests create under them dies with them.
    return {entry for entry in found if "/pylibbpf-test-" not in entry}


@pytest.fixture(autouse=True)
def leaves_no_kernel_state() -> Iterator[None]:
    """Fail the test that leaves a pin in /sys/fs/bpf or a network namespace behind (the
    project's rule: tests clean up). Stray pins are removed, so later tests that pin by
    name do not reuse them; namespaces are left alone (another test run on the same
    machine may own them)."""
    before = _kernel_state()
    yield
    left = sorted(_kernel_state() - before)
    for entry in left:
        label, path = entry.split(" ", 1)
        if label == "pin" and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif label == "pin":
            with contextlib.suppress(OSError):
                os.unlink(path)
    assert not left, f"the test left kernel state behind: {', '.join(left)}"


@pytest.fixture
def pin_dir() -> Iterator[Path]:
    """A private directory on bpffs for pins; removed with whatever is left in it."""
    if not BPFFS.is_dir() or not os.path.ismount(BPFFS):
        pytest.skip("bpffs is not mounted at /sys/fs/bpf")
    path = BPFFS / f"pylibbpf-test-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    try:
        yield path
    finally:
        for child in path.iterdir():
            child.unlink()
        path.rmdir()


@pytest.fixture
def cgroup_dir() -> Iterator[Path]:
    """A fresh cgroup v2 directory, removed after the test."""
    candidates = [Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup")]
    root = next((c for c in candidates if (c / "cgroup.procs").exists() and _is_cgroup2(c)), None)
    if root is None:
        pytest.skip("no cgroup v2 hierarchy mounted")
    path = root / f"pylibbpf-test-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    try:
        yield path
    finally:
        path.rmdir()


def _is_cgroup2(path: Path) -> bool:
    with open("/proc/self/mountinfo") as mounts:
        return any(line.split()[4] == str(path) and " - cgroup2 " in line for line in mounts)


@pytest.fixture
def veth() -> Iterator[tuple[str, str]]:
    """Namespaces A and B joined by a veth pair: vA 10.201.0.1 <-> vB 10.201.0.2."""
    from netns import veth_pair

    with veth_pair() as namespaces:
        yield namespaces


@pytest.fixture
def netkit() -> Iterator[tuple[str, str]]:
    """Namespaces A and B joined by a netkit pair: primary nkA 10.201.0.1 in A, peer nkB
    10.201.0.2 in B; skips where the kernel has no netkit devices."""
    from netns import netkit_pair

    try:
        pair = netkit_pair()
        namespaces = pair.__enter__()
    except OSError as error:
        pytest.skip(f"no netkit devices here (Linux 6.7+ with CONFIG_NETKIT): {error}")
    try:
        yield namespaces
    finally:
        pair.__exit__(None, None, None)
