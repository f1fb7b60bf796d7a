"""Facts about the running system that loaders need: CPUs, kernel version, mounts."""

from __future__ import annotations

import functools
import os
import re


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
    with open("/sys/devices/system/cpu/possible") as f:
        return parse_cpu_list(f.read())


@functools.cache
def num_possible_cpus() -> int:
    """Slots in a per-CPU map value: the highest possible CPU id plus one."""
    return max(possible_cpus()) + 1


@functools.cache
def online_cpus() -> list[int]:
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
