"""Compatibility: notes moved to pylibbpf.spec.usdt, attaching to pylibbpf.links.usdt.

Kept so that code written against the flat layout keeps importing; new code imports
from the new place."""

from __future__ import annotations

from .links.usdt import attach_usdt
from .spec.usdt import SPECS_MAP, UsdtArg, UsdtNote, parse_args, read_notes

__all__ = [
    "SPECS_MAP",
    "UsdtArg",
    "UsdtNote",
    "attach_usdt",
    "parse_args",
    "read_notes",
]
