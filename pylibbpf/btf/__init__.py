"""BTF: the BPF type format — parsing, lookups, encoding, C and ctypes output."""

from __future__ import annotations

from .parse import Btf
from .types import EnumValue, Kind, Member, Param, Type, VarSecinfo

__all__ = ["Btf", "EnumValue", "Kind", "Member", "Param", "Type", "VarSecinfo"]
