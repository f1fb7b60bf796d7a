"""Compatibility: moved to pylibbpf.spec.helpers.

Kept so that code written against the flat layout keeps importing; new code imports
from the new place."""

from __future__ import annotations

from .spec.helpers import HELPER_NAMES, helper_id, helper_name

__all__ = [
    "HELPER_NAMES",
    "helper_id",
    "helper_name",
]
