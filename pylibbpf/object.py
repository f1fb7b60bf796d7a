"""``BpfObject``: a clang-built BPF object from open to close.

``open()`` parses (no syscalls, no privileges). Between open and ``load()`` the caller may
adjust programs (``autoload``, type) and maps (``max_entries``, flags) and set global
variables in the initial image. ``load()`` then creates maps, uploads the object's BTF,
resolves externs, links and relocates every program, and loads them; ``close()`` releases
all of it. Everything kernel-dependent happens in ``load()``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import mmap
import os
import re
import struct
from collections.abc import Collection
from pathlib import Path
from typing import Any

from . import core, features, struct_ops, syscall
from .btf import Btf, Kind, Type
from .btf.encode import encode, fixup_datasecs, fixup_externs, fixup_hidden, sanitize
from .btf.ext import LineInfo
from .btf.upload import fetch_btf, load_btf
from .codec import CtypesCodec, IntCodec
from .elf import (
    PIN_BY_NAME,
    ExternSpec,
    MapSpec,
    ObjectSpec,
    ProgramSpec,
    object_name,
    parse_object,
)
from .errors import BpfError, LoadError, NotSupportedError, ObjectError
from .fd import Closing, OwnedFd
from .kconfig import layout_kconfig
from .ksyms import KsymResolver
from .link import Link, attach_from_section
from .maps import Map, sanitize_name
from .program import LoadOptions, Program
from .relocs import ExternValue, LinkedProgram, link_program
from .sections import ATTACH_BTF, FRAGS, SLEEPABLE
from .struct_ops import StructOpsPlan
from .sysinfo import num_possible_cpus
from .uapi import (
    FD_VALUE_MAP_TYPES,
    OBJ_NAME_LEN,
    MapFlags,
    MapType,
    ProgFlags,
    ProgType,
)

_ATTACH_BTF_PREFIX = {
    "tp_btf": "btf_trace_",
    "lsm": "bpf_lsm_",
    "lsm.s": "bpf_lsm_",
    "lsm_cgroup": "bpf_lsm_",
    "iter": "bpf_iter_",
    "iter.s": "bpf_iter_",
}


# Object BTF as uploaded (fixed up, sanitized, encoded), by content: repeated loads of one
# object in a process skip the work. Bounded; oldest entries go first.
_KERNEL_BTF_CACHE: dict[tuple[Any, ...], bytes] = {}


def internal_map_name(object_name: str, section: str) -> str:
    """libbpf's kernel name for a global-data map: object-name prefix + section name."""
    if "." in section[1:]:  # custom .data.foo / .rodata.str1.1: the section name alone
        name = section
    else:
        prefix = min(OBJ_NAME_LEN - len(section) - 1, len(object_name))
        name = object_name[:prefix] + section
    return sanitize_name(name)


class Variable:
    """A global variable: the initial image before load, the live map memory after."""

    def __init__(
        self, obj: BpfObject, name: str, section: str, offset: int, size: int, type_id: int
    ) -> None:
        self._obj = obj
        self.name = name
        self.section = section
        self.offset = offset
        self.size = size
        self.type_id = type_id

    def _buffer(self) -> Any:
        return self._obj.section_memory(self.section)

    @property
    def raw(self) -> bytes:
        buffer = self._buffer()
        return bytes(buffer[self.offset : self.offset + self.size])

    @raw.setter
    def raw(self, data: bytes) -> None:
        if len(data) != self.size:
            raise BpfError(
                f"variable {self.name!r} is {self.size} bytes, got {len(data)}", errno.EINVAL
            )
        self._obj.check_section_writable(self.section, f"variable {self.name!r}")
        buffer = self._buffer()
        buffer[self.offset : self.offset + self.size] = data

    @property
    def value(self) -> Any:
        """ints as ``int``, char arrays as ``bytes`` (up to the NUL), others as ctypes."""
        codec = self._obj._variable_codec(self)
        raw = self.raw
        if codec is None:
            return raw
        if isinstance(codec, str):
            return raw.split(b"\0", 1)[0]
        return codec.decode(raw)

    @value.setter
    def value(self, value: Any) -> None:
        codec = self._obj._variable_codec(self)
        if isinstance(value, str):
            value = value.encode()
        if isinstance(value, bytes | bytearray) and len(value) < self.size and codec == "chars":
            value = bytes(value).ljust(self.size, b"\0")
        if codec is None or isinstance(codec, str):
            self.raw = value if isinstance(value, bytes) else bytes(value)
        else:
            self.raw = codec.encode(value)

    def __repr__(self) -> str:
        return f"<Variable {self.name!r} in {self.section} at {self.offset} ({self.size} bytes)>"


class BpfObject(Closing):
    """A BPF ELF object: its programs, maps and global variables."""

    def __init__(
        self,
        spec: ObjectSpec,
        *,
        btf_custom_path: str | None = None,
        kconfig: dict[str, str] | None = None,
        pin_root_path: str = "/sys/fs/bpf",
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.btf_custom_path = btf_custom_path
        self.kconfig = kconfig
        self.pin_root_path = pin_root_path
        self.loaded = False
        self._images: dict[str, bytearray] = {}
        self._mmaps: dict[str, mmap.mmap] = {}
        self._btf_fd: OwnedFd | None = None
        self._btf_error = ""
        self._kconfig_layout: dict[str, tuple[int, int]] = {}  # extern -> (offset, size)
        self._linked: dict[str, LinkedProgram] = {}
        self._core_results: dict[str, list[core.CoreResult]] = {}
        self._resolver: core.CoreResolver | None = None
        self._extern_cache: dict[str, ExternValue] = {}
        self._ksyms = KsymResolver(self.name, spec.btf)
        self._codec_cache: dict[str, Any] = {}
        self.links: list[Link] = []

        self.programs: dict[str, Program] = {}
        for prog_spec in spec.programs.values():
            self.programs[prog_spec.name] = self._make_program(prog_spec)
        self.maps: dict[str, Map] = {}
        for map_spec in spec.maps.values():
            self.maps[map_spec.name] = self._make_map(map_spec)
        for section in spec.datasecs.values():
            self._images[section.name] = bytearray(section.data)
            self.maps[section.name] = Map(
                None,
                name=internal_map_name(self.name, section.name),
                map_type=MapType.ARRAY,
                key_size=4,
                value_size=max(section.size, 1),
                max_entries=1,
            )
        if any(e.section == ".kconfig" for e in spec.externs.values()):
            self._layout_kconfig()
            self.maps[".kconfig"] = Map(
                None,
                name=internal_map_name(self.name, ".kconfig"),
                map_type=MapType.ARRAY,
                key_size=4,
                value_size=len(self._images[".kconfig"]),
                max_entries=1,
            )
        self._struct_ops_plans: dict[str, StructOpsPlan] = {}
        # The struct_ops variables' bytes, editable until load (``struct_ops_value``).
        self._struct_ops_data = {n: bytearray(o.data) for n, o in spec.struct_ops.items()}
        used_by_struct_ops: set[str] = set()
        for ops in spec.struct_ops.values():
            flags = MapFlags.LINK if ops.link else 0
            self.maps[ops.name] = Map(
                None,
                name=ops.name,
                map_type=MapType.STRUCT_OPS,
                key_size=4,
                value_size=0,
                max_entries=1,
                flags=flags,
            )
            if ops.autocreate:
                used_by_struct_ops.update(ops.functions.values())
        for program in self.programs.values():
            if program.type == ProgType.STRUCT_OPS and program.name not in used_by_struct_ops:
                program.autoload = False  # as libbpf: only programs a struct_ops map uses
        self.variables: dict[str, Variable] = self._collect_variables()

    # ----------------------------------------------------------------- opening

    @classmethod
    def open(
        cls,
        source: str | os.PathLike[str] | bytes,
        *,
        name: str | None = None,
        btf_custom_path: str | None = None,
        kconfig: dict[str, str] | None = None,
        pin_root_path: str = "/sys/fs/bpf",
    ) -> BpfObject:
        """Parse an object (a path or its bytes). Needs no privileges and makes no syscalls."""
        if isinstance(source, bytes):
            data, default_name = source, "object"
        else:
            try:
                data = Path(source).read_bytes()
            except OSError as error:
                raise ObjectError(
                    f"cannot read BPF object {os.fspath(source)!r}: {error.strerror}", error.errno
                ) from None
            default_name = object_name(os.fspath(source))
        spec = parse_object(data, name or default_name)
        return cls(
            spec, btf_custom_path=btf_custom_path, kconfig=kconfig, pin_root_path=pin_root_path
        )

    def _make_program(self, spec: ProgramSpec) -> Program:
        definition = spec.section_def
        prog_type = definition.prog_type if definition else ProgType.UNSPEC
        options = LoadOptions(
            license=self.spec.license or "GPL", kern_version=self.spec.kern_version
        )
        if definition is not None:
            options.expected_attach_type = definition.attach_type
            if definition.flags & SLEEPABLE:
                options.prog_flags |= ProgFlags.SLEEPABLE
            if definition.flags & FRAGS:
                options.prog_flags |= ProgFlags.XDP_HAS_FRAGS
        program = Program(spec.name, prog_type, b"", section=spec.section, options=options)
        program.autoload = not spec.section.startswith("?")
        program.obj = self
        return program

    def _make_map(self, spec: MapSpec) -> Map:
        if spec.map_type == MapType.PERF_EVENT_ARRAY and not spec.max_entries:
            spec.max_entries = num_possible_cpus()  # as libbpf: one slot per CPU
        if spec.map_type in (MapType.RINGBUF, MapType.USER_RINGBUF):
            spec.max_entries = ringbuf_size(spec.max_entries)
        return Map(
            None,
            name=spec.name,
            map_type=spec.map_type,
            key_size=spec.key_size,
            value_size=spec.value_size,
            max_entries=spec.max_entries,
            flags=spec.flags,
            key_type=self._btf_type_codec(spec.key_type_id, spec.key_size, spec.map_type),
            value_type=self._btf_type_codec(spec.value_type_id, spec.value_size, spec.map_type),
        )

    def _btf_type_codec(self, type_id: int, size: int, map_type: int) -> Any:
        """int for integer keys/values, a ctypes type for records, bytes otherwise."""
        btf = self.spec.btf
        if not type_id or btf is None or map_type in FD_VALUE_MAP_TYPES:
            return int if map_type in FD_VALUE_MAP_TYPES and size == 4 else None
        t = btf.resolve(type_id)
        if t.kind in (Kind.INT, Kind.ENUM, Kind.ENUM64) and t.size in (1, 2, 4, 8):
            return int
        if t.kind in (Kind.STRUCT, Kind.UNION, Kind.ARRAY):
            try:
                return btf.ctype(t.id)
            except ObjectError:
                return None
        return None

    # ----------------------------------------------------------------- variables

    def _collect_variables(self) -> dict[str, Variable]:
        btf = self.spec.btf
        variables: dict[str, Variable] = {}
        if btf is None:
            return variables
        sizes = {name: section.size for name, section in self.spec.datasecs.items()}
        symbols = self.spec.object_symbols
        for section in [*self.spec.datasecs, ".kconfig"]:
            for datasec in btf.find_all(section, Kind.DATASEC):
                for entry in datasec.vars:
                    var = btf[entry.type]
                    if var.kind != Kind.VAR:
                        continue
                    if section == ".kconfig":
                        offset, size = self._kconfig_layout.get(var.name, (-1, 0))
                        if offset < 0:
                            continue
                    else:
                        offset = symbols.get((section, var.name), entry.offset)
                        size = entry.size
                        if offset + size > sizes.get(section, 0):
                            continue
                    variables[var.name] = Variable(self, var.name, section, offset, size, var.type)
        return variables

    def section_memory(self, section: str) -> Any:
        """A section's bytes: the initial image before load (a bytearray), the mmapped map
        after (writable unless read-only), or a lookup/update window without mmap."""
        if self.loaded and section in self._mmaps:
            return self._mmaps[section]
        if self.loaded:
            return _MapWindow(self.maps[section])
        return self._images[section]

    def struct_ops_value(self, name: str) -> Any:
        """The struct_ops variable ``name`` as a ctypes struct of the object's type: its
        plain members (``name``, ``flags``…) can be changed until ``load()``, as with
        libbpf's ``skel->struct_ops.<name>``; function pointers are fixed by the object."""
        if name not in self._struct_ops_data:
            raise BpfError(f"{self.name}: no struct_ops variable {name!r}", errno.ENOENT)
        if self.loaded:
            raise BpfError(
                f"{self.name}: struct_ops {name!r} is already loaded: edit it before load()",
                errno.EPERM,
            )
        assert self.spec.btf is not None
        layout = self.spec.btf.ctype(self.spec.struct_ops[name].type_id)
        return layout.from_buffer(self._struct_ops_data[name])

    def check_section_writable(self, section: str, what: str) -> None:
        """.rodata and .kconfig are frozen at load: only their initial image is editable."""
        if not self.loaded:
            return
        if section.startswith(".rodata") or section == ".kconfig":
            raise BpfError(
                f"{what} is in {section}, which is read-only after load (set it before "
                "load() to specialise the program)",
                errno.EPERM,
            )

    def _variable_codec(self, variable: Variable) -> Any:
        key = variable.name
        if key in self._codec_cache:
            return self._codec_cache[key]
        btf = self.spec.btf
        codec: Any = None
        if btf is not None:
            t = btf.resolve(variable.type_id)
            if t.kind in (Kind.INT, Kind.ENUM, Kind.ENUM64) and t.size in (1, 2, 4, 8):
                if t.kind == Kind.INT and t.encoding & 4 and t.size == 1:
                    codec = IntCodec(1, variable.name)
                else:
                    codec = IntCodec(t.size, variable.name, signed=t.signed)
            elif (
                t.kind == Kind.ARRAY
                and btf.resolve(t.type).kind == Kind.INT
                and btf.resolve(t.type).size == 1
            ):
                codec = "chars"
            elif t.kind in (Kind.STRUCT, Kind.UNION, Kind.ARRAY):
                try:
                    codec = CtypesCodec(btf.ctype(t.id), variable.name)
                except ObjectError:
                    codec = None
        self._codec_cache[key] = codec
        return codec

    # ----------------------------------------------------------------- kconfig

    def _layout_kconfig(self) -> None:
        """Place every __kconfig extern in the .kconfig map and fill in its value."""
        assert self.spec.btf is not None
        externs = [e for e in self.spec.externs.values() if e.section == ".kconfig"]
        self._kconfig_layout, self._images[".kconfig"] = layout_kconfig(
            self.name, self.spec.btf, externs, self.kconfig
        )

    # ----------------------------------------------------------------- loading

    def load(self) -> None:
        """Create maps, load programs (those with ``autoload``). LoadError on rejection."""
        if self.loaded:
            raise BpfError(f"object {self.name!r} is already loaded", errno.EALREADY)
        if self.spec.byteorder != ("little" if struct.pack("=H", 1) == b"\1\0" else "big"):
            raise ObjectError(
                f"{self.name}: object is {self.spec.byteorder}-endian, this host is not "
                "(compile with -target bpfel/bpfeb to match)"
            )
        features.ensure_memlock()
        try:
            self._load_btf()
            self._plan_struct_ops()
            self._create_maps()
            self._load_programs()
            self._fill_map_values()
            self._finalize_data_maps()
        except BaseException:
            self.close()
            raise
        self.loaded = True

    def _load_btf(self) -> None:
        btf = self.spec.btf
        if btf is None or not features.has_btf():
            return
        sizes = dict(self.spec.section_sizes)
        offsets = {name: offset for (_section, name), offset in self.spec.object_symbols.items()}
        if ".kconfig" in self._images:
            sizes[".kconfig"] = len(self._images[".kconfig"])
            offsets.update({name: off for name, (off, _) in self._kconfig_layout.items()})
        support = features.btf_support()
        key = (
            hashlib.blake2b(btf.raw_data).digest(),
            tuple(sorted(sizes.items())),
            tuple(sorted(offsets.items())),
            self.spec.hidden_symbols,
            support,
        )
        try:
            raw = _KERNEL_BTF_CACHE.get(key)
            if raw is None:  # the same object loaded again: reuse the fixed-up encoding
                types = fixup_externs(fixup_datasecs(list(btf), sizes, offsets))
                types = fixup_hidden(types, self.spec.hidden_symbols)
                types = [_drop_ksyms_datasec(t) for t in types]
                raw = encode(sanitize(types, support), strings_base=btf.strings)
                if len(_KERNEL_BTF_CACHE) >= 32:
                    _KERNEL_BTF_CACHE.pop(next(iter(_KERNEL_BTF_CACHE)))
                _KERNEL_BTF_CACHE[key] = raw
            self._btf_fd = load_btf(raw, name=f"{self.name} BTF")
        except ObjectError as error:
            # As libbpf: go on without BTF (maps and simple programs still load); a
            # program that needs it will fail, and its error will quote this one.
            self._btf_fd = None
            self._btf_error = str(error)

    def _plan_struct_ops(self) -> None:
        """Match each struct_ops variable to the kernel's struct; tell its programs which
        struct and member they implement."""
        for name, ops in self.spec.struct_ops.items():
            if not ops.autocreate:
                continue
            assert self.spec.btf is not None
            edited = dataclasses.replace(ops, data=bytes(self._struct_ops_data[name]))
            ops_plan = struct_ops.plan(edited, self.spec.btf, self.name)
            self._struct_ops_plans[name] = ops_plan
            for program_name, member in ops_plan.members.items():
                program = self.programs.get(program_name)
                if program is None:
                    raise ObjectError(
                        f"{self.name}: struct_ops {name!r} refers to "
                        f"{program_name!r}, which is not a program"
                    )
                if program.type != ProgType.STRUCT_OPS:
                    raise ObjectError(
                        f"{self.name}: struct_ops {name!r}: program {program_name!r} is in "
                        f'section {program.section!r}, not a SEC("struct_ops") program'
                    )
                program.options.attach_btf_id = ops_plan.kernel.type.id
                program.options.expected_attach_type = member
                program.autoload = True

    def _create_struct_ops_map(self, name: str, ops_plan: StructOpsPlan) -> None:
        map_obj = self.maps[name]
        map_obj.value_size = ops_plan.kernel.wrapper.size
        if map_obj.flags & MapFlags.LINK and not features.has_struct_ops_link():
            raise NotSupportedError(
                f"{self.name}: {ops_plan.what} is in .struct_ops.link, but this kernel has no "
                'struct_ops links (Linux 6.4+); declare it in SEC(".struct_ops")',
                errno.EOPNOTSUPP,
            )
        if self._btf_fd is None:
            raise ObjectError(
                f"{self.name}: {ops_plan.what} needs the object's BTF in the "
                f"kernel, which was not loaded: {self._btf_error}"
            )
        fd = syscall.map_create(
            MapType.STRUCT_OPS,
            4,
            map_obj.value_size,
            1,
            flags=map_obj.flags,
            name=sanitize_name(name),
            btf_vmlinux_value_type_id=ops_plan.kernel.wrapper.id,
            btf_fd=self._btf_fd.fd,
            what=f"{self.name}: {ops_plan.what}",
        )
        map_obj._bind(OwnedFd(fd, f"map {name!r}"))
        map_obj.struct_ops = struct_ops.StructOpsState(ops_plan, self.programs, map_obj, self.links)

    def _create_maps(self) -> None:
        for name, spec in self.spec.maps.items():
            self._create_user_map(name, spec)
        for name, ops_plan in self._struct_ops_plans.items():
            self._create_struct_ops_map(name, ops_plan)
        mmapable = features.has_mmapable_maps()
        for section in self._data_sections():
            self._create_data_map(section, mmapable)

    def _data_sections(self) -> list[str]:
        return [*self.spec.datasecs, *([".kconfig"] if ".kconfig" in self._images else [])]

    def _btf_args(self, key_id: int, value_id: int) -> dict[str, int]:
        if self._btf_fd is None or not value_id:
            return {}
        return {"btf_fd": self._btf_fd.fd, "btf_key_type_id": key_id, "btf_value_type_id": value_id}

    @staticmethod
    def _create_with_btf_fallback(create: Any, btf: dict[str, int]) -> int:
        try:
            return int(create(**btf))
        except BpfError as error:
            if not btf or error.errno not in (errno.EINVAL, errno.ENOTSUP, 524):
                raise
            return int(create())  # a kernel that rejects the map's BTF: create it without

    def _create_user_map(self, name: str, spec: MapSpec) -> None:
        map_obj = self.maps[name]
        what = f"{self.name}: map {name!r}"
        if spec.pinning == PIN_BY_NAME:
            reused = self._reuse_pinned(map_obj, spec)
            if reused is not None:
                map_obj._bind(reused)
                map_obj._pin_path = os.path.join(self.pin_root_path, name)
                map_obj._reused = True  # type: ignore[attr-defined]
                return
        inner_fd: OwnedFd | None = None
        if spec.inner is not None:
            inner = spec.inner
            if inner.map_type in (MapType.RINGBUF, MapType.USER_RINGBUF):
                inner.max_entries = ringbuf_size(inner.max_entries)

            def create_inner(**btf_args: int) -> int:
                return syscall.map_create(
                    inner.map_type,
                    inner.key_size,
                    inner.value_size,
                    inner.max_entries,
                    flags=inner.flags,
                    name=sanitize_name(inner.name),
                    what=f"{what} (inner map)",
                    **btf_args,
                )

            # With BTF, as libbpf: the kernel compares the inner maps' special fields
            # (spin locks, timers, list heads) with this template's.
            inner_btf = self._btf_args(inner.key_type_id, inner.value_type_id)
            inner_fd = OwnedFd(self._create_with_btf_fallback(create_inner, inner_btf))
        btf = (
            {}
            if map_obj.type in FD_VALUE_MAP_TYPES
            else self._btf_args(spec.key_type_id, spec.value_type_id)
        )

        def create(**btf_args: int) -> int:
            flags = map_obj.flags | (MapFlags.NUMA_NODE if spec.numa_node else 0)
            return syscall.map_create(
                map_obj.type,
                map_obj.key_size,
                map_obj.value_size,
                map_obj.max_entries,
                flags=flags,
                name=sanitize_name(name),
                numa_node=spec.numa_node,
                map_extra=spec.map_extra,
                inner_map_fd=inner_fd.fd if inner_fd else 0,
                what=what,
                **btf_args,
            )

        try:
            fd = self._create_with_btf_fallback(create, btf)
        finally:
            if inner_fd is not None:
                inner_fd.close()
        map_obj._bind(OwnedFd(fd, f"map {name!r}"))
        if spec.pinning == PIN_BY_NAME:
            map_obj.pin(os.path.join(self.pin_root_path, name))

    def _reuse_pinned(self, map_obj: Map, spec: MapSpec) -> OwnedFd | None:
        path = os.path.join(self.pin_root_path, spec.name)
        if not os.path.exists(path):
            return None
        fd = OwnedFd(syscall.obj_get(path, what=f"pinned map {path!r}"), f"map {spec.name!r}")
        info = Map.from_fd(fd.dup()).info()
        expected = (
            map_obj.type,
            map_obj.key_size,
            map_obj.value_size,
            map_obj.max_entries,
            map_obj.flags,
        )
        found = (info.type, info.key_size, info.value_size, info.max_entries, info.flags)
        if found != expected:
            fd.close()
            labels = ("type", "key_size", "value_size", "max_entries", "flags")
            diff = ", ".join(
                f"{label} {f} != {e}"
                for label, f, e in zip(labels, found, expected, strict=True)
                if f != e
            )
            raise ObjectError(
                f"{self.name}: map {spec.name!r}: the map pinned at {path!r} is incompatible "
                f"({diff}); remove the pin or change the definition",
                errno.EINVAL,
            )
        return fd

    def _create_data_map(self, section: str, mmapable: bool) -> None:
        map_obj = self.maps[section]
        readonly = section.startswith(".rodata") or section == ".kconfig"
        flags = (MapFlags.MMAPABLE if mmapable else 0) | (MapFlags.RDONLY_PROG if readonly else 0)
        map_obj.flags = flags
        btf_id = 0
        if self.spec.btf is not None:
            btf_id = self.spec.btf.find_id(section, Kind.DATASEC) or 0
        btf = self._btf_args(0, btf_id)

        def create(**btf_args: int) -> int:
            return syscall.map_create(
                MapType.ARRAY,
                4,
                map_obj.value_size,
                1,
                flags=flags,
                name=map_obj.name,
                what=f"{self.name}: map {map_obj.name!r} ({section})",
                **btf_args,
            )

        fd = self._create_with_btf_fallback(create, btf)
        map_obj._bind(OwnedFd(fd, f"map {map_obj.name!r}"))
        image = bytes(self._images[section]).ljust(map_obj.value_size, b"\0")
        if any(image):
            map_obj.update(0, image)
        if section.startswith(".rodata") or section == ".kconfig":
            # Frozen before any program loads: the verifier treats only frozen maps as
            # constant (bpf_snprintf formats, dead-code elimination on .rodata flags).
            map_obj.freeze()

    def _finalize_data_maps(self) -> None:
        """Map every global-data section into memory for ``variables``."""
        for section in self._data_sections():
            map_obj = self.maps[section]
            readonly = section.startswith(".rodata") or section == ".kconfig"
            if map_obj.flags & MapFlags.MMAPABLE:
                prot = mmap.PROT_READ | (0 if readonly else mmap.PROT_WRITE)
                size = -(-map_obj.value_size // mmap.PAGESIZE) * mmap.PAGESIZE
                # A bpf_spin_lock inside refuses mmap: variables then go through lookups.
                with contextlib.suppress(OSError):
                    self._mmaps[section] = mmap.mmap(map_obj.fd, size, mmap.MAP_SHARED, prot)

    # ----------------------------------------------------------------- programs

    def map_fd(self, name: str) -> int:
        return self.maps[name].fd

    def data_map_fd(self, section: str) -> int:
        return self.maps[section].fd

    def extern(self, spec: ExternSpec) -> ExternValue:
        cached = self._extern_cache.get(spec.name)
        if cached is None:
            cached = self._resolve_extern(spec)
            self._extern_cache[spec.name] = cached
        return cached

    def _resolve_extern(self, spec: ExternSpec) -> ExternValue:
        if spec.section == ".kconfig":
            offset, _ = self._kconfig_layout[spec.name]
            return ExternValue("kconfig", offset=offset)
        return self._ksyms.resolve(spec)

    def _core_resolver(self) -> core.CoreResolver:
        if self._resolver is None:
            if self.spec.btf is None:
                raise ObjectError(f"{self.name}: CO-RE relocations without BTF")
            self._resolver = core_resolver_for(self.spec.btf, self.btf_custom_path)
        return self._resolver

    def core_results(self, program: str) -> list[core.CoreResult]:
        """How each CO-RE relocation of a loaded program resolved."""
        return self._core_results.get(program, [])

    def _attach_btf_id(self, program: Program, spec: ProgramSpec) -> int:
        section = spec.section.lstrip("?")
        prefix, _, target = section.partition("/")
        if not target:
            raise LoadError(
                f"{self.name}: program {program.name!r}: section {section!r} needs "
                "a target after '/'",
                errno.EINVAL,
                program=program.name,
            )
        kernel = Btf.load_vmlinux()
        name = _ATTACH_BTF_PREFIX.get(prefix, "") + target
        kind = Kind.TYPEDEF if prefix == "tp_btf" else Kind.FUNC
        found = kernel.find_all(name, kind)
        if not found:
            raise LoadError(
                f"{self.name}: program {program.name!r}: no kernel {kind.name} "
                f"named {name!r} to attach to (section {section!r})",
                errno.ESRCH,
                program=program.name,
            )
        return found[0].id

    def _set_attach_target(self, program: Program) -> None:
        """``set_attach_target``: a kernel function, or a global function of a loaded
        program (freplace) found in that program's BTF."""
        assert program.attach_target is not None
        target, function = program.attach_target
        where = f"{self.name}: program {program.name!r}: attach target {function!r}"
        if target is None:
            found = Btf.load_vmlinux().find_id(function, Kind.FUNC)
            program.options.attach_prog_fd = 0
        else:
            info = target.info()
            if not info.btf_id:
                raise LoadError(f"{where}: program {target.name!r} has no BTF", errno.EINVAL)
            found = fetch_btf(info.btf_id).find_id(function, Kind.FUNC)
            program.options.attach_prog_fd = target.fd
        if not found:
            owner = "the kernel" if target is None else f"program {target.name!r}"
            raise LoadError(f"{where}: {owner} has no function of that name", errno.ESRCH)
        program.options.attach_btf_id = found

    def _load_programs(self) -> None:
        rodata = self.maps.get(".rodata")
        for name, program in self.programs.items():
            if not program.autoload:
                continue
            spec = self.spec.programs[name]
            if program.type == ProgType.UNSPEC:
                raise LoadError(
                    f"{self.name}: program {name!r}: section {spec.section!r} does not say "
                    "which program type it is; set program.type before load()",
                    errno.EINVAL,
                    program=name,
                )
            linked = link_program(self.spec, spec, self)
            if linked.core_relos:
                self._core_results[name] = core.relocate(
                    linked.insns,
                    [(position, relo) for position, _section, relo in linked.core_relos],
                    self._core_resolver(),
                    f"{self.name}: program {name!r}",
                )
            self._linked[name] = linked
            program.insns = linked.code()
            options = program.options
            if self._ksyms.fd_array:
                options.fd_array = list(self._ksyms.fd_array)
            if program.attach_target is not None:
                self._set_attach_target(program)
            elif spec.section_def is not None and spec.section_def.flags & ATTACH_BTF:
                options.attach_btf_id = self._attach_btf_id(program, spec)
            if self._btf_fd is not None and linked.func_info:
                options.prog_btf_fd = self._btf_fd.fd
                options.func_info = b"".join(struct.pack("<II", i, t) for i, t in linked.func_info)
                options.func_info_rec_size = 8
                options.line_info = b"".join(struct.pack("<IIII", *rec) for rec in linked.line_info)
                options.line_info_rec_size = 16
            try:
                program.load()
            except LoadError as error:
                raise self._explain(error, name, linked) from None
            if rodata is not None and rodata.created:
                with contextlib.suppress(BpfError):  # 5.10+; matters only for unused .rodata
                    program.bind_map(rodata)

    def _explain(self, error: LoadError, name: str, linked: LinkedProgram) -> LoadError:
        """Add the C source line of the instruction the verifier stopped at."""
        matches = re.findall(r"^(\d+): \(", error.log, re.MULTILINE)
        source = ""
        if matches and linked.line_info and self.spec.btf is not None:
            insn = int(matches[-1])
            lines = [rec for rec in linked.line_info if rec[0] <= insn]
            if lines:
                _, file_off, line_off, line_col = lines[-1]
                btf = self.spec.btf
                info = LineInfo(
                    0,
                    file_off,
                    line_off,
                    line_col,
                    btf.string_at(file_off),
                    btf.string_at(line_off) if line_off else "",
                )
                source = f"\nfailing instruction {insn} is at {info}"
        message = f"{self.name}: {error.message}{source}"
        if str(core.POISON_HELPER) in error.log:
            poisoned = [r for r in self._core_results.get(name, []) if r.poisoned]
            insn = int(matches[-1]) if matches else -1
            culprit = next(
                (r for r in poisoned if r.insn == insn), poisoned[0] if poisoned else None
            )
            if culprit is not None:
                message += (
                    f"\nCO-RE relocation failed at instruction {culprit.insn}: "
                    f"{culprit.kind.name} of {culprit.access} ({culprit.reason})"
                )
        if self._btf_error:
            message += f"\n(the object's BTF was not loaded: {self._btf_error})"
        return LoadError(message, error.errno, program=name, log=error.log)

    def _fill_map_values(self) -> None:
        """Initial ``values`` of prog arrays and map-in-maps (needs loaded programs)."""
        for name, spec in self.spec.maps.items():
            if not spec.init_values or getattr(self.maps[name], "_reused", False):
                continue
            for slot, symbol in spec.init_values.items():
                target: Any = self.programs.get(symbol) or self.maps.get(symbol)
                if target is None:
                    raise ObjectError(
                        f"{self.name}: map {name!r} slot {slot}: {symbol!r} is "
                        "neither a program nor a map of this object"
                    )
                if isinstance(target, Program) and not target.loaded:
                    continue
                self.maps[name].update(slot, target.fileno())

    # ----------------------------------------------------------------- lifetime

    def attach(self) -> list[Link]:
        """Attach every loaded program whose section says where; others are skipped."""
        return list(self.attach_named().values())

    def attach_named(self, skip: Collection[str] = ()) -> dict[str, Link]:
        """``attach()`` keyed by program name (and struct_ops map name), leaving out the
        names in ``skip`` (already attached): what skeletons build on."""
        if not self.loaded:
            raise BpfError(f"object {self.name!r} is not loaded", errno.EBADF)
        attached: dict[str, Link] = {}
        for name, program in self.programs.items():
            if name in skip:
                continue
            if program.loaded and program.type != ProgType.STRUCT_OPS:
                link = attach_from_section(program)
                if link is not None:
                    attached[name] = link
        self.links.extend(attached.values())
        for name in self._struct_ops_plans:
            if name not in skip:
                attached[name] = self.maps[name].attach_struct_ops()  # joins self.links itself
        return attached

    def close(self) -> None:
        for link in self.links:
            link.close()
        self.links = []
        for memory in self._mmaps.values():
            # A ctypes view (a skeleton's) still exported: the mapping goes with the last one.
            with contextlib.suppress(BufferError):
                memory.close()
        self._mmaps.clear()
        for program in self.programs.values():
            program.close()
        for map_obj in self.maps.values():
            map_obj.close()
        if self._btf_fd is not None:
            self._btf_fd.close()
            self._btf_fd = None
        self._ksyms.close()
        self.loaded = False

    def __repr__(self) -> str:
        state = "loaded" if self.loaded else "opened"
        return (
            f"<BpfObject {self.name!r} {state}: programs {list(self.programs)}, "
            f"maps {list(self.maps)}>"
        )


def ringbuf_size(requested: int) -> int:
    """Ring buffers must be a power-of-two number of pages; round up (as libbpf does)."""
    size = mmap.PAGESIZE
    while size < requested:
        size *= 2
    return size


def core_resolver_for(local: Btf, btf_custom_path: str | None = None) -> core.CoreResolver:
    """CO-RE targets: a custom BTF if given, else vmlinux then (lazily) module BTF."""
    if btf_custom_path is not None:
        return core.CoreResolver(local, [Btf.from_file(btf_custom_path)])

    def modules() -> list[Btf]:
        return [Btf.load_module(name) for name in Btf.module_names()]

    return core.CoreResolver(local, [Btf.load_vmlinux()], modules)


def inspect_core(
    source: str | os.PathLike[str] | bytes, target: Btf | str | None = None
) -> dict[str, list[core.CoreResult]]:
    """Resolve an object's CO-RE relocations against a BTF without loading anything.

    ``target`` is a ``Btf``, a path to raw BTF or an ELF with ``.BTF``, or None for the
    running kernel. Needs no privileges: a way to check an object against a kernel's
    BTF before deploying it.
    """
    obj = BpfObject.open(source)
    btf = obj.spec.btf
    if btf is None:
        return {}
    if isinstance(target, Btf):
        resolver = core.CoreResolver(btf, [target])
    else:
        resolver = core_resolver_for(btf, target)
    results: dict[str, list[core.CoreResult]] = {}
    placeholder = _PlaceholderResolver(obj)
    for name, spec in obj.spec.programs.items():
        linked = link_program(obj.spec, spec, placeholder)
        relos = [(position, relo) for position, _section, relo in linked.core_relos]
        results[name] = core.relocate(
            linked.insns, relos, resolver, f"{obj.name}: program {name!r}"
        )
    return results


class _PlaceholderResolver:
    """Map fds and externs for linking without a kernel (inspection only)."""

    def __init__(self, obj: BpfObject) -> None:
        self._obj = obj

    def map_fd(self, name: str) -> int:
        return 0

    def data_map_fd(self, section: str) -> int:
        return 0

    def extern(self, spec: ExternSpec) -> ExternValue:
        if spec.section == ".kconfig":
            return ExternValue("kconfig", offset=self._obj._kconfig_layout[spec.name][0])
        return ExternValue("kfunc" if spec.is_func else "missing")


class _MapWindow:
    """Variable access to a global-data map without mmap (kernels before 5.5)."""

    def __init__(self, map_obj: Map) -> None:
        self._map = map_obj

    def __getitem__(self, item: slice) -> bytes:
        return bytes(self._map.lookup(0))[item]

    def __setitem__(self, item: slice, data: bytes) -> None:
        current = bytearray(self._map.lookup(0))
        current[item] = data
        self._map.update(0, bytes(current))


def _drop_ksyms_datasec(t: Type) -> Type:
    """The kernel has no section for ksyms: keep the id, describe nothing."""
    if t.kind == Kind.DATASEC and t.name == ".ksyms":
        return Type(t.id, Kind.STRUCT, "", size=0)
    return t
