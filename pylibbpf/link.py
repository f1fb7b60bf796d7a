"""Compatibility: links moved to the pylibbpf.links package (one module per kind).

Kept so that code written against the flat layout keeps importing; new code imports
from the new place."""

from __future__ import annotations

from .links.auto import attach_from_section
from .links.base import InterfaceLink, Link, LinkInfo, ProgAttachLink
from .links.cgroup import attach_cgroup
from .links.kprobe import attach_kprobe, attach_kprobe_multi, attach_tracefs_probe, syscall_function
from .links.netfilter import attach_netfilter
from .links.perf_event import attach_perf_event
from .links.sock import attach_netns, attach_sockmap
from .links.tc import attach_tc, attach_tcx
from .links.tracing import (
    IterLink,
    attach_iter,
    attach_raw_tracepoint,
    attach_trace,
    attach_tracepoint,
)
from .links.xdp import attach_xdp, ifindex_of

__all__ = [
    "InterfaceLink",
    "IterLink",
    "Link",
    "LinkInfo",
    "ProgAttachLink",
    "attach_cgroup",
    "attach_from_section",
    "attach_iter",
    "attach_kprobe",
    "attach_kprobe_multi",
    "attach_netfilter",
    "attach_netns",
    "attach_perf_event",
    "attach_raw_tracepoint",
    "attach_sockmap",
    "attach_tc",
    "attach_tcx",
    "attach_trace",
    "attach_tracefs_probe",
    "attach_tracepoint",
    "attach_xdp",
    "ifindex_of",
    "syscall_function",
]
