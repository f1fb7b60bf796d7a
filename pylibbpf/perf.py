"""perf_event_open(2): the perf events that tracepoints, kprobes and perf buffers hang on."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import platform

from .errors import AttachError, BpfPermissionError, permission_hint
from .fd import OwnedFd

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
        except FileNotFoundError:
            if os.path.isdir(os.path.join(root, "events")):
                raise AttachError(
                    f"tracepoint {category}:{name} does not exist ({path} is missing)", errno.ENOENT
                ) from None
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
        ) from None
