"""A bpf_link as ``bpftool -j link show`` describes it: the common head (id, type,
prog_id) and the per-kind part of ``struct bpf_link_info`` under bpftool's keys (a
cgroup link's ``cgroup_id`` and ``attach_type``, a kprobe's ``func`` and ``addr``…).

Kinds whose info carries strings or arrays (tracepoint names, iterator targets, probed
functions and files) are asked twice: once for the kind and the sizes, once with buffers.
"""

from __future__ import annotations

import ctypes
import socket
import struct
from typing import Any

from .. import syscall
from ..errors import BpfError
from ..introspect import Holders, Pins, type_name
from ..program import Program
from ..syscall.fd import OwnedFd
from ..syscall.system import kernel_functions
from ..uapi import AttachType, LinkType, ProgType

NAME_BUFFER = 4096
KPROBE_MULTI_RETURN = 1
UPROBE_MULTI_RETURN = 1
# enum bpf_perf_event_type
PERF_UPROBE, PERF_URETPROBE, PERF_KPROBE, PERF_KRETPROBE, PERF_TRACEPOINT, PERF_EVENT = range(1, 7)
PERF_TYPES = ("hardware", "software", "tracepoint", "hw-cache", "raw", "breakpoint")
HW_EVENTS = (
    "cpu-cycles",
    "instructions",
    "cache-references",
    "cache-misses",
    "branch-instructions",
    "branch-misses",
    "bus-cycles",
    "stalled-cycles-frontend",
    "stalled-cycles-backend",
    "ref-cycles",
)
SW_EVENTS = (
    "cpu-clock",
    "task-clock",
    "page-faults",
    "context-switches",
    "cpu-migrations",
    "minor-faults",
    "major-faults",
    "alignment-faults",
    "emulation-faults",
    "dummy",
    "bpf-output",
    "cgroup-switches",
)
HW_CACHES = ("L1-dcache", "L1-icache", "LLC", "dTLB", "iTLB", "branch", "node")
HW_CACHE_OPS = ("load", "store", "prefetch")
HW_CACHE_RESULTS = ("refs", "misses")
ITER_ORDERS = ("order_unspec", "self_only", "descendants_pre", "descendants_post", "ancestors_up")


def _info(fd: int, extra: bytes | None = None) -> tuple[syscall.LinkInfo, bytes]:
    info = syscall.LinkInfo()
    if extra is not None:
        ctypes.memmove(ctypes.addressof(info.extra), extra, len(extra))
    syscall.obj_get_info_by_fd(fd, info, what=f"link fd {fd}")
    return info, bytes(info.extra)


def _u32(extra: bytes, offset: int) -> int:
    return int(struct.unpack_from("<I", extra, offset)[0])


def _u64(extra: bytes, offset: int) -> int:
    return int(struct.unpack_from("<Q", extra, offset)[0])


def _attach_type(value: int) -> str | int:
    return type_name(AttachType, value)


def _devname(ifindex: int) -> str:
    if not ifindex:
        return "(detached)"
    try:
        return socket.if_indextoname(ifindex)
    except OSError:
        return "(unknown)"


class _Buffers:
    """Buffers the kernel writes strings and arrays into, kept alive for the call."""

    def __init__(self) -> None:
        self.kept: list[Any] = []

    def text(self, size: int = NAME_BUFFER) -> tuple[int, Any]:
        buffer = ctypes.create_string_buffer(size)
        self.kept.append(buffer)
        return ctypes.addressof(buffer), buffer

    def array(self, kind: Any, count: int) -> tuple[int, Any]:
        array = (kind * max(count, 1))()
        self.kept.append(array)
        return ctypes.addressof(array), array


def _with_name(fd: int, layout: str, offsets: tuple[int, int]) -> tuple[bytes, str]:
    """Ask again with a name buffer at ``offsets`` (pointer, length)."""
    buffers = _Buffers()
    address, buffer = buffers.text()
    extra = bytearray(64)
    if layout:
        struct.pack_into(layout, extra, 0, *struct.unpack_from(layout, _info(fd)[1], 0))
    struct.pack_into("<Q", extra, offsets[0], address)
    struct.pack_into("<I", extra, offsets[1], NAME_BUFFER)
    _, filled = _info(fd, bytes(extra))
    return filled, buffer.value.decode(errors="replace")


def _kind_fields(fd: int, kind: int, extra: bytes, prog_id: int) -> dict[str, Any]:
    if kind == LinkType.RAW_TRACEPOINT:
        return {"tp_name": _with_name(fd, "", (0, 8))[1]}
    if kind == LinkType.TRACING:
        row: dict[str, Any] = {}
        try:
            with Program.from_id(prog_id) as prog:
                row["prog_type"] = type_name(ProgType, prog.info().type)
        except BpfError:
            pass
        row["attach_type"] = _attach_type(_u32(extra, 0))
        row.update(target_obj_id=_u32(extra, 4), target_btf_id=_u32(extra, 8))
        return row
    if kind == LinkType.CGROUP:
        return {"cgroup_id": _u64(extra, 0), "attach_type": _attach_type(_u32(extra, 8))}
    if kind == LinkType.ITER:
        return _iter_fields(fd)
    if kind == LinkType.NETNS:
        return {"netns_ino": _u32(extra, 0), "attach_type": _attach_type(_u32(extra, 4))}
    if kind == LinkType.NETFILTER:
        pf, hook, priority, flags = struct.unpack_from("<IIiI", extra, 0)
        return {"pf": pf, "hook": hook, "prio": priority, "flags": flags}
    if kind in (LinkType.TCX, LinkType.NETKIT):
        ifindex = _u32(extra, 0)
        return {
            "devname": _devname(ifindex),
            "ifindex": ifindex,
            "attach_type": _attach_type(_u32(extra, 4)),
        }
    if kind == LinkType.SOCKMAP:
        return {"map_id": _u32(extra, 0), "attach_type": _attach_type(_u32(extra, 4))}
    if kind == LinkType.XDP:
        ifindex = _u32(extra, 0)
        return {"devname": _devname(ifindex), "ifindex": ifindex}
    if kind == LinkType.STRUCT_OPS:
        return {"map_id": _u32(extra, 0)}
    if kind == LinkType.KPROBE_MULTI:
        return _kprobe_multi_fields(fd, extra)
    if kind == LinkType.UPROBE_MULTI:
        return _uprobe_multi_fields(fd, extra)
    if kind == LinkType.PERF_EVENT:
        return _perf_event_fields(fd, _u32(extra, 0))
    return {}


def _iter_fields(fd: int) -> dict[str, Any]:
    extra, target = _with_name(fd, "", (0, 8))
    row: dict[str, Any] = {"target_name": target}
    if target in ("bpf_map_elem", "bpf_sk_storage_map"):
        row["map_id"] = _u32(extra, 12)
    elif target in ("task", "task_file", "task_vma"):
        tid, pid = struct.unpack_from("<II", extra, 16)
        if tid:
            row["tid"] = tid
        elif pid:
            row["pid"] = pid
    if target == "cgroup":
        order = _u32(extra, 24)
        row["cgroup_id"] = _u64(extra, 16)
        row["order"] = ITER_ORDERS[order] if order < len(ITER_ORDERS) else "unknown"
    return row


def _kprobe_multi_fields(fd: int, extra: bytes) -> dict[str, Any]:
    count, flags, missed = _u32(extra, 8), _u32(extra, 12), _u64(extra, 16)
    buffers = _Buffers()
    addrs_at, addrs = buffers.array(ctypes.c_uint64, count)
    cookies_at, cookies = buffers.array(ctypes.c_uint64, count)
    ask = bytearray(64)
    struct.pack_into("<QII", ask, 0, addrs_at, count, 0)
    struct.pack_into("<Q", ask, 24, cookies_at)
    _info(fd, bytes(ask))
    by_address, _ = kernel_functions()
    funcs = sorted(
        (
            {
                "addr": addrs[i],
                "func": by_address.get(addrs[i], ""),
                "module": None,
                "cookie": cookies[i],
            }
            for i in range(count)
        ),
        key=lambda f: (f["addr"], f["cookie"]),
    )
    return {
        "retprobe": bool(flags & KPROBE_MULTI_RETURN),
        "func_cnt": count,
        "missed": missed,
        "funcs": funcs,
    }


def _uprobe_multi_fields(fd: int, extra: bytes) -> dict[str, Any]:
    count = _u32(extra, 36)
    buffers = _Buffers()
    path_at, path = buffers.text()
    offsets_at, offsets = buffers.array(ctypes.c_uint64, count)
    refs_at, refs = buffers.array(ctypes.c_uint64, count)
    cookies_at, cookies = buffers.array(ctypes.c_uint64, count)
    ask = bytearray(64)
    struct.pack_into(
        "<QQQQII", ask, 0, path_at, offsets_at, refs_at, cookies_at, NAME_BUFFER, count
    )
    _, filled = _info(fd, bytes(ask))
    flags, pid = _u32(filled, 40), _u32(filled, 44)
    return {
        "retprobe": bool(flags & UPROBE_MULTI_RETURN),
        "path": path.value.decode(errors="replace"),
        "func_cnt": count,
        "pid": ctypes.c_int32(pid).value,
        "funcs": [
            {"offset": offsets[i], "ref_ctr_offset": refs[i], "cookie": cookies[i]}
            for i in range(count)
        ],
    }


def _perf_event_fields(fd: int, kind: int) -> dict[str, Any]:
    if kind in (PERF_KPROBE, PERF_KRETPROBE):
        extra, name = _with_name(fd, "<I", (8, 16))
        offset, addr, missed, cookie = struct.unpack_from("<IQQQ", extra, 20)
        return {
            "retprobe": kind == PERF_KRETPROBE,
            "addr": addr,
            "func": name,
            "offset": offset,
            "missed": missed,
            "cookie": cookie,
        }
    if kind in (PERF_UPROBE, PERF_URETPROBE):
        extra, name = _with_name(fd, "<I", (8, 16))
        offset, cookie = _u32(extra, 20), _u64(extra, 24)
        return {
            "retprobe": kind == PERF_URETPROBE,
            "file": name,
            "offset": offset,
            "cookie": cookie,
        }
    if kind == PERF_TRACEPOINT:
        extra, name = _with_name(fd, "<I", (8, 16))
        return {"tracepoint": name, "cookie": _u64(extra, 24)}
    if kind == PERF_EVENT:
        _, extra = _info(fd)
        config, event_type, cookie = _u64(extra, 8), _u32(extra, 16), _u64(extra, 24)
        return {
            "event_type": _named(PERF_TYPES, event_type),
            "event_config": _event_config(event_type, config),
            "cookie": cookie,
        }
    return {}


def _named(names: tuple[str, ...], value: int) -> str | int:
    return names[value] if value < len(names) else value


def _event_config(event_type: int, config: int) -> str | int:
    if event_type == 0:
        return _named(HW_EVENTS, config)
    if event_type == 1:
        return _named(SW_EVENTS, config)
    if event_type == 3:
        parts = (
            _named(HW_CACHES, config & 0xFF),
            _named(HW_CACHE_OPS, (config >> 8) & 0xFF),
            _named(HW_CACHE_RESULTS, config >> 16),
        )
        return "-".join(str(part) for part in parts)
    return config


def link_row(fd: int, found: Holders | None = None, at: Pins | None = None) -> dict[str, Any]:
    """A link as ``bpftool -j link show`` describes it (same keys, same value forms)."""
    info, extra = _info(fd)
    row: dict[str, Any] = {
        "id": info.id,
        "type": type_name(LinkType, info.type),
        "prog_id": info.prog_id,
    }
    row.update(_kind_fields(fd, info.type, extra, info.prog_id))
    if at:
        row["pinned"] = at.get(("link", info.id), [])
    if found and found.get(("link", info.id)):
        row["pids"] = found[("link", info.id)]
    return row


def every_link(found: Holders | None = None, at: Pins | None = None) -> list[dict[str, Any]]:
    """``link_row`` of every bpf_link in the kernel."""
    rows = []
    for link_id in syscall.iterate_ids(syscall.link_get_next_id):
        try:
            fd = OwnedFd(syscall.link_get_fd_by_id(link_id), f"link {link_id}")
        except BpfError:
            continue  # gone between listing and opening
        with fd:
            rows.append(link_row(fd.fd, found, at))
    return rows
