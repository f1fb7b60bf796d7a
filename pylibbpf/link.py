"""Links: a program attached to a hook, detached when the link is closed.

One small class per way of attaching, sharing ``Link``'s lifetime rules: ``close()`` (or
leaving a ``with`` block, or garbage collection) detaches unless the link is pinned, in
which case the pin keeps it attached after this process exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import itertools
import os
import socket
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from . import perf, syscall
from .errors import AttachError, BpfError, NotSupportedError
from .fd import Closing, OwnedFd
from .uapi import AttachFlags, AttachType

if TYPE_CHECKING:
    from .program import Program


@dataclass(frozen=True)
class LinkInfo:
    id: int
    type: int
    prog_id: int


class Link(Closing):
    """An attachment owned by this process (a bpf_link fd, or what stands in for one)."""

    def __init__(self, fd: OwnedFd, description: str, *, keepalive: OwnedFd | None = None):
        self._fd = fd
        self.description = description
        self._keepalive = keepalive  # e.g. the perf event a perf_event link hangs on
        self._pin_path: str | None = None
        self._cleanups: list[Callable[[], None]] = []
        # Also on garbage collection, after the fds (what the cleanups undo needs them gone).
        self._finalizer = weakref.finalize(self, _run_cleanups, self._cleanups)

    def on_close(self, cleanup: Callable[[], None]) -> None:
        """Run ``cleanup`` once the link is closed or collected (a tracefs probe to
        remove, a netlink attachment to undo, …); it must not refer to the link."""
        self._cleanups.append(cleanup)

    @property
    def fd(self) -> int:
        return self._fd.fd

    def fileno(self) -> int:
        return self._fd.fd

    def info(self) -> LinkInfo:
        raw = syscall.obj_get_info_by_fd(self.fd, syscall.LinkInfo(), what=self.description)
        return LinkInfo(raw.id, raw.type, raw.prog_id)

    def pin(self, path: str | os.PathLike[str]) -> None:
        syscall.obj_pin(self.fd, path, what=self.description)
        self._pin_path = os.fspath(path)

    def unpin(self) -> None:
        if self._pin_path is not None:
            os.unlink(self._pin_path)
            self._pin_path = None

    @classmethod
    def from_pinned(cls, path: str | os.PathLike[str]) -> Link:
        what = f"pinned link {os.fspath(path)!r}"
        return cls(OwnedFd(syscall.obj_get(path, what=what), what), what)

    def update_program(self, program: Program) -> None:
        syscall.link_update(self.fd, program.fd, what=self.description)

    def detach(self) -> None:
        """Detach now, even if pinned elsewhere (LINK_DETACH), then close."""
        try:
            syscall.link_detach(self.fd, what=self.description)
        except BpfError as error:
            if error.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
                raise
        self.close()

    def close(self) -> None:
        self._fd.close()
        if self._keepalive is not None:
            self._keepalive.close()
        self._finalizer()

    @property
    def closed(self) -> bool:
        return self._fd.closed

    def __repr__(self) -> str:
        return f"<Link {self.description} {'closed' if self.closed else f'fd={self.fd}'}>"


def _run_cleanups(cleanups: list[Callable[[], None]]) -> None:
    while cleanups:
        with contextlib.suppress(OSError):
            cleanups.pop(0)()


def attach_perf_event(program: Program, perf_fd: OwnedFd, what: str, *, cookie: int = 0) -> Link:
    """Attach to a perf event: a bpf_link (5.15+) or, on older kernels, the ioctl. A BPF
    ``cookie`` (``bpf_get_attach_cookie()``) needs the link."""
    opts = syscall.PerfEventLinkOpts(bpf_cookie=cookie) if cookie else None
    try:
        fd = syscall.link_create(
            program.fd, perf_fd.fd, AttachType.PERF_EVENT, opts=opts, what=what
        )
        return Link(OwnedFd(fd, what), what, keepalive=perf_fd)
    except BpfError as error:
        if error.errno not in (errno.EINVAL, errno.EOPNOTSUPP, 524) or cookie:
            perf_fd.close()
            hint = " (BPF cookies need perf_event links, 5.15+)" if cookie else ""
            raise AttachError(f"{what}: {error.message}{hint}", error.errno) from None
    perf.set_bpf(perf_fd.fd, program.fd, what)
    return Link(perf_fd, what)  # closing the perf event detaches


def attach_tracepoint(program: Program, category: str, name: str) -> Link:
    what = f"program {program.name!r} on tracepoint {category}:{name}"
    attr = perf.PerfEventAttr(
        type=perf.PERF_TYPE_TRACEPOINT,
        config=perf.tracepoint_id(category, name),
        sample_period=1,
        wakeup_events=1,
    )
    return attach_perf_event(program, perf.perf_event_open(attr, what=what), what)


def attach_raw_tracepoint(program: Program, name: str) -> Link:
    what = f"program {program.name!r} on raw tracepoint {name}"
    try:
        fd = syscall.raw_tracepoint_open(name, program.fd, what=what)
    except BpfError as error:
        hint = " (no such tracepoint)" if error.errno == errno.ENOENT else ""
        raise AttachError(f"{error.message}{hint}", error.errno) from None
    return Link(OwnedFd(fd, what), what)


def _link(
    program: Program, target_fd: int, attach_type: int, what: str, opts: Any = None, flags: int = 0
) -> Link:
    try:
        fd = syscall.link_create(
            program.fd, target_fd, attach_type, flags=flags, opts=opts, what=what
        )
    except BpfError as error:
        raise AttachError(error.message, error.errno) from None
    return Link(OwnedFd(fd, what), what)


def ifindex_of(interface: int | str) -> int:
    if isinstance(interface, int):
        return interface
    try:
        return socket.if_nametoindex(interface)
    except OSError:
        raise AttachError(f"network interface {interface!r} does not exist", errno.ENODEV) from None


def attach_xdp(
    program: Program,
    interface: int | str,
    *,
    flags: int = 0,
    netlink: bool | None = None,
    replace: bool = False,
) -> Link:
    """XDP on an interface: a bpf_link (5.9+), or through netlink when ``netlink=True``,
    when links are missing, or to ``replace`` what is attached; closing detaches."""
    index = ifindex_of(interface)
    what = f"program {program.name!r} on XDP of {interface!r} (ifindex {index})"
    if not netlink and not replace:
        try:
            return _link(program, index, AttachType.XDP, what, flags=flags)
        except AttachError as error:
            if netlink is False or error.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
                raise
    from . import netlink as rtnetlink

    return rtnetlink.attach_xdp(program, index, interface, flags=flags, replace=replace)


def attach_tc(
    program: Program, interface: int | str, direction: str = "ingress", *, tcx: bool | None = None
) -> Link:
    """tc ingress/egress: a tcx link on 6.6+ (``tcx=None`` or ``True``), else (or with
    ``tcx=False``) a direct-action cls_bpf filter on a clsact qdisc through netlink."""
    if direction not in ("ingress", "egress"):
        raise AttachError(f"tc direction must be ingress or egress, not {direction!r}", 22)
    from .features import has_tcx

    if tcx or (tcx is None and has_tcx()):
        return attach_tcx(program, interface, direction)
    from . import netlink as rtnetlink

    return rtnetlink.attach_tc(program, ifindex_of(interface), interface, direction)


def attach_tcx(program: Program, interface: int | str, direction: str = "ingress") -> Link:
    """A tcx link (Linux 6.6+) on an interface's ingress or egress."""
    if direction not in ("ingress", "egress"):
        raise AttachError(
            f"tcx direction must be ingress or egress, not {direction!r}", errno.EINVAL
        )
    from .features import has_tcx

    if not has_tcx():
        raise NotSupportedError(
            f"program {program.name!r}: this kernel has no tcx links (Linux 6.6+); "
            "attach_tc() falls back to a clsact filter through netlink",
            errno.EOPNOTSUPP,
        )
    index = ifindex_of(interface)
    attach_type = AttachType.TCX_INGRESS if direction == "ingress" else AttachType.TCX_EGRESS
    what = f"program {program.name!r} on tcx {direction} of {interface!r}"
    return _link(program, index, attach_type, what, opts=syscall.TcxLinkOpts())


class InterfaceLink(Link):
    """An XDP or tc attachment made through netlink: detached on close; there is no
    bpf_link behind it, so it cannot be pinned or queried."""

    def pin(self, path: str | os.PathLike[str]) -> None:
        raise NotSupportedError(
            f"{self.description}: a netlink attachment has no bpf_link to pin", errno.EOPNOTSUPP
        )

    def info(self) -> LinkInfo:
        raise NotSupportedError(
            f"{self.description}: a netlink attachment has no bpf_link", errno.EOPNOTSUPP
        )

    def update_program(self, program: Program) -> None:
        raise NotSupportedError(
            f"{self.description}: re-attach with replace=True instead", errno.EOPNOTSUPP
        )

    def detach(self) -> None:
        self.close()


def attach_cgroup(
    program: Program,
    cgroup: str | os.PathLike[str] | int,
    attach_type: int | None = None,
    *,
    legacy: bool | None = None,
    flags: int = AttachFlags.ALLOW_MULTI,
) -> Link:
    """A cgroup link; the attach type defaults to the program's expected one. Kernels
    without cgroup links (before 5.7), or ``legacy=True``, get PROG_ATTACH with ``flags``
    (ALLOW_MULTI by default; ALLOW_OVERRIDE or 0 for the older exclusive modes)."""
    kind = attach_type if attach_type is not None else program.expected_attach_type
    if kind is None:
        raise AttachError(
            f"program {program.name!r}: which cgroup hook? (attach_type)", errno.EINVAL
        )
    what = f"program {program.name!r} on cgroup {cgroup!r} ({AttachType(kind).name})"

    def open_cgroup() -> OwnedFd:
        if isinstance(cgroup, int):
            return OwnedFd(os.dup(cgroup), what)
        try:
            return OwnedFd(os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), what)
        except OSError as error:
            raise AttachError(
                f"{what}: cannot open the cgroup: {error.strerror}", error.errno
            ) from None

    if not legacy:
        try:
            with open_cgroup() as fd:
                return _link(program, fd.fd, kind, what)
        except AttachError as error:
            if legacy is False or error.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
                raise
    return _prog_attach(program, open_cgroup(), kind, f"{what} (PROG_ATTACH)", flags)


def attach_netns(program: Program, netns: str | os.PathLike[str] = "/proc/self/ns/net") -> Link:
    """sk_lookup and flow_dissector programs, on a network namespace."""
    kind = program.expected_attach_type
    if kind is None:
        raise AttachError(f"program {program.name!r} has no netns attach type", errno.EINVAL)
    what = f"program {program.name!r} on netns {os.fspath(netns)!r}"
    with OwnedFd(os.open(netns, os.O_RDONLY | os.O_CLOEXEC), what) as fd:
        return _link(program, fd.fd, kind, what)


class ProgAttachLink(Link):
    """An attachment made with PROG_ATTACH (sockmaps; cgroups on kernels without cgroup
    links): no bpf_link, so it is detached with PROG_DETACH when the link is closed or
    garbage collected, never left behind."""

    def __init__(self, program: Program, target: OwnedFd, attach_type: int, what: str):
        target_fd = os.dup(target.fd)  # owned by the hook below, which runs exactly once
        target.close()

        def detach(prog_fd: int) -> None:
            try:
                syscall.prog_detach(target_fd, prog_fd, attach_type, what=what)
            except BpfError:
                pass  # the target went away first: nothing is attached any more
            finally:
                os.close(target_fd)

        super().__init__(OwnedFd(os.dup(program.fd), what, before_close=detach), what)

    def pin(self, path: str | os.PathLike[str]) -> None:
        raise NotSupportedError(f"{self.description}: not a bpf_link", errno.EOPNOTSUPP)

    def info(self) -> LinkInfo:
        raise NotSupportedError(f"{self.description}: not a bpf_link", errno.EOPNOTSUPP)


def _prog_attach(
    program: Program, target: OwnedFd, kind: int, what: str, flags: int = 0
) -> ProgAttachLink:
    try:
        syscall.prog_attach(target.fd, program.fd, kind, flags=flags, what=what)
    except BpfError as error:
        target.close()
        raise AttachError(error.message, error.errno) from None
    return ProgAttachLink(program, target, kind, what)


def attach_sockmap(program: Program, map_: Any, attach_type: int | None = None) -> Link:
    kind = attach_type if attach_type is not None else program.expected_attach_type
    if kind is None:
        raise AttachError(
            f"program {program.name!r}: which sockmap hook? (attach_type)", errno.EINVAL
        )
    what = f"program {program.name!r} on {map_.name!r} ({AttachType(kind).name})"
    return _prog_attach(program, OwnedFd(os.dup(map_.fileno()), what), kind, what)


def attach_netfilter(
    program: Program, family: int, hook: int, priority: int, *, defrag: bool = False
) -> Link:
    what = f"program {program.name!r} on netfilter (family {family}, hook {hook}, prio {priority})"
    opts = syscall.NetfilterLinkOpts(
        pf=family, hooknum=hook, priority=priority, flags=1 if defrag else 0
    )
    return _link(program, 0, AttachType.NETFILTER, what, opts=opts)


class IterLink(Link):
    """An iterator link: every ``open_iter()`` runs the program over the objects afresh."""

    def open_iter(self) -> BinaryIO:
        fd = syscall.iter_create(self.fd, what=self.description)
        return os.fdopen(fd, "rb", buffering=0)


def attach_iter(program: Program, map_: Any = None) -> IterLink:
    """An iterator (``iter/task``, ``iter/bpf_map_elem`` with ``map_``…)."""
    what = f"iterator program {program.name!r}"
    opts = None
    if map_ is not None:
        info = (ctypes.c_uint32 * 2)(map_.fileno(), 0)  # union bpf_iter_link_info.map.map_fd
        keep = info
        opts = syscall.IterLinkOpts(
            iter_info=ctypes.addressof(keep), iter_info_len=ctypes.sizeof(keep)
        )
    link = _link(program, 0, AttachType.TRACE_ITER, what, opts=opts)
    return IterLink(link._fd, what)


def attach_trace(program: Program) -> Link:
    """fentry/fexit/fmod_ret/lsm/tp_btf/freplace: the target was fixed at load time."""
    what = f"tracing program {program.name!r} ({program.section or program.type})"
    try:
        fd = syscall.raw_tracepoint_open(None, program.fd, what=what)
    except BpfError as error:
        raise AttachError(error.message, error.errno) from None
    return Link(OwnedFd(fd, what), what)


def _pmu(name: str) -> tuple[int, int]:
    """A dynamic PMU's type and its retprobe bit (kprobe, uprobe)."""
    base = f"/sys/bus/event_source/devices/{name}"
    try:
        with open(f"{base}/type") as f:
            pmu_type = int(f.read())
    except OSError:
        raise NotSupportedError(
            f"this kernel has no {name} PMU ({base}); kprobes are not available", errno.ENOTSUP
        ) from None
    bit = 0
    with contextlib.suppress(OSError, ValueError), open(f"{base}/format/retprobe") as f:
        bit = int(f.read().split(":")[1])
    return pmu_type, bit


def attach_kprobe(
    program: Program, function: str, *, retprobe: bool = False, offset: int = 0
) -> Link:
    """A kprobe or kretprobe through the kprobe PMU and a perf_event link (a tracefs
    ``kprobe_events`` probe where the PMU is missing)."""
    kind = "kretprobe" if retprobe else "kprobe"
    what = f"program {program.name!r} on {kind} {function}" + (f"+{offset}" if offset else "")
    try:
        pmu_type, bit = _pmu("kprobe")
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


_tracefs_probe_ids = itertools.count()


def attach_tracefs_probe(
    program: Program, kind: str, target: str, *, retprobe: bool, pid: int = -1, what: str
) -> Link:
    """The pre-PMU way (and the way on kernels built without the PMUs): a named probe in
    tracefs ``kprobe_events``/``uprobe_events``, opened as a tracepoint, removed again
    when the link closes (or is collected)."""
    events = f"{kind}_events"
    root = next((r for r in perf.TRACEFS_ROOTS if os.path.exists(f"{r}/{events}")), None)
    if root is None:
        raise NotSupportedError(
            f"{what}: this kernel has no {kind} PMU and no tracefs {events}", errno.EOPNOTSUPP
        )
    event = f"pylibbpf_{os.getpid()}_{next(_tracefs_probe_ids)}"
    try:
        _append(f"{root}/{events}", f"{'r' if retprobe else 'p'}:pylibbpf/{event} {target}\n")
    except OSError as error:
        raise AttachError(f"{what}: {events} refused it: {error.strerror}", error.errno) from None

    def remove() -> None:
        _append(f"{root}/{events}", f"-:pylibbpf/{event}\n")

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
    return link


def _append(path: str, text: str) -> None:
    """One write(2) with O_APPEND (Python's "a" mode seeks, which tracefs refuses)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def attach_kprobe_multi(
    program: Program, pattern: str | list[str], *, retprobe: bool = False
) -> Link:
    """One link over many kernel functions: a list of names, or a glob matched against
    tracefs' available_filter_functions."""
    import fnmatch

    if isinstance(pattern, str) and any(c in pattern for c in "*?["):
        names = sorted(
            {
                line.split()[0]
                for line in _filter_functions()
                if fnmatch.fnmatch(line.split()[0], pattern)
            }
        )
    else:
        names = [pattern] if isinstance(pattern, str) else list(pattern)
    what = f"program {program.name!r} on kprobe.multi {pattern!r} ({len(names)} functions)"
    if not names:
        raise AttachError(f"{what}: no function matches", errno.ENOENT)
    buffers = [ctypes.create_string_buffer(name.encode()) for name in names]
    symbols = (ctypes.c_uint64 * len(names))(*(ctypes.addressof(b) for b in buffers))
    opts = syscall.KprobeMultiLinkOpts(
        flags=1 if retprobe else 0, cnt=len(names), syms=ctypes.addressof(symbols)
    )
    return _link(program, 0, AttachType.TRACE_KPROBE_MULTI, what, opts=opts)


def _filter_functions() -> list[str]:
    for root in perf.TRACEFS_ROOTS:
        with contextlib.suppress(OSError), open(f"{root}/available_filter_functions") as f:
            return f.read().splitlines()
    raise AttachError("tracefs available_filter_functions is not readable", errno.ENOENT)


def syscall_function(name: str) -> str:
    """The kernel function behind a syscall (``__x64_sys_<name>`` on x86-64)."""
    from .kconfig import kallsyms_lookup

    for prefix in ("__x64_sys_", "__arm64_sys_", "__s390x_sys_", "sys_"):
        if kallsyms_lookup({prefix + name}):
            return prefix + name
    raise AttachError(f"no kernel function for syscall {name!r}", errno.ENOENT)


def attach_from_section(program: Program) -> Link | None:
    """Auto-attach from the section name, in libbpf's formats; None if it cannot."""
    from .sections import find_section_def

    definition = find_section_def(program.section)
    if definition is None or not definition.attach:
        return None
    section = program.section.lstrip("?")
    target = section.split("/", 1)[1] if "/" in section else ""
    if definition.attach == "tracepoint":
        category, _, name = target.partition("/")
        if not name:
            raise AttachError(
                f"program {program.name!r}: section {section!r} should be tp/<category>/<name>",
                errno.EINVAL,
            )
        return attach_tracepoint(program, category, name)
    if definition.attach == "raw_tp":
        if not target:
            raise AttachError(
                f"program {program.name!r}: section {section!r} should be raw_tp/<name>",
                errno.EINVAL,
            )
        return attach_raw_tracepoint(program, target)
    if definition.attach in ("trace", "lsm"):
        return attach_trace(program)
    if definition.attach == "iter":
        return attach_iter(program)
    if definition.attach == "kprobe" and target:
        function, _, offset = target.partition("+")
        retprobe = section.split("/")[0].startswith("kretprobe")
        return attach_kprobe(program, function, retprobe=retprobe, offset=int(offset or "0", 0))
    if definition.attach == "kprobe_multi" and target:
        retprobe = section.startswith("kretprobe")
        return attach_kprobe_multi(program, target, retprobe=retprobe)
    if definition.attach == "ksyscall" and target:
        retprobe = section.startswith("kretsyscall")
        return attach_kprobe(program, syscall_function(target), retprobe=retprobe)
    if definition.attach == "uprobe" and target:
        from .uprobe import attach_uprobe, parse_target

        binary, symbol, file_offset = parse_target(target)
        retprobe = section.startswith("uretprobe")
        return attach_uprobe(program, binary, symbol, offset=file_offset, retprobe=retprobe)
    if definition.attach == "uprobe_multi" and target:
        from .uprobe import attach_uprobe_multi

        binary_path, _, pattern = target.rpartition(":")
        retprobe = section.startswith("uretprobe")
        return attach_uprobe_multi(program, binary_path, pattern, retprobe=retprobe)
    if definition.attach == "usdt" and target:
        from .usdt import attach_usdt

        usdt_binary, provider, probe = _usdt_target(program, section, target)
        return attach_usdt(program, usdt_binary, provider, probe)
    if definition.attach in (
        "kprobe",
        "ksyscall",
        "uprobe",
        "uprobe_multi",
        "usdt",
        "cgroup",
        "netns",
        "tcx",
        "xdp",
    ):
        return None  # needs a target the section does not name (as in libbpf)
    raise AttachError(
        f"program {program.name!r}: automatic attachment of {definition.attach!r} programs "
        f"(section {section!r}) is not implemented yet",
        errno.EOPNOTSUPP,
    )


def _usdt_target(program: Program, section: str, target: str) -> tuple[str, str, str]:
    parts = target.rsplit(":", 2)
    if len(parts) != 3 or not all(parts):
        raise AttachError(
            f"program {program.name!r}: section {section!r} should be "
            "usdt/<path>:<provider>:<name>",
            errno.EINVAL,
        )
    return parts[0], parts[1], parts[2]
