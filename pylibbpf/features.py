"""Compatibility: moved to pylibbpf.syscall.features.

Kept so that code written against the flat layout keeps importing; new code imports
from the new place."""

from __future__ import annotations

from .syscall.features import (
    btf_support,
    ensure_memlock,
    has_btf,
    has_helper,
    has_map_type,
    has_memcg_accounting,
    has_mmapable_maps,
    has_prog_type,
    has_struct_ops_link,
    has_tcx,
    kernel_knows,
    probe_all,
)

__all__ = [
    "btf_support",
    "ensure_memlock",
    "has_btf",
    "has_helper",
    "has_map_type",
    "has_memcg_accounting",
    "has_mmapable_maps",
    "has_prog_type",
    "has_struct_ops_link",
    "has_tcx",
    "kernel_knows",
    "probe_all",
]
