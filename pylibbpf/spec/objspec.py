"""What an object says, as data: the specs ``spec.elf`` reads and the loader consumes.

Everything here describes the object alone — nothing depends on the kernel it will be
loaded into — so a spec is the same on every machine and can be built without privileges.
"""

from __future__ import annotations

from ..btf import Btf
from ..btf.ext import BtfExt
from ..records import dataclass, field
from ..uapi_values import MapType
from .insn import INSN_SIZE
from .sections import SectionDef

PIN_NONE = 0
PIN_BY_NAME = 1
ARENA_SECTION = ".addr_space.1"  # clang's section for __arena globals (address space 1)


def readonly_section(section: str) -> bool:
    """``.rodata*`` and ``.kconfig``: frozen before programs load (the verifier then treats
    their contents as constants), so only the initial image can be edited — libbpf's rule."""
    return section.startswith(".rodata") or section == ".kconfig"


@dataclass(frozen=True)
class Symbol:
    """An ELF symbol, decoded."""

    name: str
    value: int
    size: int
    section_index: int  # 0 for undefined (externs)
    section: str
    bind: str  # STB_GLOBAL, STB_LOCAL, STB_WEAK
    type: str  # STT_FUNC, STT_OBJECT, STT_SECTION, STT_NOTYPE
    hidden: bool = False  # STV_HIDDEN or STV_INTERNAL visibility

    @property
    def weak(self) -> bool:
        """Whether the symbol is weak (``__weak``)."""
        return self.bind == "STB_WEAK"


@dataclass(frozen=True)
class Relocation:
    """A relocation in a code, ``.maps`` or ``.struct_ops`` section."""

    offset: int  # byte offset in the section the relocation applies to
    symbol: Symbol
    type: int


@dataclass
class ProgramSpec:
    """A function in an executable section: an entry point, or a ``.text`` sub-program."""

    name: str
    section: str
    section_index: int
    insn_offset: int  # index of its first instruction within its section
    insns: bytes
    is_subprog: bool
    is_global: bool
    relocations: dict[int, Relocation] = field(default_factory=dict)  # by insn index
    section_def: SectionDef | None = None

    @property
    def insn_count(self) -> int:
        """Number of instructions."""
        return len(self.insns) // INSN_SIZE


@dataclass
class DataSectionSpec:
    """A global-data section (``.data``, ``.rodata``, ``.bss``, custom ``.data.*``…)."""

    name: str
    index: int
    data: bytes
    readonly: bool
    btf_id: int = 0  # the DATASEC type, if the object has BTF for it

    @property
    def size(self) -> int:
        """The section's size in bytes."""
        return len(self.data)


@dataclass
class MapSpec:
    """A map as its BTF definition in ``.maps`` declares it."""

    name: str
    map_type: int
    key_size: int = 0
    value_size: int = 0
    max_entries: int = 0
    flags: int = 0
    numa_node: int = 0
    map_extra: int = 0
    pinning: int = PIN_NONE
    key_type_id: int = 0
    value_type_id: int = 0
    inner: MapSpec | None = None
    init_values: dict[int, str] = field(default_factory=dict)  # slot -> symbol name
    offset: int = 0  # of its variable in .maps


@dataclass(frozen=True)
class ExternSpec:
    """An ``extern`` the loader resolves: a ``__kconfig`` value or a ``__ksym``."""

    name: str
    section: str  # ".kconfig" or ".ksyms"
    type_id: int  # the VAR's or FUNC's BTF id in the object
    is_func: bool
    weak: bool


@dataclass
class StructOpsSpec:
    """A ``SEC(".struct_ops[.link]")`` variable: a kernel ops struct filled in by the object."""

    name: str  # the variable's name: the map's name
    section: str
    type_id: int  # its local struct type
    data: bytes  # the variable's bytes (plain members, e.g. .name)
    functions: dict[int, str]  # byte offset of a function-pointer member -> program name
    link: bool  # .struct_ops.link: registered through a bpf_link

    @property
    def autocreate(self) -> bool:
        """False for ``SEC("?.struct_ops")``: not created unless asked."""
        return not self.section.startswith("?")


@dataclass
class ObjectSpec:
    """Everything a BPF object says: its programs, maps, data sections, externs and BTF."""

    name: str
    license: str
    kern_version: int
    byteorder: str
    btf: Btf | None
    btf_ext: BtfExt | None
    programs: dict[str, ProgramSpec]  # entry points, ELF order
    subprograms: dict[tuple[int, int], ProgramSpec]  # (section index, insn offset)
    maps: dict[str, MapSpec]
    datasecs: dict[str, DataSectionSpec]
    externs: dict[str, ExternSpec]
    sections: dict[int, str]
    section_sizes: dict[str, int] = field(default_factory=dict)
    # Global variables: (section, name) -> offset, from their ELF symbols (statics' names
    # need not be unique in a linked object: their offsets are in BTF).
    object_symbols: dict[tuple[str, str], int] = field(default_factory=dict)
    struct_ops: dict[str, StructOpsSpec] = field(default_factory=dict)
    # Global functions and variables with hidden visibility: static as far as BTF goes.
    hidden_symbols: frozenset[str] = frozenset()
    # The __arena globals' initial image (.addr_space.1), placed in the arena map at load.
    arena: DataSectionSpec | None = None

    @property
    def arena_map(self) -> str | None:
        """The name of the object's ARENA map (at most one), if it has one."""
        return next((m.name for m in self.maps.values() if m.map_type == MapType.ARENA), None)

    def subprogram_at(self, section_index: int, insn: int) -> ProgramSpec | None:
        """The function starting at instruction ``insn`` of a code section, if any."""
        return self.subprograms.get((section_index, insn))


def object_name(path: str) -> str:
    """libbpf's object name: the file name up to its first dot."""
    base = path.rsplit("/", 1)[-1]
    return base.split(".", 1)[0] or base
