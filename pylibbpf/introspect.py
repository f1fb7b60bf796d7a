"""Looking at what is loaded in the kernel, whoever loaded it: the model behind the CLI's
``prog``, ``map``, ``link`` and ``btf`` commands (bpftool's ``show``/``dump``/``lookup``).

Objects are named the way bpftool names them — ``42``/``id 42``, ``name NAME``, ``tag
TAG``, ``pinned PATH`` — and described with bpftool's JSON keys and value forms (``prog
show`` rows have ``bytes_xlated``, ``loaded_at`` in epoch seconds…), so that scripts
written against ``bpftool -j`` read pylibbpf's output unchanged. Map keys and values are
given as bytes (``1 0 0 0``, ``0x01 0x00``) or, for 1/2/4/8-byte fields, as one integer.
"""

from __future__ import annotations

import ctypes
import difflib
import errno
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from . import syscall
from .btf import Btf, Kind
from .errors import BpfError
from .maps import Map, MapInfo
from .program import Program, ProgramInfo
from .spec.disasm import disassemble
from .syscall import fdinfo, system
from .syscall.fd import OwnedFd
from .syscall.kernel_btf import fetch_btf
from .syscall.token import DELEGATE_ENUMS, delegating_mounts
from .uapi import AttachType, LinkType, MapType, ProgType

OBJ_NAME_LEN = 16

Holders = dict[tuple[str, int], list[dict[str, Any]]]
Pins = dict[tuple[str, int], list[str]]


def kind_name(enum: Any, value: int) -> str:
    """An enum member's lower-case name, or the number if this pylibbpf does not know it."""
    try:
        return str(enum(value).name.lower())
    except ValueError:
        return str(value)


def type_name(enum: Any, value: int) -> str | int:
    """bpftool's form: libbpf's name for a known type (``"xdp"``), else the number."""
    try:
        return str(enum(value).name.lower())
    except ValueError:
        return value


def _each(
    next_id: Callable[[int], int | None], open_id: Callable[[int], Any]
) -> Iterator[tuple[int, Any]]:
    for object_id in syscall.iterate_ids(next_id):
        try:
            yield object_id, open_id(object_id)
        except BpfError:
            continue  # gone between listing and opening


def holders() -> Holders:
    """Which processes hold fds of which BPF objects (bpftool's ``pids`` column)."""
    return system.fd_holders()


def pins() -> Pins:
    """Where each object is pinned on bpffs (bpftool's ``--bpffs``)."""
    return fdinfo.pinned_objects()


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


# ----------------------------------------------------------------- naming objects


def _select(target: list[str], kind: str, ways: tuple[str, ...]) -> tuple[str, str]:
    if len(target) == 1 and target[0].isdigit():
        return "id", target[0]
    if len(target) == 2 and target[0] in ways:
        return target[0], target[1]
    forms = ", ".join(f"'{way} {way.upper()}'" for way in ways)
    raise BpfError(f"name a {kind} as ID or {forms}; got {' '.join(target)!r}", errno.EINVAL)


def _by_name(kind: str, value: str, named: list[tuple[int, str]]) -> list[int]:
    found = [object_id for object_id, name in named if name == value]
    if found:
        return found
    names = sorted({name for _, name in named if name})
    close = difflib.get_close_matches(value, names, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise BpfError(f"no {kind} is named {value!r}{hint}", errno.ENOENT)


def program_ids(target: list[str]) -> list[int]:
    """The ids of the programs ``target`` names (a name or tag may name several)."""
    how, value = _select(target, "program", ("id", "name", "tag", "pinned"))
    if how == "id":
        return [int(value)]
    if how == "pinned":
        with Program.from_pinned(value) as prog:
            return [prog.info().id]
    named: list[tuple[int, str]] = []
    for prog_id, prog in _each(syscall.prog_get_next_id, Program.from_id):
        with prog:
            raw, _ = program_info(prog.fd)
            if how == "tag":
                named.append((prog_id, bytes(raw.tag).hex()))
            else:  # the kernel's 15 characters, or the whole name from BTF
                named.append((prog_id, raw.name.decode(errors="replace")))
                full = program_full_name(prog.fd, raw)
                if full != named[-1][1]:
                    named.append((prog_id, full))
    return sorted(set(_by_name("program" if how == "name" else "program tag", value, named)))


def map_ids(target: list[str]) -> list[int]:
    """The ids of the maps ``target`` names (a name may name several)."""
    how, value = _select(target, "map", ("id", "name", "pinned"))
    if how == "id":
        return [int(value)]
    if how == "pinned":
        with Map.from_pinned(value) as map_obj:
            return [map_obj.info().id]
    return _by_name("map", value, [(info.id, info.name) for info in maps()])


def _one(ids: list[int], kind: str, target: list[str]) -> int:
    if len(ids) != 1:
        raise BpfError(
            f"{' '.join(target)!r} names {len(ids)} {kind}s (ids {ids}): use 'id ID'",
            errno.EINVAL,
        )
    return ids[0]


def open_program(target: list[str]) -> Program:
    """``ID``, ``id ID``, ``name NAME``, ``tag TAG`` (must name one) or ``pinned PATH``."""
    return Program.from_id(_one(program_ids(target), "program", target))


def open_map(target: list[str]) -> Map:
    """A map named the way bpftool names it: ``42``, ``id 42``, ``name N``, ``pinned P``."""
    return Map.from_id(_one(map_ids(target), "map", target))


def link_fd(target: list[str]) -> OwnedFd:
    """A link named as bpftool names it: ``42``, ``id 42`` or ``pinned PATH``."""
    how, value = _select(target, "link", ("id", "pinned"))
    if how == "pinned":
        return OwnedFd(syscall.obj_get(value, what=f"pinned link {value!r}"), f"link {value}")
    return OwnedFd(syscall.link_get_fd_by_id(int(value)), f"link {value}")


# ----------------------------------------------------------------- programs


def program_info(fd: int, **arrays: Any) -> tuple[syscall.ProgInfo, list[int]]:
    """``bpf_prog_info`` and the map ids; ``arrays`` sets more (count, pointer) fields
    for the second call (``nr_line_info=..., line_info=...``)."""
    what = f"program fd {fd}"
    first = syscall.obj_get_info_by_fd(fd, syscall.ProgInfo(), what=what)
    info = syscall.ProgInfo()
    ids = (ctypes.c_uint32 * max(first.nr_map_ids, 1))()
    info.nr_map_ids, info.map_ids = first.nr_map_ids, ctypes.addressof(ids)
    for name, value in arrays.items():
        setattr(info, name, value)
    syscall.obj_get_info_by_fd(fd, info, what=what)
    return info, list(ids[: first.nr_map_ids])


def program_full_name(fd: int, raw: syscall.ProgInfo) -> str:
    """The program's name; the kernel keeps 15 characters, the BTF of its first function
    has them all (as bpftool prints it)."""
    name = str(raw.name.decode(errors="replace"))
    if len(name) < OBJ_NAME_LEN - 1 or not raw.btf_id or not raw.nr_func_info:
        return name
    record = (ctypes.c_uint32 * 2)()  # bpf_func_info: insn_off, type_id
    try:
        info, _ = program_info(
            fd, nr_func_info=1, func_info_rec_size=8, func_info=ctypes.addressof(record)
        )
        return fetch_btf(info.btf_id)[record[1]].name or name
    except (BpfError, IndexError):
        return name


def wall_clock(boot_ns: int) -> int:
    """A load time (ns since boot, CLOCK_BOOTTIME) in epoch seconds, as bpftool computes it."""
    real, boot = (
        time.clock_gettime_ns(time.CLOCK_REALTIME),
        time.clock_gettime_ns(time.CLOCK_BOOTTIME),
    )
    return (real - boot + boot_ns) // 1_000_000_000


def _refs(
    row: dict[str, Any], kind: str, object_id: int, found: Holders | None, at: Pins | None
) -> None:
    if at:
        row["pinned"] = at.get((kind, object_id), [])
    if found and found.get((kind, object_id)):
        row["pids"] = found[(kind, object_id)]


def program_row(
    prog: Program, found: Holders | None = None, at: Pins | None = None
) -> dict[str, Any]:
    """A program as ``bpftool -j prog show`` describes it (same keys, same value forms);
    pylibbpf's extra facts under keys bpftool does not use (``verified_insns``)."""
    raw, ids = program_info(prog.fd)
    row: dict[str, Any] = {"id": raw.id, "type": type_name(ProgType, raw.type)}
    if raw.name:
        row["name"] = program_full_name(prog.fd, raw)
    row["tag"] = bytes(raw.tag).hex()
    row["gpl_compatible"] = bool(raw.gpl_compatible & 1)
    if raw.run_time_ns:
        row.update(run_time_ns=raw.run_time_ns, run_cnt=raw.run_cnt)
    if raw.recursion_misses:
        row["recursion_misses"] = raw.recursion_misses
    if raw.load_time:
        row.update(loaded_at=wall_clock(raw.load_time), uid=raw.created_by_uid)
    row["orphaned"] = False  # the kernel answered for it: it is not orphaned
    row["bytes_xlated"] = raw.xlated_prog_len
    row["jited"] = bool(raw.jited_prog_len)
    if raw.jited_prog_len:
        row["bytes_jited"] = raw.jited_prog_len
    memlock = fdinfo.fdinfo(prog.fd).get("memlock")
    if memlock is not None:
        row["bytes_memlock"] = int(memlock)
    if ids:
        row["map_ids"] = ids
    if raw.btf_id:
        row["btf_id"] = raw.btf_id
    _refs(row, "prog", raw.id, found, at)
    row["verified_insns"] = raw.verified_insns
    return row


def every_program(found: Holders | None = None, at: Pins | None = None) -> list[dict[str, Any]]:
    """``program_row`` of every program in the kernel."""
    rows = []
    for _, prog in _each(syscall.prog_get_next_id, Program.from_id):
        with prog:
            rows.append(program_row(prog, found, at))
    return rows


def _resolve_helper(imm: int) -> str | None:
    by_address, base = system.kernel_functions()
    if not base:
        return None
    return by_address.get((base + imm) & 0xFFFF_FFFF_FFFF_FFFF)


def dump_xlated(prog: Program) -> list[str]:
    """The program as the kernel runs it (after the verifier's rewrites), one line per
    instruction, with helper calls named through kallsyms."""
    return disassemble(prog.info(xlated=True).xlated_insns, resolve_call=_resolve_helper)


def disassemble_xlated(data: bytes) -> list[str]:
    """Translated instructions as text, kernel functions named through kallsyms."""
    return disassemble(data, resolve_call=_resolve_helper)


# ----------------------------------------------------------------- maps


def map_row(map_obj: Map, found: Holders | None = None, at: Pins | None = None) -> dict[str, Any]:
    """A map as ``bpftool -j map show`` describes it (same keys, same value forms)."""
    info = map_obj.info()
    fields = fdinfo.fdinfo(map_obj.fd)
    row: dict[str, Any] = {"id": info.id, "type": type_name(MapType, info.type)}
    if info.name:
        row["name"] = info.name
    row.update(
        flags=info.flags,
        bytes_key=info.key_size,
        bytes_value=info.value_size,
        max_entries=info.max_entries,
    )
    if "memlock" in fields:
        row["bytes_memlock"] = int(fields["memlock"])
    if info.type == MapType.PROG_ARRAY:
        if "owner_prog_type" in fields:
            row["owner_prog_type"] = type_name(ProgType, int(fields["owner_prog_type"]))
        if "owner_jited" in fields:
            row["owner_jited"] = bool(int(fields["owner_jited"]))
    row["frozen"] = int(fields.get("frozen", 0))
    if info.btf_id:
        row["btf_id"] = info.btf_id
    _refs(row, "map", info.id, found, at)
    if info.btf_vmlinux_value_type_id:
        row["btf_vmlinux_value_type_id"] = info.btf_vmlinux_value_type_id
    return row


def every_map(found: Holders | None = None, at: Pins | None = None) -> list[dict[str, Any]]:
    """``map_row`` of every map in the kernel."""
    rows = []
    for _, map_obj in _each(syscall.map_get_next_id, Map.from_id):
        with map_obj:
            rows.append(map_row(map_obj, found, at))
    return rows


# ----------------------------------------------------------------- BTF


def btf_ids(target: list[str]) -> list[int]:
    """``ID`` or ``id ID``."""
    return [int(_select(target, "BTF object", ("id",))[1])]


def every_btf_id() -> list[int]:
    """Every BTF object the kernel holds (vmlinux, modules', loaded objects')."""
    return list(syscall.iterate_ids(syscall.btf_get_next_id))


def btf_rows(ids: list[int], found: Holders | None = None) -> list[dict[str, Any]]:
    """BTF objects as ``bpftool -j btf show`` describes them: size, the programs and maps
    that use each, whether it is the kernel's own, its name."""
    users: dict[int, dict[str, list[int]]] = {}
    for prog_info in programs():
        if prog_info.btf_id:
            users.setdefault(prog_info.btf_id, {"prog_ids": [], "map_ids": []})["prog_ids"].append(
                prog_info.id
            )
    for map_info in maps():
        if map_info.btf_id:
            users.setdefault(map_info.btf_id, {"prog_ids": [], "map_ids": []})["map_ids"].append(
                map_info.id
            )
    rows = []
    for btf_id in ids:
        try:
            fd = OwnedFd(syscall.btf_get_fd_by_id(btf_id), f"BTF id {btf_id}")
        except BpfError:
            if len(ids) == 1:
                raise
            continue
        name_buffer = ctypes.create_string_buffer(64)
        with fd:
            info = syscall.obj_get_info_by_fd(
                fd.fd,
                syscall.BtfInfo(name=ctypes.addressof(name_buffer), name_len=64),
                what=f"BTF id {btf_id}",
            )
        row: dict[str, Any] = {"id": info.id, "size": info.btf_size}
        row.update(users.get(info.id, {"prog_ids": [], "map_ids": []}))
        row["kernel"] = bool(info.kernel_btf)
        if name_buffer.value:
            row["name"] = name_buffer.value.decode(errors="replace")
        if found and found.get(("btf", info.id)):
            row["pids"] = found[("btf", info.id)]
        rows.append(row)
    return rows


def object_btf(btf_id: int) -> Btf:
    """The BTF the kernel holds under ``btf_id`` (a module's comes with vmlinux as base)."""
    return fetch_btf(btf_id)


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
        described = btf[type_id]
    except Exception:  # no layout for it: hex only
        return None

    def decode(raw: bytes) -> Any:
        plain = to_plain(ctype.from_buffer_copy(raw[: ctypes.sizeof(ctype)]))
        if described.kind == Kind.DATASEC and isinstance(plain, dict):
            # bpftool writes a section as {".bss": [{"var": value}, ...]}
            return {described.name: [{name: value} for name, value in plain.items()]}
        return plain

    return decode


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


def _byte_list(data: Any) -> list[str]:
    return [f"0x{b:02x}" for b in bytes(data)]


def entry_row(map_obj: Map, key: Any, value: Any, info: MapInfo | None = None) -> dict[str, Any]:
    """One entry as ``bpftool -j map dump`` writes it: ``key``/``value`` as lists of
    ``"0x.."`` bytes (per-CPU: ``values`` with one ``{"cpu", "value"}`` each), and
    ``formatted`` decoded through the map's BTF when it has some."""
    info = info or map_obj.info()
    decode_key, decode_value = _decoder(info, "key"), _decoder(info, "value")
    row: dict[str, Any] = {"key": _byte_list(key)}
    formatted: dict[str, Any] = {}
    if decode_key is not None:
        formatted["key"] = decode_key(bytes(key))
    if isinstance(value, list):  # per-CPU
        row["values"] = [{"cpu": cpu, "value": _byte_list(v)} for cpu, v in enumerate(value)]
        if decode_value is not None:
            formatted["values"] = [
                {"cpu": cpu, "value": decode_value(bytes(v))} for cpu, v in enumerate(value)
            ]
    else:
        row["value"] = _byte_list(value)
        if decode_value is not None:
            formatted["value"] = decode_value(bytes(value))
    if formatted:
        row["formatted"] = formatted
    return row


def dump_map(map_obj: Map) -> list[dict[str, Any]]:
    """Every entry (``entry_row``), decoded through the map's BTF when it has some."""
    info = map_obj.info()
    if info.type == MapType.ARENA:
        raise BpfError(
            f"map {info.name!r} is an arena: it has pages, not entries (map its memory with "
            "Map.arena(); its programs' pointers lead through it)",
            errno.EINVAL,
        )
    return [entry_row(map_obj, key, value, info) for key, value in map_obj.items()]


def hex_bytes(data: Any) -> str:
    """Bytes as bpftool's text output prints them: ``09 00 00 00``."""
    return " ".join(f"{b:02x}" for b in bytes(data))


def value_hex(value: Any) -> Any:
    """Bytes as bpftool prints them: two hex digits each."""
    if isinstance(value, list):  # per-CPU: one value per CPU
        return [hex_bytes(v) for v in value]
    return hex_bytes(value)
