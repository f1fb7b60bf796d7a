"""Compatibility: moved to pylibbpf.spec.disasm.

Kept so that code written against the flat layout keeps importing; new code imports
from the new place."""

from __future__ import annotations

from .spec.disasm import (
    PSEUDO_BTF_ID,
    PSEUDO_CALL,
    PSEUDO_FUNC,
    PSEUDO_KFUNC_CALL,
    PSEUDO_MAP_FD,
    PSEUDO_MAP_IDX,
    PSEUDO_MAP_IDX_VALUE,
    PSEUDO_MAP_VALUE,
    CallResolver,
    disassemble,
    format_insn,
)

__all__ = [
    "PSEUDO_BTF_ID",
    "PSEUDO_CALL",
    "PSEUDO_FUNC",
    "PSEUDO_KFUNC_CALL",
    "PSEUDO_MAP_FD",
    "PSEUDO_MAP_IDX",
    "PSEUDO_MAP_IDX_VALUE",
    "PSEUDO_MAP_VALUE",
    "CallResolver",
    "disassemble",
    "format_insn",
]
