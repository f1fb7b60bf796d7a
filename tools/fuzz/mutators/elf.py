"""ELF mutators: header, section table, section names and contents, symbols,
relocations and instructions."""

from __future__ import annotations

from ..elfview import EHDR_FIELDS, REL_FIELDS, SHDR_FIELDS, SHT_NOBITS, SYM_FIELDS, read_elf
from .base import NASTY_NAMES, SECTION_NAMES, Mutation


def elf_header(m: Mutation) -> bool:
    if m.elf is None:
        return False
    name = m.rng.choice(list(EHDR_FIELDS))
    offset, size = EHDR_FIELDS[name]
    if m.rng.random() < 0.1:
        return m.put(m.rng.choice([4, 5, 6, 7]), 1, m.rng.choice([0, 1, 2, 3, 0xFF]))  # e_ident
    return m.put(offset, size, m.interesting(size))


def shdr_field(m: Mutation) -> bool:
    if m.elf is None or not m.elf.sections:
        return False
    section = m.rng.choice(m.elf.sections)
    name = m.rng.choice([*list(SHDR_FIELDS), "sh_size", "sh_offset", "sh_type"])
    offset, size = SHDR_FIELDS[name]
    current = m.get(section.header + offset, size)
    value = m.interesting(size)
    if name in ("sh_size", "sh_offset") and m.rng.random() < 0.4:
        value = current + m.rng.choice([-8, -4, -1, 1, 4, 8, 1 << 20, 1 << 31, 1 << 32])
    if name == "sh_type" and m.rng.random() < 0.7:
        value = m.rng.choice([0, 1, 2, 3, 4, 8, 9, 11, 0x6FFFFFF5, 0x6FFFFFF6])
    if name in ("sh_link", "sh_info") and m.rng.random() < 0.6:
        value = m.rng.randrange(len(m.elf.sections) + 2)
    return m.put(section.header + offset, size, value)


def bss_size(m: Mutation) -> bool:
    """A NOBITS section (.bss) claims a huge size: nothing in the file backs it."""
    if m.elf is None:
        return False
    candidates = [s for s in m.elf.sections if s.type == SHT_NOBITS or s.name.startswith(".data")]
    if not candidates:
        return False
    section = m.rng.choice(candidates)
    value = m.rng.choice([1 << 31, (1 << 32) - 1, 1 << 32, 1 << 40, (1 << 63) - 1, (1 << 64) - 1])
    return m.put(section.header + 32, 8, value)


def section_name(m: Mutation) -> bool:
    """Rename a section in place to a name the loader gives meaning to."""
    if m.elf is None or not m.elf.sections:
        return False
    shstrtab = m.elf.sections[m.get(62, 2)] if m.get(62, 2) < len(m.elf.sections) else None
    if shstrtab is None:
        return False
    section = m.rng.choice(m.elf.sections)
    start = shstrtab.offset + m.get(section.header, 4)
    end = m.data.find(b"\0", start)
    if end < 0:
        return False
    new = m.rng.choice(SECTION_NAMES)
    if m.rng.random() < 0.3:
        new = new + b"/" + m.rng.choice(NASTY_NAMES)
    new = new[: end - start]
    m.data[start:end] = new + b"\0" * (end - start - len(new))
    return True


def symbol_field(m: Mutation) -> bool:
    if m.elf is None or not m.elf.symbols:
        return False
    entry = m.rng.choice(m.elf.symbols)
    name = m.rng.choice([*list(SYM_FIELDS), "st_value", "st_size", "st_shndx"])
    offset, size = SYM_FIELDS[name]
    value = m.interesting(size)
    if name == "st_shndx" and m.rng.random() < 0.6:
        value = m.rng.choice([0, 0xFFF1, 0xFFF2, 0xFFFF, m.rng.randrange(len(m.elf.sections) + 2)])
    if name == "st_info" and m.rng.random() < 0.7:
        value = (m.rng.randrange(4) << 4) | m.rng.randrange(8)
    if name == "st_value" and m.rng.random() < 0.5:
        value = m.get(entry + 8, 8) + m.rng.choice([-8, -1, 1, 3, 4, 8, 1 << 20])
    return m.put(entry + offset, size, value)


def reloc_field(m: Mutation) -> bool:
    if m.elf is None or not m.elf.relocations:
        return False
    entry, _target = m.rng.choice(m.elf.relocations)
    name = m.rng.choice(list(REL_FIELDS))
    if name == "r_offset":
        current = m.get(entry, 8)
        value = (
            current + m.rng.choice([-8, -4, -1, 1, 2, 4, 8, 1 << 16])
            if m.rng.random() < 0.6
            else m.interesting(8)
        )
        return m.put(entry, 8, value)
    info = m.get(entry + 8, 8)
    symbol, kind = info >> 32, info & 0xFFFFFFFF
    roll = m.rng.random()
    if roll < 0.4:
        symbol = m.rng.randrange(len(m.elf.symbols) + 3)
    elif roll < 0.6:
        symbol = m.interesting(4)
    else:
        kind = m.rng.choice([0, 1, 2, 3, 4, 10, 255, m.interesting(4)])
    return m.put(entry + 8, 8, (symbol << 32) | kind)


def _exec_sections(m: Mutation) -> list[tuple[int, int]]:
    assert m.elf is not None
    out = []
    for section in m.elf.sections:
        flags = m.get(section.header + 8, 8)
        if section.type == 1 and flags & 4 and section.size >= 8:
            out.append((section.offset, section.size))
    return out


def insn(m: Mutation) -> bool:
    """Edit one instruction: opcode, registers, offset or immediate."""
    if m.elf is None:
        return False
    sections = _exec_sections(m)
    if not sections:
        return False
    start, size = m.rng.choice(sections)
    at = start + 8 * m.rng.randrange(size // 8)
    part = m.rng.randrange(5)
    if part == 0:
        return m.put(
            at,
            1,
            m.rng.choice(
                [0x18, 0x85, 0x95, 0x05, 0x07, 0xB7, 0x61, 0x79, 0x00, m.rng.getrandbits(8)]
            ),
        )
    if part == 1:
        return m.put(at + 1, 1, m.rng.getrandbits(8))
    if part == 2:
        return m.put(at + 2, 2, m.interesting(2))
    return m.put(at + 4, 4, m.interesting(4))


def section_data(m: Mutation) -> bool:
    """Words inside a data-like section (.maps, .data, .rodata, .struct_ops, license...)."""
    if m.elf is None:
        return False
    wanted = (".maps", ".data", ".rodata", ".struct_ops", "license", "version", ".kconfig")
    sections = [
        s for s in m.elf.sections if s.name.startswith(wanted) and s.type != SHT_NOBITS and s.size
    ]
    if not sections:
        return False
    section = m.rng.choice(sections)
    at = section.offset + m.rng.randrange(section.size)
    if m.rng.random() < 0.5:
        return m.put(at & ~3, 4, m.interesting(4))
    return m.put(at, 1, m.rng.getrandbits(8))


def section_splice(m: Mutation) -> bool:
    """Give a section another seed's content (or a slice of its own), appended at the
    end of the file: sizes and contents then disagree with everything else."""
    if m.elf is None or not m.elf.sections:
        return False
    section = m.rng.choice([s for s in m.elf.sections if s.index] or m.elf.sections)
    content = b""
    for donor in m.rng.sample(m.donors, min(3, len(m.donors))):
        view = read_elf(donor)
        other = view.section(section.name) if view else None
        if other is not None and other.type != SHT_NOBITS:
            content = donor[other.offset : other.offset + other.size]
            break
    if not content:
        own = bytes(m.data[section.offset : section.offset + section.size])
        content = own[: m.rng.randint(0, len(own))] if own else bytes(m.rng.randint(1, 64))
    m.data += b"\0" * (-len(m.data) % 8)
    offset = len(m.data)
    m.data += content
    return m.put(section.header + 24, 8, offset) and m.put(section.header + 32, 8, len(content))
