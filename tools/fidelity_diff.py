"""Comparing what the kernel ended up with after libbpf's load and after pylibbpf's.

Instructions are the kernel's xlated stream, normalised so two loads of the same program
compare equal: map ids become the ordinal of their first use, and 64-bit immediates that
are kernel addresses (top byte 0xff) become 0.
"""

from __future__ import annotations

from typing import Any

Result = dict[str, Any]

_LD_IMM64 = 0x18
_PSEUDO_MAP_FD = 1
_PSEUDO_MAP_VALUE = 2


def normalise(hex_insns: str) -> list[tuple[int, int, int, int, int]]:
    """(code, dst, src, off, imm) per instruction, map ids and kernel addresses neutralised."""
    raw = bytes.fromhex(hex_insns)
    insns = []
    for at in range(0, len(raw) - len(raw) % 8, 8):
        code, regs = raw[at], raw[at + 1]
        off = int.from_bytes(raw[at + 2 : at + 4], "little", signed=True)
        imm = int.from_bytes(raw[at + 4 : at + 8], "little", signed=True)
        insns.append([code, regs & 0xF, regs >> 4, off, imm])
    ordinals: dict[int, int] = {}
    index = 0
    while index < len(insns):
        code, _, src, _, imm = insns[index]
        if code == _LD_IMM64 and index + 1 < len(insns):
            if src in (_PSEUDO_MAP_FD, _PSEUDO_MAP_VALUE):
                insns[index][4] = ordinals.setdefault(imm, len(ordinals))
            else:
                value = (imm & 0xFFFFFFFF) | ((insns[index + 1][4] & 0xFFFFFFFF) << 32)
                if value >> 56 == 0xFF:
                    insns[index][4] = insns[index + 1][4] = 0
            index += 2
            continue
        index += 1
    return [(c, d, s, o, i) for c, d, s, o, i in insns]


def first_difference(ours: str, theirs: str) -> int:
    """Index of the first normalised instruction that differs (or the shorter length)."""
    a, b = normalise(ours), normalise(theirs)
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return min(len(a), len(b))


def differences(ours: Result, theirs: Result) -> list[str]:
    """The compared facts on which pylibbpf's load and libbpf's disagree (empty: agree)."""
    if ours["ok"] != theirs["ok"]:
        return ["outcome"]
    if not ours["ok"]:
        return [] if ours.get("errno") == theirs.get("errno") else ["errno"]
    found = []
    a, b = ours.get("prog") or {}, theirs.get("prog") or {}
    if len(a.get("insns", "")) != len(b.get("insns", "")):
        found.append("insn_count")
    elif normalise(a.get("insns", "")) != normalise(b.get("insns", "")):
        found.append("insns")
    if a.get("map_names") != b.get("map_names"):
        found.append("map_names")
    if ours.get("maps_created") != theirs.get("maps_created"):
        found.append("maps_created")
    if a.get("type") != b.get("type"):
        found.append("prog_type")
    if a.get("name") != b.get("name"):
        found.append("prog_name")
    for fact in ("attach_btf_id", "gpl", "btf", "nr_func_info", "nr_line_info"):
        if a.get(fact) != b.get(fact):
            found.append(fact)
    return found
