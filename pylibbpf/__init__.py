"""pylibbpf: libbpf for Python, in Python — load, relocate, attach and drive BPF programs."""

from __future__ import annotations

from . import features, insn
from .errors import (
    AttachError,
    BpfError,
    BpfPermissionError,
    LoadError,
    MapFullError,
    NotSupportedError,
    ObjectError,
    RelocationError,
)
from .fd import OwnedFd
from .maps import BatchData, Map, MapInfo
from .program import LoadOptions, Program, ProgramInfo
from .syscall import TestRunResult
from .uapi import (
    AttachFlags,
    AttachType,
    Cmd,
    LinkType,
    MapFlags,
    MapType,
    ProgFlags,
    ProgType,
    UpdateFlags,
    XdpAction,
    XdpFlags,
)

__version__ = "0.1.0"

__all__ = [
    "AttachError",
    "AttachFlags",
    "AttachType",
    "BatchData",
    "BpfError",
    "BpfPermissionError",
    "Cmd",
    "LinkType",
    "LoadError",
    "LoadOptions",
    "Map",
    "MapFlags",
    "MapFullError",
    "MapInfo",
    "MapType",
    "NotSupportedError",
    "ObjectError",
    "OwnedFd",
    "ProgFlags",
    "ProgType",
    "Program",
    "ProgramInfo",
    "RelocationError",
    "TestRunResult",
    "UpdateFlags",
    "XdpAction",
    "XdpFlags",
    "features",
    "insn",
]
