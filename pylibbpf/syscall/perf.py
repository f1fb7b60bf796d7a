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

from ..errors import AttachError, BpfError, BpfPermissionError, NotSupportedError, ObjectError
from ..logs import module_logger
from .capabilities import perf_event_hint
from .fd import OwnedFd

_NR_PERF_EVENT_OPEN = {
    "x86_64": 298,
    "aarch64": 241,
    "riscv64": 241,
    "s390x": 331,
    "ppc64le": 319,
}.get(platform.machine(), 298)
PERF_FLAG_FD_CLOEXEC = 1 << 3
PERF_TYPE_HARDWARE = 0
PERF_TYPE_SOFTWARE = 1
PERF_TYPE_TRACEPOINT = 2
PERF_COUNT_HW_CPU_CYCLES = 0
PERF_COUNT_SW_CPU_CLOCK = 0
PERF_COUNT_SW_TASK_CLOCK = 1
PERF_COUNT_SW_BPF_OUTPUT = 10
ATTR_FLAG_FREQ = 1 << 10  # perf_event_attr.freq: sample_period holds a frequency
PERF_SAMPLE_RAW = 1 << 10
PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_SET_BPF = 0x40042408
_PERF_TYPE_MAX = 6  # types from here on are dynamic PMUs (kprobe, uprobe...)

TRACEFS_ROOTS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")

_syscall = ctypes.CDLL(None, use_errno=True).syscall
_syscall.restype = ctypes.c_long

logger = module_logger(__name__)


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
            code = errno.errorcode[err]
            hint = perf_event_hint(_dynamic_pmu_name(attr.type))
            raise BpfPermissionError(f"{what}: perf_event_open refused [{code}]; {hint}", err)
        raise AttachError(f"{what}: perf_event_open failed: {os.strerror(err)}", err)
    return OwnedFd(fd, f"perf event ({what})")


def _dynamic_pmu_name(pmu_type: int) -> str | None:
    """The name of a dynamic PMU (``kprobe``, ``uprobe``…) by its type, from sysfs."""
    if pmu_type < _PERF_TYPE_MAX:
        return None
    base = "/sys/bus/event_source/devices"
    with contextlib.suppress(OSError):
        for name in sorted(os.listdir(base)):
            with contextlib.suppress(OSError, ValueError), open(f"{base}/{name}/type") as f:
                if int(f.read()) == pmu_type:
                    return name
    return f"PMU type {pmu_type}"


def tracefs_refused(path: str, error: OSError, what: str, *, write: bool = False) -> BpfError:
    """The error for a tracefs file this process may not use: tracefs is mounted, and
    the kernel said EACCES (or EPERM), not that it is missing."""
    err = error.errno or errno.EACCES
    code = errno.errorcode.get(err, str(err))
    root = next((r for r in TRACEFS_ROOTS if path.startswith(r + "/")), os.path.dirname(path))
    try:
        status = os.stat(root)
        owner = f"{root} is mode {status.st_mode & 0o7777:04o}, uid {status.st_uid}"
        owner += f" gid {status.st_gid}"
    except OSError:
        owner = f"{root} cannot be examined either"
    needs = "CAP_DAC_OVERRIDE" if write else "CAP_DAC_READ_SEARCH or CAP_DAC_OVERRIDE"
    return BpfPermissionError(
        f"{what}: tracefs is mounted, but this process may not {'write' if write else 'read'} "
        f"{path} [{code}]: {owner}; another uid needs {needs}, or tracefs mounted with a gid= "
        "and mode= that admit it (CAP_BPF and CAP_PERFMON do not open files)",
        err,
    )


def open_sampling_event(
    cpu: int,
    *,
    frequency: int | None = None,
    period: int | None = None,
    pid: int = -1,
    event_type: int = PERF_TYPE_SOFTWARE,
    config: int = PERF_COUNT_SW_CPU_CLOCK,
) -> OwnedFd:
    """A sampling perf event for a ``perf_event`` program (``attach_perf_event``): bcc's
    ``sample_freq``/``sample_period``, what libbpf-bootstrap's profiler opens by hand.

    Samples ``frequency`` times a second (the kernel adjusts the period) or every
    ``period`` events. ``cpu`` and ``pid`` as perf_event_open(2): ``pid=-1`` with a CPU is
    every process on that CPU (CAP_PERFMON unless perf_event_paranoid allows it), a pid
    with ``cpu=-1`` that process wherever it runs. The event is the cpu-clock software
    event by default (no hardware PMU needed, so it works in VMs); ``event_type`` and
    ``config`` choose another (``PERF_TYPE_HARDWARE``, ``PERF_COUNT_HW_CPU_CYCLES``).
    """
    if (frequency is None) == (period is None):
        raise ObjectError("sampling perf event: give either frequency or period", errno.EINVAL)
    rate = frequency if frequency is not None else period
    if not isinstance(rate, int) or rate <= 0:
        raise ObjectError(
            f"sampling perf event: {'frequency' if frequency is not None else 'period'} "
            f"must be a positive int, not {rate!r}",
            errno.EINVAL,
        )
    if cpu < -1 or pid < -1 or (cpu == -1 and pid == -1):
        raise ObjectError(
            f"sampling perf event: cpu {cpu}, pid {pid}: one of them must name a CPU or a "
            "process (-1 is any)",
            errno.EINVAL,
        )
    attr = PerfEventAttr(
        type=event_type,
        config=config,
        sample_period=rate,
        flags=ATTR_FLAG_FREQ if frequency is not None else 0,
    )
    every = f"{frequency} Hz" if frequency is not None else f"every {period} events"
    where = f"cpu {cpu}" if pid == -1 else f"pid {pid}" + (f" on cpu {cpu}" if cpu >= 0 else "")
    return perf_event_open(attr, pid=pid, cpu=cpu, what=f"sampling perf event ({every}, {where})")


def tracepoint_id(category: str, name: str) -> int:
    """The numeric id of ``category:name`` from tracefs (mounted at either usual place)."""
    refused: tuple[str, OSError] | None = None
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
        except PermissionError as error:
            refused = refused or (path, error)  # mounted, but not for this process
        except OSError:
            continue
    if refused is not None:
        raise tracefs_refused(*refused, f"tracepoint {category}:{name}")
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


def tracefs_events_root(events: str, what: str = "") -> str | None:
    """The tracefs mount that has ``events`` (``kprobe_events``…), or None;
    ``BpfPermissionError`` where tracefs is there but this process may not look."""
    refused: tuple[str, OSError] | None = None
    for root in TRACEFS_ROOTS:
        try:
            os.stat(f"{root}/{events}")
            return root
        except PermissionError as error:
            refused = refused or (f"{root}/{events}", error)
        except OSError:
            continue
    if refused is not None:
        raise tracefs_refused(*refused, what or events, write=True)
    return None


def add_tracefs_probe(kind: str, target: str, *, retprobe: bool, what: str) -> tuple[str, str]:
    """Create a named ``kind`` (kprobe/uprobe) probe on ``target`` in tracefs; returns
    (the tracefs root, the event name in group ``pylibbpf``)."""
    events = f"{kind}_events"
    root = tracefs_events_root(events, what)
    if root is None:
        raise NotSupportedError(
            f"{what}: this kernel has no {kind} PMU and no tracefs {events}", errno.EOPNOTSUPP
        )
    event = f"pylibbpf_{os.getpid()}_{next(_tracefs_probe_ids)}"
    try:
        _append(f"{root}/{events}", f"{'r' if retprobe else 'p'}:pylibbpf/{event} {target}\n")
    except PermissionError as error:
        raise tracefs_refused(f"{root}/{events}", error, what, write=True) from error
    except OSError as error:
        raise AttachError(f"{what}: {events} refused it: {error.strerror}", error.errno) from error
    logger.debug("%s: added tracefs probe pylibbpf/%s in %s/%s", what, event, root, events)
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
    refused: tuple[str, OSError] | None = None
    for root in TRACEFS_ROOTS:
        path = f"{root}/available_filter_functions"
        try:
            with open(path) as f:
                return f.read().splitlines()
        except PermissionError as error:
            refused = refused or (path, error)
        except OSError:
            continue
    if refused is not None:
        raise tracefs_refused(*refused, "kernel functions to match")
    raise AttachError(
        f"tracefs available_filter_functions is missing under {' or '.join(TRACEFS_ROOTS)}",
        errno.ENOENT,
    )
