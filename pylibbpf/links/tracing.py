"""Tracing links: tracepoints (through perf events), raw tracepoints, BTF-attached
programs (fentry/fexit/fmod_ret/lsm/tp_btf/freplace) and iterators."""

from __future__ import annotations

import ctypes
import errno
import os
from typing import Any, BinaryIO

from .. import syscall
from ..errors import AttachError, BpfError
from ..syscall import perf
from ..syscall.fd import OwnedFd
from ..uapi import AttachType, CgroupIterOrder
from .base import Attachable, Link, create_link
from .order import open_cgroup
from .perf_event import attach_perf_event


def attach_tracepoint(program: Attachable, category: str, name: str) -> Link:
    """A tracepoint program on ``category:name`` (tracefs ``events/<category>/<name>``)."""
    what = f"program {program.name!r} on tracepoint {category}:{name}"
    attr = perf.PerfEventAttr(
        type=perf.PERF_TYPE_TRACEPOINT,
        config=perf.tracepoint_id(category, name),
        sample_period=1,
        wakeup_events=1,
    )
    return attach_perf_event(program, perf.perf_event_open(attr, what=what), what)


def attach_raw_tracepoint(program: Attachable, name: str) -> Link:
    """A raw tracepoint program on tracepoint ``name`` (RAW_TRACEPOINT_OPEN)."""
    what = f"program {program.name!r} on raw tracepoint {name}"
    try:
        fd = syscall.raw_tracepoint_open(name, program.fd, what=what)
    except BpfError as error:
        hint = " (no such tracepoint)" if error.errno == errno.ENOENT else ""
        raise AttachError(f"{error.message}{hint}", error.errno) from error
    return Link(OwnedFd(fd, what), what)


def attach_trace(program: Attachable) -> Link:
    """fentry/fexit/fmod_ret/lsm/tp_btf/freplace: the target was fixed at load time."""
    what = f"tracing program {program.name!r} ({program.section or program.type})"
    try:
        fd = syscall.raw_tracepoint_open(None, program.fd, what=what)
    except BpfError as error:
        raise AttachError(error.message, error.errno) from error
    return Link(OwnedFd(fd, what), what)


class IterLink(Link):
    """An iterator link: every ``open_iter()`` runs the program over the objects afresh."""

    def open_iter(self) -> BinaryIO:
        """A new iterator: reading it runs the program and returns what it wrote."""
        fd = syscall.iter_create(self.fd, what=self.description)
        return os.fdopen(fd, "rb", buffering=0)


def attach_iter(
    program: Attachable,
    map_: Any = None,
    *,
    tid: int | None = None,
    pid: int | None = None,
    pidfd: int | None = None,
    cgroup: str | os.PathLike[str] | int | None = None,
    cgroup_id: int | None = None,
    order: CgroupIterOrder | str | None = None,
) -> IterLink:
    """An iterator (``iter/task``, ``iter/cgroup``, ``iter/bpf_map_elem``…), over
    everything or narrowed by the iterator's parameters (``bpf_iter_link_info``):
    ``map_`` for map-element iterators; one of ``tid``, ``pid`` or ``pidfd`` for task,
    task_file and task_vma iterators (one thread, one process; 6.1); a start cgroup
    (``cgroup`` as a path or fd, or ``cgroup_id``) and an ``order`` for cgroup iterators
    (6.1): ``self_only``, ``descendants_pre``, ``descendants_post``, ``ancestors_up``."""
    what = f"iterator program {program.name!r}"
    info = syscall.IterLinkInfo()
    kinds = []
    task = {"tid": tid, "pid": pid, "pid_fd": pidfd}
    given = [name for name, value in task.items() if value is not None]
    if map_ is not None:
        kinds.append("map")
        info.map.map_fd = map_.fileno()
    if given:
        if len(given) > 1:
            raise AttachError(f"{what}: one of tid, pid or pidfd, not {given}", errno.EINVAL)
        kinds.append(given[0])
        setattr(info.task, given[0], task[given[0]])
    cgroup_fd = None
    if cgroup is not None or cgroup_id is not None or order is not None:
        kinds.append("cgroup")
        if cgroup is not None and cgroup_id is not None:
            raise AttachError(f"{what}: a start cgroup by path/fd or by id, not both", errno.EINVAL)
        if len(kinds) == 1 and cgroup is not None:
            cgroup_fd = open_cgroup(cgroup, what)
            info.cgroup.cgroup_fd = cgroup_fd.fd
        info.cgroup.order = _cgroup_order(order, what)
        info.cgroup.cgroup_id = cgroup_id or 0
    if len(kinds) > 1:
        raise AttachError(f"{what}: parameters of different iterators: {kinds}", errno.EINVAL)
    opts = None
    if kinds:
        opts = syscall.IterLinkOpts(
            iter_info=ctypes.addressof(info), iter_info_len=ctypes.sizeof(info)
        )
        what += f" ({_describe(map_, task, cgroup, cgroup_id, info.cgroup.order)})"
    try:
        link = create_link(program, 0, AttachType.TRACE_ITER, what, opts=opts, link_class=IterLink)
    finally:
        if cgroup_fd is not None:
            cgroup_fd.close()
    assert isinstance(link, IterLink)
    return link


def _cgroup_order(order: CgroupIterOrder | str | None, what: str) -> int:
    if order is None:
        return CgroupIterOrder.SELF_ONLY
    if isinstance(order, str):
        try:
            return CgroupIterOrder[order.upper()]
        except KeyError:
            names = ", ".join(o.name.lower() for o in CgroupIterOrder if o)
            raise AttachError(
                f"{what}: cgroup order {order!r} is not one of {names}", errno.EINVAL
            ) from None
    return CgroupIterOrder(order)


def _describe(
    map_: Any, task: dict[str, int | None], cgroup: Any, cgroup_id: int | None, order: int
) -> str:
    if map_ is not None:
        return f"map {getattr(map_, 'name', map_)!r}"
    for name, value in task.items():
        if value is not None:
            return f"{name} {value}"
    start = f"cgroup {cgroup!r}" if cgroup is not None else f"cgroup id {cgroup_id or 'root'}"
    return f"{start}, {CgroupIterOrder(order).name.lower()}"
