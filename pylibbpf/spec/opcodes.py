"""The opcode fields of eBPF instructions as enums (``Alu.ADD``, ``Jmp.CALL``…), for
code that builds or shows instructions by name (the builders' callers, the disassembler).

Apart from :mod:`pylibbpf.spec.insn`, which names them on first use: opening and loading
an object decode and patch instructions with the plain ints there (``BPF_LDX``,
``BPF_MEM``…), so they do not pay for these classes.
"""

from __future__ import annotations

from enum import IntEnum


class Class(IntEnum):
    """Instruction classes (the low three bits of the opcode)."""

    LD = 0x00
    LDX = 0x01
    ST = 0x02
    STX = 0x03
    ALU = 0x04
    JMP = 0x05
    JMP32 = 0x06
    ALU64 = 0x07


class Size(IntEnum):
    """Memory access sizes."""

    W = 0x00
    H = 0x08
    B = 0x10
    DW = 0x18


class Mode(IntEnum):
    """Load/store modes."""

    IMM = 0x00
    ABS = 0x20
    IND = 0x40
    MEM = 0x60
    MEMSX = 0x80
    ATOMIC = 0xC0


class Alu(IntEnum):
    """ALU operations."""

    ADD = 0x00
    SUB = 0x10
    MUL = 0x20
    DIV = 0x30
    OR = 0x40
    AND = 0x50
    LSH = 0x60
    RSH = 0x70
    NEG = 0x80
    MOD = 0x90
    XOR = 0xA0
    MOV = 0xB0
    ARSH = 0xC0
    END = 0xD0


class Jmp(IntEnum):
    """Jump operations."""

    JA = 0x00
    JEQ = 0x10
    JGT = 0x20
    JGE = 0x30
    JSET = 0x40
    JNE = 0x50
    JSGT = 0x60
    JSGE = 0x70
    CALL = 0x80
    EXIT = 0x90
    JLT = 0xA0
    JLE = 0xB0
    JSLT = 0xC0
    JSLE = 0xD0
