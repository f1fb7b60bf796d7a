"""struct_ops in the kernel: registering a planned value (``spec.struct_ops.plan``) and
unregistering it, and listing what any loader registered.

Registration writes the value into the map (element 0); for ``.struct_ops.link`` maps a
``BPF_STRUCT_OPS`` link then makes it live. Closing the link (or, for plain maps,
deleting element 0) unregisters.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import struct
from collections.abc import Mapping
from typing import TYPE_CHECKING

from . import syscall
from .btf import Btf, Type
from .errors import BpfError
from .links.base import Link
from .maps import Map, MapInfo
from .records import dataclass
from .spec.struct_ops import WRAPPER_PREFIX, StructOpsPlan
from .syscall.fd import OwnedFd
from .syscall.kernel_btf import btf_object_info, load_module, load_vmlinux
from .uapi import AttachType, MapFlags, MapType

if TYPE_CHECKING:
    from .program import Program


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
        new_map.struct_ops.write_value(new_map)
        syscall.link_update(self.fd, new_map.fileno(), what=self.description)


def _unregister_plain(map_fd: int) -> None:
    with contextlib.suppress(BpfError):  # already unregistered
        syscall.map_delete_elem(map_fd, struct.pack("<I", 0))


def _dup(fd: int) -> int:
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)


class StructOpsState:
    """What a struct_ops ``Map`` needs to register itself: the planned value and the
    programs that fill its function pointers. It holds no reference to the map (the map
    holds it), so a dropped object is freed by reference counting alone."""

    def __init__(
        self,
        plan_: StructOpsPlan,
        programs: Mapping[str, Program],
        owner_links: list[Link] | None = None,
    ) -> None:
        self.plan = plan_
        self.programs = programs
        self._owner_links = owner_links  # the object's: closing it unregisters these too

    def write_value(self, map_: Map) -> None:
        """Write the value, program fds filled in, into ``map_`` (element 0)."""
        fds = {name: self.programs[name].fileno() for name in self.plan.slots.values()}
        value = self.plan.value_with(fds)
        try:
            map_.update(0, value)
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
            ) from error

    def attach(self, map_: Map) -> StructOpsLink:
        """Register ``map_`` with this value: through a link for ``.struct_ops.link``
        maps, by the update alone for plain ones."""
        self.write_value(map_)
        map_fd = map_.fileno()
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


def value_btf(btf_vmlinux_id: int) -> Btf:
    """The kernel BTF that holds a struct_ops map's value type: vmlinux's, or the module's
    that defines the ops struct (``bpf_map_info.btf_vmlinux_id``, 6.9+)."""
    if btf_vmlinux_id:
        what = f"BTF id {btf_vmlinux_id}"
        with (
            contextlib.suppress(BpfError),
            OwnedFd(syscall.btf_get_fd_by_id(btf_vmlinux_id), what) as fd,
        ):
            name, is_kernel, _size = btf_object_info(fd.fd, what)
            if is_kernel and name != "vmlinux":
                return load_module(name)
    return load_vmlinux()


def _describe(map_: Map, info: MapInfo) -> RegisteredStructOps:
    btf = value_btf(info.btf_vmlinux_id)
    value_type_id, map_id = info.btf_vmlinux_value_type_id, info.id
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
    return _describe(map_, map_.info()).state


def list_registered() -> list[RegisteredStructOps]:
    """Every struct_ops map in the kernel, whoever created it."""
    out = []
    for map_id in syscall.iterate_ids(syscall.map_get_next_id):
        try:
            with Map.from_id(map_id) as map_:
                if map_.type != MapType.STRUCT_OPS:
                    continue
                out.append(_describe(map_, map_.info()))
        except BpfError:
            continue  # gone meanwhile
    return out


def unregister(map_id: int) -> None:
    """Unregister a struct_ops map by id: detach its links, or delete its element 0."""
    with Map.from_id(map_id) as map_:
        entry = _describe(map_, map_.info())
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
