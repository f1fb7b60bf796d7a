"""Compatibility: moved to pylibbpf.spec.disasm.

Kept so that code written against the flat layout keeps importing; new code imports
from the new place."""

from __future__ import annotations

from .spec.disasm import CallResolver, disassemble, format_insn

__all__ = [
    "CallResolver",
    "disassemble",
    "format_insn",
]
