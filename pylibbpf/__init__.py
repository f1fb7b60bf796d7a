"""pylibbpf: libbpf for Python, in Python — load, relocate, attach and drive BPF programs.

``import pylibbpf as bpf`` is cheap: the public names below are imported on first use
(PEP 562), so ``bpf.BpfObject.open(...)`` pulls in the loader and ``bpf.Btf`` only the
BTF parser. The layers, lowest first: ``uapi``/``errors``; the pure half (``btf``,
``spec``: bytes in, specs out); ``syscall`` (the only code that talks to the kernel);
maps, programs, ring buffers and ``links``; the ``loader``; skeletons and the CLI.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .btf import Btf
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
    from .links.base import Link, LinkInfo
    from .links.order import Anchor, HookOrder
    from .loader.object import BpfObject
    from .logs import set_print
    from .maps import BatchData, Map, MapInfo
    from .perfbuf import PerfBuffer
    from .program import LoadOptions, Program, ProgramInfo
    from .ringbuf import RingBuffer, UserRingBuffer
    from .skeleton import Skeleton
    from .spec import insn
    from .syscall import features
    from .syscall.bpf import TestRunResult
    from .syscall.fd import OwnedFd
    from .syscall.perf import open_sampling_event
    from .uapi import (
        AttachFlags,
        AttachType,
        CgroupIterOrder,
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

# Public name -> the module that defines it (imported when the name is first used).
_LAZY = {
    "BpfObject": ".loader.object",
    "Map": ".maps",
    "MapInfo": ".maps",
    "BatchData": ".maps",
    "Program": ".program",
    "ProgramInfo": ".program",
    "LoadOptions": ".program",
    "Link": ".links.base",
    "LinkInfo": ".links.base",
    "Anchor": ".links.order",
    "HookOrder": ".links.order",
    "RingBuffer": ".ringbuf",
    "UserRingBuffer": ".ringbuf",
    "PerfBuffer": ".perfbuf",
    "Btf": ".btf",
    "Skeleton": ".skeleton",
    "OwnedFd": ".syscall.fd",
    "TestRunResult": ".syscall.bpf",
    "set_print": ".logs",
    "open_sampling_event": ".syscall.perf",
    **dict.fromkeys(
        (
            "AttachError",
            "BpfError",
            "BpfPermissionError",
            "LoadError",
            "MapFullError",
            "NotSupportedError",
            "ObjectError",
            "RelocationError",
        ),
        ".errors",
    ),
    **dict.fromkeys(
        (
            "AttachFlags",
            "AttachType",
            "CgroupIterOrder",
            "Cmd",
            "LinkType",
            "MapFlags",
            "MapType",
            "ProgFlags",
            "ProgType",
            "UpdateFlags",
            "XdpAction",
            "XdpFlags",
        ),
        ".uapi",
    ),
}
# Modules offered as attributes (``bpf.features.has_btf()``, ``bpf.syscall.map_create``).
_MODULES = {
    "features": ".syscall.features",
    "insn": ".spec.insn",
    "syscall": ".syscall",
    "btf": ".btf",
    "spec": ".spec",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(_submodule(module), name)
    elif name in _MODULES:
        value = _submodule(_MODULES[name])
    else:
        raise AttributeError(f"module 'pylibbpf' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def _submodule(relative: str) -> object:
    """``importlib.import_module(relative, "pylibbpf")``, without importing importlib
    (and with it warnings): ``__import__`` of the full name, then the module itself."""
    name = __name__ + relative
    __import__(name)
    return sys.modules[name]


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_MODULES})


__all__ = [
    "Anchor",
    "AttachError",
    "AttachFlags",
    "AttachType",
    "BatchData",
    "BpfError",
    "BpfObject",
    "BpfPermissionError",
    "Btf",
    "CgroupIterOrder",
    "Cmd",
    "HookOrder",
    "Link",
    "LinkInfo",
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
    "PerfBuffer",
    "ProgFlags",
    "ProgType",
    "Program",
    "ProgramInfo",
    "RelocationError",
    "RingBuffer",
    "Skeleton",
    "TestRunResult",
    "UpdateFlags",
    "UserRingBuffer",
    "XdpAction",
    "XdpFlags",
    "features",
    "insn",
    "open_sampling_event",
    "set_print",
]
