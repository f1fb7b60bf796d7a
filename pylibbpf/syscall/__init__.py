"""L2: the only code that talks to the kernel.

``bpf(2)`` and its attrs (``bpf``, ``attrs``, ``elem``), owned fds (``fd``),
``perf_event_open`` and tracefs (``perf``), procfs/sysfs facts (``system``), the kernel's
BTF and its on-disk index (``kernel_btf``) and feature probes (``features``).

The package re-exports the command functions and attr layouts, so ``syscall.map_create(...)``
and ``syscall.MapInfo`` work (the raw entry point is ``syscall.bpf.bpf``); the other
modules are imported by name when needed.
"""

from __future__ import annotations

from .attrs import (
    BtfInfo,
    BtfLoadAttr,
    FdAttr,
    GetIdAttr,
    InfoAttr,
    MapBatchAttr,
    MapCreateAttr,
    MapElemAttr,
    MapInfo,
    ObjAttr,
    ProgBindMapAttr,
    ProgInfo,
    ProgLoadAttr,
    TokenCreateAttr,
    TokenInfo,
)
from .bpf import (
    NR_BPF,
    BatchResult,
    ProgQueryResult,
    TaskFdQueryResult,
    TestRunResult,
    active_token,
    btf_get_fd_by_id,
    btf_get_next_id,
    btf_load,
    enable_stats,
    iter_create,
    iterate_ids,
    kernel_error,
    link_create,
    link_detach,
    link_get_fd_by_id,
    link_get_next_id,
    link_update,
    map_batch,
    map_create,
    map_delete_elem,
    map_freeze,
    map_get_fd_by_id,
    map_get_next_id,
    map_get_next_key,
    map_lookup_and_delete_elem,
    map_lookup_elem,
    map_update_elem,
    obj_get,
    obj_get_info_by_fd,
    obj_pin,
    prog_assoc_struct_ops,
    prog_attach,
    prog_bind_map,
    prog_detach,
    prog_get_fd_by_id,
    prog_get_next_id,
    prog_load,
    prog_query,
    prog_stream_read,
    prog_test_run,
    raw_tracepoint_open,
    task_fd_query,
    token_create,
    using_token,
)
from .elem import (
    MapElemOps,
)

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
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

__all__ = [
    "LINK_CREATE_TAIL_SIZE",
    "NR_BPF",
    "BatchResult",
    "BtfInfo",
    "BtfLoadAttr",
    "CgroupLinkOpts",
    "FdAttr",
    "GetIdAttr",
    "InfoAttr",
    "IterCreateAttr",
    "IterLinkInfo",
    "IterLinkOpts",
    "KprobeMultiLinkOpts",
    "LinkCreateAttr",
    "LinkInfo",
    "LinkUpdateAttr",
    "MapBatchAttr",
    "MapCreateAttr",
    "MapElemAttr",
    "MapElemOps",
    "MapInfo",
    "MprogLinkOpts",
    "NetfilterLinkOpts",
    "NetkitLinkOpts",
    "ObjAttr",
    "PerfEventLinkOpts",
    "ProgAssocStructOpsAttr",
    "ProgAttachAttr",
    "ProgBindMapAttr",
    "ProgInfo",
    "ProgLoadAttr",
    "ProgQueryAttr",
    "ProgQueryResult",
    "ProgStreamReadAttr",
    "RawTracepointAttr",
    "TaskFdQueryAttr",
    "TaskFdQueryResult",
    "TcxLinkOpts",
    "TestRunAttr",
    "TestRunResult",
    "TokenCreateAttr",
    "TokenInfo",
    "TracingLinkOpts",
    "UprobeMultiLinkOpts",
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
]


def __getattr__(name: str) -> object:
    """The layouts of :mod:`.link_attrs` (attaching, links, queries, test runs) on first
    use: opening and loading never need them."""
    from . import attrs

    if name in attrs.LINK_ATTR_NAMES:
        value = getattr(attrs, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
