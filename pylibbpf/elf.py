"""Compatibility: moved to pylibbpf.spec.elf (the spec dataclasses to pylibbpf.spec.objspec).

Kept so that code written against the flat layout keeps importing; new code imports
from the new place."""

from __future__ import annotations

from .spec.elf import (
    DATA_PREFIXES,
    EM_BPF,
    R_BPF_64_32,
    R_BPF_64_64,
    R_BPF_64_ABS32,
    R_BPF_64_ABS64,
    R_BPF_64_NODYLD32,
    SHF_EXECINSTR,
    SHF_WRITE,
    parse_object,
)
from .spec.objspec import (
    PIN_BY_NAME,
    PIN_NONE,
    DataSectionSpec,
    ExternSpec,
    MapSpec,
    ObjectSpec,
    ProgramSpec,
    Relocation,
    StructOpsSpec,
    Symbol,
    object_name,
)

__all__ = [
    "DATA_PREFIXES",
    "EM_BPF",
    "PIN_BY_NAME",
    "PIN_NONE",
    "R_BPF_64_32",
    "R_BPF_64_64",
    "R_BPF_64_ABS32",
    "R_BPF_64_ABS64",
    "R_BPF_64_NODYLD32",
    "SHF_EXECINSTR",
    "SHF_WRITE",
    "DataSectionSpec",
    "ExternSpec",
    "MapSpec",
    "ObjectSpec",
    "ProgramSpec",
    "Relocation",
    "StructOpsSpec",
    "Symbol",
    "object_name",
    "parse_object",
]
