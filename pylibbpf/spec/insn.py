"""eBPF instructions: encoding, decoding and a small builder for hand-written programs.

Used for programs built without a compiler (feature probes, tests, the demo) and by the
relocation code, which decodes an ELF section into ``Insn`` values and patches them.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterable, Iterator
from enum import IntEnum

from ..records import dataclass, replace
from .helpers import helper_id

INSN_SIZE = 8
_INSN = struct.Struct("<BBhi" if sys.byteorder == "little" else ">BBhi")


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


SRC_K = 0x00
SRC_X = 0x08

# src_reg values of ld_imm64 and call instructions that the loader resolves.
PSEUDO_MAP_FD = 1
PSEUDO_MAP_VALUE = 2
PSEUDO_BTF_ID = 3
PSEUDO_FUNC = 4
PSEUDO_MAP_IDX = 5
PSEUDO_MAP_IDX_VALUE = 6
PSEUDO_CALL = 1
PSEUDO_KFUNC_CALL = 2

R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)
FP = R10


@dataclass(frozen=True, slots=True)
class Insn:
    """One 8-byte instruction; ``ld_imm64`` is two of these (the second has code 0)."""

    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0

    @property
    def cls(self) -> int:
        """The instruction's class."""
        return self.code & 0x07

    def is_ld_imm64(self) -> bool:
        """Whether this is the first half of a 64-bit immediate load."""
        return self.code == Class.LD | Size.DW | Mode.IMM

    def is_call(self) -> bool:
        """Whether this is a call (helper, kfunc or sub-program)."""
        return self.code == Class.JMP | Jmp.CALL

    def with_(self, **changes: int) -> Insn:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def encode(self) -> bytes:
        """The 8 bytes of ``struct bpf_insn`` (host byte order)."""
        regs = (
            (self.src << 4 | self.dst) if sys.byteorder == "little" else (self.dst << 4 | self.src)
        )
        return _INSN.pack(self.code, regs, self.off, _s32(self.imm))


def _s32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def decode(data: bytes) -> list[Insn]:
    """Instructions of a program section (length must be a multiple of 8)."""
    if len(data) % INSN_SIZE:
        raise ValueError(f"instruction data of {len(data)} bytes is not a multiple of 8")
    out = []
    little = sys.byteorder == "little"
    for code, regs, off, imm in _INSN.iter_unpack(data):
        dst, src = (regs & 0xF, regs >> 4) if little else (regs >> 4, regs & 0xF)
        out.append(Insn(code, dst, src, off, imm))
    return out


def assemble(*parts: Insn | Iterable[Insn]) -> bytes:
    """Concatenate instructions (or lists of them, as ld_imm64 builders return) to bytes."""
    return b"".join(insn.encode() for insn in _flatten(parts))


def _flatten(parts: Iterable[Insn | Iterable[Insn]]) -> Iterator[Insn]:
    for part in parts:
        if isinstance(part, Insn):
            yield part
        else:
            yield from part


# --------------------------------------------------------------------------- builders


def mov64_imm(dst: int, imm: int) -> Insn:
    """``dst = imm`` (64-bit)."""
    return Insn(Class.ALU64 | Alu.MOV | SRC_K, dst, 0, 0, imm)


def mov64_reg(dst: int, src: int) -> Insn:
    """``dst = src`` (64-bit)."""
    return Insn(Class.ALU64 | Alu.MOV | SRC_X, dst, src)


def alu64_imm(op: Alu, dst: int, imm: int) -> Insn:
    """``dst op= imm`` (64-bit)."""
    return Insn(Class.ALU64 | op | SRC_K, dst, 0, 0, imm)


def alu64_reg(op: Alu, dst: int, src: int) -> Insn:
    """``dst op= src`` (64-bit)."""
    return Insn(Class.ALU64 | op | SRC_X, dst, src)


def ld_imm64(dst: int, value: int, src: int = 0) -> list[Insn]:
    """``dst = imm64`` (two instructions; ``src`` selects a pseudo value)."""
    value &= 0xFFFFFFFFFFFFFFFF
    first = Insn(Class.LD | Size.DW | Mode.IMM, dst, src, 0, value & 0xFFFFFFFF)
    return [first, Insn(0, 0, 0, 0, value >> 32)]


def ld_map_fd(dst: int, map_fd: int) -> list[Insn]:
    """``dst = map`` (a map fd the kernel turns into the map's address)."""
    return ld_imm64(dst, map_fd, PSEUDO_MAP_FD)


def ld_map_value(dst: int, map_fd: int, offset: int = 0) -> list[Insn]:
    """``dst = &map[0] + offset`` (direct value access)."""
    return ld_imm64(dst, (offset << 32) | map_fd, PSEUDO_MAP_VALUE)


def ldx_mem(size: Size, dst: int, src: int, off: int) -> Insn:
    """``dst = *(size *)(src + off)``."""
    return Insn(Class.LDX | size | Mode.MEM, dst, src, off)


def stx_mem(size: Size, dst: int, src: int, off: int) -> Insn:
    """``*(size *)(dst + off) = src``."""
    return Insn(Class.STX | size | Mode.MEM, dst, src, off)


def st_mem(size: Size, dst: int, off: int, imm: int) -> Insn:
    """``*(size *)(dst + off) = imm``."""
    return Insn(Class.ST | size | Mode.MEM, dst, 0, off, imm)


def atomic_add(size: Size, dst: int, src: int, off: int) -> Insn:
    """``lock *(size *)(dst + off) += src``."""
    return Insn(Class.STX | size | Mode.ATOMIC, dst, src, off, Alu.ADD)


def jmp_imm(op: Jmp, dst: int, imm: int, off: int) -> Insn:
    """``if dst op imm goto +off``."""
    return Insn(Class.JMP | op | SRC_K, dst, 0, off, imm)


def jmp_reg(op: Jmp, dst: int, src: int, off: int) -> Insn:
    """``if dst op src goto +off``."""
    return Insn(Class.JMP | op | SRC_X, dst, src, off)


def ja(off: int) -> Insn:
    """``goto +off``."""
    return Insn(Class.JMP | Jmp.JA, 0, 0, off)


def call(helper: int | str) -> Insn:
    """A helper call, by id or name."""
    return Insn(Class.JMP | Jmp.CALL, 0, 0, 0, helper_id(helper))


def exit_() -> Insn:
    """``exit``: return r0."""
    return Insn(Class.JMP | Jmp.EXIT)


def return_imm(value: int) -> list[Insn]:
    """``r0 = value; exit`` — the smallest valid program."""
    return [mov64_imm(R0, value), exit_()]


def program_digest(code: bytes) -> bytes:
    """The SHA-256 the kernel computes over a program at load (Linux 6.18; its tag is the
    first 8 bytes): the instructions with every map reference (``ld_imm64`` of a map fd
    or value, both immediates) zeroed, so it does not depend on fd numbers. An exclusive
    map names the one program allowed to use it by this digest."""
    insns = decode(code)
    index = 0
    while index < len(insns):
        insn = insns[index]
        if insn.is_ld_imm64() and index + 1 < len(insns):
            if insn.src in (PSEUDO_MAP_FD, PSEUDO_MAP_VALUE):
                insns[index] = insn.with_(imm=0)
                insns[index + 1] = insns[index + 1].with_(imm=0)
            index += 2
            continue
        index += 1
    import hashlib  # here: loading OpenSSL costs more than the rest of this module

    return hashlib.sha256(b"".join(insn.encode() for insn in insns)).digest()
