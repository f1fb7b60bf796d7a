"""Kernel configuration and symbols for ``__kconfig`` and typeless ``__ksym`` externs."""

from __future__ import annotations

import functools
import gzip
import os

from .btf import Btf, Kind
from .elf import ExternSpec
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


_TRI_STATE = {"y": 1, "n": 0, "m": 2}


def layout_kconfig(
    object_name: str, btf: Btf, externs: list[ExternSpec], overrides: dict[str, str] | None
) -> tuple[dict[str, tuple[int, int]], bytearray]:
    """Where each ``__kconfig`` extern lives in the ``.kconfig`` map (largest alignment
    first, as libbpf packs them) and the map's initial image with their values."""
    sized = []
    for extern in externs:
        var = btf[extern.type_id]
        sized.append((-btf.alignof(var.type), extern.name, btf.sizeof(var.type), var.type))
    layout: dict[str, tuple[int, int]] = {}
    offset = 0
    for negative_align, name, size, _type in sorted(sized):
        offset = -(-offset // -negative_align) * -negative_align
        layout[name] = (offset, size)
        offset += size
    image = bytearray(max(offset, 1))
    values = kconfig_values(overrides)
    weak = {extern.name: extern.weak for extern in externs}
    for _, name, size, type_id in sorted(sized):
        raw = values.get(name)
        if raw is None:
            if not weak[name]:
                raise ObjectError(
                    f"{object_name}: __kconfig extern {name!r} is not set in the kernel "
                    "config (declare it __weak to default to 0, or pass kconfig=)"
                )
            continue
        start = layout[name][0]
        image[start : start + size] = _kconfig_bytes(btf, type_id, size, name, raw)
    return layout, image


def _kconfig_bytes(btf: Btf, type_id: int, size: int, name: str, raw: str) -> bytes:
    t = btf.resolve(type_id)
    value = raw.strip()
    if t.kind == Kind.ENUM and t.name == "libbpf_tristate":
        if value not in _TRI_STATE:
            raise ObjectError(f"__kconfig {name}: {value!r} is not y, n or m")
        return _TRI_STATE[value].to_bytes(size, "little")
    if t.kind == Kind.ARRAY:
        text = value.strip('"').encode()
        return text[: size - 1].ljust(size, b"\0")
    if value in _TRI_STATE:
        return (1 if value in ("y", "m") else 0).to_bytes(size, "little")
    try:
        number = int(value.strip('"'), 0)
    except ValueError:
        raise ObjectError(f"__kconfig {name}: {value!r} is not a number") from None
    return number.to_bytes(size, "little", signed=number < 0)
