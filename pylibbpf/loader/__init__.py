"""L4, the object loader: ``BpfObject`` (``object``) over its parts — ``maps``, ``btf``,
``programs``, ``variables`` and ``externs``. ``open()`` only parses; ``load()`` does
everything that asks the kernel."""

from __future__ import annotations

from .maps import internal_map_name, ringbuf_size
from .object import BpfObject
from .programs import core_resolver_for, inspect_core
from .variables import Variable

__all__ = [
    "BpfObject",
    "Variable",
    "core_resolver_for",
    "inspect_core",
    "internal_map_name",
    "ringbuf_size",
]
