"""One QEMU guest: the host's root filesystem read-only over 9p, a writable results
directory, and a script that runs one command (a pytest run) and powers off.

The guest sees every host path at the same place, so the project, its virtualenv and the
Python that runs pytest need no copying. Writes land in tmpfs: /tmp, /run, and overlays
over the directories a test run may write to ($HOME, the project, /etc, /var); the host's
files are never changed. The results directory is /run/vmtest in the guest.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .initramfs import build as build_initramfs
from .kernels import Kernel, KernelError
from .pvh import bootable

GUEST_RESULTS = "/run/vmtest"
QBOOT = ("/usr/share/qemu/qboot.rom", "/usr/share/qemu/qboot.bin")
# Boot arguments that only shorten a TCG boot: no crypto self-tests, no PS/2 probing, a
# quiet console (every byte on the emulated UART costs time).
KERNEL_ARGS = (
    "console=ttyS0",
    "quiet",
    "panic=-1",
    "cryptomgr.notests",
    "i8042.noaux",
    "i8042.nokbd",
    "8250.nr_uarts=1",
)


@dataclass
class GuestSpec:
    """What one guest runs: ``command`` in ``cwd`` with ``env``, on ``kernel``."""

    name: str  # file names in the results directory: <name>.log, <name>.status, ...
    kernel: Kernel
    results: Path
    command: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    writable: list[Path] = field(default_factory=list)  # overlays (tmpfs-backed)
    cpus: int = 1
    memory: str = "2G"
    python: str = sys.executable
    kernel_args: list[str] = field(default_factory=list)

    def path(self, suffix: str) -> Path:
        return self.results / f"{self.name}.{suffix}"


_REBOOT = "import ctypes, os; os.sync(); ctypes.CDLL(None).reboot(0x01234567)"


def setup_script(spec: GuestSpec) -> str:
    """Busybox commands the first stage sources before switch_root (host root at /newroot):
    the guest kernel's modules where modprobe looks, its config in /boot, the overlays."""
    q = shlex.quote
    kernel = spec.kernel
    lines = [f"hostname {q('vmtest-' + spec.name)}"]
    if kernel.modules is not None:
        lines.append(
            f"mount -t tmpfs tmpfs /newroot/lib/modules && "
            f"ln -s {q(str(kernel.modules))} /newroot/lib/modules/{q(kernel.release)}"
        )
    lines.append(f"mount -o bind /newroot{q(str(kernel.image.parent))} /newroot/boot")
    for index, directory in enumerate(_outermost(spec.writable)):
        upper, work = f"/newroot/run/.overlay/{index}/upper", f"/newroot/run/.overlay/{index}/work"
        lower = q(f"/newroot{directory}")
        lines.append(
            f"mkdir -p {upper} {work} && mount -t overlay -o "
            f"lowerdir={lower},upperdir={upper},workdir={work} overlay {lower} "
            f"|| echo {q(f'vmtest: {directory} stays read-only')}"
        )
    return "\n".join(lines) + "\n"


def guest_script(spec: GuestSpec) -> str:
    """The second stage, run by the host's /bin/sh as PID 1 after switch_root: the command,
    its exit status into the results directory, then reboot, which -no-reboot turns into
    QEMU exiting (PID 1 must not exit: the kernel would panic)."""
    q = shlex.quote
    out = f"{GUEST_RESULTS}/{spec.name}"
    lines = [
        "#!/bin/sh",
        "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        *(f"export {key}={q(value)}" for key, value in sorted(spec.env.items())),
        f"exec > {out}.log 2>&1 < /dev/null",
        f"cd {q(str(spec.cwd))} || {{ echo {q(f'vmtest: no {spec.cwd} in the guest')}; "
        f"echo 97 > {out}.status; }}",
        f"[ -e {out}.status ] || {{ {shlex.join(spec.command)}; echo $? > {out}.status; }}",
        "echo b > /proc/sysrq-trigger",
        f"exec {q(spec.python)} -c {q(_REBOOT)}",  # a kernel without sysrq
    ]
    return "\n".join(lines) + "\n"


def _outermost(paths: list[Path]) -> list[Path]:
    """Each directory once, none inside another (an overlay covers its subdirectories)."""
    chosen: list[Path] = []
    for path in sorted({p.resolve() for p in paths if p.is_dir()}, key=lambda p: len(p.parts)):
        if path != Path("/") and not any(path.is_relative_to(c) for c in chosen):
            chosen.append(path)
    return chosen


def qemu_command(spec: GuestSpec, initramfs: Path, kernel: Path | None = None) -> list[str]:
    """QEMU's command line; ``kernel`` is what to boot (default: the kernel's image)."""
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        raise KernelError("QEMU is missing: apt-get install qemu-system-x86")
    fsdev = "security_model=none,multidevs=remap"
    # qboot: a BIOS that only loads the kernel (1.5 s less than SeaBIOS under TCG).
    qboot = next((p for p in QBOOT if Path(p).exists()), None)
    return [
        qemu,
        *(["-bios", qboot] if qboot else []),
        "-name",
        f"vmtest-{spec.name}",
        *_accelerator(),
        "-machine",
        "q35",
        "-cpu",
        "max",
        "-smp",
        str(spec.cpus),
        "-m",
        spec.memory,
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-serial",
        f"file:{spec.path('console')}",
        "-fsdev",
        f"local,id=root,path=/,readonly=on,{fsdev}",
        "-device",
        "virtio-9p-pci,fsdev=root,mount_tag=vmtest.root",
        "-fsdev",
        f"local,id=results,path={spec.results},{fsdev}",
        "-device",
        "virtio-9p-pci,fsdev=results,mount_tag=vmtest.results",
        "-kernel",
        str(kernel or spec.kernel.image),
        "-initrd",
        str(initramfs),
        "-append",
        " ".join((*KERNEL_ARGS, *spec.kernel_args, f"vmtest_name={spec.name}")),
    ]


def _accelerator() -> list[str]:
    """KVM when this host can use it, else TCG (QEMU falls back in the order given)."""
    try:
        usable = os.access("/dev/kvm", os.R_OK | os.W_OK) and any(
            flag in Path("/proc/cpuinfo").read_text().split() for flag in ("vmx", "svm")
        )
    except OSError:
        usable = False
    return ["-accel", "kvm", "-accel", "tcg"] if usable else ["-accel", "tcg"]


class Guest:
    """A running guest: started in its own process group so a kill takes QEMU with it."""

    def __init__(self, spec: GuestSpec, cache: Path) -> None:
        self.spec = spec
        spec.results.mkdir(parents=True, exist_ok=True)
        for suffix in ("status", "log", "console", "jsonl"):
            spec.path(suffix).unlink(missing_ok=True)
        spec.path("setup").write_text(setup_script(spec))
        spec.path("sh").write_text(guest_script(spec))
        command = qemu_command(
            spec, build_initramfs(spec.kernel, cache), bootable(spec.kernel.image, cache)
        )
        spec.path("qemu").write_text(shlex.join(command) + "\n")
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=spec.path("qemu.err").open("w"),
            start_new_session=True,
        )

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def poll(self) -> int | None:
        return self.process.poll()

    def kill(self) -> None:
        """Kill QEMU's process group (only while QEMU is unreaped: its pid is still ours)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def status(self) -> int | None:
        """The command's exit status as the guest recorded it; None if it never did."""
        try:
            text = self.spec.path("status").read_text().strip()
        except OSError:
            return None
        return int(text) if text.lstrip("-").isdigit() else None
