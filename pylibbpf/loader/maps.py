"""The object's maps: declared at open (attributes only, editable until load), created at
load — pin reuse, inner-map templates, struct_ops maps, global-data maps with their
initial images — all through ``Map.create_in_kernel``, the one path that creates maps.

Whatever depends on the running machine is settled here, at load, never at open: ring
buffer sizes (whole pages, a power of two) and perf event arrays' default size (one slot
per possible CPU).
"""

from __future__ import annotations

import errno
import mmap
import os
from collections.abc import Mapping

from ..btf import Kind
from ..errors import BpfError, NotSupportedError, ObjectError
from ..logs import DEBUG, module_logger
from ..maps import Map, MapBtf, sanitize_name
from ..spec.objspec import ARENA_SECTION, PIN_BY_NAME, MapSpec, ObjectSpec, readonly_section
from ..syscall import features, system
from ..syscall.fd import OwnedFd
from ..uapi_values import FD_VALUE_MAP_TYPES, OBJ_NAME_LEN, MapFlags, MapType, value_name
from .kernel import KernelBtf

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:
    from ..links.base import Link
    from ..program import Program
    from ..spec.struct_ops import StructOpsPlan

logger = module_logger(__name__)


def internal_map_name(object_name: str, section: str) -> str:
    """libbpf's kernel name for a global-data map (``internal_map_name()``), the name
    ``bpftool map`` shows: the section name in a slot of at least 7 characters, after as
    much of the object name as still fits in 15 (``my_objec.bss``, ``my_obje.kconfig``);
    a section with a second dot (``.data.foo``, ``.rodata.str1.1``) alone."""
    suffix = min(max(7, len(section)), OBJ_NAME_LEN - 1)
    prefix = 0 if "." in section[1:] else min(OBJ_NAME_LEN - 1 - suffix, len(object_name))
    return sanitize_name(object_name[:prefix] + section[:suffix])


def ringbuf_size(requested: int) -> int:
    """Ring buffers must be a power-of-two number of pages; round up (as libbpf does).
    0 stays 0, as in libbpf: a ring buffer nobody sized fails to be created (EINVAL)
    instead of silently getting one page."""
    if requested == 0:
        return 0
    size = mmap.PAGESIZE
    while size < requested:
        size *= 2
    return size


def btf_type_codec(spec: ObjectSpec, type_id: int, size: int, map_type: int) -> Any:
    """How a map's keys or values read: int for integers, a ctypes type for records,
    None (bytes) otherwise."""
    btf = spec.btf
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


def arena_base(spec: ObjectSpec, maps: Mapping[str, Map]) -> int:
    """Where in the ARENA map the ``__arena`` globals start (0 if the object has none):
    known from its size before it exists, so programs are relocated first."""
    name = spec.arena_map
    if name is None or spec.arena is None:
        return 0
    from ..arena import globals_offset  # (arenas: imported by the objects that have one)

    return globals_offset(maps[name].max_entries, spec.arena.size)


def declare_maps(spec: ObjectSpec, kconfig_size: int) -> dict[str, Map]:
    """The object's maps as ``Map``s not yet created: user maps (typed from BTF), global
    data sections, ``.kconfig`` (``kconfig_size`` bytes, 0 if none) and struct_ops maps."""
    maps: dict[str, Map] = {}
    for map_spec in spec.maps.values():
        maps[map_spec.name] = Map(
            None,
            name=map_spec.name,
            map_type=map_spec.map_type,
            key_size=map_spec.key_size,
            value_size=map_spec.value_size,
            max_entries=map_spec.max_entries,
            flags=map_spec.flags,
            key_type=btf_type_codec(
                spec, map_spec.key_type_id, map_spec.key_size, map_spec.map_type
            ),
            value_type=btf_type_codec(
                spec, map_spec.value_type_id, map_spec.value_size, map_spec.map_type
            ),
            map_extra=map_spec.map_extra,
        )
    sections = {name: max(section.size, 1) for name, section in spec.datasecs.items()}
    if kconfig_size:
        sections[".kconfig"] = kconfig_size
    for section, size in sections.items():
        maps[section] = Map(
            None,
            name=internal_map_name(spec.name, section),
            map_type=MapType.ARRAY,
            key_size=4,
            value_size=size,
            max_entries=1,
        )
    for ops in spec.struct_ops.values():
        maps[ops.name] = Map(
            None,
            name=ops.name,
            map_type=MapType.STRUCT_OPS,
            key_size=4,
            value_size=0,
            max_entries=1,
            flags=MapFlags.LINK if ops.link else 0,
        )
    return maps


def _settle_size(map_obj: Map) -> None:
    """The machine-dependent sizes, decided at load."""
    if map_obj._type == MapType.PERF_EVENT_ARRAY and not map_obj.max_entries:
        map_obj.max_entries = system.num_possible_cpus()  # as libbpf: one slot per CPU
    if map_obj._type in (MapType.RINGBUF, MapType.USER_RINGBUF):
        map_obj.max_entries = ringbuf_size(map_obj.max_entries)


def _log_created(what: str, map_obj: Map) -> None:
    if not logger.isEnabledFor(DEBUG):
        return
    logger.debug(
        "%s: created %s map (key %d, value %d bytes, max_entries %d, flags %#x), fd %d",
        what,
        value_name(MapType, map_obj._type) or map_obj._type,
        map_obj.key_size,
        map_obj.value_size,
        map_obj.max_entries,
        map_obj.flags,
        map_obj.fd,
    )


class MapCreator:
    """Creates one object's maps during one ``load()`` and remembers what it did: which
    pinned maps it reused and which pins it made (a failed load removes those)."""

    def __init__(
        self, spec: ObjectSpec, maps: dict[str, Map], pin_root_path: str, kernel: KernelBtf
    ) -> None:
        self.spec = spec
        self.kernel = kernel
        self.name = spec.name
        self.maps = maps
        self.pin_root_path = pin_root_path
        self.btf_fd: OwnedFd | None = None  # the object's BTF in the kernel, once uploaded
        self.btf_error = ""  # why it is not, if it is not
        self.reused: set[str] = set()
        self.pinned: list[str] = []
        self.made_pin_root = False

    def _btf(self, key_id: int, value_id: int) -> MapBtf | None:
        if self.btf_fd is None or not value_id:
            return None
        return MapBtf(self.btf_fd.fd, key_id, value_id)

    def create_all(
        self,
        images: Mapping[str, bytearray],
        plans: Mapping[str, StructOpsPlan],
        programs: Mapping[str, Program],
        links: list[Link],
    ) -> None:
        """User maps, then struct_ops maps, then global-data maps (with their images)."""
        self._check_arena_room()
        for name, spec in self.spec.maps.items():
            self._create_user_map(name, spec)
        self._map_arena(images.get(ARENA_SECTION))
        for name, ops_plan in plans.items():
            self._create_struct_ops_map(name, ops_plan, programs, links)
        mmapable = features.has_mmapable_maps()
        for section, image in images.items():
            if section != ARENA_SECTION:
                self._create_data_map(section, image, mmapable)

    def _check_arena_room(self) -> None:
        name = self.spec.arena_map
        if name is None or self.spec.arena is None:
            return
        from ..arena import arena_size, globals_offset

        size = arena_size(self.maps[name].max_entries)
        if globals_offset(self.maps[name].max_entries, self.spec.arena.size) < 0:
            raise ObjectError(
                f"{self.name}: map {name!r}: {size} bytes of arena cannot hold the "
                f"{self.spec.arena.size} bytes of __arena globals ({ARENA_SECTION})",
                errno.E2BIG,
            )

    def _map_arena(self, image: bytearray | None) -> None:
        """Map the arena now: programs that use it load only once its address is fixed.
        A new arena gets the ``__arena`` globals' initial image at its end (libbpf 1.7)."""
        name = self.spec.arena_map
        if name is None:
            return
        map_obj = self.maps[name]
        arena = map_obj.arena()
        if image is not None and any(image) and name not in self.reused:
            from ..arena import globals_offset

            offset = globals_offset(map_obj.max_entries, len(image))
            arena.memory[offset : offset + len(image)] = image

    def _create_user_map(self, name: str, spec: MapSpec) -> None:
        map_obj = self.maps[name]
        what = f"{self.name}: map {name!r}"
        _settle_size(map_obj)
        path = os.path.join(self.pin_root_path, name)
        if spec.pinning == PIN_BY_NAME:
            reused = self._reuse_pinned(map_obj, path)
            if reused is not None:
                map_obj.adopt(reused, pin_path=path)
                self.reused.add(name)
                logger.info("%s: reused pinned map at %r", what, path)
                return
        inner: Map | None = None
        if spec.inner is not None:
            inner_spec = spec.inner
            inner = Map(
                None,
                name=inner_spec.name,
                map_type=inner_spec.map_type,
                key_size=inner_spec.key_size,
                value_size=inner_spec.value_size,
                max_entries=inner_spec.max_entries,
                flags=inner_spec.flags,
            )
            _settle_size(inner)
            # With BTF, as libbpf: the kernel compares the inner maps' special fields
            # (spin locks, timers, list heads) with this template's.
            inner.create_in_kernel(
                btf=self._btf(inner_spec.key_type_id, inner_spec.value_type_id),
                btf_fallback=True,
                what=f"{what} (inner map)",
            )
        btf = (
            None
            if map_obj._type in FD_VALUE_MAP_TYPES
            else self._btf(spec.key_type_id, spec.value_type_id)
        )
        hint = ""
        if map_obj._type in (MapType.RINGBUF, MapType.USER_RINGBUF) and not map_obj.max_entries:
            hint = "; the ring buffer has no size: set max_entries before load()"
        try:
            map_obj.create_in_kernel(
                inner_map_fd=inner.fd if inner is not None else 0,
                numa_node=spec.numa_node or None,
                map_extra=map_obj.map_extra,
                btf=btf,
                btf_fallback=True,
                what=what + hint,
            )
        finally:
            if inner is not None:
                inner.close()
        _log_created(what, map_obj)
        if spec.pinning == PIN_BY_NAME:
            if not self.pinned and not os.path.isdir(self.pin_root_path):
                self.made_pin_root = True  # Map.pin makes it, as libbpf does
            map_obj.pin(path)
            self.pinned.append(path)
            logger.info("%s: pinned at %r", what, path)

    def _reuse_pinned(self, map_obj: Map, path: str) -> OwnedFd | None:
        if not os.path.exists(path):
            return None
        with Map.from_pinned(path) as pinned:
            info = pinned.info()
            fd = OwnedFd(os.dup(pinned.fd), f"map {map_obj.name!r}")
        expected = (
            map_obj._type,
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
                f"{self.name}: map {map_obj.name!r}: the map pinned at {path!r} is "
                f"incompatible ({diff}); remove the pin or change the definition",
                errno.EINVAL,
            )
        return fd

    def _create_struct_ops_map(
        self,
        name: str,
        ops_plan: StructOpsPlan,
        programs: Mapping[str, Program],
        links: list[Link],
    ) -> None:
        map_obj = self.maps[name]
        map_obj.value_size = ops_plan.kernel.wrapper.size
        if map_obj.flags & MapFlags.LINK and not features.has_struct_ops_link():
            raise NotSupportedError(
                f"{self.name}: {ops_plan.what} is in .struct_ops.link, but this kernel has no "
                'struct_ops links (Linux 6.4+); declare it in SEC(".struct_ops")',
                errno.EOPNOTSUPP,
            )
        if self.btf_fd is None:
            raise ObjectError(
                f"{self.name}: {ops_plan.what} needs the object's BTF in the "
                f"kernel, which was not loaded: {self.btf_error}"
            )
        what = f"{self.name}: {ops_plan.what}"
        module = ops_plan.kernel.module  # a module's type: named with its BTF fd (6.9+)
        map_obj.create_in_kernel(
            btf=MapBtf(self.btf_fd.fd, 0, 0),
            btf_vmlinux_value_type_id=ops_plan.kernel.wrapper.id,
            value_type_btf_obj_fd=self.kernel.module_fd(module) if module else 0,
            what=what,
        )
        _log_created(what, map_obj)
        from ..struct_ops import StructOpsState  # (struct_ops: for the objects that have it)

        map_obj.struct_ops = StructOpsState(ops_plan, programs, links)

    def _create_data_map(self, section: str, image: bytearray, mmapable: bool) -> None:
        map_obj = self.maps[section]
        readonly = readonly_section(section)
        map_obj.flags = (MapFlags.MMAPABLE if mmapable else 0) | (
            MapFlags.RDONLY_PROG if readonly else 0
        )
        btf_id = 0
        if self.spec.btf is not None:
            btf_id = self.spec.btf.find_id(section, Kind.DATASEC) or 0
        what = f"{self.name}: map {map_obj.name!r} ({section})"
        map_obj.create_in_kernel(btf=self._btf(0, btf_id), btf_fallback=True, what=what)
        _log_created(what, map_obj)
        data = bytes(image).ljust(map_obj.value_size, b"\0")
        if any(data):
            map_obj.update(0, data)
        if readonly:
            # Frozen before any program loads: the verifier treats only frozen maps as
            # constant (bpf_snprintf formats, dead-code elimination on .rodata flags).
            map_obj.freeze()

    def fill_map_slots(self) -> None:
        """Initial ``values`` of map-in-maps: the inner maps' fds, right after the maps
        are created (libbpf's ``init_map_in_map_slots``)."""
        for name, spec in self.spec.maps.items():
            if spec.init_values and name not in self.reused and spec.map_type != MapType.PROG_ARRAY:
                for slot, symbol in spec.init_values.items():
                    target = self.maps.get(symbol)
                    if target is None:
                        raise ObjectError(
                            f"{self.name}: map {name!r} slot {slot}: {symbol!r} is not a "
                            "map of this object",
                            errno.EINVAL,
                        )
                    self.maps[name].update(slot, target.fileno())

    def fill_prog_arrays(self, programs: Mapping[str, Program]) -> None:
        """Initial ``values`` of prog arrays, once programs are loaded (libbpf's
        ``init_prog_array_slots``): a slot naming a program that was not loaded fails the
        load with EBADF, as with libbpf (it would otherwise stay empty without a word)."""
        for name, spec in self.spec.maps.items():
            if not spec.init_values or name in self.reused:
                continue
            if spec.map_type != MapType.PROG_ARRAY:
                continue
            for slot, symbol in spec.init_values.items():
                program = programs.get(symbol)
                if program is None:
                    raise ObjectError(
                        f"{self.name}: map {name!r} slot {slot}: {symbol!r} is not a "
                        "program of this object",
                        errno.EINVAL,
                    )
                if not program.loaded:
                    raise BpfError(
                        f"{self.name}: map {name!r}: cannot initialize slot [{slot}] to "
                        f"program {symbol!r}, which is not loaded (autoload is off); load "
                        "it, or leave it out of the map's values",
                        errno.EBADF,
                    )
                self.maps[name].update(slot, program.fileno())

    def undo(self) -> None:
        """Remove the pins this load made, and the pin root if it made that (after a
        failure); the maps themselves close with the object."""
        for path in reversed(self.pinned):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as error:
                raise BpfError(
                    f"{self.name}: cannot remove pin {path!r}: {error.strerror}", error.errno
                ) from error
        self.pinned.clear()
        if self.made_pin_root:
            try:  # noqa: SIM105 (contextlib is kept off the load path)
                os.rmdir(self.pin_root_path)
            except OSError:
                pass  # not empty: someone else pinned there
            self.made_pin_root = False
