"""perf_event_open(2) and tracefs: the perf events that tracepoints, kprobes, uprobes and
perf buffers hang on, the dynamic PMUs, and the tracefs probe interface older kernels
need instead of them."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import itertools
import os
import platform

from ..errors import AttachError, BpfPermissionError, NotSupportedError
from .fd import OwnedFd
from .system import permission_hint

_NR_PERF_EVENT_OPEN = {
    "x86_64": 298,
    "aarch64": 241,
    "riscv64": 241,
    "s390x": 331,
    "ppc64le": 319,
}.get(platform.machine(), 298)
PERF_FLAG_FD_CLOEXEC = 1 << 3
PERF_TYPE_TRACEPOINT = 2
PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_BPF_OUTPUT = 10
PERF_SAMPLE_RAW = 1 << 10
PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_SET_BPF = 0x40042408

TRACEFS_ROOTS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")

_syscall = ctypes.CDLL(None, use_errno=True).syscall
_syscall.restype = ctypes.c_long


class PerfEventAttr(ctypes.Structure):
    """``struct perf_event_attr`` up to ``config2`` (the rest zero)."""

    _fields_ = [
        ("type", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
        ("config", ctypes.c_uint64),
        ("sample_period", ctypes.c_uint64),
        ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),  # disabled, inherit, ... bitfield
        ("wakeup_events", ctypes.c_uint32),
        ("bp_type", ctypes.c_uint32),
        ("config1", ctypes.c_uint64),
        ("config2", ctypes.c_uint64),
        ("_rest", ctypes.c_uint8 * 56),
    ]


def perf_event_open(attr: PerfEventAttr, *, pid: int = -1, cpu: int = 0, what: str) -> OwnedFd:
    """Open a perf event (close-on-exec); ``what`` names it in errors."""
    attr.size = ctypes.sizeof(attr)
    fd = int(_syscall(_NR_PERF_EVENT_OPEN, ctypes.byref(attr), pid, cpu, -1, PERF_FLAG_FD_CLOEXEC))
    if fd < 0:
        err = ctypes.get_errno()
        if err in (errno.EPERM, errno.EACCES):
            raise BpfPermissionError(f"{what}: perf_event_open refused; {permission_hint()}", err)
        raise AttachError(f"{what}: perf_event_open failed: {os.strerror(err)}", err)
    return OwnedFd(fd, f"perf event ({what})")


def tracepoint_id(category: str, name: str) -> int:
    """The numeric id of ``category:name`` from tracefs (mounted at either usual place)."""
    for root in TRACEFS_ROOTS:
        path = os.path.join(root, "events", category, name, "id")
        try:
            with open(path) as f:
                return int(f.read())
        except FileNotFoundError as error:
            if os.path.isdir(os.path.join(root, "events")):
                raise AttachError(
                    f"tracepoint {category}:{name} does not exist ({path} is missing)", errno.ENOENT
                ) from error
        except OSError:
            continue
    raise AttachError(
        f"tracepoint {category}:{name}: tracefs is not mounted at {' or '.join(TRACEFS_ROOTS)} "
        "(mount -t tracefs tracefs /sys/kernel/tracing)",
        errno.ENOENT,
    )


def set_bpf(perf_fd: int, prog_fd: int, what: str) -> None:
    """The pre-bpf_link way to attach: PERF_EVENT_IOC_SET_BPF, then enable."""
    try:
        fcntl.ioctl(perf_fd, PERF_EVENT_IOC_SET_BPF, prog_fd)
        fcntl.ioctl(perf_fd, PERF_EVENT_IOC_ENABLE, 0)
    except OSError as error:
        raise AttachError(
            f"{what}: PERF_EVENT_IOC_SET_BPF failed: {error.strerror}", error.errno
        ) from error


def enable(perf_fd: int) -> None:
    """PERF_EVENT_IOC_ENABLE: start counting (a perf buffer's event)."""
    fcntl.ioctl(perf_fd, PERF_EVENT_IOC_ENABLE, 0)


def pmu(name: str) -> tuple[int, int]:
    """A dynamic PMU's type and its retprobe bit (``kprobe``, ``uprobe``), from sysfs;
    ``NotSupportedError`` if this kernel has no such PMU."""
    base = f"/sys/bus/event_source/devices/{name}"
    try:
        with open(f"{base}/type") as f:
            pmu_type = int(f.read())
    except OSError as error:
        raise NotSupportedError(
            f"this kernel has no {name} PMU ({base}); kprobes are not available", errno.ENOTSUP
        ) from error
    bit = 0
    with contextlib.suppress(OSError, ValueError), open(f"{base}/format/retprobe") as f:
        bit = int(f.read().split(":")[1])
    return pmu_type, bit


_tracefs_probe_ids = itertools.count()


def tracefs_events_root(events: str) -> str | None:
    """The tracefs mount that has ``events`` (``kprobe_events``…), or None."""
    return next((r for r in TRACEFS_ROOTS if os.path.exists(f"{r}/{events}")), None)


def add_tracefs_probe(kind: str, target: str, *, retprobe: bool, what: str) -> tuple[str, str]:
    """Create a named ``kind`` (kprobe/uprobe) probe on ``target`` in tracefs; returns
    (the tracefs root, the event name in group ``pylibbpf``)."""
    events = f"{kind}_events"
    root = tracefs_events_root(events)
    if root is None:
        raise NotSupportedError(
            f"{what}: this kernel has no {kind} PMU and no tracefs {events}", errno.EOPNOTSUPP
        )
    event = f"pylibbpf_{os.getpid()}_{next(_tracefs_probe_ids)}"
    try:
        _append(f"{root}/{events}", f"{'r' if retprobe else 'p'}:pylibbpf/{event} {target}\n")
    except OSError as error:
        raise AttachError(f"{what}: {events} refused it: {error.strerror}", error.errno) from error
    return root, event


def remove_tracefs_probe(root: str, kind: str, event: str) -> None:
    """Remove a probe ``add_tracefs_probe`` made."""
    _append(f"{root}/{kind}_events", f"-:pylibbpf/{event}\n")


def _append(path: str, text: str) -> None:
    """One write(2) with O_APPEND (Python's "a" mode seeks, which tracefs refuses)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def filter_functions() -> list[str]:
    """tracefs' available_filter_functions: the kernel functions kprobes may hook."""
    for root in TRACEFS_ROOTS:
        with contextlib.suppress(OSError), open(f"{root}/available_filter_functions") as f:
            return f.read().splitlines()
    raise AttachError("tracefs available_filter_functions is not readable", errno.ENOENT)
