"""Global variables: each section's memory (the initial image before load, the map after)
and the ``Variable`` handles over it.

Before its map exists (``prepare()``, the first half of ``load()``) a section is a
``bytearray``: edits there become the map's initial value (``.rodata`` edits specialise
the program, as libbpf's skeletons do). Then it is the mmapped map (or, where mmap is
refused, a lookup/update window), so reads see what the programs wrote. ``.rodata*`` and
``.kconfig`` are frozen once created: only their initial image is editable
(``spec.objspec.readonly_section``).
"""

from __future__ import annotations

import errno
import mmap

from ..btf import Btf, Kind
from ..btf.types import LINKAGE_STATIC
from ..errors import BpfError, ObjectError
from ..maps import Map
from ..spec.codec import CtypesCodec, IntCodec
from ..spec.objspec import ARENA_SECTION, ObjectSpec, readonly_section
from ..uapi_values import MapFlags

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any


class SectionMemory:
    """Where each global-data section's bytes are: images before load, maps after."""

    def __init__(self, object_name: str, maps: dict[str, Map]) -> None:
        self.object_name = object_name
        self.images: dict[str, bytearray] = {}
        self.mmaps: dict[str, mmap.mmap | memoryview] = {}
        self._maps = maps  # the object's own dict: no reference back to the object
        self.arena_map: str | None = None  # whose memory ARENA_SECTION is after load
        self.mapped = False  # the maps exist (prepared): sections are the maps now
        self.closed = False

    def section(self, section: str) -> Any:
        """A section's bytes: the initial image before load (a bytearray), the mmapped map
        after (writable unless read-only), or a lookup/update window without mmap."""
        if self.closed:
            raise BpfError(
                f"object {self.object_name!r} is closed: its {section} is gone", errno.EBADF
            )
        if self.mapped and section in self.mmaps:
            return self.mmaps[section]
        if self.mapped:
            return _MapWindow(self._maps[section])
        return self.images[section]

    def check_writable(self, section: str, what: str) -> None:
        """.rodata and .kconfig are frozen at load: only their initial image is editable."""
        if self.mapped and readonly_section(section):
            raise BpfError(
                f"{what} is in {section}, which is read-only after load (set it before "
                "load() to specialise the program)",
                errno.EPERM,
            )

    def map_sections(self) -> None:
        """Map every global-data section into memory (after its map is created)."""
        for section in self.images:
            if section == ARENA_SECTION and self.arena_map is not None:
                from ..arena import globals_offset  # (arenas: for the objects with one)

                arena = self._maps[self.arena_map]
                start = globals_offset(arena.max_entries, len(self.images[section]))
                self.mmaps[section] = arena.mmap()[start : start + len(self.images[section])]
                continue
            map_obj = self._maps[section]
            if map_obj.flags & MapFlags.MMAPABLE:
                prot = mmap.PROT_READ | (0 if readonly_section(section) else mmap.PROT_WRITE)
                size = -(-map_obj.value_size // mmap.PAGESIZE) * mmap.PAGESIZE
                # A bpf_spin_lock inside refuses mmap: variables then go through lookups.
                try:  # noqa: SIM105 (contextlib is kept off the load path)
                    self.mmaps[section] = mmap.mmap(map_obj.fd, size, mmap.MAP_SHARED, prot)
                except OSError:
                    pass

    def unmap(self) -> None:
        """Drop the mappings (a skeleton's ctypes view keeps its own until released)."""
        for memory in self.mmaps.values():
            # A ctypes view (a skeleton's) still exported: the mapping goes with the last one.
            try:
                if isinstance(memory, memoryview):
                    memory.release()  # a window on an arena: the Arena owns the pages
                else:
                    memory.close()
            except BufferError:
                pass
        self.mmaps.clear()


class _MapWindow:
    """Variable access to a global-data map without mmap (kernels before 5.5)."""

    def __init__(self, map_obj: Map) -> None:
        self._map = map_obj

    def __len__(self) -> int:
        return self._map.value_size

    def __getitem__(self, item: slice) -> bytes:
        return bytes(self._map.lookup(0))[item]

    def __setitem__(self, item: slice, data: bytes) -> None:
        current = bytearray(self._map.lookup(0))
        current[item] = data
        self._map.update(0, bytes(current))


def variable_codec(btf: Btf | None, type_id: int, name: str) -> Any:
    """How a variable's bytes read: an ``IntCodec`` for integers and enums, ``"chars"``
    for char arrays (bytes up to the NUL), a ``CtypesCodec`` for records, None for bytes."""
    if btf is None:
        return None
    t = btf.resolve(type_id)
    if t.kind == Kind.PTR:  # an address: into an arena, to follow with Arena.view()
        return IntCodec(8, name)
    if t.kind in (Kind.INT, Kind.ENUM, Kind.ENUM64) and t.size in (1, 2, 4, 8):
        if t.kind == Kind.INT and t.encoding & 4 and t.size == 1:
            return IntCodec(1, name)
        return IntCodec(t.size, name, signed=t.signed)
    if (
        t.kind == Kind.ARRAY
        and btf.resolve(t.type).kind == Kind.INT
        and btf.resolve(t.type).size == 1
    ):
        return "chars"
    if t.kind in (Kind.STRUCT, Kind.UNION, Kind.ARRAY):
        try:
            return CtypesCodec(btf.ctype(t.id), name)
        except ObjectError:
            return None
    return None


class Variable:
    """A global variable: the initial image before load, the live map memory after."""

    def __init__(
        self,
        memory: SectionMemory,
        btf: Btf | None,
        name: str,
        section: str,
        offset: int,
        size: int,
        type_id: int,
        static: bool = False,
    ) -> None:
        self._memory = memory
        self._btf = btf
        self._codec: Any = None
        self._codec_known = False
        self.name = name
        self.section = section
        self.offset = offset
        self.size = size
        self.type_id = type_id
        self.static = static  # a static variable: its name need not be unique

    def _codec_for(self) -> Any:
        if not self._codec_known:
            self._codec = variable_codec(self._btf, self.type_id, self.name)
            self._codec_known = True
        codec = self._codec
        if codec is not None and not isinstance(codec, str) and codec.size != self.size:
            raise ObjectError(
                f"variable {self.name!r} in {self.section}: its type is {codec.size} bytes "
                f"but the section gives it {self.size} (read or write .raw)",
                errno.EINVAL,
            )
        return codec

    @property
    def raw(self) -> bytes:
        """The variable's bytes."""
        buffer = self._memory.section(self.section)
        return bytes(buffer[self.offset : self.offset + self.size])

    @raw.setter
    def raw(self, data: bytes) -> None:
        if len(data) != self.size:
            raise BpfError(
                f"variable {self.name!r} is {self.size} bytes, got {len(data)}", errno.EINVAL
            )
        self._memory.check_writable(self.section, f"variable {self.name!r}")
        buffer = self._memory.section(self.section)
        buffer[self.offset : self.offset + self.size] = data

    @property
    def value(self) -> Any:
        """ints as ``int``, char arrays as ``bytes`` (up to the NUL), others as ctypes."""
        codec = self._codec_for()
        raw = self.raw
        if codec is None:
            return raw
        if isinstance(codec, str):
            return raw.split(b"\0", 1)[0]
        return codec.decode(raw)

    @value.setter
    def value(self, value: Any) -> None:
        codec = self._codec_for()
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


def collect_variables(
    spec: ObjectSpec, memory: SectionMemory, kconfig_layout: dict[str, tuple[int, int]]
) -> list[Variable]:
    """Every variable with BTF in the data sections and ``.kconfig``, in section order.

    A linked object may hold several static variables of one name (one per input object),
    even in one section: each keeps the offset its DATASEC entry gives (clang's, or the
    static linker's), while globals, whose names are unique, take their ELF symbol's."""
    btf = spec.btf
    variables: list[Variable] = []
    if btf is None:
        return variables
    sizes = {name: section.size for name, section in spec.datasecs.items()}
    sections = [*spec.datasecs, ".kconfig"]
    if spec.arena is not None:
        sizes[ARENA_SECTION] = spec.arena.size
        sections.append(ARENA_SECTION)
    symbols = spec.object_symbols
    for section in sections:
        for datasec in btf.find_all(section, Kind.DATASEC):
            for entry in datasec.vars:
                var = btf[entry.type]
                if var.kind != Kind.VAR:
                    continue
                static = var.linkage == LINKAGE_STATIC
                if section == ".kconfig":
                    offset, size = kconfig_layout.get(var.name, (-1, 0))
                    if offset < 0:
                        continue
                else:
                    offset = entry.offset
                    if not static:
                        offset = symbols.get((section, var.name), offset)
                    size = entry.size
                    if offset + size > sizes.get(section, 0):
                        continue
                variables.append(
                    Variable(memory, btf, var.name, section, offset, size, var.type, static)
                )
    return variables


def variables_by_name(variables: list[Variable]) -> dict[str, Variable]:
    """``BpfObject.variables``: each name once, a global before any static of that name
    (statics of one name from several linked objects: the first)."""
    by_name: dict[str, Variable] = {}
    for variable in sorted(variables, key=lambda v: v.static):  # stable: globals first
        by_name.setdefault(variable.name, variable)
    return by_name
