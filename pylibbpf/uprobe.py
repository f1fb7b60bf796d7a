"""Compatibility: symbols moved to pylibbpf.spec.elfsym, attaching to pylibbpf.links.uprobe.

Kept so that code written against the flat layout keeps importing; new code imports
from the new place."""

from __future__ import annotations

from .links.uprobe import attach_uprobe, attach_uprobe_multi
from .spec.elfsym import LIBRARY_DIRS, ElfImage, find_binary, parse_target, read_image, resolve

__all__ = [
    "LIBRARY_DIRS",
    "ElfImage",
    "attach_uprobe",
    "attach_uprobe_multi",
    "find_binary",
    "parse_target",
    "read_image",
    "resolve",
]
