"""Compatibility: moved to pylibbpf.spec.codec.

Kept so that code written against the flat layout keeps importing; new code imports
from the new place."""

from __future__ import annotations

from .spec.codec import Codec, CtypesCodec, IntCodec, codec_for

__all__ = [
    "Codec",
    "CtypesCodec",
    "IntCodec",
    "codec_for",
]
