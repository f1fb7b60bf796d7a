"""The object's programs: declared at open (type, flags, autoload from the section name),
then at load linked with their sub-programs, relocated (maps, global data, externs,
CO-RE against the target BTF), given their attach targets, loaded, and — when the
verifier refuses one — explained with the C line and CO-RE relocation at fault."""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable, Mapping

from ..btf import Btf, Kind
from ..btf.ext import LineInfo
from ..errors import BpfError, LoadError, NotSupportedError, ObjectError
from ..logs import DEBUG, module_logger
from ..maps import Map
from ..program import LoadOptions, Program, ProgramOwner
from ..spec.objspec import ExternSpec, ObjectSpec, ProgramSpec
from ..spec.sections import ATTACH_BTF, FRAGS, SLEEPABLE, USDT
from ..spec.source import read_object
from ..spec.subprog import ExternValue, LinkedProgram, exception_callbacks, link_program
from ..syscall import features, kernel_btf
from ..syscall.fd import OwnedFd
from ..uapi_values import AttachType, ProgFlags, ProgType, value_name
from .externs import kconfig_layout
from .kernel import KernelBtf, KernelType
from .maps import arena_base

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from ..spec import core

logger = module_logger(__name__)

_ATTACH_BTF_PREFIX = {
    "tp_btf": "btf_trace_",
    "lsm": "bpf_lsm_",
    "lsm.s": "bpf_lsm_",
    "lsm_cgroup": "bpf_lsm_",
    "iter": "bpf_iter_",
    "iter.s": "bpf_iter_",
}


def declare_programs(spec: ObjectSpec, owner: ProgramOwner) -> dict[str, Program]:
    """The object's entry points as ``Program``s not yet loaded, typed from their section
    names; ``owner`` is remembered weakly (``Program.obj``)."""
    programs: dict[str, Program] = {}
    for prog_spec in spec.programs.values():
        definition = prog_spec.section_def
        prog_type = definition.prog_type if definition else ProgType.UNSPEC
        options = LoadOptions(license=spec.license, kern_version=spec.kern_version)
        if definition is not None:
            options.expected_attach_type = definition.attach_type
            if definition.flags & SLEEPABLE:
                options.prog_flags |= ProgFlags.SLEEPABLE
            if definition.flags & FRAGS:
                options.prog_flags |= ProgFlags.XDP_HAS_FRAGS
        program = Program(
            prog_spec.name, prog_type, b"", section=prog_spec.section, options=options
        )
        program.autoload = not prog_spec.section.startswith("?")
        program.obj = owner
        programs[prog_spec.name] = program
    adjust_struct_ops_autoload(spec, programs)
    return programs


def adjust_struct_ops_autoload(spec: ObjectSpec, programs: Mapping[str, Program]) -> None:
    """libbpf's rule (``bpf_object_adjust_struct_ops_autoload``), at open and again at
    load: a struct_ops program that a struct_ops variable uses is loaded exactly when one
    of the variables using it is created (not ``SEC("?.struct_ops")``); one no variable
    uses keeps its autoload (and is refused at load: nothing would call it)."""
    used: dict[str, bool] = {}
    for ops in spec.struct_ops.values():
        for program_name in ops.functions.values():
            used[program_name] = used.get(program_name, False) or ops.autocreate
    for name, should_load in used.items():
        program = programs.get(name)
        if program is not None and program._type == ProgType.STRUCT_OPS:
            program.autoload = should_load


class _Resolver:
    """What linking needs from the object: externs resolved object-wide, kconfig offsets;
    map fds are placeholders until the maps exist (``LinkedProgram.set_map_fds``)."""

    def __init__(
        self,
        externs: Mapping[str, ExternValue],
        kconfig_layout: Mapping[str, tuple[int, int]],
        arena_base: int = 0,
    ) -> None:
        self._externs = externs
        self._kconfig_layout = kconfig_layout
        self._arena_base = arena_base

    def map_fd(self, name: str) -> int:
        return 0

    def data_map_fd(self, section: str) -> int:
        return 0

    def arena(self) -> tuple[int, int]:
        return 0, self._arena_base

    def extern(self, spec: ExternSpec) -> ExternValue:
        if spec.section == ".kconfig":
            return ExternValue("kconfig", offset=self._kconfig_layout[spec.name][0])
        return self._externs[spec.name]


class _PlaceholderResolver:
    """Map fds and externs for linking without a kernel (CO-RE inspection only)."""

    def __init__(self, kconfig_layout: Mapping[str, tuple[int, int]]) -> None:
        self._kconfig_layout = kconfig_layout

    def map_fd(self, name: str) -> int:
        return 0

    def data_map_fd(self, section: str) -> int:
        return 0

    def arena(self) -> tuple[int, int]:
        return 0, 0

    def extern(self, spec: ExternSpec) -> ExternValue:
        if spec.section == ".kconfig":
            return ExternValue("kconfig", offset=self._kconfig_layout[spec.name][0])
        return ExternValue("kfunc" if spec.is_func else "missing")


def core_resolver_for(local: Btf, btf_custom_path: str | None = None) -> core.CoreResolver:
    """CO-RE targets: a custom BTF if given, else vmlinux then (lazily) module BTF."""
    from ..spec import core  # here: an object without CO-RE relocations never needs it

    if btf_custom_path is not None:
        return core.CoreResolver(local, [Btf.from_file(btf_custom_path)])

    def modules() -> list[Btf]:
        return [kernel_btf.load_module(name) for name in kernel_btf.module_names()]

    return core.CoreResolver(local, [kernel_btf.load_vmlinux()], modules)


class ProgramLoader:
    """Loads one object's programs during one ``load()``; keeps how each was linked and
    how its CO-RE relocations resolved."""

    def __init__(
        self,
        spec: ObjectSpec,
        programs: Mapping[str, Program],
        btf_custom_path: str | None,
        kernel: KernelBtf,
    ) -> None:
        self.spec = spec
        self.kernel = kernel
        self.name = spec.name
        self.programs = programs
        self.btf_custom_path = btf_custom_path
        self.linked: dict[str, LinkedProgram] = {}
        self.core_results: dict[str, list[core.CoreResult]] = {}
        self._core: core.CoreResolver | None = None

    def _core_resolver(self) -> core.CoreResolver:
        if self._core is None:
            if self.spec.btf is None:
                raise ObjectError(f"{self.name}: CO-RE relocations without BTF")
            self._core = core_resolver_for(self.spec.btf, self.btf_custom_path)
        return self._core

    def relocate_all(
        self,
        maps: Mapping[str, Map],
        externs: Mapping[str, ExternValue],
        kconfig_layout: Mapping[str, tuple[int, int]],
    ) -> None:
        """Link and CO-RE-relocate every program with ``autoload`` (libbpf's
        ``bpf_object__relocate``): before any map exists, whose fds come later."""
        resolver = _Resolver(externs, kconfig_layout, arena_base(self.spec, maps))
        callbacks = exception_callbacks(self.spec) if self.spec.btf is not None else {}
        for name, program in self.programs.items():
            if not program.autoload:
                continue
            spec = self.spec.programs[name]
            _check_session_support(self.name, name, spec.section, program.options)
            linked = link_program(self.spec, spec, resolver, callbacks.get(name))
            if linked.core_relos:
                from ..spec import core  # here: most objects have no CO-RE relocations

                self.core_results[name] = core.relocate(
                    linked.insns,
                    [(position, relo) for position, _section, relo in linked.core_relos],
                    self._core_resolver(),
                    f"{self.name}: program {name!r}",
                )
                _log_core(f"{self.name}: program {name!r}", self.core_results[name])
            self.linked[name] = linked

    def finish(self, maps: Mapping[str, Map], fd_array: list[int], btf_fd: OwnedFd | None) -> None:
        """The maps exist: write their fds into the programs, which now hold the
        instructions they will be loaded with, and set their load options."""
        fds = {name: (m.fd if m.created else None) for name, m in maps.items()}
        uprobe_multi: bool | None = None
        for name, linked in self.linked.items():
            program = self.programs[name]
            spec = self.spec.programs[name]
            linked.set_map_fds(fds)
            program.insns = linked.code()
            options = program.options
            if fd_array:
                options.fd_array = list(fd_array)
            if spec.section_def is not None and spec.section_def.flags & USDT:
                # As libbpf: usdt programs are uprobe.multi programs where the kernel
                # has those links (6.6+), attached through one link for every location.
                if uprobe_multi is None:
                    uprobe_multi = features.has_uprobe_multi_link()
                if uprobe_multi:
                    options.expected_attach_type = AttachType.TRACE_UPROBE_MULTI
            if btf_fd is not None and linked.func_info:
                options.prog_btf_fd = btf_fd.fd
                options.func_info = b"".join(struct.pack("<II", i, t) for i, t in linked.func_info)
                options.func_info_rec_size = 8
                options.line_info = b"".join(struct.pack("<IIII", *rec) for rec in linked.line_info)
                options.line_info_rec_size = 16

    def load_all(self, maps: Mapping[str, Map], btf_error: str) -> None:
        """Load every program ``relocate_all`` prepared, in the object's order; bind the
        read-only data maps to each (libbpf binds every ``.rodata*`` map, in map order)."""
        readonly = [
            m
            for section, m in maps.items()
            if section.startswith(".rodata") and section in self.spec.datasecs and m.created
        ]
        for name, program in self.programs.items():
            if not program.autoload:
                continue
            linked = self.linked.get(name)
            spec = self.spec.programs[name]
            if linked is None:
                raise BpfError(
                    f"{self.name}: program {name!r} was not prepared: set autoload before "
                    "prepare()",
                    errno.EINVAL,
                )
            if program._type == ProgType.UNSPEC:
                raise LoadError(
                    f"{self.name}: program {name!r}: section {spec.section!r} does not say "
                    "which program type it is; set program.type before load()",
                    errno.EINVAL,
                    program=name,
                )
            options = program.options
            if program._type == ProgType.STRUCT_OPS and not options.attach_btf_id:
                raise LoadError(
                    f'{self.name}: program {name!r}: SEC("struct_ops") program is not used '
                    "by any struct_ops variable, did you forget to use it?",
                    errno.EINVAL,
                    program=name,
                )
            if program.attach_target is not None:
                self._set_attach_target(program)
            elif spec.section_def is not None and spec.section_def.flags & ATTACH_BTF:
                self._attach_btf_id(program, spec)
            try:
                program.load()
            except LoadError as error:
                raise self._explain(error, name, linked, btf_error) from error
            for map_obj in readonly:
                try:  # noqa: SIM105 (contextlib is kept off the load path)
                    program.bind_map(map_obj)
                except BpfError:
                    pass  # 5.10+; matters only for unused .rodata

    def _attach_btf_id(self, program: Program, spec: ProgramSpec) -> None:
        """The BTF id (and, for a module's, that module's BTF fd) of the section's target:
        ``fentry/[module:]function``, ``tp_btf/tracepoint``…, in vmlinux first, then the
        loaded modules, as libbpf searches."""
        section = spec.section.lstrip("?")
        prefix, _, target = section.partition("/")
        module, _, function = target.rpartition(":")
        if not function:
            raise LoadError(
                f"{self.name}: program {program.name!r}: section {section!r} needs "
                "a target after '/'",
                errno.EINVAL,
                program=program.name,
            )
        if program._type == ProgType.EXT:
            # As libbpf: an extension program needs the program it replaces
            # (``set_attach_target(target_program, function)``) before it loads.
            raise LoadError(
                f"{self.name}: program {program.name!r}: section {section!r} replaces a "
                "function of another BPF program: call set_attach_target(program, "
                f"{target!r}) before load()",
                errno.EINVAL,
                program=program.name,
            )
        name = _ATTACH_BTF_PREFIX.get(prefix, "") + function
        kind = Kind.TYPEDEF if prefix == "tp_btf" else Kind.FUNC
        found = self.kernel.find(name, kind, module or None)
        if found is None:
            where = f"module {module!r}" if module else "the kernel or its loaded modules"
            raise LoadError(
                f"{self.name}: program {program.name!r}: no {kind.name} named {name!r} "
                f"in {where} to attach to (section {section!r})",
                errno.ESRCH,
                program=program.name,
            )
        self._set_kernel_target(program, found)

    def _set_kernel_target(self, program: Program, found: KernelType) -> None:
        program.options.attach_btf_id = found.type_id
        program.options.attach_prog_fd = 0
        module = found.module
        program.options.attach_btf_obj_fd = self.kernel.module_fd(module) if module else 0

    def _set_attach_target(self, program: Program) -> None:
        """``set_attach_target``: a kernel function (vmlinux, then modules), or a global
        function of a loaded program (freplace) found in that program's BTF."""
        assert program.attach_target is not None
        target, function = program.attach_target
        where = f"{self.name}: program {program.name!r}: attach target {function!r}"
        if target is None:
            module, _, name = function.rpartition(":")
            kernel_found = self.kernel.find(name, Kind.FUNC, module or None)
            if kernel_found is None:
                raise LoadError(f"{where}: the kernel has no function of that name", errno.ESRCH)
            self._set_kernel_target(program, kernel_found)
            return
        info = target.info()
        if not info.btf_id:
            raise LoadError(f"{where}: program {target.name!r} has no BTF", errno.EINVAL)
        found = kernel_btf.fetch_btf(info.btf_id).find_id(function, Kind.FUNC)
        if not found:
            raise LoadError(
                f"{where}: program {target.name!r} has no function of that name", errno.ESRCH
            )
        program.options.attach_prog_fd = target.fd
        program.options.attach_btf_obj_fd = 0
        program.options.attach_btf_id = found

    def _explain(
        self, error: LoadError, name: str, linked: LinkedProgram, btf_error: str
    ) -> LoadError:
        """Add the C source line of the instruction the verifier stopped at."""
        import re  # (an error path)

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
        if self.core_results and _poisoned(error.log):
            poisoned = [r for r in self.core_results.get(name, []) if r.poisoned]
            insn = int(matches[-1]) if matches else -1
            culprit = next(
                (r for r in poisoned if r.insn == insn), poisoned[0] if poisoned else None
            )
            if culprit is not None:
                message += (
                    f"\nCO-RE relocation failed at instruction {culprit.insn}: "
                    f"{culprit.kind.name} of {culprit.access} ({culprit.reason})"
                )
        if btf_error:
            message += f"\n(the object's BTF was not loaded: {btf_error})"
        return LoadError(message, error.errno, program=name, log=error.log)


def _log_core(where: str, results: list[core.CoreResult]) -> None:
    """At DEBUG: how many CO-RE relocations were applied, then each one."""
    if not logger.isEnabledFor(DEBUG):
        return
    poisoned = sum(result.poisoned for result in results)
    logger.debug(
        "%s: %d CO-RE relocations applied%s",
        where,
        len(results),
        f" ({poisoned} poisoned)" if poisoned else "",
    )
    for result in results:
        logger.debug(
            "%s: CO-RE insn %d: %s of %s: %d -> %s",
            where,
            result.insn,
            result.kind.name,
            result.access,
            result.local_value,
            f"poisoned ({result.reason})" if result.poisoned else result.target_value,
        )


# Attach types whose programs only load where the kernel has them (their kfuncs, e.g.
# bpf_session_cookie, are missing before): the probe and the version that added each.
_NEEDS_KERNEL: dict[int, tuple[Callable[[], bool], str]] = {
    AttachType.TRACE_KPROBE_SESSION: (features.has_kprobe_session, "6.10"),
    AttachType.TRACE_UPROBE_SESSION: (features.has_uprobe_session, "6.13"),
}


def _check_session_support(obj: str, name: str, section: str, options: LoadOptions) -> None:
    """Refuse before the verifier does, with the kernel version instead of a kfunc error."""
    attach_type = options.expected_attach_type
    if attach_type is None or attach_type not in _NEEDS_KERNEL:
        return
    probe, since = _NEEDS_KERNEL[attach_type]
    if not probe():
        raise NotSupportedError(
            f"{obj}: program {name!r} (section {section!r}): this kernel has no "
            f"{value_name(AttachType, attach_type)} programs (Linux {since}+)",
            errno.EOPNOTSUPP,
        )


def inspect_core(
    source: str | os.PathLike[str] | bytes, target: Btf | str | None = None
) -> dict[str, list[core.CoreResult]]:
    """Resolve an object's CO-RE relocations against a BTF without loading anything.

    ``target`` is a ``Btf``, a path to raw BTF or an ELF with ``.BTF``, or None for the
    running kernel. Needs no privileges: a way to check an object against a kernel's
    BTF before deploying it.
    """
    from ..spec import core  # here: loading an object without CO-RE never needs it

    spec = read_object(source)
    btf = spec.btf
    if btf is None:
        return {}
    if isinstance(target, Btf):
        resolver = core.CoreResolver(btf, [target])
    else:
        resolver = core_resolver_for(btf, target)
    results: dict[str, list[core.CoreResult]] = {}
    placeholder = _PlaceholderResolver(kconfig_layout(spec)[0])
    for name, program in spec.programs.items():
        linked = link_program(spec, program, placeholder)
        relos = [(position, relo) for position, _section, relo in linked.core_relos]
        results[name] = core.relocate(
            linked.insns, relos, resolver, f"{spec.name}: program {name!r}"
        )
    return results


def _poisoned(log: str) -> bool:
    """The verifier stopped at a call CO-RE poisoned (only asked of programs with CO-RE
    relocations, which have ``spec.core`` imported already)."""
    from ..spec.core import POISON_HELPER

    return str(POISON_HELPER) in log
