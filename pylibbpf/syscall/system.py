"""What the running system says about itself: CPUs, kernel version and configuration,
kernel symbols, capabilities, network namespaces and who holds which BPF object.

These are the procfs and sysfs reads (and the ``uname``) the loader needs at load time and
the tools need to describe the system; nothing below this layer reads them, so opening an
object on a build machine never sees the build machine's kernel.
"""

from __future__ import annotations

import ctypes
import functools
import os

from ..errors import ObjectError
from .fd import OwnedFd

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any


def parse_cpu_list(text: str) -> list[int]:
    """Parse a kernel CPU list such as ``0-3,8,10-11``."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        first, _, last = part.partition("-")
        cpus.extend(range(int(first), int(last or first) + 1))
    return cpus


@functools.cache
def possible_cpus() -> list[int]:
    """CPU ids that may ever come online (per-CPU maps have a slot for each)."""
    with open("/sys/devices/system/cpu/possible") as f:
        return parse_cpu_list(f.read())


@functools.cache
def num_possible_cpus() -> int:
    """Slots in a per-CPU map value: the highest possible CPU id plus one."""
    return max(possible_cpus()) + 1


@functools.cache
def online_cpus() -> list[int]:
    """CPU ids online now (a perf buffer opens one ring on each)."""
    with open("/sys/devices/system/cpu/online") as f:
        return parse_cpu_list(f.read())


def _version_code(major: int, minor: int, patch: int) -> int:
    return (major << 16) | (minor << 8) | min(patch, 255)


@functools.cache
def kernel_version() -> int:
    """``LINUX_VERSION_CODE`` of the running kernel, as libbpf computes it.

    Ubuntu and Debian report the real sublevel outside ``uname -r`` (in
    ``/proc/version_signature`` and ``uname -v``); both are honoured.
    """
    import re  # (once per process: the result is cached)

    try:
        with open("/proc/version_signature") as f:
            match = re.search(r"(\d+)\.(\d+)\.(\d+)\s*$", f.read().strip())
            if match:
                return _version_code(*map(int, match.groups()))
    except OSError:
        pass
    uname = os.uname()
    debian = re.search(r"Debian (\d+)\.(\d+)\.(\d+)", uname.version)
    if debian:
        return _version_code(*map(int, debian.groups()))
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", uname.release)
    if not match:
        return 0
    major, minor, patch = match.groups()
    return _version_code(int(major), int(minor), int(patch or 0))


@functools.cache
def machine() -> str:
    """The hardware name ``uname -m`` reports (``x86_64``, ``aarch64``…)."""
    return os.uname().machine


# --------------------------------------------------------------------------- capabilities

# Capability bits from include/uapi/linux/capability.h.
_CAPS = {"CAP_NET_ADMIN": 12, "CAP_SYS_ADMIN": 21, "CAP_PERFMON": 38, "CAP_BPF": 39}


def effective_capabilities() -> set[str]:
    """The interesting capabilities this process holds (from ``/proc/self/status``)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    mask = int(line.split()[1], 16)
                    return {name for name, bit in _CAPS.items() if mask >> bit & 1}
    except OSError:
        pass
    return set()


_INIT_USER_NS_INO = 0xEFFFFFFD  # PROC_USER_INIT_INO


def in_initial_user_namespace() -> bool:
    """Whether this process's capabilities are the initial user namespace's (the only
    ones bpf(2) honours without a BPF token)."""
    try:
        return os.stat("/proc/self/ns/user").st_ino == _INIT_USER_NS_INO
    except OSError:
        return True


def permission_hint() -> str:
    """Why a privileged command was refused: the capabilities held, and the sysctl."""
    caps = effective_capabilities()
    if not in_initial_user_namespace():
        return (
            "this process is in a user namespace, where its capabilities do not count for "
            "bpf(2): it needs a BPF token from a bpffs delegated to its namespace that "
            "allows this command, map or program type (Linux 6.9+)"
        )
    if {"CAP_BPF", "CAP_SYS_ADMIN"} <= caps:
        return (
            "this process holds CAP_BPF and CAP_SYS_ADMIN, so the refusal comes from a "
            "security policy (an LSM, kernel lockdown or seccomp) or this kernel's "
            "configuration for this kind of program"
        )
    held = sorted(caps) or ["none of them"]
    hint = (
        "this needs CAP_BPF (with CAP_PERFMON for tracing and CAP_NET_ADMIN for networking "
        f"programs) or CAP_SYS_ADMIN; this process holds: {', '.join(held)}"
    )
    try:
        with open("/proc/sys/kernel/unprivileged_bpf_disabled") as knob:
            value = knob.read().strip()
        if value != "0":
            hint += f"; kernel.unprivileged_bpf_disabled={value}"
    except OSError:
        pass
    return hint


# --------------------------------------------------------------------------- configuration


@functools.cache
def kernel_config() -> dict[str, str]:
    """CONFIG_* of the running kernel from /proc/config.gz or /boot/config-$(uname -r)
    (empty if neither is readable)."""
    import gzip  # here: importing the syscall layer should not cost what only this needs

    from ..spec.kconfig import parse_kconfig

    candidates = ["/proc/config.gz", f"/boot/config-{os.uname().release}"]
    for path in candidates:
        try:
            opener: Any = gzip.open if path.endswith(".gz") else open
            with opener(path, "rt") as f:
                return parse_kconfig(f.read())
        except OSError:
            continue
    return {}


def kallsyms_lookup(names: set[str]) -> dict[str, int]:
    """Addresses of ``names`` in /proc/kallsyms (stops reading once all are found)."""
    found: dict[str, int] = {}
    try:
        with open("/proc/kallsyms") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2] in names and parts[2] not in found:
                    found[parts[2]] = int(parts[0], 16)
                    if len(found) == len(names):
                        break
    except OSError as error:
        raise ObjectError(f"cannot read /proc/kallsyms for __ksym externs: {error}") from error
    return found


@functools.cache
def kernel_functions() -> tuple[dict[int, str], int]:
    """Address -> function from /proc/kallsyms, and the address of ``__bpf_call_base``
    (helper calls in translated programs hold the helper's distance from it)."""
    by_address: dict[int, str] = {}
    base = 0
    try:
        with open("/proc/kallsyms") as f:
            for line in f:
                address, kind, name = line.split()[:3]
                if kind in "tTwW":
                    by_address.setdefault(int(address, 16), name)
                if name == "__bpf_call_base":
                    base = int(address, 16)
    except OSError:
        pass
    return by_address, base


def has_syscall_wrapper() -> bool:
    """Whether system calls enter through ``__<arch>_sys_*`` wrappers (libbpf's
    LINUX_HAS_SYSCALL_WRAPPER)."""
    return bool(kallsyms_lookup({"__x64_sys_bpf", "__arm64_sys_bpf", "__s390x_sys_bpf"}))


def syscall_function(name: str) -> str | None:
    """The kernel function behind system call ``name`` (``__x64_sys_<name>`` on x86-64)."""
    for prefix in ("__x64_sys_", "__arm64_sys_", "__s390x_sys_", "sys_"):
        if kallsyms_lookup({prefix + name}):
            return prefix + name
    return None


# --------------------------------------------------------------------------- namespaces

THIS_NETNS = "/proc/thread-self/ns/net"
PROCESS_NETNS = "/proc/self/ns/net"


def open_netns(path: str | os.PathLike[str] = THIS_NETNS) -> OwnedFd:
    """An fd of a network namespace (this thread's by default)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    return OwnedFd(fd, f"network namespace {os.fspath(path)!r}")


def setns(fd: int) -> None:
    """setns(2) into a network namespace (``os.setns`` is Python 3.12+)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, 0x40000000):  # CLONE_NEWNET
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


# --------------------------------------------------------------------------- holders


def fd_holders() -> dict[tuple[str, int], list[dict[str, Any]]]:
    """Which processes hold fds of which BPF objects, from /proc/*/fdinfo (``prog_id:``,
    ``map_id:``, ``link_id:`` lines), as bpftool's ``pids`` column: {("prog", 7): [{"pid":
    1234, "comm": "python"}]}."""
    from pathlib import Path

    found: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            fds = os.listdir(f"/proc/{pid}/fdinfo")
        except OSError:
            continue  # gone, or not ours to see
        seen: set[tuple[str, int]] = set()
        for fd in fds:
            try:
                text = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
            except OSError:
                continue
            for kind in ("prog", "map", "link"):
                marker = f"\n{kind}_id:\t"
                at = text.find(marker)
                if at >= 0:
                    key = (kind, int(text[at + len(marker) :].split("\n", 1)[0]))
                    if key not in seen:
                        seen.add(key)
                        found.setdefault(key, []).append({"pid": pid, "comm": comm})
    return found
