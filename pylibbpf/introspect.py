"""Looking at what is loaded in the kernel, whoever loaded it: the model behind the CLI's
``prog``, ``map`` and ``link`` commands (bpftool's ``show``/``dump``/``lookup``).

Objects are named the way bpftool names them — ``42``/``id 42``, ``name NAME``,
``pinned PATH`` — and map keys and values are given as bytes (``1 0 0 0``, ``0x01 0x00``)
or, for 1/2/4/8-byte fields, as one integer.
"""

from __future__ import annotations

import ctypes
import errno
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from . import syscall
from .errors import BpfError
from .maps import Map, MapInfo
from .program import Program, ProgramInfo
from .spec.disasm import disassemble
from .syscall import system
from .syscall.fd import OwnedFd
from .syscall.kernel_btf import fetch_btf
from .syscall.token import DELEGATE_ENUMS, delegating_mounts
from .uapi import AttachType, LinkType, MapType, ProgType


def kind_name(enum: Any, value: int) -> str:
    """An enum member's lower-case name, or the number if this pylibbpf does not know it."""
    try:
        return str(enum(value).name.lower())
    except ValueError:
        return str(value)


def _each(
    next_id: Callable[[int], int | None], open_id: Callable[[int], Any]
) -> Iterator[tuple[int, Any]]:
    for object_id in syscall.iterate_ids(next_id):
        try:
            yield object_id, open_id(object_id)
        except BpfError:
            continue  # gone between listing and opening


def holders() -> dict[tuple[str, int], list[dict[str, Any]]]:
    """Which processes hold fds of which BPF objects (bpftool's ``pids`` column)."""
    return system.fd_holders()


def programs() -> list[ProgramInfo]:
    """Every program loaded in the kernel, whoever loaded it."""
    infos = []
    for _, prog in _each(syscall.prog_get_next_id, Program.from_id):
        with prog:
            infos.append(prog.info())
    return infos


def maps() -> list[MapInfo]:
    """Every map in the kernel, whoever created it."""
    infos = []
    for _, map_obj in _each(syscall.map_get_next_id, Map.from_id):
        with map_obj:
            infos.append(map_obj.info())
    return infos


@dataclass(frozen=True)
class LinkRow:
    """One bpf_link in the kernel, as ``link list`` shows it; ``details`` is what the
    link's kind adds (an interface, a cgroup, a map, the attach type), as bpftool shows."""

    id: int
    type: str
    prog_id: int
    details: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """The details as bpftool's ``link show`` prints them: ``ifindex lo(1)  attach_type
        tcx_ingress``."""
        parts = []
        for key, value in self.details.items():
            if key == "ifindex":
                name = _interface_name(value)
                value = f"{name}({value})" if name else value
            parts.append(f"{key} {value}")
        return "  ".join(parts)


# Per link type: the leading fields of its part of ``bpf_link_info`` (after the common
# type/id/prog_id head): (name, ctypes type). "attach_type" is shown by name.
_LINK_DETAILS: dict[int, list[tuple[str, Any]]] = {
    LinkType.CGROUP: [("cgroup_id", ctypes.c_uint64), ("attach_type", ctypes.c_uint32)],
    LinkType.NETNS: [("netns_ino", ctypes.c_uint32), ("attach_type", ctypes.c_uint32)],
    LinkType.XDP: [("ifindex", ctypes.c_uint32)],
    LinkType.STRUCT_OPS: [("map_id", ctypes.c_uint32)],
    LinkType.TCX: [("ifindex", ctypes.c_uint32), ("attach_type", ctypes.c_uint32)],
    LinkType.NETKIT: [("ifindex", ctypes.c_uint32), ("attach_type", ctypes.c_uint32)],
    LinkType.SOCKMAP: [("map_id", ctypes.c_uint32), ("attach_type", ctypes.c_uint32)],
}


def link_details(raw: Any) -> dict[str, Any]:
    """Decode the per-kind part of a ``syscall.LinkInfo`` for the kinds in the table."""
    fields = _LINK_DETAILS.get(raw.type)
    if not fields:
        return {}
    layout = cast(
        type[ctypes.Structure], type("_Details", (ctypes.Structure,), {"_fields_": fields})
    )
    decoded = layout.from_buffer_copy(bytes(raw.extra)[: ctypes.sizeof(layout)])
    details: dict[str, Any] = {name: getattr(decoded, name) for name, _ in fields}
    if "attach_type" in details:
        details["attach_type"] = kind_name(AttachType, details["attach_type"])
    return details


def _interface_name(index: int) -> str:
    try:
        return socket.if_indextoname(index)
    except OSError:
        return ""  # gone, or in another network namespace


def links() -> list[LinkRow]:
    """Every bpf_link in the kernel, whoever created it."""
    rows = []
    for link_id in syscall.iterate_ids(syscall.link_get_next_id):
        try:
            fd = OwnedFd(syscall.link_get_fd_by_id(link_id), f"link {link_id}")
        except BpfError:
            continue
        with fd:
            raw = syscall.obj_get_info_by_fd(fd.fd, syscall.LinkInfo(), what=f"link {link_id}")
        row = LinkRow(raw.id, kind_name(LinkType, raw.type), raw.prog_id, link_details(raw))
        rows.append(row)
    return rows


@dataclass(frozen=True)
class TokenRow:
    """A delegating bpffs, as ``token list`` shows it (bpftool's ``token_info``): what a
    BPF token made from it may do, by name."""

    path: str
    allowed_cmds: list[str]
    allowed_maps: list[str]
    allowed_progs: list[str]
    allowed_attachs: list[str]


def tokens() -> list[TokenRow]:
    """Every bpffs in this mount namespace that delegates BPF commands (Linux 6.9)."""
    return [
        TokenRow(mount.path, *(mount.delegation.names(k) for k in DELEGATE_ENUMS))
        for mount in delegating_mounts()
    ]


def detach_link(link_id: int) -> None:
    """Detach a link by id (LINK_DETACH), whoever holds it."""
    with OwnedFd(syscall.link_get_fd_by_id(link_id), f"link {link_id}") as fd:
        syscall.link_detach(fd.fd, what=f"link {link_id}")


def _select(target: list[str], kind: str) -> tuple[str, str]:
    if len(target) == 1 and target[0].isdigit():
        return "id", target[0]
    if len(target) == 2 and target[0] in ("id", "name", "pinned"):
        return target[0], target[1]
    raise BpfError(f"name a {kind} as ID, 'id ID', 'name NAME' or 'pinned PATH'", errno.EINVAL)


def _open(target: list[str], kind: str, opener: Any, listing: Callable[[], list[Any]]) -> Any:
    how, value = _select(target, kind)
    if how == "id":
        return opener.from_id(int(value))
    if how == "pinned":
        return opener.from_pinned(value)
    found = [info.id for info in listing() if info.name == value]
    if len(found) != 1:
        raise BpfError(
            f"{len(found)} {kind}s are named {value!r}" + (f" (ids {found})" if found else ""),
            errno.ENOENT if not found else errno.EINVAL,
        )
    return opener.from_id(found[0])


def open_program(target: list[str]) -> Program:
    """``ID``, ``id ID``, ``name NAME`` (must be unique) or ``pinned PATH``."""
    program: Program = _open(target, "program", Program, programs)
    return program


def open_map(target: list[str]) -> Map:
    """A map named the way bpftool names it: ``42``, ``id 42``, ``name N``, ``pinned P``."""
    map_obj: Map = _open(target, "map", Map, maps)
    return map_obj


def program_details(prog: Program) -> dict[str, Any]:
    """A program's facts as ``prog show`` prints them."""
    info = prog.info()
    raw = syscall.obj_get_info_by_fd(prog.fd, syscall.ProgInfo(), what=f"program {info.id}")
    return {
        "id": info.id,
        "type": kind_name(ProgType, info.type),
        "name": info.name,
        "tag": info.tag,
        "gpl_compatible": bool(raw.gpl_compatible),
        "loaded_at": _wall_clock(info.load_time_ns),
        "uid": raw.created_by_uid,
        "xlated_bytes": raw.xlated_prog_len,
        "jited_bytes": raw.jited_prog_len,
        "verified_insns": info.verified_insns,
        "map_ids": info.map_ids,
        "btf_id": info.btf_id,
        "run_time_ns": info.run_time_ns,
        "run_cnt": info.run_cnt,
    }


def _wall_clock(boot_ns: int) -> str:
    """A load time (ns since boot, CLOCK_BOOTTIME) as local ISO time, as bpftool shows it."""
    boot = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
    return datetime.fromtimestamp(boot + boot_ns / 1e9).astimezone().isoformat(timespec="seconds")


def _resolve_helper(imm: int) -> str | None:
    by_address, base = system.kernel_functions()
    if not base:
        return None
    return by_address.get((base + imm) & 0xFFFF_FFFF_FFFF_FFFF)


def dump_xlated(prog: Program) -> list[str]:
    """The program as the kernel runs it (after the verifier's rewrites), one line per
    instruction, with helper calls named through kallsyms."""
    return disassemble(prog.info(xlated=True).xlated_insns, resolve_call=_resolve_helper)


# ----------------------------------------------------------------- map contents


def parse_bytes(words: list[str], size: int, what: str) -> bytes:
    """``1 0 0 0`` / ``0x01 0x00 ...`` (one per byte), or one integer for a sized field."""
    try:
        numbers = [int(word, 0) for word in words]
    except ValueError as error:
        raise BpfError(f"{what}: {' '.join(words)!r} is not a list of numbers", 22) from error
    if len(numbers) == 1 and size in (1, 2, 4, 8) and size > 1:
        value = numbers[0]
        return value.to_bytes(size, "little", signed=value < 0)
    if len(numbers) != size or any(not 0 <= n <= 255 for n in numbers):
        raise BpfError(
            f"{what}: expected {size} bytes (or one integer), got {len(numbers)} values",
            errno.EINVAL,
        )
    return bytes(numbers)


def _decoder(info: MapInfo, which: str) -> Callable[[bytes], Any] | None:
    """A BTF-based decoder for keys or values, when the map carries BTF."""
    type_id = info.btf_key_type_id if which == "key" else info.btf_value_type_id
    if not info.btf_id or not type_id or info.type == MapType.STRUCT_OPS:
        return None
    try:
        btf = fetch_btf(info.btf_id)
        ctype = btf.ctype(type_id)
    except Exception:  # no layout for it: hex only
        return None
    return lambda raw: to_plain(ctype.from_buffer_copy(raw[: ctypes.sizeof(ctype)]))


def to_plain(value: Any) -> Any:
    """A ctypes value as JSON-friendly Python: dicts, lists, ints, strings."""
    if isinstance(value, ctypes.Structure | ctypes.Union):
        return {
            name: to_plain(getattr(value, name))
            for name, *_ in value._fields_
            if not name.startswith(("_pad", "_bits"))
        }
    if isinstance(value, ctypes.Array):
        if value._type_ is ctypes.c_char:
            return bytes(value).split(b"\0", 1)[0].decode(errors="replace")
        return [to_plain(item) for item in value]
    if isinstance(value, bytes):
        return value.split(b"\0", 1)[0].decode(errors="replace")
    if isinstance(value, ctypes._SimpleCData):
        return value.value
    return value


def dump_map(map_obj: Map) -> list[dict[str, Any]]:
    """Every entry as hex bytes, and decoded through the map's BTF when it has some."""
    info = map_obj.info()
    if info.type == MapType.ARENA:
        raise BpfError(
            f"map {info.name!r} is an arena: it has pages, not entries (map its memory with "
            "Map.arena(); its programs' pointers lead through it)",
            errno.EINVAL,
        )
    decode_key, decode_value = _decoder(info, "key"), _decoder(info, "value")
    rows = []
    for key, value in map_obj.items():  # maps opened by id: keys and values are bytes
        row: dict[str, Any] = {"key": _hex(key), "value": value_hex(value)}
        if decode_key is not None:
            row["formatted_key"] = decode_key(bytes(key))
        if decode_value is not None:
            if isinstance(value, list):
                row["formatted_value"] = [decode_value(bytes(v)) for v in value]
            else:
                row["formatted_value"] = decode_value(bytes(value))
        rows.append(row)
    return rows


def _hex(data: Any) -> str:
    return " ".join(f"{b:02x}" for b in bytes(data))


def value_hex(value: Any) -> Any:
    """Bytes as bpftool prints them: two hex digits each."""
    if isinstance(value, list):  # per-CPU: one value per CPU
        return [_hex(v) for v in value]
    return _hex(value)
