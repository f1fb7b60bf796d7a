"""Compatibility: moved to pylibbpf.syscall.fd.

Kept so that code written against the flat layout keeps importing; new code imports
from the new place."""

from __future__ import annotations

from .syscall.fd import Closing, OwnedFd

__all__ = [
    "Closing",
    "OwnedFd",
]
