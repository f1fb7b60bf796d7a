"""Compatibility: the object loader moved to pylibbpf.loader.

Kept so that code written against the flat layout keeps importing; new code imports
from the new place."""

from __future__ import annotations

from .loader.maps import internal_map_name, ringbuf_size
from .loader.object import BpfObject
from .loader.programs import core_resolver_for, inspect_core
from .loader.variables import Variable

__all__ = [
    "BpfObject",
    "Variable",
    "core_resolver_for",
    "inspect_core",
    "internal_map_name",
    "ringbuf_size",
]
