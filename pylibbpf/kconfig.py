"""Kernel configuration and symbols for ``__kconfig`` and typeless ``__ksym`` externs."""

from __future__ import annotations

import functools
import gzip
import os

from .errors import ObjectError
from .sysinfo import kernel_version


@functools.cache
def _system_kconfig() -> dict[str, str]:
    """CONFIG_* of the running kernel from /proc/config.gz or /boot/config-$(uname -r)."""
    candidates = ["/proc/config.gz", f"/boot/config-{os.uname().release}"]
    for path in candidates:
        try:
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rt") as f:
                return _parse_kconfig(f.read())
        except OSError:
            continue
    return {}


def _parse_kconfig(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("CONFIG_") and "=" in line:
            key, _, value = line.partition("=")
            values[key] = value
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            values[line[2:-11]] = "n"
    return values


def kconfig_values(overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The running kernel's config with ``overrides`` on top, plus libbpf's specials."""
    values = dict(_system_kconfig())
    values.setdefault("LINUX_KERNEL_VERSION", str(kernel_version()))
    values.setdefault("LINUX_HAS_SYSCALL_WRAPPER", "y" if _has_syscall_wrapper() else "n")
    values.setdefault(
        "LINUX_HAS_BPF_COOKIE", "y" if kernel_version() >= (5 << 16 | 15 << 8) else "n"
    )
    if overrides:
        values.update({k: str(v) for k, v in overrides.items()})
    return values


def _has_syscall_wrapper() -> bool:
    return bool(kallsyms_lookup({"__x64_sys_bpf", "__arm64_sys_bpf", "__s390x_sys_bpf"}))


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
        raise ObjectError(f"cannot read /proc/kallsyms for __ksym externs: {error}") from None
    return found
