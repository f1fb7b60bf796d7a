"""eBPF instructions: encoding, decoding and a small builder for hand-written programs.

Used for programs built without a compiler (feature probes, tests, the demo) and by the
relocation code, which decodes an ELF section into ``Insn`` values and patches them.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterable, Iterator

from ..records import dataclass, replace
from .helpers import helper_id

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from .opcodes import Alu as Alu
    from .opcodes import Class as Class
    from .opcodes import Jmp as Jmp
    from .opcodes import Mode as Mode
    from .opcodes import Size as Size

INSN_SIZE = 8
_INSN = struct.Struct("<BBhi" if sys.byteorder == "little" else ">BBhi")


# The opcode parts the builders, the loader and CO-RE use, as plain ints (the kernel's
# names): the enums of :mod:`.opcodes` (``Class.LDX`` is ``BPF_LDX``) are built on first use.
BPF_LD = 0x00
BPF_LDX = 0x01
BPF_ST = 0x02
BPF_STX = 0x03
BPF_ALU = 0x04
BPF_JMP = 0x05
BPF_ALU64 = 0x07
BPF_W = 0x00
BPF_H = 0x08
BPF_B = 0x10
BPF_DW = 0x18
BPF_IMM = 0x00
BPF_MEM = 0x60
BPF_MEMSX = 0x80
BPF_ATOMIC = 0xC0
BPF_ADD = 0x00
BPF_MOV = 0xB0
BPF_JA = 0x00
BPF_CALL = 0x80
BPF_EXIT = 0x90

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
        return self.code == BPF_LD | BPF_DW | BPF_IMM

    def is_call(self) -> bool:
        """Whether this is a call (helper, kfunc or sub-program)."""
        return self.code == BPF_JMP | BPF_CALL

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
    return Insn(BPF_ALU64 | BPF_MOV | SRC_K, dst, 0, 0, imm)


def mov64_reg(dst: int, src: int) -> Insn:
    """``dst = src`` (64-bit)."""
    return Insn(BPF_ALU64 | BPF_MOV | SRC_X, dst, src)


def alu64_imm(op: Alu, dst: int, imm: int) -> Insn:
    """``dst op= imm`` (64-bit)."""
    return Insn(BPF_ALU64 | op | SRC_K, dst, 0, 0, imm)


def alu64_reg(op: Alu, dst: int, src: int) -> Insn:
    """``dst op= src`` (64-bit)."""
    return Insn(BPF_ALU64 | op | SRC_X, dst, src)


def ld_imm64(dst: int, value: int, src: int = 0) -> list[Insn]:
    """``dst = imm64`` (two instructions; ``src`` selects a pseudo value)."""
    value &= 0xFFFFFFFFFFFFFFFF
    first = Insn(BPF_LD | BPF_DW | BPF_IMM, dst, src, 0, value & 0xFFFFFFFF)
    return [first, Insn(0, 0, 0, 0, value >> 32)]


def ld_map_fd(dst: int, map_fd: int) -> list[Insn]:
    """``dst = map`` (a map fd the kernel turns into the map's address)."""
    return ld_imm64(dst, map_fd, PSEUDO_MAP_FD)


def ld_map_value(dst: int, map_fd: int, offset: int = 0) -> list[Insn]:
    """``dst = &map[0] + offset`` (direct value access)."""
    return ld_imm64(dst, (offset << 32) | map_fd, PSEUDO_MAP_VALUE)


def ldx_mem(size: Size, dst: int, src: int, off: int) -> Insn:
    """``dst = *(size *)(src + off)``."""
    return Insn(BPF_LDX | size | BPF_MEM, dst, src, off)


def stx_mem(size: Size, dst: int, src: int, off: int) -> Insn:
    """``*(size *)(dst + off) = src``."""
    return Insn(BPF_STX | size | BPF_MEM, dst, src, off)


def st_mem(size: Size, dst: int, off: int, imm: int) -> Insn:
    """``*(size *)(dst + off) = imm``."""
    return Insn(BPF_ST | size | BPF_MEM, dst, 0, off, imm)


def atomic_add(size: Size, dst: int, src: int, off: int) -> Insn:
    """``lock *(size *)(dst + off) += src``."""
    return Insn(BPF_STX | size | BPF_ATOMIC, dst, src, off, BPF_ADD)


def jmp_imm(op: Jmp, dst: int, imm: int, off: int) -> Insn:
    """``if dst op imm goto +off``."""
    return Insn(BPF_JMP | op | SRC_K, dst, 0, off, imm)


def jmp_reg(op: Jmp, dst: int, src: int, off: int) -> Insn:
    """``if dst op src goto +off``."""
    return Insn(BPF_JMP | op | SRC_X, dst, src, off)


def ja(off: int) -> Insn:
    """``goto +off``."""
    return Insn(BPF_JMP | BPF_JA, 0, 0, off)


def call(helper: int | str) -> Insn:
    """A helper call, by id or name."""
    return Insn(BPF_JMP | BPF_CALL, 0, 0, 0, helper_id(helper))


def exit_() -> Insn:
    """``exit``: return r0."""
    return Insn(BPF_JMP | BPF_EXIT)


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


_OPCODE_ENUMS = frozenset({"Alu", "Class", "Jmp", "Mode", "Size"})


def __getattr__(name: str) -> object:
    """The enums of :mod:`.opcodes` on first use (see there)."""
    if name in _OPCODE_ENUMS:
        from . import opcodes

        value = getattr(opcodes, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
