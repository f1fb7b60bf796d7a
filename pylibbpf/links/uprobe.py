"""uprobes: a probe on a function (or offset) of a user-space binary or library, through
the uprobe PMU (a tracefs ``uprobe_events`` probe where it is missing), and uprobe.multi
(many offsets behind one bpf_link, 6.6+). ``spec.elfsym`` turns names into offsets."""

from __future__ import annotations

import ctypes
import errno
import fnmatch

from .. import syscall
from ..errors import AttachError, NotSupportedError
from ..spec.elfsym import find_binary, read_image, resolve
from ..syscall import features, perf
from ..uapi import AttachType
from .base import Attachable, Link, create_link
from .kprobe import attach_tracefs_probe
from .perf_event import attach_perf_event

_REF_CTR_SHIFT = 32  # PERF_UPROBE_REF_CTR_OFFSET_SHIFT


def attach_uprobe(
    program: Attachable,
    binary: str,
    function: str | None = None,
    *,
    offset: int = 0,
    retprobe: bool = False,
    pid: int = -1,
    ref_ctr_offset: int = 0,
    cookie: int = 0,
) -> Link:
    """A uprobe (``retprobe``: uretprobe) on ``binary:function+offset`` for every process
    (``pid=-1``) or one."""
    path, file_offset = resolve(binary, function, offset)
    kind = "uretprobe" if retprobe else "uprobe"
    target = f"{path}:{function or ''}{'+' if function and offset else ''}"
    target += f"{offset:#x}" if offset or not function else ""
    what = f"program {program.name!r} on {kind} {target}" + (f" pid {pid}" if pid >= 0 else "")
    try:
        pmu_type, bit = perf.pmu("uprobe")
    except NotSupportedError:
        return attach_tracefs_probe(
            program, "uprobe", f"{path}:{file_offset:#x}", retprobe=retprobe, pid=pid, what=what
        )
    path_buffer = ctypes.create_string_buffer(path.encode())
    attr = perf.PerfEventAttr(
        type=pmu_type,
        config=((1 << bit) if retprobe else 0) | (ref_ctr_offset << _REF_CTR_SHIFT),
        config1=ctypes.addressof(path_buffer),
        config2=file_offset,
        sample_period=1,
        wakeup_events=1,
    )
    perf_fd = perf.perf_event_open(attr, pid=pid, cpu=0 if pid < 0 else -1, what=what)
    return attach_perf_event(program, perf_fd, what, cookie=cookie)


def attach_uprobe_multi(
    program: Attachable,
    binary: str,
    functions: str | list[str],
    *,
    retprobe: bool = False,
    pid: int = 0,
    cookies: list[int] | None = None,
    session: bool | None = None,
) -> Link:
    """One link on many functions of one binary: a list of names or a glob (6.6+).
    ``session`` (6.13; the default for ``uprobe.session`` programs) runs the program on
    entry and, unless the entry run returned non-zero, on return too."""
    if session is None:
        session = program.expected_attach_type == AttachType.TRACE_UPROBE_SESSION
    if session and not features.has_uprobe_session():
        raise NotSupportedError(
            f"program {program.name!r}: this kernel has no uprobe.session links (Linux 6.13+)",
            errno.EOPNOTSUPP,
        )
    if session and retprobe:
        raise AttachError(
            f"program {program.name!r}: a session probe runs on entry and return; "
            "retprobe does not apply",
            errno.EINVAL,
        )
    path = find_binary(binary)
    image = read_image(path)
    if isinstance(functions, str) and any(c in functions for c in "*?["):
        names = sorted(n for n in image.functions if fnmatch.fnmatchcase(n, functions))
    else:
        names = [functions] if isinstance(functions, str) else list(functions)
    kind = "uprobe.session" if session else "uprobe.multi"
    what = f"program {program.name!r} on {kind} {path}:{functions!r} ({len(names)})"
    if not names:
        raise AttachError(f"{what}: no function matches", errno.ENOENT)
    offsets = (ctypes.c_uint64 * len(names))(*(image.function_offset(n) for n in names))
    cookie_array = (ctypes.c_uint64 * len(names))(*(cookies or [0] * len(names)))
    path_buffer = ctypes.create_string_buffer(path.encode())
    opts = syscall.UprobeMultiLinkOpts(
        path=ctypes.addressof(path_buffer),
        offsets=ctypes.addressof(offsets),
        cookies=ctypes.addressof(cookie_array),
        cnt=len(names),
        flags=1 if retprobe else 0,  # BPF_F_UPROBE_MULTI_RETURN
        pid=max(pid, 0),
    )
    attach_type = AttachType.TRACE_UPROBE_SESSION if session else AttachType.TRACE_UPROBE_MULTI
    return create_link(program, 0, attach_type, what, opts=opts)
