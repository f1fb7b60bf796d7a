"""The object's programs: declared at open (type, flags, autoload from the section name),
then at load linked with their sub-programs, relocated (maps, global data, externs,
CO-RE against the target BTF), given their attach targets, loaded, and — when the
verifier refuses one — explained with the C line and CO-RE relocation at fault."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import struct
from collections.abc import Mapping

from ..btf import Btf, Kind
from ..btf.ext import LineInfo
from ..errors import BpfError, LoadError, NotSupportedError, ObjectError
from ..logs import get_logger
from ..maps import Map
from ..program import LoadOptions, Program, ProgramOwner
from ..spec import core
from ..spec.objspec import ExternSpec, ObjectSpec, ProgramSpec
from ..spec.sections import ATTACH_BTF, FRAGS, SLEEPABLE
from ..spec.source import read_object
from ..spec.subprog import ExternValue, LinkedProgram, link_program
from ..syscall import features, kernel_btf
from ..syscall.fd import OwnedFd
from ..uapi import AttachType, ProgFlags, ProgType
from .externs import KsymResolver, kconfig_layout
from .maps import arena_globals

logger = get_logger(__name__)

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
        options = LoadOptions(license=spec.license or "GPL", kern_version=spec.kern_version)
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
    used_by_struct_ops: set[str] = set()
    for ops in spec.struct_ops.values():
        if ops.autocreate:
            used_by_struct_ops.update(ops.functions.values())
    for program in programs.values():
        if program.type == ProgType.STRUCT_OPS and program.name not in used_by_struct_ops:
            program.autoload = False  # as libbpf: only programs a struct_ops map uses
    return programs


class _Resolver:
    """What linking needs from the loaded object: map fds and resolved externs."""

    def __init__(
        self,
        maps: Mapping[str, Map],
        ksyms: KsymResolver,
        kconfig_layout: Mapping[str, tuple[int, int]],
        arena: tuple[int, int] = (0, 0),
    ) -> None:
        self._maps = maps
        self._ksyms = ksyms
        self._kconfig_layout = kconfig_layout
        self._arena = arena
        self._externs: dict[str, ExternValue] = {}

    def map_fd(self, name: str) -> int:
        return self._maps[name].fd

    def data_map_fd(self, section: str) -> int:
        return self._maps[section].fd

    def arena(self) -> tuple[int, int]:
        return self._arena

    def extern(self, spec: ExternSpec) -> ExternValue:
        cached = self._externs.get(spec.name)
        if cached is None:
            if spec.section == ".kconfig":
                cached = ExternValue("kconfig", offset=self._kconfig_layout[spec.name][0])
            else:
                cached = self._ksyms.resolve(spec)
            self._externs[spec.name] = cached
        return cached


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
    ) -> None:
        self.spec = spec
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

    def load_all(
        self,
        maps: Mapping[str, Map],
        ksyms: KsymResolver,
        kconfig_layout: Mapping[str, tuple[int, int]],
        btf_fd: OwnedFd | None,
        btf_error: str,
    ) -> None:
        """Link, relocate and load every program with ``autoload``."""
        resolver = _Resolver(maps, ksyms, kconfig_layout, arena_globals(self.spec, maps))
        rodata = maps.get(".rodata")
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
            _check_session_support(self.name, name, spec.section, program.options)
            linked = link_program(self.spec, spec, resolver)
            if linked.core_relos:
                self.core_results[name] = core.relocate(
                    linked.insns,
                    [(position, relo) for position, _section, relo in linked.core_relos],
                    self._core_resolver(),
                    f"{self.name}: program {name!r}",
                )
                _log_core(f"{self.name}: program {name!r}", self.core_results[name])
            self.linked[name] = linked
            program.insns = linked.code()
            options = program.options
            if ksyms.fd_array:
                options.fd_array = list(ksyms.fd_array)
            if program.attach_target is not None:
                self._set_attach_target(program)
            elif spec.section_def is not None and spec.section_def.flags & ATTACH_BTF:
                options.attach_btf_id = self._attach_btf_id(program, spec)
            if btf_fd is not None and linked.func_info:
                options.prog_btf_fd = btf_fd.fd
                options.func_info = b"".join(struct.pack("<II", i, t) for i, t in linked.func_info)
                options.func_info_rec_size = 8
                options.line_info = b"".join(struct.pack("<IIII", *rec) for rec in linked.line_info)
                options.line_info_rec_size = 16
            try:
                program.load()
            except LoadError as error:
                raise self._explain(error, name, linked, btf_error) from error
            if rodata is not None and rodata.created:
                with contextlib.suppress(BpfError):  # 5.10+; matters only for unused .rodata
                    program.bind_map(rodata)

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
        kernel = kernel_btf.load_vmlinux()
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
            found = kernel_btf.load_vmlinux().find_id(function, Kind.FUNC)
            program.options.attach_prog_fd = 0
        else:
            info = target.info()
            if not info.btf_id:
                raise LoadError(f"{where}: program {target.name!r} has no BTF", errno.EINVAL)
            found = kernel_btf.fetch_btf(info.btf_id).find_id(function, Kind.FUNC)
            program.options.attach_prog_fd = target.fd
        if not found:
            owner = "the kernel" if target is None else f"program {target.name!r}"
            raise LoadError(f"{where}: {owner} has no function of that name", errno.ESRCH)
        program.options.attach_btf_id = found

    def _explain(
        self, error: LoadError, name: str, linked: LinkedProgram, btf_error: str
    ) -> LoadError:
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
    if not logger.isEnabledFor(logging.DEBUG):
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
_NEEDS_KERNEL = {
    AttachType.TRACE_KPROBE_SESSION: (features.has_kprobe_session, "6.10"),
    AttachType.TRACE_UPROBE_SESSION: (features.has_uprobe_session, "6.13"),
}


def _check_session_support(obj: str, name: str, section: str, options: LoadOptions) -> None:
    """Refuse before the verifier does, with the kernel version instead of a kfunc error."""
    attach_type = options.expected_attach_type
    if attach_type is None or attach_type not in _NEEDS_KERNEL:
        return
    probe, since = _NEEDS_KERNEL[AttachType(attach_type)]
    if not probe():
        raise NotSupportedError(
            f"{obj}: program {name!r} (section {section!r}): this kernel has no "
            f"{AttachType(attach_type).name} programs (Linux {since}+)",
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
