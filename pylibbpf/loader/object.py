"""``BpfObject``: a clang-built BPF object from open to close.

``open()`` parses (no syscalls, no privileges, nothing read from /proc or /sys). Between
open and ``load()`` the caller may adjust programs (``autoload``, type) and maps
(``max_entries``, flags) and set global variables in the initial image. ``load()`` then
does everything that asks the kernel — kconfig values and ksyms, the object's BTF,
struct_ops layouts, maps, CO-RE and programs — and ``close()`` releases all of it.
``prepare()`` is the first half of ``load()`` on its own: maps created and programs
relocated but not loaded, for callers that inspect or adjust them in between.

``BpfObject`` coordinates; the work is in its parts: ``maps`` (declaring and creating
maps), ``btf`` (the object's BTF in the kernel), ``programs`` (linking, CO-RE, loading),
``variables`` (global data) and ``externs`` (kconfig values, ksyms).
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Collection, Sequence

from ..errors import BpfError, ObjectError
from ..logs import INFO, module_logger
from ..maps import Map
from ..names import NamedDict
from ..program import Program
from ..records import replace
from ..spec.objspec import ObjectSpec
from ..spec.source import ObjectSource, read_object
from ..syscall import bpf, features
from ..syscall.fd import Closing, OwnedFd
from ..syscall.token import object_token
from ..uapi_values import ProgType
from .btf import upload_object_btf
from .externs import KsymResolver, fill_kconfig_image, kconfig_layout
from .kernel import KernelBtf, kernel_btfs
from .maps import MapCreator, declare_maps
from .programs import ProgramLoader, adjust_struct_ops_autoload, declare_programs
from .variables import SectionMemory, Variable, collect_variables, variables_by_name

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:
    from ..links.base import Link
    from ..spec import core
    from ..spec.struct_ops import StructOpsPlan

logger = module_logger(__name__)


class BpfObject(Closing):
    """A BPF ELF object: its programs, maps and global variables.

    Attributes:
        programs: name -> ``Program``, in ELF order (``NamedDict``: a misspelt name is a
            ``KeyError`` naming the close matches).
        maps: name -> ``Map``, the object's maps and its data sections (``.bss``,
            ``.data``, ``.rodata``, ``.kconfig``, custom ones) and struct_ops maps.
        variables: name -> ``Variable``: global data, writable before ``load()`` (the
            initial image) and read live through the mmapped map after.
        links: the links ``attach()`` made (closed by ``close()``).
        spec: the parsed ``ObjectSpec`` (immutable input).
        name: the object's name (the file's stem unless given).
    """

    def __init__(
        self,
        spec: ObjectSpec,
        *,
        btf_custom_path: str | None = None,
        kconfig: dict[str, str] | None = None,
        pin_root_path: str = "/sys/fs/bpf",
        token_path: str | None = None,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.btf_custom_path = btf_custom_path
        self.kconfig = kconfig
        self.pin_root_path = pin_root_path
        self.token_path = token_path
        self._token: OwnedFd | None = None
        self.links: list[Link] = []
        self._kconfig_layout, kconfig_size = kconfig_layout(spec)
        self.programs = NamedDict[Program]("program", self.name, declare_programs(spec, self))
        self.maps = NamedDict[Map]("map", self.name, declare_maps(spec, kconfig_size))
        self._memory = SectionMemory(self.name, self.maps)
        for section in spec.datasecs.values():
            self._memory.images[section.name] = bytearray(section.data)
        if spec.arena is not None:  # __arena globals: their image, then the arena's end
            self._memory.images[spec.arena.name] = bytearray(spec.arena.data)
            self._memory.arena_map = spec.arena_map
        if kconfig_size:
            self._memory.images[".kconfig"] = bytearray(kconfig_size)
        # The struct_ops variables' bytes, editable until load (``struct_ops_value``).
        self._struct_ops_data = {n: bytearray(o.data) for n, o in spec.struct_ops.items()}
        self._struct_ops_plans: dict[str, StructOpsPlan] = {}
        self._all_variables = collect_variables(spec, self._memory, self._kconfig_layout)
        self.variables = NamedDict[Variable](
            "variable", self.name, variables_by_name(self._all_variables)
        )
        self._kernel = KernelBtf()  # module BTF fds this object names to the kernel
        self._ksyms = KsymResolver(self.name, spec.btf, self._kernel)
        self._btf_fd: OwnedFd | None = None
        self._btf_error = ""
        self._creator: MapCreator | None = None  # set by prepare()
        self._loaded = False
        self._programs_loaded: ProgramLoader | None = None

    # ----------------------------------------------------------------- opening

    @classmethod
    def open(
        cls,
        source: ObjectSource | Sequence[ObjectSource],
        *,
        name: str | None = None,
        btf_custom_path: str | None = None,
        kconfig: dict[str, str] | None = None,
        pin_root_path: str = "/sys/fs/bpf",
        token_path: str | None = None,
    ) -> BpfObject:
        """Parse an object (a path or its bytes; a list of them is linked into one first,
        as ``bpftool gen object`` would). Needs no privileges and touches no kernel: no
        syscalls, nothing read from /proc or /sys.

        ``token_path``: the delegating bpffs whose BPF token ``load()`` uses (libbpf's
        ``bpf_token_path``; "" disables tokens). Unset, ``LIBBPF_BPF_TOKEN_PATH`` decides,
        and failing that any delegating bpffs among this process's mounts
        (``syscall.token``)."""
        try:
            obj = cls(
                read_object(source, name),
                btf_custom_path=btf_custom_path,
                kconfig=kconfig,
                pin_root_path=pin_root_path,
                token_path=token_path,
            )
        except MemoryError:  # sizes an object claims (a .bss of 500 MiB) past what we have
            label = repr(name) if name else _describe_source(source)
            raise ObjectError(
                f"object {label}: opening it needs more memory than this process can "
                "allocate (a section or type claims a huge size)"
            ) from None
        if logger.isEnabledFor(INFO):
            logger.info(
                "object %r opened from %s: programs %s, maps %s",
                obj.name,
                _describe_source(source),
                ", ".join(obj.programs) or "none",
                ", ".join(obj.maps) or "none",
            )
        return obj

    @property
    def loaded(self) -> bool:
        """Whether ``load()`` succeeded and ``close()`` has not run since."""
        return self._loaded

    @property
    def closed(self) -> bool:
        """Whether ``close()`` ran (after which variables, maps and programs are gone)."""
        return self._memory.closed

    @property
    def token_fd(self) -> int | None:
        """The BPF token this object loaded with (None: none), as
        ``bpf_object__token_fd``."""
        return self._token.fd if self._token is not None else None

    @property
    def kconfig_layout(self) -> dict[str, tuple[int, int]]:
        """Where each ``__kconfig`` extern lives in ``.kconfig``: {name: (offset, size)}."""
        return dict(self._kconfig_layout)

    # ----------------------------------------------------------------- global data

    def section_memory(self, section: str) -> Any:
        """A section's bytes: the initial image before load (a bytearray), the mmapped map
        after (writable unless read-only), or a lookup/update window without mmap."""
        return self._memory.section(section)

    def check_section_writable(self, section: str, what: str) -> None:
        """Raise if ``section`` can no longer be written (.rodata and .kconfig after load)."""
        self._memory.check_writable(section, what)

    def section_variables(self, section: str) -> list[Variable]:
        """Every variable of a data section (or ``.kconfig``), statics included, even
        several of one name (a linked object keeps each input's statics apart)."""
        return [v for v in self._all_variables if v.section == section]

    def find_variable(self, section: str, name: str) -> Variable:
        """The global (non-static) variable ``name`` of ``section``: how a library's
        subskeleton finds its variables in the object that linked the library in."""
        for variable in self._all_variables:
            if variable.section == section and variable.name == name and not variable.static:
                return variable
        raise ObjectError(f"{self.name}: no global variable {name!r} in {section}")

    def struct_ops_value(self, name: str) -> Any:
        """The struct_ops variable ``name`` as a ctypes struct of the object's type: its
        plain members (``name``, ``flags``…) can be changed until ``load()``, as with
        libbpf's ``skel->struct_ops.<name>``; function pointers are fixed by the object."""
        if name not in self._struct_ops_data:
            raise BpfError(f"{self.name}: no struct_ops variable {name!r}", errno.ENOENT)
        if self.prepared or self.loaded:
            state = "loaded" if self.loaded else "prepared"
            raise BpfError(
                f"{self.name}: struct_ops {name!r} is already {state}: edit it before "
                "prepare() or load()",
                errno.EPERM,
            )
        assert self.spec.btf is not None
        layout = self.spec.btf.ctype(self.spec.struct_ops[name].type_id)
        return layout.from_buffer(self._struct_ops_data[name])

    def core_results(self, program: str) -> list[core.CoreResult]:
        """How each CO-RE relocation of a loaded program resolved."""
        if self._programs_loaded is None:
            return []
        return self._programs_loaded.core_results.get(program, [])

    # ----------------------------------------------------------------- loading

    @property
    def prepared(self) -> bool:
        """Whether ``prepare()`` ran: maps created, programs relocated, none loaded yet."""
        return self._creator is not None

    def prepare(self) -> None:
        """Everything ``load()`` does short of loading programs (libbpf 1.6's
        ``bpf_object__prepare``): externs resolved for the whole object, struct_ops
        matched to the kernel, every program with ``autoload`` linked and CO-RE
        relocated, the object's BTF uploaded, maps created (pins reused, initial values
        written, ``.rodata`` frozen) and their fds written into the programs. Programs
        then hold their final instructions (``program.insns``) and no fd: inspect or
        adjust them (load options, attach targets), then ``load()``."""
        if self._memory.closed:
            raise BpfError(f"object {self.name!r} is closed: open it again", errno.EBADF)
        if self.loaded or self.prepared:
            what = "loaded" if self.loaded else "prepared"
            raise BpfError(f"object {self.name!r} is already {what}", errno.EALREADY)
        if self.spec.byteorder != ("little" if struct.pack("=H", 1) == b"\1\0" else "big"):
            raise ObjectError(
                f"{self.name}: object is {self.spec.byteorder}-endian, this host is not "
                "(compile with -target bpfel/bpfeb to match)"
            )
        self._token = object_token(self.token_path, f"object {self.name!r}")
        with bpf.using_token(self._token.fd if self._token is not None else 0):
            self._prepare()

    def _prepare(self) -> None:
        features.ensure_memlock()
        creator = MapCreator(self.spec, self.maps, self.pin_root_path, self._kernel)
        self._creator = creator
        try:
            # libbpf's order (bpf_object_load): externs, struct_ops, relocation, BTF, maps.
            externs = self._ksyms.resolve_all(self.spec)
            if ".kconfig" in self._memory.images:
                fill_kconfig_image(
                    self.spec, self._kconfig_layout, self._memory.images[".kconfig"], self.kconfig
                )
            self._plan_struct_ops()
            adjust_struct_ops_autoload(self.spec, self.programs)
            loader = ProgramLoader(self.spec, self.programs, self.btf_custom_path, self._kernel)
            self._programs_loaded = loader
            loader.relocate_all(self.maps, externs, self._kconfig_layout)
            self._btf_fd, self._btf_error = upload_object_btf(
                self.spec, self._kconfig_layout, len(self._memory.images.get(".kconfig", b""))
            )
            creator.btf_fd, creator.btf_error = self._btf_fd, self._btf_error
            creator.create_all(
                self._memory.images, self._struct_ops_plans, self.programs, self.links
            )
            creator.fill_map_slots()
            loader.finish(self.maps, self._ksyms.fd_array, self._btf_fd)
            self._memory.mapped = True  # variables now read and write the maps
            self._memory.map_sections()
        except BaseException:
            self._undo(creator)
            raise

    def load(self) -> None:
        """Create maps, load programs (those with ``autoload``). LoadError on rejection.
        Runs ``prepare()`` first unless the caller did."""
        if self._memory.closed:
            raise BpfError(f"object {self.name!r} is closed: open it again", errno.EBADF)
        if self.loaded:
            raise BpfError(f"object {self.name!r} is already loaded", errno.EALREADY)
        if not self.prepared:
            self.prepare()
        creator, loader = self._creator, self._programs_loaded
        assert creator is not None and loader is not None
        try:
            with bpf.using_token(self._token.fd if self._token is not None else 0):
                loader.load_all(self.maps, self._btf_error)
                creator.fill_prog_arrays(self.programs)
            self._loaded = True
        except BaseException:
            self._undo(creator)
            raise
        if logger.isEnabledFor(INFO):
            logger.info(
                "object %r loaded: %d programs, %d maps (reused pinned: %s)",
                self.name,
                sum(program.loaded for program in self.programs.values()),
                sum(map_obj.created for map_obj in self.maps.values()),
                ", ".join(sorted(creator.reused)) or "none",
            )

    def _undo(self, creator: MapCreator) -> None:
        """Undo what a failed prepare or load did: its pins (not the ones it reused),
        then every map, program, BTF and module fd it made (close() releases those)."""
        try:
            creator.undo()
        finally:
            self.close()

    def _plan_struct_ops(self) -> None:
        """Match each struct_ops variable to the kernel's struct; tell its programs which
        struct and member they implement."""
        for name, ops in self.spec.struct_ops.items():
            if not ops.autocreate:
                continue
            assert self.spec.btf is not None
            edited = replace(ops, data=bytes(self._struct_ops_data[name]))
            from ..spec import struct_ops as struct_ops_plan  # (objects with struct_ops)

            ops_plan = struct_ops_plan.plan(edited, self.spec.btf, self.name, kernel_btfs())
            module = ops_plan.kernel.module
            btf_obj_fd = self._kernel.module_fd(module) if module is not None else 0
            self._struct_ops_plans[name] = ops_plan
            for program_name, member in ops_plan.members.items():
                program = self.programs.get(program_name)
                if program is None:
                    raise ObjectError(
                        f"{self.name}: struct_ops {name!r} refers to "
                        f"{program_name!r}, which is not a program"
                    )
                if program._type != ProgType.STRUCT_OPS:
                    raise ObjectError(
                        f"{self.name}: struct_ops {name!r}: program {program_name!r} is in "
                        f'section {program.section!r}, not a SEC("struct_ops") program'
                    )
                program.options.attach_btf_id = ops_plan.kernel.type.id
                program.options.attach_btf_obj_fd = btf_obj_fd  # a module's struct: its BTF
                program.options.expected_attach_type = member

    # ----------------------------------------------------------------- lifetime

    def attach(self) -> list[Link]:
        """Attach every loaded program whose section says where, and register every
        struct_ops map whose ``autoattach`` is on; others are skipped."""
        return list(self.attach_named().values())

    def attach_named(self, skip: Collection[str] = ()) -> dict[str, Link]:
        """``attach()`` keyed by program name (and struct_ops map name), leaving out the
        names in ``skip`` (already attached): what skeletons build on."""
        if not self.loaded:
            raise BpfError(f"object {self.name!r} is not loaded", errno.EBADF)
        from ..links import auto  # the attach kinds' modules, imported when attaching

        attached: dict[str, Link] = {}
        try:
            for name, program in self.programs.items():
                if name in skip:
                    continue
                if program.loaded and program._type != ProgType.STRUCT_OPS:
                    link = auto.attach_from_section(program)
                    if link is not None:
                        attached[name] = link
            for name in self._struct_ops_plans:
                if name not in skip and self.maps[name].autoattach:
                    attached[name] = self.maps[name].attach_struct_ops()  # joins self.links
        except BaseException:
            for link in attached.values():  # all or nothing: detach what this call made
                link.close()
                if link in self.links:
                    self.links.remove(link)
            raise
        self.links.extend(link for link in attached.values() if link not in self.links)
        return attached

    def close(self) -> None:
        """Detach the object's links and release its programs, maps and BTF."""
        for link in self.links:
            link.close()
        self.links = []
        self._memory.unmap()
        for program in self.programs.values():
            program.close()
        for map_obj in self.maps.values():
            map_obj.close()
        if self._btf_fd is not None:
            self._btf_fd.close()
            self._btf_fd = None
        if self._token is not None:
            self._token.close()
            self._token = None
        self._ksyms.close()
        self._kernel.close()
        self._creator = None
        self._loaded = False
        self._memory.mapped = False
        self._memory.closed = True  # reading its variables now says so

    def __repr__(self) -> str:
        state = "loaded" if self.loaded else "opened"
        return (
            f"<BpfObject {self.name!r} {state}: programs {list(self.programs)}, "
            f"maps {list(self.maps)}>"
        )


def _describe_source(source: ObjectSource | Sequence[ObjectSource]) -> str:
    """Where an object came from, for the log: its path, its size, or what was linked."""
    if isinstance(source, list | tuple):
        return "linking " + ", ".join(_describe_source(part) for part in source)
    if isinstance(source, bytes | bytearray | memoryview):
        return f"{len(source)} bytes"
    if isinstance(source, str | os.PathLike):
        return repr(os.fspath(source))
    return repr(source)
