"""eBPF instructions as text, in the notation the verifier log and bpftool use.

``r0 = *(u32 *)(r1 +4)``, ``if r0 == 0x0 goto pc+3``, ``call bpf_map_lookup_elem#1``:
for ``pylibbpf prog dump xlated``, which prints what the kernel reports after loading, and
for reading instructions in tests. Pure: names of kernel functions (for calls in
translated programs) come from a resolver the caller passes in.
"""

from __future__ import annotations

from collections.abc import Callable

from .helpers import helper_name
from .insn import Alu, Class, Insn, Jmp, Mode, decode

_SIZES = {0x00: "u32", 0x08: "u16", 0x10: "u8", 0x18: "u64"}
_ALU_OPS = {
    Alu.ADD: "+=",
    Alu.SUB: "-=",
    Alu.MUL: "*=",
    Alu.DIV: "/=",
    Alu.OR: "|=",
    Alu.AND: "&=",
    Alu.LSH: "<<=",
    Alu.RSH: ">>=",
    Alu.MOD: "%=",
    Alu.XOR: "^=",
    Alu.MOV: "=",
    Alu.ARSH: "s>>=",
}
_JMP_OPS = {
    Jmp.JEQ: "==",
    Jmp.JGT: ">",
    Jmp.JGE: ">=",
    Jmp.JSET: "&",
    Jmp.JNE: "!=",
    Jmp.JSGT: "s>",
    Jmp.JSGE: "s>=",
    Jmp.JLT: "<",
    Jmp.JLE: "<=",
    Jmp.JSLT: "s<",
    Jmp.JSLE: "s<=",
}
_ATOMIC_OPS = {0x00: "+=", 0x40: "|=", 0x50: "&=", 0xA0: "^="}
PSEUDO_MAP_FD, PSEUDO_MAP_VALUE, PSEUDO_BTF_ID, PSEUDO_FUNC = 1, 2, 3, 4
PSEUDO_MAP_IDX, PSEUDO_MAP_IDX_VALUE = 5, 6
PSEUDO_CALL, PSEUDO_KFUNC_CALL = 1, 2

CallResolver = Callable[[int], str | None]


def disassemble(data: bytes, *, resolve_call: CallResolver | None = None) -> list[str]:
    """One line per instruction slot (``ld_imm64`` takes two: the second is blank)."""
    insns = decode(data)
    lines: list[str] = []
    index = 0
    while index < len(insns):
        insn = insns[index]
        if insn.is_ld_imm64() and index + 1 < len(insns):
            text = _ld_imm64(insn, insns[index + 1])
            lines.append(f"{index:>4}: ({insn.code:02x}) {text}")
            index += 2
            continue
        lines.append(f"{index:>4}: ({insn.code:02x}) {format_insn(insn, index, resolve_call)}")
        index += 1
    return lines


def format_insn(insn: Insn, index: int = 0, resolve_call: CallResolver | None = None) -> str:
    """One instruction as bpftool's ``dump xlated`` writes it."""
    cls = insn.code & 0x07
    if cls in (Class.ALU, Class.ALU64):
        return _alu(insn, cls == Class.ALU64)
    if cls in (Class.JMP, Class.JMP32):
        return _jmp(insn, index, cls == Class.JMP32, resolve_call)
    size = _SIZES[insn.code & 0x18]
    mode = insn.code & 0xE0
    if cls == Class.LDX:
        sign = "s" if mode == Mode.MEMSX else ""
        return f"r{insn.dst} = *({sign}{size} *)(r{insn.src} {insn.off:+d})"
    if cls == Class.STX and mode == Mode.ATOMIC:
        return _atomic(insn, size)
    if cls == Class.STX:
        return f"*({size} *)(r{insn.dst} {insn.off:+d}) = r{insn.src}"
    if cls == Class.ST:
        return f"*({size} *)(r{insn.dst} {insn.off:+d}) = {insn.imm}"
    if cls == Class.LD and mode in (Mode.ABS, Mode.IND):
        where = f"r{insn.src} + {insn.imm}" if mode == Mode.IND else str(insn.imm)
        return f"r0 = *({size} *)skb[{where}]"
    return f"(unknown instruction {insn.code:#04x})"


def _alu(insn: Insn, wide: bool) -> str:
    reg = "r" if wide else "w"
    op = insn.code & 0xF0
    source = f"{reg}{insn.src}" if insn.code & 0x08 else f"{insn.imm}"
    if op == Alu.NEG:
        return f"{reg}{insn.dst} = -{reg}{insn.dst}"
    if op == Alu.END:
        kind = "bswap" if wide else ("be" if insn.code & 0x08 else "le")
        return f"r{insn.dst} = {kind}{insn.imm} r{insn.dst}"
    if op == Alu.MOV and insn.off in (8, 16, 32) and insn.code & 0x08:
        return f"{reg}{insn.dst} = (s{insn.off}){reg}{insn.src}"
    symbol = _ALU_OPS.get(Alu(op)) if op in Alu._value2member_map_ else None
    if symbol is None:
        return f"(unknown alu {insn.code:#04x})"
    if op in (Alu.DIV, Alu.MOD) and insn.off == 1:
        symbol = "s" + symbol
    return f"{reg}{insn.dst} {symbol} {source}"


def _jmp(insn: Insn, index: int, narrow: bool, resolve_call: CallResolver | None) -> str:
    op = insn.code & 0xF0
    if op == Jmp.EXIT:
        return "exit"
    if op == Jmp.CALL:
        return _call(insn, index, resolve_call)
    if op == Jmp.JA:
        offset = insn.imm if narrow else insn.off  # gotol keeps a 32-bit offset in imm
        return f"goto pc{offset:+d}"
    reg = "w" if narrow else "r"
    other = f"{reg}{insn.src}" if insn.code & 0x08 else f"{insn.imm:#x}"
    symbol = _JMP_OPS.get(Jmp(op), "?") if op in Jmp._value2member_map_ else "?"
    return f"if {reg}{insn.dst} {symbol} {other} goto pc{insn.off:+d}"


def _call(insn: Insn, index: int, resolve_call: CallResolver | None) -> str:
    if insn.src == PSEUDO_CALL:
        return f"call pc{insn.imm:+d}"
    if insn.src == PSEUDO_KFUNC_CALL:
        return f"call kernel-function#{insn.imm}"
    name = resolve_call(insn.imm) if resolve_call is not None else None
    if name is None:
        name = helper_name(insn.imm)
    return f"call {name}#{insn.imm}"


def _atomic(insn: Insn, size: str) -> str:
    target = f"*({size} *)(r{insn.dst} {insn.off:+d})"
    width = "64" if size == "u64" else ""
    op = insn.imm & ~0x01
    if insn.imm == 0xF1:
        return f"r{insn.src} = atomic{width}_xchg({target}, r{insn.src})"
    if insn.imm == 0xF3:
        return f"r0 = atomic{width}_cmpxchg({target}, r0, r{insn.src})"
    names = {0x00: "add", 0x40: "or", 0x50: "and", 0xA0: "xor"}
    if op not in names:
        return f"(unknown atomic {insn.imm:#x})"
    if insn.imm & 0x01:  # BPF_FETCH: the old value comes back in src
        return f"r{insn.src} = atomic{width}_fetch_{names[op]}({target}, r{insn.src})"
    return f"lock {target} {_ATOMIC_OPS[op]} r{insn.src}"


def _ld_imm64(first: Insn, second: Insn) -> str:
    value = (first.imm & 0xFFFF_FFFF) | ((second.imm & 0xFFFF_FFFF) << 32)
    kind = first.src
    if kind in (PSEUDO_MAP_FD, PSEUDO_MAP_IDX):
        return f"r{first.dst} = map[id:{first.imm}]"
    if kind in (PSEUDO_MAP_VALUE, PSEUDO_MAP_IDX_VALUE):
        return f"r{first.dst} = map[id:{first.imm}][0]+{second.imm}"
    if kind == PSEUDO_BTF_ID:
        return f"r{first.dst} = btf_id {first.imm}"
    if kind == PSEUDO_FUNC:
        return f"r{first.dst} = func pc{first.imm:+d}"
    return f"r{first.dst} = {value:#x}"
