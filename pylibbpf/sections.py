"""Compatibility: moved to pylibbpf.spec.sections.

Kept so that code written against the flat layout keeps importing; new code imports
from the new place."""

from __future__ import annotations

from .spec.sections import (
    ATTACH_BTF,
    FRAGS,
    SECTION_DEFS,
    SLEEPABLE,
    USDT,
    SectionDef,
    find_section_def,
)

__all__ = [
    "ATTACH_BTF",
    "FRAGS",
    "SECTION_DEFS",
    "SLEEPABLE",
    "USDT",
    "SectionDef",
    "find_section_def",
]
