"""What the kernel says about BPF objects outside ``bpf(2)``: an fd's
``/proc/self/fdinfo`` (memlock, frozen, a program array's owner — facts ``bpf_*_info``
does not carry) and which bpffs pins hold which object (bpftool's ``--bpffs``)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import BpfError
from .bpf import obj_get

MOUNTS = "/proc/self/mounts"


def fdinfo(fd: int) -> dict[str, str]:
    """The ``key:\tvalue`` lines of ``/proc/self/fdinfo/FD`` (empty if unreadable)."""
    try:
        text = Path(f"/proc/self/fdinfo/{fd}").read_text()
    except OSError:
        return {}
    fields = {}
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        if colon:
            fields[key.strip()] = value.strip()
    return fields


def bpffs_mounts() -> list[str]:
    """Where bpffs is mounted (``/sys/fs/bpf`` usually), from ``/proc/self/mounts``."""
    try:
        lines = Path(MOUNTS).read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) > 2 and fields[2] == "bpf" and fields[1] not in found:
            found.append(fields[1].replace("\\040", " "))
    return found


def pinned_objects() -> dict[tuple[str, int], list[str]]:
    """Every pin on every bpffs mount: {("prog" | "map" | "link", id): [paths]}, as
    bpftool's ``-f`` lists them next to each object."""
    found: dict[tuple[str, int], list[str]] = {}
    for root in bpffs_mounts():
        for directory, _, files in os.walk(root):
            for name in files:
                path = os.path.join(directory, name)
                try:
                    fd = obj_get(path, what=f"pin {path!r}")
                except BpfError:
                    continue  # not a BPF object, or not ours to open
                try:
                    fields = fdinfo(fd)
                finally:
                    os.close(fd)
                for kind in ("prog", "map", "link"):
                    if f"{kind}_id" in fields:
                        found.setdefault((kind, int(fields[f"{kind}_id"])), []).append(path)
                        break
    for paths in found.values():
        paths.sort()
    return found
