"""Planning a struct_ops value: kernel ops structs (``tcp_congestion_ops``…) implemented
by BPF programs.

The object describes the struct in its own (compile-time) layout; the kernel wants the
value of ``bpf_struct_ops_<name>`` in *its* layout. ``plan()`` matches the two member by
member, by name: function pointers become program fds (and tell each program which
kernel struct and member it implements), plain members are copied with size checks, and
members this kernel lacks are an error unless the object left them zero — libbpf's rules.

Pure: the kernel's BTF is given to it (vmlinux, then modules). Registering the planned
value is ``pylibbpf.struct_ops``.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Iterable

from ..btf import Btf, Kind, Type
from ..errors import ObjectError
from ..records import dataclass, field
from .core_types import essential_name
from .objspec import StructOpsSpec

WRAPPER_PREFIX = "bpf_struct_ops_"


@dataclass
class KernelStructOps:
    """The kernel's side of one ops struct: its type and the map value wrapping it."""

    btf: Btf
    type: Type  # e.g. struct tcp_congestion_ops in vmlinux
    wrapper: Type  # struct bpf_struct_ops_tcp_congestion_ops
    data_offset: int  # where the ops struct sits in the wrapper
    module: str | None = None  # the module whose BTF defines it (None: vmlinux)


@dataclass
class StructOpsPlan:
    """A struct_ops variable laid out for the kernel, waiting for its programs' fds."""

    spec: StructOpsSpec
    kernel: KernelStructOps
    value: bytearray  # the wrapper's bytes, program slots still empty
    slots: dict[int, str] = field(default_factory=dict)  # byte offset in value -> program
    members: dict[str, int] = field(default_factory=dict)  # program -> kernel member index
    empty_callbacks: list[str] = field(default_factory=list)

    @property
    def what(self) -> str:
        """How errors name it."""
        return f"struct_ops {self.spec.name!r} (struct {self.kernel.type.name})"

    def value_with(self, program_fds: dict[str, int]) -> bytes:
        """The map value, with each function pointer slot holding its program's fd."""
        value = bytearray(self.value)
        for offset, program in self.slots.items():
            struct.pack_into("<Q", value, offset, program_fds[program])
        return bytes(value)


def find_kernel_struct_ops(name: str, what: str, kernel: Iterable[Btf]) -> KernelStructOps:
    """The kernel's ops struct and its ``bpf_struct_ops_`` wrapper, in the first of the
    ``kernel`` BTFs (vmlinux, then modules) that has both. A module's (sched_ext-style
    ops, HID-BPF, bpf_testmod) is named to the kernel with that module's BTF fd."""
    searched: list[Btf] = []
    for btf in kernel:
        searched.append(btf)
        wrappers = btf.find_all(WRAPPER_PREFIX + name, Kind.STRUCT)
        ops = btf.find_all(name, Kind.STRUCT)
        if wrappers and ops:
            wrapper = wrappers[0]
            data = next((m for m in wrapper.members if m.name == "data"), None)
            if data is None:
                raise ObjectError(f"{what}: {wrapper.describe()} has no 'data' member")
            module = btf.name if btf.base is not None else None
            return KernelStructOps(btf, ops[0], wrapper, data.bit_offset // 8, module)
    known = [
        n.removeprefix(WRAPPER_PREFIX)
        for n in (searched[0].names_with_prefix(WRAPPER_PREFIX) if searched else [])
    ]
    import difflib  # an error path: not paid by objects that plan fine

    close = difflib.get_close_matches(name, known, n=3)
    hint = f"; close matches: {', '.join(close)}" if close else ""
    raise ObjectError(  # ESRCH: "not on this kernel", as libbpf's find_struct_ops_kern_types
        f"{what}: this kernel has no struct_ops type 'struct {name}'{hint}", errno.ESRCH
    )


def _is_func_ptr(btf: Btf, type_id: int) -> bool:
    t = btf.resolve(type_id)
    return t.kind == Kind.PTR and btf.resolve(t.type).kind == Kind.FUNC_PROTO


def plan(
    spec: StructOpsSpec, local_btf: Btf, object_name: str, kernel_btfs: Iterable[Btf]
) -> StructOpsPlan:
    """Lay the object's struct out as the kernel's ``bpf_struct_ops_<name>`` value, as
    described by ``kernel_btfs`` (vmlinux first, then modules; searched lazily)."""
    # errnos as libbpf's bpf_map__init_kern_struct_ops: EOPNOTSUPP for what this kernel's
    # struct cannot hold, ESRCH for a struct it does not have.
    local = local_btf.resolve(spec.type_id)
    what = f"{object_name}: struct_ops {spec.name!r}"
    if local.kind != Kind.STRUCT:
        raise ObjectError(f"{what}: its type is {local.describe()}, not a struct")
    kernel = find_kernel_struct_ops(essential_name(local.name), what, kernel_btfs)
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
                    "does not exist in this kernel's struct",
                    errno.EOPNOTSUPP,
                )
            index, kmember = found
            if not _is_func_ptr(kbtf, kmember.type):
                raise ObjectError(
                    f"{what}: member {member.name!r} is a function pointer in the "
                    "object but not in the kernel",
                    errno.EOPNOTSUPP,
                )
            previous = result.members.get(program)
            if previous is not None and previous != index:
                raise ObjectError(
                    f"{what}: program {program!r} is used for two members", errno.EINVAL
                )
            result.members[program] = index
            result.slots[kernel.data_offset + kmember.bit_offset // 8] = program
            continue
        if member.bitfield_size:
            if any(local_bytes):
                raise ObjectError(
                    f"{what}: bitfield member {member.name!r} is not supported", errno.EOPNOTSUPP
                )
            continue
        if found is None:
            if any(local_bytes):
                raise ObjectError(
                    f"{what}: member {member.name!r} is set in the object but "
                    "does not exist in this kernel's struct",
                    errno.EOPNOTSUPP,
                )
            continue
        _, kmember = found
        ksize = kbtf.sizeof(kmember.type)
        if ksize != size:
            if any(local_bytes):
                raise ObjectError(
                    f"{what}: member {member.name!r} is {size} bytes in the "
                    f"object, {ksize} in the kernel",
                    errno.EOPNOTSUPP,
                )
            continue
        start = kernel.data_offset + kmember.bit_offset // 8
        result.value[start : start + size] = local_bytes
    return result
