"""Relocations that rewrite a program's instructions before loading (non-CO-RE half).

``link_program`` turns one entry point of an ``ObjectSpec`` into the instruction stream the
kernel gets: every sub-program it calls (directly, or as a callback for bpf_loop, timers,
…) appended once, call offsets fixed, and each ``ld_imm64``/call that names a map, a
global variable or an extern rewritten through a ``Resolver`` that knows the kernel-side
values (map fds, kconfig offsets, BTF ids, kallsyms addresses). func_info, line_info and
CO-RE records of every piece follow it to its new position.

The layout is libbpf's (``bpf_object__reloc_code``): a sub-program is appended when the
first call to it is met and relocated at once, depth first, so instruction indexes (the
verifier log's, ``bpftool prog dump``'s) are the ones libbpf's load shows; the program's
exception callback (an ``exception_callback:`` decl tag) comes last if nothing called it.
Where map fds go is recorded (``map_slots``), so linking can run before the maps exist.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping

from ..btf import Kind
from ..btf.ext import CoreRelo
from ..errors import ObjectError
from ..records import dataclass, field
from .insn import (
    PSEUDO_BTF_ID,
    PSEUDO_CALL,
    PSEUDO_FUNC,
    PSEUDO_KFUNC_CALL,
    PSEUDO_MAP_FD,
    PSEUDO_MAP_VALUE,
    Insn,
    decode,
)
from .objspec import ARENA_SECTION, ExternSpec, ObjectSpec, ProgramSpec, Relocation

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object  # (the protocols below are for the type checker only)


@dataclass(frozen=True)
class ExternValue:
    """How an extern resolved: a value in the .kconfig map, a kernel BTF object, an
    address, or nothing (an unresolved ``__weak`` extern)."""

    kind: str  # "kconfig", "btf_var", "kfunc", "addr", "missing"
    offset: int = 0  # kconfig: offset in the .kconfig map
    btf_id: int = 0
    btf_fd_index: int = 0  # 0 for vmlinux; index into fd_array for module BTF
    btf_fd: int = 0  # module BTF fd (0 for vmlinux): ld_imm64 of a typed ksym or kfunc
    address: int = 0
    index: int = 0  # the extern's place in libbpf's order (poisoned calls name it)


# libbpf's poison: an unresolved __weak kfunc call becomes a call of helper
# 2002000000 + extern index ("invalid func unknown#2002000003" if it is reachable).
POISON_CALL_KFUNC_BASE = 2002000000


class Resolver(Protocol):
    """What linking needs from whoever loads the object: map fds and extern values."""

    def map_fd(self, name: str) -> int: ...

    def data_map_fd(self, section: str) -> int: ...

    def arena(self) -> tuple[int, int]:
        """The ARENA map's fd and where in it the ``__arena`` globals start."""
        ...

    def extern(self, spec: ExternSpec) -> ExternValue: ...


@dataclass
class LinkedProgram:
    """One entry point with its sub-programs appended, and its ext info moved along."""

    insns: list[Insn]
    func_info: list[tuple[int, int]] = field(default_factory=list)  # (insn, BTF FUNC id)
    line_info: list[tuple[int, int, int, int]] = field(default_factory=list)
    core_relos: list[tuple[int, str, CoreRelo]] = field(default_factory=list)  # insn, sec, relo
    pieces: list[tuple[ProgramSpec, int]] = field(default_factory=list)  # piece, start
    map_refs: set[str] = field(default_factory=set)
    map_slots: list[tuple[int, str]] = field(default_factory=list)  # ld_imm64 -> map key

    def code(self) -> bytes:
        """The instructions as bytes, for PROG_LOAD."""
        return b"".join(insn.encode() for insn in self.insns)

    def set_map_fds(self, fds: Mapping[str, int | None]) -> None:
        """Write the maps' fds into the ``ld_imm64``s that load them (once they exist); a
        map that is not created (None) is poisoned as libbpf does: two calls of helper
        2001000000 + its index, which the verifier reports if they are reachable."""
        order = {name: index for index, name in enumerate(fds)}
        for position, name in self.map_slots:
            fd = fds[name]
            if fd is None:
                poison = Insn(0x85, 0, 0, 0, POISON_LDIMM64_MAP_BASE + order[name])
                self.insns[position] = self.insns[position + 1] = poison
            else:
                self.insns[position] = self.insns[position].with_(imm=fd)


POISON_LDIMM64_MAP_BASE = 2001000000


def exception_callbacks(spec: ObjectSpec) -> dict[str, str]:
    """Main program -> the sub-program its ``exception_callback:<name>`` decl tag names
    (``__exception_cb(name)``), as libbpf's ``bpf_prog_assign_exc_cb`` reads them."""
    btf = spec.btf
    if btf is None:
        return {}
    prefix = "exception_callback:"
    found: dict[str, str] = {}
    for tag_name in btf.names_with_prefix(prefix):
        for tag in btf.find_all(tag_name, Kind.DECL_TAG):
            if tag.component_idx != -1:
                continue
            function = btf[tag.type]
            if function.kind != Kind.FUNC or function.linkage != 1:  # BTF_FUNC_GLOBAL
                raise ObjectError(
                    f"{spec.name}: exception_callback:<value> decl tag not applied to a "
                    "main program"
                )
            callback = tag_name[len(prefix) :]
            if not callback:
                raise ObjectError(
                    f"{spec.name}: program {function.name!r}: exception_callback decl tag "
                    "names no function"
                )
            found[function.name] = callback
    return found


class _Linker:
    def __init__(
        self,
        spec: ObjectSpec,
        main: ProgramSpec,
        resolver: Resolver,
        exception_callback: str | None,
    ) -> None:
        self.spec = spec
        self.main = main
        self.resolver = resolver
        self.exception_callback = exception_callback
        self.linked = LinkedProgram(insns=[])
        self.placed: dict[tuple[int, int], int] = {}
        self.unrelocated: list[tuple[ProgramSpec, int]] = []  # placed, not yet relocated

    def what(self, piece: ProgramSpec, index: int) -> str:
        where = f" (in sub-program {piece.name!r})" if piece is not self.main else ""
        return (
            f"{self.spec.name}: program {self.main.name!r}{where}: instruction "
            f"{piece.insn_offset + index} of section {piece.section!r}"
        )

    def place(self, piece: ProgramSpec) -> int:
        key = (piece.section_index, piece.insn_offset)
        start = self.placed.get(key)
        if start is None:
            start = len(self.linked.insns)
            self.placed[key] = start
            self.linked.insns.extend(decode(piece.insns))
            self.linked.pieces.append((piece, start))
            self.unrelocated.append((piece, start))
        return start

    def link(self) -> LinkedProgram:
        self.place(self.main)
        self.relocate_placed()
        if self.exception_callback is not None:
            self.place(self._exception_callback(self.exception_callback))
            self.relocate_placed()
        self.collect_ext_info()
        return self.linked

    def _exception_callback(self, name: str) -> ProgramSpec:
        """The sub-program named by the main program's exception_callback decl tag: a
        global, non-hidden function (the verifier wants it global)."""
        found = [p for p in self.spec.subprograms.values() if p.is_subprog and p.name == name]
        where = f"{self.spec.name}: program {self.main.name!r}"
        if not found:
            raise ObjectError(f"{where}: cannot find exception callback {name!r}", errno.ENOENT)
        if not found[0].is_global or name in self.spec.hidden_symbols:
            raise ObjectError(
                f"{where}: exception callback {name!r} must be a global non-hidden function",
                errno.EINVAL,
            )
        return found[0]

    def relocate_placed(self) -> None:
        """Relocate every placed piece, depth first: a callee placed by a call is
        relocated before the rest of its caller (libbpf's order)."""
        stack: list[tuple[ProgramSpec, int, int]] = []
        while self.unrelocated or stack:
            if self.unrelocated:
                piece, start = self.unrelocated.pop()
                stack.append((piece, start, 0))
            piece, start, index = stack.pop()
            index = self.relocate_from(piece, start, index)
            if index < piece.insn_count:
                stack.append((piece, start, index))

    def relocate_from(self, piece: ProgramSpec, start: int, index: int) -> int:
        """Relocate ``piece`` from instruction ``index`` until it places a new piece;
        returns where to resume (``insn_count`` when done)."""
        insns = self.linked.insns
        while index < piece.insn_count:
            position = start + index
            insn = insns[position]
            relocation = piece.relocations.get(index)
            if relocation is not None:
                self.apply(piece, index, position, relocation)
            elif insn.is_call() and insn.src == PSEUDO_CALL:
                # A call within the same section carries no relocation: it is PC-relative.
                target = piece.insn_offset + index + insn.imm + 1
                self.call(piece, index, position, piece.section_index, target)
            index += 2 if insn.is_ld_imm64() else 1
            if self.unrelocated:
                return index
        return index

    def subprogram(self, piece: ProgramSpec, index: int, section: int, target: int) -> int:
        sub = self.spec.subprogram_at(section, target)
        if sub is None:
            raise ObjectError(
                f"{self.what(piece, index)}: calls instruction {target} of section "
                f"{self.spec.sections.get(section, section)!r}, where no function starts"
            )
        return self.place(sub)

    def call(
        self, piece: ProgramSpec, index: int, position: int, section: int, target: int
    ) -> None:
        sub_start = self.subprogram(piece, index, section, target)
        insn = self.linked.insns[position]
        self.linked.insns[position] = insn.with_(src=PSEUDO_CALL, imm=sub_start - position - 1)

    def apply(self, piece: ProgramSpec, index: int, position: int, relocation: Relocation) -> None:
        insns = self.linked.insns
        insn = insns[position]
        symbol = relocation.symbol
        what = self.what(piece, index)
        if insn.is_call():
            if symbol.section_index == 0:
                self.kfunc(piece, index, position, symbol.name)
                return
            if insn.src != PSEUDO_CALL:
                raise ObjectError(f"{what}: relocation on a helper call to {symbol.name!r}")
            target = symbol.value // 8 + insn.imm + 1
            self.call(piece, index, position, symbol.section_index, target)
            return
        if not insn.is_ld_imm64() or position + 1 >= len(insns):
            raise ObjectError(
                f"{what}: relocation against {symbol.name or symbol.section!r} on an "
                "instruction that is neither a call nor a 64-bit load"
            )
        second = insns[position + 1]
        section = symbol.section
        if symbol.section_index == 0:
            self.extern(piece, index, position, symbol.name)
        elif section == ".maps":
            if symbol.name not in self.spec.maps:
                raise ObjectError(f"{what}: refers to {symbol.name!r}, which is not a map")
            insns[position] = insn.with_(src=PSEUDO_MAP_FD, imm=self.resolver.map_fd(symbol.name))
            insns[position + 1] = second.with_(imm=0)
            self.linked.map_refs.add(symbol.name)
            self.linked.map_slots.append((position, symbol.name))
        elif section in self.spec.datasecs:
            fd = self.resolver.data_map_fd(section)
            offset = insn.imm + symbol.value
            insns[position] = insn.with_(src=PSEUDO_MAP_VALUE, imm=fd)
            insns[position + 1] = second.with_(imm=offset)
            self.linked.map_refs.add(section)
            self.linked.map_slots.append((position, section))
        elif section == ARENA_SECTION and self.spec.arena is not None:
            # An __arena global: a value address in the arena map, past libbpf 1.7's offset.
            fd, base = self.resolver.arena()
            insns[position] = insn.with_(src=PSEUDO_MAP_VALUE, imm=fd)
            insns[position + 1] = second.with_(
                imm=_s32((base + insn.imm + symbol.value) & 0xFFFFFFFF)
            )
            self.linked.map_refs.add(ARENA_SECTION)
            self.linked.map_slots.append((position, self.spec.arena_map or ARENA_SECTION))
        elif symbol.section_index in {p.section_index for p in self.spec.subprograms.values()}:
            # The address of a function: a callback (bpf_loop, timers, for_each...).
            if symbol.type == "STT_FUNC":
                target = symbol.value // 8 + insn.imm // 8
            else:
                target = insn.imm // 8
            sub_start = self.subprogram(piece, index, symbol.section_index, target)
            insns[position] = insn.with_(src=PSEUDO_FUNC, imm=sub_start - position - 1)
            insns[position + 1] = second.with_(imm=0)
        else:
            raise ObjectError(
                f"{what}: relocation against {symbol.name or '(section)'} in section "
                f"{section!r}, which is neither a map, global data nor code"
            )

    def extern(self, piece: ProgramSpec, index: int, position: int, name: str) -> None:
        spec = self.spec.externs.get(name)
        what = self.what(piece, index)
        if spec is None:
            raise ObjectError(f"{what}: refers to undefined symbol {name!r}")
        value = self.resolver.extern(spec)
        insns = self.linked.insns
        insn, second = insns[position], insns[position + 1]
        if value.kind == "kconfig":
            fd = self.resolver.data_map_fd(".kconfig")
            insns[position] = insn.with_(src=PSEUDO_MAP_VALUE, imm=fd)
            insns[position + 1] = second.with_(imm=value.offset + insn.imm)
            self.linked.map_refs.add(".kconfig")
            self.linked.map_slots.append((position, ".kconfig"))
        elif value.kind in ("btf_var", "kfunc"):
            # A typed ksym, or a kfunc's address (``bpf_ksym_exists()``): its kernel BTF
            # id, and the module's BTF fd when a module defines it (libbpf's RELO_EXTERN_LD64).
            insns[position] = insn.with_(src=PSEUDO_BTF_ID, imm=value.btf_id)
            insns[position + 1] = second.with_(imm=value.btf_fd)
        elif value.kind == "addr":
            insns[position] = insn.with_(src=0, imm=_s32(value.address & 0xFFFFFFFF))
            insns[position + 1] = second.with_(imm=_s32(value.address >> 32))
        elif value.kind == "missing":
            insns[position] = insn.with_(src=0, imm=0)
            insns[position + 1] = second.with_(imm=0)
        else:
            raise ObjectError(f"{what}: extern {name!r} resolved to {value.kind!r}")

    def kfunc(self, piece: ProgramSpec, index: int, position: int, name: str) -> None:
        spec = self.spec.externs.get(name)
        what = self.what(piece, index)
        if spec is None or not spec.is_func:
            raise ObjectError(f"{what}: calls undefined function {name!r} (not a __ksym kfunc)")
        value = self.resolver.extern(spec)
        insn = self.linked.insns[position]
        if value.kind == "missing":  # unresolved __weak kfunc: dead code the verifier drops
            self.linked.insns[position] = insn.with_(
                src=0, dst=0, off=0, imm=POISON_CALL_KFUNC_BASE + value.index
            )
        elif value.kind == "kfunc":
            self.linked.insns[position] = insn.with_(
                src=PSEUDO_KFUNC_CALL, imm=value.btf_id, off=value.btf_fd_index
            )
        else:
            raise ObjectError(f"{what}: extern {name!r} is not a function")

    def collect_ext_info(self) -> None:
        ext = self.spec.btf_ext
        if ext is None:
            return
        for piece, start in self.linked.pieces:
            first, last = piece.insn_offset, piece.insn_offset + piece.insn_count
            for func in ext.func_info.get(piece.section, ()):
                if first <= func.insn < last:
                    self.linked.func_info.append((start + func.insn - first, func.type_id))
            for line in ext.line_info.get(piece.section, ()):
                if first <= line.insn < last:
                    self.linked.line_info.append(
                        (
                            start + line.insn - first,
                            line.file_name_off,
                            line.line_off,
                            line.line_col,
                        )
                    )
            for relo in ext.core_relos.get(piece.section, ()):
                if first <= relo.insn < last:
                    self.linked.core_relos.append((start + relo.insn - first, piece.section, relo))
        self.linked.func_info.sort()
        self.linked.line_info.sort()


def _s32(value: int) -> int:
    return value - (1 << 32) if value & 0x80000000 else value


def link_program(
    spec: ObjectSpec,
    main: ProgramSpec,
    resolver: Resolver,
    exception_callback: str | None = None,
) -> LinkedProgram:
    """The loadable instruction stream of ``main``, with everything it uses linked in
    (and ``exception_callback``, the sub-program of that name, if given)."""
    return _Linker(spec, main, resolver, exception_callback).link()
