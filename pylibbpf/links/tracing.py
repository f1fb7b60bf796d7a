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
from ..uapi import AttachType
from .base import Attachable, Link, create_link
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


def attach_iter(program: Attachable, map_: Any = None) -> IterLink:
    """An iterator (``iter/task``, ``iter/bpf_map_elem`` with ``map_``…)."""
    what = f"iterator program {program.name!r}"
    opts = None
    if map_ is not None:
        info = (ctypes.c_uint32 * 2)(map_.fileno(), 0)  # union bpf_iter_link_info.map.map_fd
        opts = syscall.IterLinkOpts(
            iter_info=ctypes.addressof(info), iter_info_len=ctypes.sizeof(info)
        )
    link = create_link(program, 0, AttachType.TRACE_ITER, what, opts=opts, link_class=IterLink)
    assert isinstance(link, IterLink)
    return link
