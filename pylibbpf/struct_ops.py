"""struct_ops: kernel ops structs (``tcp_congestion_ops``…) implemented by BPF programs.

The object describes the struct in its own (compile-time) layout; the kernel wants the
value of ``bpf_struct_ops_<name>`` in *its* layout. ``plan()`` matches the two member by
member, by name: function pointers become program fds (and tell each program which
kernel struct and member it implements), plain members are copied with size checks, and
members this kernel lacks are an error unless the object left them zero — libbpf's rules.

Registration writes the value into the map (element 0); for ``.struct_ops.link`` maps a
``BPF_STRUCT_OPS`` link then makes it live. Closing the link (or, for plain maps,
deleting element 0) unregisters.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import syscall
from .btf import Btf, Kind, Type
from .core import essential_name
from .elf import StructOpsSpec
from .errors import BpfError, NotSupportedError, ObjectError
from .fd import OwnedFd
from .link import Link
from .uapi import AttachType

if TYPE_CHECKING:
    from .maps import Map
    from .program import Program

WRAPPER_PREFIX = "bpf_struct_ops_"


@dataclass
class KernelStructOps:
    btf: Btf
    type: Type  # e.g. struct tcp_congestion_ops in vmlinux
    wrapper: Type  # struct bpf_struct_ops_tcp_congestion_ops
    data_offset: int  # where the ops struct sits in the wrapper


@dataclass
class StructOpsPlan:
    spec: StructOpsSpec
    kernel: KernelStructOps
    value: bytearray  # the wrapper's bytes, program slots still empty
    slots: dict[int, str] = field(default_factory=dict)  # byte offset in value -> program
    members: dict[str, int] = field(default_factory=dict)  # program -> kernel member index
    empty_callbacks: list[str] = field(default_factory=list)

    @property
    def what(self) -> str:
        return f"struct_ops {self.spec.name!r} (struct {self.kernel.type.name})"

    def value_with(self, program_fds: dict[str, int]) -> bytes:
        value = bytearray(self.value)
        for offset, program in self.slots.items():
            struct.pack_into("<Q", value, offset, program_fds[program])
        return bytes(value)


def find_kernel_struct_ops(name: str, what: str) -> KernelStructOps:
    """The kernel's ops struct and its ``bpf_struct_ops_`` wrapper, vmlinux then modules."""
    candidates = [Btf.load_vmlinux()]
    for btf in candidates + [Btf.load_module(m) for m in Btf.module_names()]:
        wrappers = btf.find_all(WRAPPER_PREFIX + name, Kind.STRUCT)
        ops = btf.find_all(name, Kind.STRUCT)
        if wrappers and ops:
            wrapper = wrappers[0]
            data = next((m for m in wrapper.members if m.name == "data"), None)
            if data is None:
                raise ObjectError(f"{what}: {wrapper.describe()} has no 'data' member")
            if btf.base is not None:
                raise NotSupportedError(
                    f"{what}: struct {name} comes from module {btf.name!r}; struct_ops from "
                    "modules is not supported yet",
                    errno.EOPNOTSUPP,
                )
            return KernelStructOps(btf, ops[0], wrapper, data.bit_offset // 8)
    known = [
        n.removeprefix(WRAPPER_PREFIX) for n in candidates[0].names_with_prefix(WRAPPER_PREFIX)
    ]
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"; close matches: {', '.join(close)}" if close else ""
    raise ObjectError(f"{what}: this kernel has no struct_ops type 'struct {name}'{hint}")


def _is_func_ptr(btf: Btf, type_id: int) -> bool:
    t = btf.resolve(type_id)
    return t.kind == Kind.PTR and btf.resolve(t.type).kind == Kind.FUNC_PROTO


def plan(spec: StructOpsSpec, local_btf: Btf, object_name: str) -> StructOpsPlan:
    """Lay the object's struct out as the kernel's ``bpf_struct_ops_<name>`` value."""
    local = local_btf.resolve(spec.type_id)
    what = f"{object_name}: struct_ops {spec.name!r}"
    if local.kind != Kind.STRUCT:
        raise ObjectError(f"{what}: its type is {local.describe()}, not a struct")
    kernel = find_kernel_struct_ops(essential_name(local.name), what)
    kbtf, ktype = kernel.btf, kernel.type
    result = StructOpsPlan(spec, kernel, bytearray(kernel.wrapper.size))
    what = f"{object_name}: {result.what}"
    by_name = {m.name: (index, m) for index, m in enumerate(ktype.members) if m.name}
    for member in local.members:
        offset = member.bit_offset // 8
        size = local_btf.sizeof(member.type)
        local_bytes = spec.data[offset : offset + size]
        found = by_name.get(member.name)
        if _is_func_ptr(local_btf, member.type):
            program = spec.functions.get(offset)
            if program is None:
                if found is not None:
                    result.empty_callbacks.append(member.name)
                continue
            if found is None:
                raise ObjectError(
                    f"{what}: member {member.name!r} (set to program {program!r}) "
                    "does not exist in this kernel's struct"
                )
            index, kmember = found
            if not _is_func_ptr(kbtf, kmember.type):
                raise ObjectError(
                    f"{what}: member {member.name!r} is a function pointer in the "
                    "object but not in the kernel"
                )
            previous = result.members.get(program)
            if previous is not None and previous != index:
                raise ObjectError(f"{what}: program {program!r} is used for two members")
            result.members[program] = index
            result.slots[kernel.data_offset + kmember.bit_offset // 8] = program
            continue
        if member.bitfield_size:
            if any(local_bytes):
                raise ObjectError(f"{what}: bitfield member {member.name!r} is not supported")
            continue
        if found is None:
            if any(local_bytes):
                raise ObjectError(
                    f"{what}: member {member.name!r} is set in the object but "
                    "does not exist in this kernel's struct"
                )
            continue
        _, kmember = found
        ksize = kbtf.sizeof(kmember.type)
        if ksize != size:
            if any(local_bytes):
                raise ObjectError(
                    f"{what}: member {member.name!r} is {size} bytes in the "
                    f"object, {ksize} in the kernel"
                )
            continue
        start = kernel.data_offset + kmember.bit_offset // 8
        result.value[start : start + size] = local_bytes
    return result


class StructOpsLink(Link):
    """A registered struct_ops map. Closing it unregisters (for plain maps: deletes key 0)."""

    def __init__(self, fd: OwnedFd | None, map_fd: int, description: str) -> None:
        if fd is None:  # a plain map: our own map fd, deleting key 0 when it goes
            fd = OwnedFd(_dup(map_fd), description, before_close=_unregister_plain)
            self._plain = True
        else:
            self._plain = False
        super().__init__(fd, description)

    def update_map(self, new_map: Map) -> None:
        """Swap in another (loaded, BPF_F_LINK) struct_ops map atomically."""
        if self._plain:
            raise BpfError(
                f"{self.description}: only .struct_ops.link maps can be swapped", errno.EINVAL
            )
        if new_map.struct_ops is None:
            raise BpfError(f"{self.description}: {new_map!r} is not a struct_ops map", errno.EINVAL)
        new_map.struct_ops.write_value()
        syscall.link_update(self.fd, new_map.fileno(), what=self.description)


def _unregister_plain(map_fd: int) -> None:
    with contextlib.suppress(BpfError):  # already unregistered
        syscall.map_delete_elem(map_fd, struct.pack("<I", 0))


def _dup(fd: int) -> int:
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)


class StructOpsState:
    """What a struct_ops ``Map`` needs to register itself."""

    def __init__(
        self,
        plan_: StructOpsPlan,
        programs: Mapping[str, Program],
        map_: Map,
        owner_links: list[Link] | None = None,
    ) -> None:
        self.plan = plan_
        self.programs = programs
        self.map = map_
        self._owner_links = owner_links  # the object's: closing it unregisters these too

    def write_value(self) -> None:
        fds = {name: self.programs[name].fileno() for name in self.plan.slots.values()}
        value = self.plan.value_with(fds)
        try:
            self.map.update(0, value)
        except BpfError as error:
            hint = ""
            if error.errno in (errno.EINVAL, errno.ENOTSUP, 524):
                empty = ", ".join(self.plan.empty_callbacks) or "none"
                hint = (
                    f"; the kernel's init_member/validate refused it — a mandatory callback "
                    f"may be missing (callbacks left NULL: {empty})"
                )
            elif error.errno == errno.EEXIST:
                hint = "; an ops struct with this name is already registered"
            code = errno.errorcode.get(error.errno or 0, "?")
            raise BpfError(
                f"{self.plan.what}: registration failed [{code}]{hint}", error.errno
            ) from None

    def attach(self) -> StructOpsLink:
        self.write_value()
        map_fd = self.map.fileno()
        what = f"{self.plan.what} registration"
        if self.plan.spec.link:
            fd = syscall.link_create(map_fd, 0, AttachType.STRUCT_OPS, what=what)
            link = StructOpsLink(OwnedFd(fd, what), map_fd, what)
        else:
            link = StructOpsLink(None, map_fd, what)
        if self._owner_links is not None:
            self._owner_links.append(link)
        return link


# --------------------------------------------------------------------------- introspection


@dataclass(frozen=True)
class RegisteredStructOps:
    """A struct_ops map in the kernel, created by any loader (``bpftool struct_ops list``)."""

    id: int
    name: str  # the map's name
    kernel_type: str  # e.g. tcp_congestion_ops
    state: str  # init, inuse, tobefree, ready
    refcnt: int
    ops_name: str  # the struct's own ``name`` member, when it has one
    link_based: bool


def _common_fields(btf: Btf, wrapper: Type) -> tuple[int, int]:
    """Byte offsets of ``common.refcnt`` and ``common.state`` in a wrapper value."""
    common = next(m for m in wrapper.members if m.name == "common")
    inner = btf.resolve(common.type)
    offsets = {m.name: (common.bit_offset + m.bit_offset) // 8 for m in inner.members}
    return offsets.get("refcnt", 0), offsets.get("state", 4)


def _state_names(btf: Btf) -> dict[int, str]:
    found = btf.find_all("bpf_struct_ops_state")
    values = found[0].values if found else ()
    return {v.value: v.name.removeprefix("BPF_STRUCT_OPS_STATE_").lower() for v in values}


def _describe(map_: Map, value_type_id: int, map_id: int) -> RegisteredStructOps:
    from .uapi import MapFlags

    btf = Btf.load_vmlinux()
    wrapper = btf[value_type_id]
    raw = map_.lookup(struct.pack("<I", 0)) or bytes(wrapper.size)
    refcnt_at, state_at = _common_fields(btf, wrapper)
    state = struct.unpack_from("<I", raw, state_at)[0]
    ops_name = ""
    data = next((m for m in wrapper.members if m.name == "data"), None)
    if data is not None:
        path = btf.member_path(data.type, "name")
        if path:
            start = (data.bit_offset + path[-1][1].bit_offset) // 8
            ops_name = raw[start : start + 16].split(b"\0", 1)[0].decode(errors="replace")
    return RegisteredStructOps(
        id=map_id,
        name=map_.name,
        kernel_type=wrapper.name.removeprefix(WRAPPER_PREFIX),
        state=_state_names(btf).get(state, str(state)),
        refcnt=struct.unpack_from("<I", raw, refcnt_at)[0],
        ops_name=ops_name,
        link_based=bool(map_.flags & MapFlags.LINK),
    )


def registered_state(map_: Map) -> str:
    """The kernel's state of a struct_ops map: ``init``, ``inuse``, ``tobefree``, ``ready``."""
    info = map_.info()
    return _describe(map_, info.btf_vmlinux_value_type_id, info.id).state


def list_registered() -> list[RegisteredStructOps]:
    """Every struct_ops map in the kernel, whoever created it."""
    from .maps import Map
    from .uapi import MapType

    out = []
    for map_id in syscall.iterate_ids(syscall.map_get_next_id):
        try:
            with Map.from_id(map_id) as map_:
                if map_.type != MapType.STRUCT_OPS:
                    continue
                info = map_.info()
                out.append(_describe(map_, info.btf_vmlinux_value_type_id, map_id))
        except BpfError:
            continue  # gone meanwhile
    return out


def unregister(map_id: int) -> None:
    """Unregister a struct_ops map by id: detach its links, or delete its element 0."""
    from .maps import Map

    with Map.from_id(map_id) as map_:
        entry = _describe(map_, map_.info().btf_vmlinux_value_type_id, map_id)
        if not entry.link_based:
            map_.delete(struct.pack("<I", 0))
            return
    for link_id in syscall.iterate_ids(syscall.link_get_next_id):
        try:
            with OwnedFd(syscall.link_get_fd_by_id(link_id), f"link {link_id}") as fd:
                info = syscall.obj_get_info_by_fd(fd.fd, syscall.LinkInfo())
                target = struct.unpack_from("<I", bytes(info.extra), 0)[0]
                if info.type == 9 and target == map_id:  # BPF_LINK_TYPE_STRUCT_OPS
                    syscall.link_detach(fd.fd, what=f"struct_ops link {link_id}")
        except BpfError:
            continue
