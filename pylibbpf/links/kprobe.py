"""Kernel probes: kprobe/kretprobe (the kprobe PMU, or a tracefs probe where it is
missing), ksyscall (a kprobe on the function behind a system call) and kprobe.multi
(one link over many functions, 5.18+)."""

from __future__ import annotations

import ctypes
import errno
import fnmatch

from .. import syscall
from ..errors import AttachError, NotSupportedError
from ..logs import module_logger
from ..syscall import features, perf, system
from ..uapi import AttachType
from .base import Attachable, Link, create_link
from .perf_event import attach_perf_event

_MULTI_RETURN = 1  # BPF_F_KPROBE_MULTI_RETURN

logger = module_logger(__name__)


def attach_kprobe(
    program: Attachable, function: str, *, retprobe: bool = False, offset: int = 0
) -> Link:
    """A kprobe or kretprobe through the kprobe PMU and a perf_event link (a tracefs
    ``kprobe_events`` probe where the PMU is missing)."""
    kind = "kretprobe" if retprobe else "kprobe"
    what = f"program {program.name!r} on {kind} {function}" + (f"+{offset}" if offset else "")
    try:
        pmu_type, bit = perf.pmu("kprobe")
    except NotSupportedError:
        target = f"{function}+{offset}" if offset else function
        return attach_tracefs_probe(program, "kprobe", target, retprobe=retprobe, what=what)
    name = ctypes.create_string_buffer(function.encode())
    attr = perf.PerfEventAttr(
        type=pmu_type,
        config=(1 << bit) if retprobe else 0,
        config1=ctypes.addressof(name),
        config2=offset,
        sample_period=1,
        wakeup_events=1,
    )
    return attach_perf_event(program, perf.perf_event_open(attr, what=what), what)


def attach_tracefs_probe(
    program: Attachable, kind: str, target: str, *, retprobe: bool, pid: int = -1, what: str
) -> Link:
    """The pre-PMU way (and the way on kernels built without the PMUs): a named probe in
    tracefs ``kprobe_events``/``uprobe_events``, opened as a tracepoint, removed again
    when the link closes (or is collected)."""
    root, event = perf.add_tracefs_probe(kind, target, retprobe=retprobe, what=what)

    def remove() -> None:
        perf.remove_tracefs_probe(root, kind, event)

    try:
        attr = perf.PerfEventAttr(
            type=perf.PERF_TYPE_TRACEPOINT,
            config=perf.tracepoint_id("pylibbpf", event),
            sample_period=1,
            wakeup_events=1,
        )
        perf_fd = perf.perf_event_open(attr, pid=pid, cpu=0 if pid < 0 else -1, what=what)
        link = attach_perf_event(program, perf_fd, what)
    except BaseException:
        remove()
        raise
    link.on_close(remove)
    logger.info(
        "%s: through tracefs %s_events probe pylibbpf/%s (no %s PMU)", what, kind, event, kind
    )
    return link


def attach_kprobe_multi(
    program: Attachable,
    pattern: str | list[str],
    *,
    retprobe: bool = False,
    session: bool | None = None,
) -> Link:
    """One link over many kernel functions: a list of names, or a glob matched against
    tracefs' available_filter_functions. ``session`` (6.10; the default for
    ``kprobe.session`` programs) runs the program on entry and, unless the entry run
    returned non-zero, on return too (``bpf_session_is_return()``, ``bpf_session_cookie()``)."""
    if session is None:
        session = program.expected_attach_type == AttachType.TRACE_KPROBE_SESSION
    if session and not features.has_kprobe_session():
        raise NotSupportedError(
            f"program {program.name!r}: this kernel has no kprobe.session links (Linux 6.10+)",
            errno.EOPNOTSUPP,
        )
    if session and retprobe:
        raise AttachError(
            f"program {program.name!r}: a session probe runs on entry and return; "
            "retprobe does not apply",
            errno.EINVAL,
        )
    if isinstance(pattern, str) and any(c in pattern for c in "*?["):
        names = sorted(
            {
                line.split()[0]
                for line in perf.filter_functions()
                if fnmatch.fnmatch(line.split()[0], pattern)
            }
        )
    else:
        names = [pattern] if isinstance(pattern, str) else list(pattern)
    kind = "kprobe.session" if session else "kprobe.multi"
    what = f"program {program.name!r} on {kind} {pattern!r} ({len(names)} functions)"
    if not names:
        raise AttachError(f"{what}: no function matches", errno.ENOENT)
    buffers = [ctypes.create_string_buffer(name.encode()) for name in names]
    symbols = (ctypes.c_uint64 * len(names))(*(ctypes.addressof(b) for b in buffers))
    opts = syscall.KprobeMultiLinkOpts(
        flags=_MULTI_RETURN if retprobe else 0, cnt=len(names), syms=ctypes.addressof(symbols)
    )
    attach_type = AttachType.TRACE_KPROBE_SESSION if session else AttachType.TRACE_KPROBE_MULTI
    return create_link(program, 0, attach_type, what, opts=opts)


def syscall_function(name: str) -> str:
    """The kernel function behind a system call (``__x64_sys_<name>`` on x86-64)."""
    found = system.syscall_function(name)
    if found is None:
        raise AttachError(f"no kernel function for syscall {name!r}", errno.ENOENT)
    return found


def attach_ksyscall(program: Attachable, name: str, *, retprobe: bool = False) -> Link:
    """A kprobe on the kernel function behind system call ``name``."""
    return attach_kprobe(program, syscall_function(name), retprobe=retprobe)
