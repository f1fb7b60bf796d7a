"""Hand-assembled test programs (no compiler needed), shared by the kernel tests."""

from __future__ import annotations

import pylibbpf as bpf
from pylibbpf import insn
from pylibbpf.spec.insn import FP, R0, R1, R2, Alu, Jmp, Size


def counter(stats: bpf.Map, *, pid: int | None = None, ret: int = 0) -> bytes:
    """``stats[0] += 1`` (a u64 in an array map), only for ``pid`` if given; return ``ret``."""
    prologue: list[insn.Insn] = []
    if pid is not None:
        prologue = [
            insn.call("get_current_pid_tgid"),
            insn.alu64_imm(Alu.RSH, R0, 32),
            insn.jmp_imm(Jmp.JNE, R0, pid, 9),  # not our process: skip the 9-slot body
        ]
    body = [
        insn.st_mem(Size.W, FP, -4, 0),
        insn.mov64_reg(R2, FP),
        insn.alu64_imm(Alu.ADD, R2, -4),
        *insn.ld_map_fd(R1, stats.fd),
        insn.call("map_lookup_elem"),
        insn.jmp_imm(Jmp.JEQ, R0, 0, 2),
        insn.mov64_imm(R1, 1),
        insn.atomic_add(Size.DW, R0, R1, 0),
    ]
    return insn.assemble(prologue, body, insn.return_imm(ret))


def returning(value: int) -> bytes:
    return insn.assemble(insn.return_imm(value))


def long_failing_program(length: int) -> bytes:
    """``length`` valid instructions, then a read of an uninitialised register."""
    padding = [insn.mov64_imm(R1, i) for i in range(length)]
    return insn.assemble(padding, insn.mov64_reg(R0, R2), insn.exit_())
