"""L2: the only code that talks to the kernel.

``bpf(2)`` and its attrs (``bpf``, ``attrs``, ``elem``), owned fds (``fd``),
``perf_event_open`` and tracefs (``perf``), procfs/sysfs facts (``system``), the kernel's
BTF and its on-disk index (``kernel_btf``) and feature probes (``features``).

The package re-exports the command functions and attr layouts, so ``syscall.map_create(...)``
and ``syscall.MapInfo`` work (the raw entry point is ``syscall.bpf.bpf``); the other
modules are imported by name when needed.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from .attrs import BtfInfo as BtfInfo
    from .attrs import BtfLoadAttr as BtfLoadAttr
    from .attrs import FdAttr as FdAttr
    from .attrs import GetIdAttr as GetIdAttr
    from .attrs import InfoAttr as InfoAttr
    from .attrs import MapBatchAttr as MapBatchAttr
    from .attrs import MapCreateAttr as MapCreateAttr
    from .attrs import MapElemAttr as MapElemAttr
    from .attrs import MapInfo as MapInfo
    from .attrs import ObjAttr as ObjAttr
    from .attrs import ProgBindMapAttr as ProgBindMapAttr
    from .attrs import ProgInfo as ProgInfo
    from .attrs import ProgLoadAttr as ProgLoadAttr
    from .attrs import TokenCreateAttr as TokenCreateAttr
    from .attrs import TokenInfo as TokenInfo
    from .bpf import NR_BPF as NR_BPF
    from .bpf import BatchResult as BatchResult
    from .bpf import ProgQueryResult as ProgQueryResult
    from .bpf import TaskFdQueryResult as TaskFdQueryResult
    from .bpf import TestRunResult as TestRunResult
    from .bpf import active_token as active_token
    from .bpf import btf_get_fd_by_id as btf_get_fd_by_id
    from .bpf import btf_get_next_id as btf_get_next_id
    from .bpf import btf_load as btf_load
    from .bpf import enable_stats as enable_stats
    from .bpf import iter_create as iter_create
    from .bpf import iterate_ids as iterate_ids
    from .bpf import kernel_error as kernel_error
    from .bpf import link_create as link_create
    from .bpf import link_detach as link_detach
    from .bpf import link_get_fd_by_id as link_get_fd_by_id
    from .bpf import link_get_next_id as link_get_next_id
    from .bpf import link_update as link_update
    from .bpf import map_batch as map_batch
    from .bpf import map_create as map_create
    from .bpf import map_delete_elem as map_delete_elem
    from .bpf import map_freeze as map_freeze
    from .bpf import map_get_fd_by_id as map_get_fd_by_id
    from .bpf import map_get_next_id as map_get_next_id
    from .bpf import map_get_next_key as map_get_next_key
    from .bpf import map_lookup_and_delete_elem as map_lookup_and_delete_elem
    from .bpf import map_lookup_elem as map_lookup_elem
    from .bpf import map_update_elem as map_update_elem
    from .bpf import obj_get as obj_get
    from .bpf import obj_get_info_by_fd as obj_get_info_by_fd
    from .bpf import obj_pin as obj_pin
    from .bpf import prog_assoc_struct_ops as prog_assoc_struct_ops
    from .bpf import prog_attach as prog_attach
    from .bpf import prog_bind_map as prog_bind_map
    from .bpf import prog_detach as prog_detach
    from .bpf import prog_get_fd_by_id as prog_get_fd_by_id
    from .bpf import prog_get_next_id as prog_get_next_id
    from .bpf import prog_load as prog_load
    from .bpf import prog_query as prog_query
    from .bpf import prog_stream_read as prog_stream_read
    from .bpf import prog_test_run as prog_test_run
    from .bpf import raw_tracepoint_open as raw_tracepoint_open
    from .bpf import task_fd_query as task_fd_query
    from .bpf import token_create as token_create
    from .bpf import using_token as using_token
    from .elem import MapElemOps as MapElemOps
    from .link_attrs import LINK_CREATE_TAIL_SIZE as LINK_CREATE_TAIL_SIZE
    from .link_attrs import CgroupLinkOpts as CgroupLinkOpts
    from .link_attrs import IterCreateAttr as IterCreateAttr
    from .link_attrs import IterLinkInfo as IterLinkInfo
    from .link_attrs import IterLinkOpts as IterLinkOpts
    from .link_attrs import KprobeMultiLinkOpts as KprobeMultiLinkOpts
    from .link_attrs import LinkCreateAttr as LinkCreateAttr
    from .link_attrs import LinkInfo as LinkInfo
    from .link_attrs import LinkUpdateAttr as LinkUpdateAttr
    from .link_attrs import MprogLinkOpts as MprogLinkOpts
    from .link_attrs import NetfilterLinkOpts as NetfilterLinkOpts
    from .link_attrs import NetkitLinkOpts as NetkitLinkOpts
    from .link_attrs import PerfEventLinkOpts as PerfEventLinkOpts
    from .link_attrs import ProgAssocStructOpsAttr as ProgAssocStructOpsAttr
    from .link_attrs import ProgAttachAttr as ProgAttachAttr
    from .link_attrs import ProgQueryAttr as ProgQueryAttr
    from .link_attrs import ProgStreamReadAttr as ProgStreamReadAttr
    from .link_attrs import RawTracepointAttr as RawTracepointAttr
    from .link_attrs import TaskFdQueryAttr as TaskFdQueryAttr
    from .link_attrs import TcxLinkOpts as TcxLinkOpts
    from .link_attrs import TestRunAttr as TestRunAttr
    from .link_attrs import TracingLinkOpts as TracingLinkOpts
    from .link_attrs import UprobeMultiLinkOpts as UprobeMultiLinkOpts


# Where each re-exported name lives.
_HOMES = {
    **dict.fromkeys(
        (
            "BtfInfo",
            "BtfLoadAttr",
            "FdAttr",
            "GetIdAttr",
            "InfoAttr",
            "MapBatchAttr",
            "MapCreateAttr",
            "MapElemAttr",
            "MapInfo",
            "ObjAttr",
            "ProgBindMapAttr",
            "ProgInfo",
            "ProgLoadAttr",
            "TokenCreateAttr",
            "TokenInfo",
        ),
        "attrs",
    ),
    **dict.fromkeys(
        (
            "NR_BPF",
            "BatchResult",
            "ProgQueryResult",
            "TaskFdQueryResult",
            "TestRunResult",
            "active_token",
            "btf_get_fd_by_id",
            "btf_get_next_id",
            "btf_load",
            "enable_stats",
            "iter_create",
            "iterate_ids",
            "kernel_error",
            "link_create",
            "link_detach",
            "link_get_fd_by_id",
            "link_get_next_id",
            "link_update",
            "map_batch",
            "map_create",
            "map_delete_elem",
            "map_freeze",
            "map_get_fd_by_id",
            "map_get_next_id",
            "map_get_next_key",
            "map_lookup_and_delete_elem",
            "map_lookup_elem",
            "map_update_elem",
            "obj_get",
            "obj_get_info_by_fd",
            "obj_pin",
            "prog_assoc_struct_ops",
            "prog_attach",
            "prog_bind_map",
            "prog_detach",
            "prog_get_fd_by_id",
            "prog_get_next_id",
            "prog_load",
            "prog_query",
            "prog_stream_read",
            "prog_test_run",
            "raw_tracepoint_open",
            "task_fd_query",
            "token_create",
            "using_token",
        ),
        "bpf",
    ),
    **dict.fromkeys(
        ("MapElemOps",),
        "elem",
    ),
    **dict.fromkeys(
        (
            "LINK_CREATE_TAIL_SIZE",
            "CgroupLinkOpts",
            "IterCreateAttr",
            "IterLinkInfo",
            "IterLinkOpts",
            "KprobeMultiLinkOpts",
            "LinkCreateAttr",
            "LinkInfo",
            "LinkUpdateAttr",
            "MprogLinkOpts",
            "NetfilterLinkOpts",
            "NetkitLinkOpts",
            "PerfEventLinkOpts",
            "ProgAssocStructOpsAttr",
            "ProgAttachAttr",
            "ProgQueryAttr",
            "ProgStreamReadAttr",
            "RawTracepointAttr",
            "TaskFdQueryAttr",
            "TcxLinkOpts",
            "TestRunAttr",
            "TracingLinkOpts",
            "UprobeMultiLinkOpts",
        ),
        "link_attrs",
    ),
}


__all__ = sorted(_HOMES)  # (each is imported under TYPE_CHECKING above, for the checker)


def __getattr__(name: str) -> object:
    """The re-exported functions and layouts on first use: importing the package (for
    ``kernel_btf``, say) does not import ``bpf``, ``attrs`` and ctypes with it, and
    loading never imports the layouts of :mod:`.link_attrs` (attaching, links, queries,
    test runs). (``__import__`` and ``sys.modules``, not ``importlib.import_module``:
    importlib imports ``warnings``, which nothing else on the load path needs.)"""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = f"{__name__}.{home}"
    __import__(module)
    value = getattr(sys.modules[module], name)
    globals()[name] = value
    return value
