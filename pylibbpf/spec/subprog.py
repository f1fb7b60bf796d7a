"""Relocations that rewrite a program's instructions before loading (non-CO-RE half).

``link_program`` turns one entry point of an ``ObjectSpec`` into the instruction stream the
kernel gets: every sub-program it calls (directly, or as a callback for bpf_loop, timers,
…) appended once, call offsets fixed, and each ``ld_imm64``/call that names a map, a
global variable or an extern rewritten through a ``Resolver`` that knows the kernel-side
values (map fds, kconfig offsets, BTF ids, kallsyms addresses). func_info, line_info and
CO-RE records of every piece follow it to its new position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..btf.ext import CoreRelo
from ..errors import ObjectError
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


@dataclass(frozen=True)
class ExternValue:
    """How an extern resolved: a value in the .kconfig map, a kernel BTF object, an
    address, or nothing (an unresolved ``__weak`` extern)."""

    kind: str  # "kconfig", "btf_var", "kfunc", "addr", "missing"
    offset: int = 0  # kconfig: offset in the .kconfig map
    btf_id: int = 0
    btf_fd_index: int = 0  # 0 for vmlinux; index into fd_array for module BTF
    btf_fd: int = 0
    address: int = 0


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

    def code(self) -> bytes:
        """The instructions as bytes, for PROG_LOAD."""
        return b"".join(insn.encode() for insn in self.insns)


class _Linker:
    def __init__(self, spec: ObjectSpec, main: ProgramSpec, resolver: Resolver) -> None:
        self.spec = spec
        self.main = main
        self.resolver = resolver
        self.linked = LinkedProgram(insns=[])
        self.placed: dict[tuple[int, int], int] = {}

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
        return start

    def link(self) -> LinkedProgram:
        self.place(self.main)
        done = 0
        while done < len(self.linked.pieces):
            piece, start = self.linked.pieces[done]
            self.relocate_piece(piece, start)
            done += 1
        self.collect_ext_info()
        return self.linked

    def relocate_piece(self, piece: ProgramSpec, start: int) -> None:
        insns = self.linked.insns
        index = 0
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
        elif section in self.spec.datasecs:
            fd = self.resolver.data_map_fd(section)
            offset = insn.imm + symbol.value
            insns[position] = insn.with_(src=PSEUDO_MAP_VALUE, imm=fd)
            insns[position + 1] = second.with_(imm=offset)
            self.linked.map_refs.add(section)
        elif section == ARENA_SECTION and self.spec.arena is not None:
            # An __arena global: a value address in the arena map, past libbpf 1.7's offset.
            fd, base = self.resolver.arena()
            insns[position] = insn.with_(src=PSEUDO_MAP_VALUE, imm=fd)
            insns[position + 1] = second.with_(
                imm=_s32((base + insn.imm + symbol.value) & 0xFFFFFFFF)
            )
            self.linked.map_refs.add(ARENA_SECTION)
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
        elif value.kind == "btf_var":
            insns[position] = insn.with_(src=PSEUDO_BTF_ID, imm=value.btf_id)
            insns[position + 1] = second.with_(imm=value.btf_fd)
        elif value.kind == "addr":
            insns[position] = insn.with_(src=0, imm=_s32(value.address & 0xFFFFFFFF))
            insns[position + 1] = second.with_(imm=_s32(value.address >> 32))
        elif value.kind == "missing":
            insns[position] = insn.with_(src=0, imm=0)
            insns[position + 1] = second.with_(imm=0)
        else:
            raise ObjectError(f"{what}: extern {name!r} is a function, used as a value")

    def kfunc(self, piece: ProgramSpec, index: int, position: int, name: str) -> None:
        spec = self.spec.externs.get(name)
        what = self.what(piece, index)
        if spec is None or not spec.is_func:
            raise ObjectError(f"{what}: calls undefined function {name!r} (not a __ksym kfunc)")
        value = self.resolver.extern(spec)
        insn = self.linked.insns[position]
        if value.kind == "missing":  # unresolved __weak kfunc: dead code the verifier drops
            self.linked.insns[position] = insn.with_(src=PSEUDO_KFUNC_CALL, imm=0, off=0)
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


def link_program(spec: ObjectSpec, main: ProgramSpec, resolver: Resolver) -> LinkedProgram:
    """The loadable instruction stream of ``main``, with everything it uses linked in."""
    return _Linker(spec, main, resolver).link()
