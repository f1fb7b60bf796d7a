"""The guest's initramfs: a static busybox, the modules that mounting the host's root over
9p needs, and the first-stage init. Built once per kernel and cached.

Why our own and not virtme-ng's: its boot path probes virtiofsd (seconds on a host where
only qemu's C daemon exists), overlays eight directories and runs udev, which loads a driver
module for every emulated device; under TCG each of those costs seconds. This init loads
five modules, mounts what the tests need and hands over to the test command.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .kernels import Kernel, KernelError

# Modules the first stage loads itself (their dependencies come along); the ones a kernel
# builds in are skipped. overlay gives the guest writable views of $HOME and the project.
BOOT_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")
_FORMAT = "1"  # bump when the layout or the init script changes


def find_busybox() -> Path:
    """A statically linked busybox: the initramfs has no libc."""
    for candidate in ("/bin/busybox", "/usr/bin/busybox", "/usr/lib/initramfs-tools/bin/busybox"):
        path = Path(candidate)
        if path.is_file() and _is_static(path):
            return path
    raise KernelError("the guest needs a static busybox: apt-get install busybox-static")


def _is_static(path: Path) -> bool:
    """An ELF with no PT_INTERP program header (no dynamic loader)."""
    with path.open("rb") as file:
        head = file.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            return False
        phoff = int.from_bytes(head[32:40], "little")
        phentsize = int.from_bytes(head[54:56], "little")
        phnum = int.from_bytes(head[56:58], "little")
        file.seek(phoff)
        table = file.read(phentsize * phnum)
    return all(
        int.from_bytes(table[i * phentsize : i * phentsize + 4], "little") != 3  # PT_INTERP
        for i in range(phnum)
    )


def module_closure(modules: Path, wanted: tuple[str, ...]) -> list[Path]:
    """The module files to insmod, dependencies first; built-in modules drop out."""
    deps: dict[str, list[str]] = {}
    for line in (modules / "modules.dep").read_text().splitlines():
        target, _, rest = line.partition(":")
        deps[target] = rest.split()
    by_name = {_module_name(path): path for path in deps}
    builtin_file = modules / "modules.builtin"
    builtin_text = builtin_file.read_text() if builtin_file.exists() else ""
    builtin = {_module_name(line) for line in builtin_text.split()}
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for dep in deps.get(path, []):
            visit(dep)
        order.append(path)

    for name in wanted:
        key = name.replace("-", "_")
        if key in by_name:
            visit(by_name[key])
        elif key not in builtin:
            raise KernelError(f"{modules}: module {name} is neither built in nor a module")
    return [modules / path for path in order]


def _module_name(path: str) -> str:
    base = path.rsplit("/", 1)[-1]
    return base.split(".ko", 1)[0].replace("-", "_")


def _module_bytes(path: Path) -> bytes:
    """A module's ELF; compressed ones are unpacked here (busybox insmod loads plain ELF)."""
    data = path.read_bytes()
    if path.suffix == ".xz":
        return lzma.decompress(data)
    if path.suffix == ".zst":
        zstd = shutil.which("zstd")
        if zstd is None:
            raise KernelError(f"{path} is zstd-compressed: install zstd to unpack it")
        return subprocess.run([zstd, "-dc", str(path)], capture_output=True, check=True).stdout
    if path.suffix == ".gz":
        import gzip

        return gzip.decompress(data)
    return data


INIT = """#!/bin/busybox sh
# First stage, PID 1 in the initramfs. Load the 9p modules; mount the host's root read-only
# (cache=loose: nothing changes under a test run, and Python's imports stat a lot), the
# results directory on /run/vmtest and what BPF tests expect under /sys and /dev; source the
# run's setup (busybox commands: overlays, the guest kernel's modules); hand over to the
# run's script. Everything here is busybox from RAM: under TCG each exec of a dynamically
# linked host binary costs a tenth of a second. The kernel puts vmtest_name=... from its
# command line in our environment.
/bin/busybox --install -s /bin
export PATH=/bin
fail() { echo "vmtest: $*"; echo b > /proc/sysrq-trigger; sleep 10; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r module; do
    insmod "/modules/$module" || echo "vmtest: insmod $module failed"
done < /modules.order
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose,access=any \\
    vmtest.root /newroot || fail "cannot mount the host's root filesystem"
mount -t tmpfs -o mode=0755 tmpfs /newroot/run || fail "cannot mount /run"
mkdir -p /newroot/run/vmtest /newroot/run/lock /newroot/run/user/0 /dev/pts /dev/shm
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,access=any \\
    vmtest.results /newroot/run/vmtest || fail "cannot mount the results directory"
# /tmp: the host's, writable through an overlay (a project may live there); /var/tmp and
# /dev/shm: empty tmpfs.
mkdir -p /newroot/run/.overlay/tmp/upper /newroot/run/.overlay/tmp/work
chmod 1777 /newroot/run/.overlay/tmp/upper
mount -t overlay -o lowerdir=/newroot/tmp,upperdir=/newroot/run/.overlay/tmp/upper,\\
workdir=/newroot/run/.overlay/tmp/work overlay /newroot/tmp \\
    || mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp
for dir in /newroot/var/tmp /dev/shm; do mount -t tmpfs -o mode=1777 tmpfs $dir; done
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mount -t securityfs securityfs /sys/kernel/security
mount -t configfs configfs /sys/kernel/config 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup
ip link set lo up
setup="/newroot/run/vmtest/$vmtest_name.setup"
[ -e "$setup" ] && . "$setup"
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount --move /dev /newroot/dev
exec switch_root /newroot /bin/sh "/run/vmtest/$vmtest_name.sh"
"""


def build(kernel: Kernel, cache: Path) -> Path:
    """The initramfs for ``kernel`` (cached by kernel, modules, busybox and this layout)."""
    busybox = find_busybox()
    modules = module_closure(kernel.modules, BOOT_MODULES) if kernel.modules else []
    digest = hashlib.sha256(f"{_FORMAT}{INIT}{kernel.image}{busybox}".encode())
    for path in (busybox, *modules):
        stat = path.stat()
        digest.update(f"{path}{stat.st_size}{stat.st_mtime_ns}".encode())
    target = cache / "initramfs" / f"{kernel.release}-{digest.hexdigest()[:16]}.cpio"
    if target.exists():
        return target
    archive = CpioWriter()
    for directory in ("bin", "proc", "sys", "dev", "newroot", "modules"):
        archive.add(directory, b"", 0o040755)
    archive.add("init", INIT.encode(), 0o100755)
    archive.add("bin/busybox", busybox.read_bytes(), 0o100755)
    names = []
    for path in modules:
        name = path.name.split(".ko", 1)[0] + ".ko"
        archive.add(f"modules/{name}", _module_bytes(path), 0o100644)
        names.append(name)
    archive.add("modules.order", "".join(f"{n}\n" for n in names).encode(), 0o100644)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        tmp.write(archive.finish())
    os.replace(tmp.name, target)
    return target


class CpioWriter:
    """The "newc" cpio format the kernel unpacks an initramfs from."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._inode = 1

    def add(self, name: str, data: bytes, mode: int) -> None:
        encoded = name.encode() + b"\0"
        fields = (self._inode, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
        header = b"070701" + b"".join(b"%08x" % value for value in fields)
        self._inode += 1
        self._parts += [header, encoded, _pad(len(header) + len(encoded)), data, _pad(len(data))]

    def finish(self) -> bytes:
        self.add("TRAILER!!!", b"", 0)
        return b"".join(self._parts)


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)
