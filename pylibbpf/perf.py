"""Compatibility: moved to pylibbpf.syscall.perf.

Kept so that code written against the flat layout keeps importing; new code imports
from the new place."""

from __future__ import annotations

from .syscall.perf import (
    PERF_COUNT_SW_BPF_OUTPUT,
    PERF_EVENT_IOC_ENABLE,
    PERF_EVENT_IOC_SET_BPF,
    PERF_FLAG_FD_CLOEXEC,
    PERF_SAMPLE_RAW,
    PERF_TYPE_SOFTWARE,
    PERF_TYPE_TRACEPOINT,
    TRACEFS_ROOTS,
    PerfEventAttr,
    open_sampling_event,
    perf_event_open,
    set_bpf,
    tracepoint_id,
)

__all__ = [
    "PERF_COUNT_SW_BPF_OUTPUT",
    "PERF_EVENT_IOC_ENABLE",
    "PERF_EVENT_IOC_SET_BPF",
    "PERF_FLAG_FD_CLOEXEC",
    "PERF_SAMPLE_RAW",
    "PERF_TYPE_SOFTWARE",
    "PERF_TYPE_TRACEPOINT",
    "TRACEFS_ROOTS",
    "PerfEventAttr",
    "open_sampling_event",
    "perf_event_open",
    "set_bpf",
    "tracepoint_id",
]
