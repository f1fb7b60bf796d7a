"""``.BTF.ext`` mutators: header, record sizes and counts, records, CO-RE access strings."""

from __future__ import annotations

from .base import ACCESS_STRINGS, Mutation


def _ext_blocks(m: Mutation) -> list[tuple[int, int, list[tuple[int, int, int]]]]:
    """(rec_size offset, rec_size, [(section header offset, count, records offset)])."""
    if m.elf is None or m.elf.btf_ext is None:
        return []
    start, size = m.elf.btf_ext.offset, m.elf.btf_ext.size
    if size < 24:
        return []
    hdr_len = m.get(start + 4, 4)
    pairs = [
        (m.get(start + 8, 4), m.get(start + 12, 4)),
        (m.get(start + 16, 4), m.get(start + 20, 4)),
    ]
    if hdr_len >= 32:
        pairs.append((m.get(start + 24, 4), m.get(start + 28, 4)))
    blocks = []
    for off, length in pairs:
        at, end = start + hdr_len + off, start + hdr_len + off + length
        if not length or end > start + size:
            continue
        rec_size = m.get(at, 4)
        sections, position = [], at + 4
        while position + 8 <= end and rec_size:
            count = m.get(position + 4, 4)
            sections.append((position, count, position + 8))
            position += 8 + count * rec_size
        blocks.append((at, rec_size, sections))
    return blocks


def ext_header(m: Mutation) -> bool:
    if m.elf is None or m.elf.btf_ext is None:
        return False
    start = m.elf.btf_ext.offset
    position = m.rng.choice([0, 2, 4, 8, 12, 16, 20, 24, 28])
    size = 2 if position == 0 else 1 if position == 2 else 4
    current = m.get(start + position, size)
    value = (
        m.interesting(size)
        if m.rng.random() < 0.5
        else current + m.rng.choice([-8, -4, -1, 4, 8, 16])
    )
    return m.put(start + position, size, value)


def ext_count(m: Mutation) -> bool:
    blocks = _ext_blocks(m)
    sections = [s for _, _, secs in blocks for s in secs]
    if not sections:
        return False
    header, count, _ = m.rng.choice(sections)
    if m.rng.random() < 0.3:
        return m.put(header, 4, m.rng.choice([0, 1, 0xFFFFFFFF, m.interesting(4)]))  # sec_name_off
    value = m.rng.choice([0, 1, count - 1, count + 1, 0x7FFFFFFF, 0xFFFFFFFF, m.interesting(4)])
    return m.put(header + 4, 4, value)


def ext_rec_size(m: Mutation) -> bool:
    blocks = _ext_blocks(m)
    if not blocks:
        return False
    at, rec_size, _ = m.rng.choice(blocks)
    return m.put(at, 4, m.rng.choice([0, 4, 7, 8, 12, 16, 20, 24, rec_size * 2, 0xFFFFFFFF]))


def ext_record(m: Mutation) -> bool:
    blocks = [(b, s) for b in _ext_blocks(m) for s in b[2] if s[1]]
    if not blocks:
        return False
    (_, rec_size, _), (_, count, records) = m.rng.choice(blocks)
    at = (
        records
        + rec_size * m.rng.randrange(min(count, 4096))
        + 4 * m.rng.randrange(max(rec_size // 4, 1))
    )
    value = m.interesting(4)
    if m.rng.random() < 0.4:
        value = m.rng.choice([0, 1, 2, 3, 7, 8, 9, 12, 13, 15, 0xFFFFFFFF])  # kinds, small ids
    return m.put(at, 4, value)


def ext_access(m: Mutation) -> bool:
    """Rewrite a CO-RE access string (in .BTF's strings) in place."""
    if m.btf is None:
        return False
    strings = m.btf.strings_start
    blob = bytes(m.data[strings : strings + m.btf.strings_len])
    spots = [i + 1 for i in range(len(blob) - 2) if blob[i] == 0 and blob[i + 1 : i + 2].isdigit()]
    if not spots:
        return False
    start = strings + m.rng.choice(spots)
    end = m.data.find(b"\0", start)
    new = m.rng.choice(ACCESS_STRINGS)
    if len(new) > end - start:
        # Longer than the old one: it overwrites the strings after it (that is fine).
        end = min(start + len(new), strings + m.btf.strings_len - 1)
        new = new[: end - start]
    m.data[start:end] = new + b"\0" * (end - start - len(new))
    return True
