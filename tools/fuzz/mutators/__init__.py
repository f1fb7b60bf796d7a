"""Structure-aware mutators over BPF objects and raw BTF.

Each mutator edits one kind of field: ELF header and section table entries, symbols,
relocations, instructions, section contents, BTF header and type records (kinds, vlen,
references, sizes, names, strings), type loops and deep or huge types appended to the
BTF, and ``.BTF.ext`` headers, record counts, records and CO-RE access strings. Values
come from a table of boundary values (0, 1, -1, 2^31, 2^32-1, the file size...) more
often than at random, which is what finds the off-by-ones and the unbounded allocations.

A mutator returns False when the input has nothing for it (no ``.BTF.ext``, say); the
caller then picks another. Everything is drawn from the ``random.Random`` given, so an
input is a pure function of the fuzzer seed and its index.
"""

from __future__ import annotations

import random
import struct

from ..elfview import BtfView, ElfView
from .base import Mutation, Mutator
from .btf import (
    btf_anon,
    btf_append_types,
    btf_datasec,
    btf_decl_tag,
    btf_enum,
    btf_func,
    btf_header,
    btf_int,
    btf_kind,
    btf_loop,
    btf_member,
    btf_name,
    btf_ref,
    btf_size,
    btf_string,
    btf_vlen,
)
from .elf import (
    bss_size,
    elf_header,
    insn,
    reloc_field,
    section_data,
    section_name,
    section_splice,
    shdr_field,
    symbol_field,
)
from .ext import ext_access, ext_count, ext_header, ext_rec_size, ext_record
from .generic import append, bitflip, byteset, chunk_copy, truncate, word32

OBJECT_MUTATORS: dict[str, tuple[Mutator, int]] = {
    "bitflip": (bitflip, 3),
    "byteset": (byteset, 2),
    "word32": (word32, 3),
    "chunk_copy": (chunk_copy, 1),
    "truncate": (truncate, 1),
    "append": (append, 1),
    "elf_header": (elf_header, 3),
    "shdr_field": (shdr_field, 6),
    "bss_size": (bss_size, 1),
    "section_name": (section_name, 3),
    "symbol_field": (symbol_field, 5),
    "reloc_field": (reloc_field, 5),
    "insn": (insn, 4),
    "section_data": (section_data, 4),
    "section_splice": (section_splice, 2),
    "btf_header": (btf_header, 2),
    "btf_kind": (btf_kind, 3),
    "btf_vlen": (btf_vlen, 2),
    "btf_ref": (btf_ref, 6),
    "btf_loop": (btf_loop, 4),
    "btf_size": (btf_size, 4),
    "btf_member": (btf_member, 4),
    "btf_name": (btf_name, 3),
    "btf_anon": (btf_anon, 3),
    "btf_string": (btf_string, 4),
    "btf_int": (btf_int, 2),
    "btf_enum": (btf_enum, 2),
    "btf_decl_tag": (btf_decl_tag, 1),
    "btf_datasec": (btf_datasec, 4),
    "btf_func": (btf_func, 2),
    "btf_append_types": (btf_append_types, 3),
    "ext_header": (ext_header, 2),
    "ext_count": (ext_count, 3),
    "ext_rec_size": (ext_rec_size, 2),
    "ext_record": (ext_record, 5),
    "ext_access": (ext_access, 4),
}

BTF_MUTATORS: dict[str, tuple[Mutator, int]] = {
    name: entry
    for name, entry in OBJECT_MUTATORS.items()
    if name.startswith("btf_")
    or name in ("bitflip", "byteset", "word32", "chunk_copy", "truncate", "append")
}


def mutate(
    rng: random.Random,
    seed: bytes,
    elf: ElfView | None,
    btf: BtfView | None,
    table: dict[str, tuple[Mutator, int]],
    donors: list[bytes],
) -> tuple[bytes, list[str]]:
    """Stack 1 to 5 mutators (fewer more often) on a copy of ``seed``."""
    m = Mutation(rng, bytearray(seed), elf, btf, donors)
    names = list(table)
    weights = [table[name][1] for name in names]
    wanted = 1
    while wanted < 5 and rng.random() < 0.45:
        wanted += 1
    attempts = 0
    while len(m.applied) < wanted and attempts < 20:
        attempts += 1
        name = rng.choices(names, weights)[0]
        try:
            applied = table[name][0](m)
        except (struct.error, IndexError, ValueError):
            applied = False  # an earlier mutation moved what this one aims at
        if applied:
            m.applied.append(name)
    return bytes(m.data), m.applied
