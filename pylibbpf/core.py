"""Compatibility: moved to pylibbpf.spec.core.

Kept so that code written against the flat layout keeps importing; new code imports
from the new place."""

from __future__ import annotations

from .spec.core import (
    MAX_SPEC_LEN,
    POISON_HELPER,
    CoreResolver,
    CoreResult,
    FieldInfo,
    patch,
    poison,
    relocate,
)
from .spec.core_types import essential_name, types_compatible, types_match

__all__ = [
    "MAX_SPEC_LEN",
    "POISON_HELPER",
    "CoreResolver",
    "CoreResult",
    "FieldInfo",
    "essential_name",
    "patch",
    "poison",
    "relocate",
    "types_compatible",
    "types_match",
]
