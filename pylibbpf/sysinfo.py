"""Compatibility: moved to pylibbpf.syscall.system.

Kept so that code written against the flat layout keeps importing; new code imports
from the new place."""

from __future__ import annotations

from .syscall.system import (
    kernel_version,
    num_possible_cpus,
    online_cpus,
    parse_cpu_list,
    possible_cpus,
)

__all__ = [
    "kernel_version",
    "num_possible_cpus",
    "online_cpus",
    "parse_cpu_list",
    "possible_cpus",
]
