"""BTF mutators: the header and every field of type records, names and strings, and
new records (loops, deep chains, huge and anonymous types) appended to the type section."""

from __future__ import annotations

import struct

from ..elfview import BTF_LAYOUT, REF_KINDS, BtfRecord, read_btf
from .base import NASTY_NAMES, Mutation


def _record(m: Mutation, kinds: set[int] | None = None) -> BtfRecord | None:
    if m.btf is None or not m.btf.records:
        return None
    records = m.btf.records if kinds is None else [r for r in m.btf.records if r.kind in kinds]
    return m.rng.choice(records) if records else None


def _some_id(m: Mutation, record: BtfRecord) -> int:
    assert m.btf is not None
    count = len(m.btf.records)
    return m.rng.choice(
        [
            record.type_id,  # itself: a loop
            m.rng.randint(1, max(count, 1)),
            m.rng.randint(1, max(count, 1)),
            0,
            count,
            count + 1,
            0x7FFFFFFF,
            0xFFFFFFFF,
        ]
    )


def btf_header(m: Mutation) -> bool:
    if m.btf is None:
        return False
    positions = [2, 3, 4, 8, 12, 16, 20, 0]
    if m.btf.header_len >= 32:  # the 7.1+ header: the layout section's offset and length
        positions += [24, 28, 24, 28]
    position = m.rng.choice(positions)
    size = 1 if position in (2, 3) else 2 if position == 0 else 4
    current = m.get(m.btf.start + position, size)
    value = m.interesting(size)
    if size == 4 and m.rng.random() < 0.5:
        value = current + m.rng.choice([-8, -4, -1, 1, 4, 8, 12, 1 << 20])
    return m.put(m.btf.start + position, size, value)


def btf_kind(m: Mutation) -> bool:
    record = _record(m)
    if record is None:
        return False
    info = m.get(record.offset + 4, 4)
    # Kinds 32-127 exist from 7.1 on (7-bit kinds): opaque with a layout section, else
    # an error.
    if m.rng.random() < 0.9:
        kind = m.rng.choice([*BTF_LAYOUT, 0, 20, 21, 31, 32, 40, 127])
    else:
        kind = m.rng.randrange(128)
    return m.put(record.offset + 4, 4, (info & ~(0x7F << 24)) | (kind << 24))


def btf_vlen(m: Mutation) -> bool:
    record = _record(m)
    if record is None:
        return False
    info = m.get(record.offset + 4, 4)
    vlen = m.rng.choice(
        [0, 1, record.vlen - 1, record.vlen + 1, 0xFFFF, 0x10000, 0xFFFFFF, m.rng.getrandbits(16)]
    )  # 24-bit vlens from 7.1 on
    return m.put(record.offset + 4, 4, (info & ~0xFFFFFF) | (vlen & 0xFFFFFF))


def _ref_fields(record: BtfRecord) -> list[int]:
    """File offsets of the type-id words of a record."""
    at = record.offset
    fields = [at + 8] if record.kind in REF_KINDS else []
    if record.kind == 3:
        fields += [at + 12, at + 16]
    elif record.kind in (4, 5):
        fields += [at + 12 + 12 * i + 4 for i in range(record.vlen)]
    elif record.kind == 13:
        fields += [at + 12 + 8 * i + 4 for i in range(record.vlen)]
    elif record.kind == 15:
        fields += [at + 12 + 12 * i for i in range(record.vlen)]
    return fields


def btf_ref(m: Mutation) -> bool:
    candidates = [r for r in (m.btf.records if m.btf else []) if _ref_fields(r)]
    if not candidates:
        return False
    record = m.rng.choice(candidates)
    return m.put(m.rng.choice(_ref_fields(record)), 4, _some_id(m, record))


def btf_loop(m: Mutation) -> bool:
    """Close a cycle: 1 to 3 records that refer to each other."""
    candidates = [r for r in (m.btf.records if m.btf else []) if _ref_fields(r)]
    if not candidates:
        return False
    ring = m.rng.sample(candidates, min(len(candidates), m.rng.randint(1, 3)))
    for index, record in enumerate(ring):
        target = ring[(index + 1) % len(ring)]
        m.put(m.rng.choice(_ref_fields(record)), 4, target.type_id)
    return True


def btf_size(m: Mutation) -> bool:
    record = _record(m, {1, 3, 4, 5, 6, 15, 16, 19})
    if record is None:
        return False
    big = [0, 1, 3, 7, 16, 1 << 20, 1 << 30, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]
    if record.kind == 3:  # nelems
        return m.put(record.offset + 20, 4, m.rng.choice([*big, m.interesting(4)]))
    return m.put(record.offset + 8, 4, m.rng.choice([*big, m.interesting(4)]))


def btf_member(m: Mutation) -> bool:
    record = _record(m, {4, 5})
    if record is None or not record.vlen:
        return False
    at = record.offset + 12 + 12 * m.rng.randrange(record.vlen) + 8
    roll = m.rng.random()
    if roll < 0.3:  # toggle kind_flag: offsets become bitfield encoded or not
        return m.put(record.offset + 4, 4, m.get(record.offset + 4, 4) ^ (1 << 31))
    if roll < 0.6:
        return m.put(at + 3, 1, m.rng.choice([0, 1, 7, 8, 31, 32, 33, 64, 65, 255]))
    return m.put(at, 4, m.interesting(4))


def _strings(m: Mutation) -> list[int]:
    assert m.btf is not None
    return m.btf.string_offsets(bytes(m.data))


def btf_name(m: Mutation) -> bool:
    record = _record(m)
    if record is None:
        return False
    assert m.btf is not None
    offsets = _strings(m)
    at = record.offset
    if record.kind in (4, 5, 6, 13, 19) and record.vlen and m.rng.random() < 0.5:
        per = 4 * BTF_LAYOUT[record.kind][1]
        at = record.offset + 12 + per * m.rng.randrange(record.vlen)
    choices = [0, m.btf.strings_len, m.btf.strings_len - 1, m.btf.strings_len + 100, 0xFFFFFFFF]
    if offsets:
        choices += [m.rng.choice(offsets), m.rng.choice(offsets) + 1]
    return m.put(at, 4, m.rng.choice(choices))


def btf_anon(m: Mutation) -> bool:
    """Unnamed members: a struct or union whose members (and their members) lose names."""
    record = _record(m, {4, 5})
    if record is None or not record.vlen:
        return False
    assert m.btf is not None
    by_id = {r.type_id: r for r in m.btf.records}
    todo, done = [record], 0
    while todo and done < 6:
        current = todo.pop()
        done += 1
        for index in range(current.vlen):
            entry = current.offset + 12 + 12 * index
            if m.rng.random() < 0.6:
                m.put(entry, 4, 0)
            inner = by_id.get(m.get(entry + 4, 4))
            if inner is not None and inner.kind in (4, 5):
                todo.append(inner)
    return True


def btf_string(m: Mutation) -> bool:
    """Names that are not identifiers, not UTF-8, or keywords; a missing terminator."""
    if m.btf is None or not m.btf.strings_len:
        return False
    offsets = _strings(m)
    if not offsets:
        return False
    start = m.btf.strings_start + m.rng.choice(offsets)
    end = m.data.find(b"\0", start, m.btf.strings_start + m.btf.strings_len)
    if end < 0:
        return False
    roll = m.rng.random()
    if roll < 0.1:
        m.data[end] = ord("A")  # run into the next string (or off the end)
        return True
    if roll < 0.4 and end > start:
        m.data[start + m.rng.randrange(end - start)] = m.rng.choice(
            [0xFF, 0x80, 0xC3, 0x20, 0x22, 0x0A, 0x2E, 0x3A]
        )
        return True
    new = m.rng.choice(NASTY_NAMES)[: end - start]
    m.data[start:end] = new + b"\0" * (end - start - len(new))
    return True


def btf_int(m: Mutation) -> bool:
    record = _record(m, {1})
    if record is None:
        return False
    encoding = m.rng.choice([0, 1, 2, 4, 8, 15])
    offset = m.rng.choice([0, 1, 7, 8, 63, 128, 255])
    bits = m.rng.choice([0, 1, 7, 8, 16, 31, 32, 33, 64, 65, 128, 255])
    if m.rng.random() < 0.5:
        return m.put(record.offset + 12, 4, (encoding << 24) | (offset << 16) | bits)
    return m.put(record.offset + 8, 4, m.rng.choice([0, 1, 2, 3, 4, 5, 8, 16, 17, 32, 0xFFFFFFFF]))


def btf_enum(m: Mutation) -> bool:
    record = _record(m, {6, 19})
    if record is None:
        return False
    roll = m.rng.random()
    if roll < 0.3:
        return m.put(record.offset + 4, 4, m.get(record.offset + 4, 4) ^ (1 << 31))
    if roll < 0.5 or not record.vlen:
        return m.put(record.offset + 8, 4, m.rng.choice([0, 1, 2, 3, 4, 8, 16, 0xFFFFFFFF]))
    per = 4 * BTF_LAYOUT[record.kind][1]
    at = record.offset + 12 + per * m.rng.randrange(record.vlen) + 4
    return m.put(at, 4, m.interesting(4))


def btf_decl_tag(m: Mutation) -> bool:
    record = _record(m, {17})
    if record is None:
        return False
    if m.rng.random() < 0.5:
        return m.put(
            record.offset + 12, 4, m.rng.choice([0, 1, 5, 0xFFFFFFFF, 0xFFFFFFFE, 0x7FFFFFFF])
        )
    assert m.btf is not None
    ints = [r for r in m.btf.records if r.kind in (1, 6, 2, 8, 3)]
    target = m.rng.choice(ints).type_id if ints else _some_id(m, record)
    return m.put(record.offset + 8, 4, target)


def btf_datasec(m: Mutation) -> bool:
    record = _record(m, {15})
    if record is None:
        return False
    if not record.vlen or m.rng.random() < 0.2:
        return m.put(record.offset + 8, 4, m.interesting(4))
    at = record.offset + 12 + 12 * m.rng.randrange(record.vlen)
    return m.put(at + m.rng.choice([0, 4, 8]), 4, m.interesting(4))


def btf_func(m: Mutation) -> bool:
    record = _record(m, {12, 13})
    if record is None:
        return False
    if record.kind == 12 and m.rng.random() < 0.5:
        info = m.get(record.offset + 4, 4)
        return m.put(record.offset + 4, 4, (info & ~0xFFFF) | m.rng.choice([0, 1, 2, 3, 4, 0xFFFF]))
    return m.put(record.offset + 8, 4, _some_id(m, record))


def _record_bytes(
    name: int, kind: int, vlen: int, third: int, rest: list[int], flag: bool = False
) -> bytes:
    info = (int(flag) << 31) | (kind << 24) | vlen
    words = [w & 0xFFFFFFFF for w in (name, info, third, *rest)]
    return struct.pack(f"<{len(words)}I", *words)


def _new_types(m: Mutation, first_id: int) -> list[bytes]:
    """Records for types no compiler writes, numbered from ``first_id``."""
    rng, n = m.rng, first_id
    shape = rng.choice(
        ["self_struct", "deep", "anon_nest", "huge", "decl_tag_int", "ptr_loop", "wide", "var_loop"]
    )
    if shape == "self_struct":  # a struct with a member of its own type (or an array of it)
        return [
            _record_bytes(0, 4, 1, 8, [0, n + 1, 0]),
            _record_bytes(0, 3, 0, 0, [n, n, 2]),
        ]
    if shape == "deep":  # a chain of typedef/const/array/struct far deeper than C writes
        kinds = [rng.choice([8, 10, 3, 4]) for _ in range(rng.choice([50, 120, 400, 2000]))]
        out = []
        for index, kind in enumerate(kinds):
            nxt = n + index + 1 if index + 1 < len(kinds) else 0
            if kind == 3:
                out.append(_record_bytes(0, 3, 0, 0, [nxt, nxt, 1]))
            elif kind == 4:
                out.append(_record_bytes(0, 4, 1, 4, [0, nxt, 0]))
            else:
                out.append(_record_bytes(0, kind, 0, nxt, []))
        return out
    if shape == "anon_nest":  # unions of anonymous unions of anonymous members
        depth = rng.randint(2, 6)
        out = []
        for index in range(depth):
            inner = n + index + 1 if index + 1 < depth else 0
            kind = rng.choice([4, 5])
            out.append(_record_bytes(0, kind, 2, 8, [0, inner, 0, 0, inner, 0]))
        return out
    if shape == "huge":  # a 2-4 GiB struct with one member at its end
        size = rng.choice([1 << 31, (1 << 32) - 1, 1 << 30])
        return [
            _record_bytes(0, 1, 0, 4, [32]),
            _record_bytes(0, 4, 1, size, [0, n, min((size - 4) * 8, 0xFFFFFFE0)]),
            _record_bytes(0, 3, 0, 0, [n, n, rng.choice([1 << 20, 0xFFFFFFFF])]),
        ]
    if shape == "decl_tag_int":
        return [
            _record_bytes(0, 1, 0, 4, [32]),
            _record_bytes(0, 17, 0, n, [rng.choice([0, 1, 0xFFFFFFFF, 5])]),
        ]
    if shape == "ptr_loop":
        return [
            _record_bytes(0, 2, 0, n + 1, []),
            _record_bytes(0, rng.choice([10, 9, 18, 2]), 0, n, []),
        ]
    if shape == "var_loop":
        return [_record_bytes(0, 14, 0, n, [1]), _record_bytes(0, 15, 1, 8, [n, 0, 8])]
    # wide: a struct whose many members all share one anonymous type (exponential walks)
    count = rng.choice([200, 2000])
    members: list[int] = []
    for index in range(count):
        members += [0, n + 1, index * 32]
    shared = _record_bytes(0, 5, 4, 4, [0, n + 2, 0] * 4)
    leaf = _record_bytes(0, 5, 4, 4, [0, 0, 0] * 4)
    return [_record_bytes(0, 4, count, count * 4, members), shared, leaf]


def btf_append_types(m: Mutation) -> bool:
    """Append new records (loops, deep chains, huge or anonymous types) and point an
    existing reference at them, so the object's maps, variables or functions reach them."""
    if m.btf is None:
        return False
    view = m.btf
    data = bytes(m.data)
    header = data[view.start : view.start + view.header_len]
    types = data[view.types_start : view.types_start + view.types_len]
    strings = data[view.strings_start : view.strings_start + view.strings_len]
    if len(header) < 24:
        return False
    first = len(view.records) + 1
    added = b"".join(_new_types(m, first))
    new_types = types + added
    new_header = bytearray(header)
    struct.pack_into("<IIII", new_header, 8, 0, len(new_types), len(new_types), len(strings))
    blob = bytes(new_header) + new_types + strings
    candidates = [r for r in view.records if _ref_fields(r)]
    if candidates:
        record = m.rng.choice(candidates)
        relative = m.rng.choice(_ref_fields(record)) - view.types_start
        patched = bytearray(blob)
        struct.pack_into("<I", patched, len(new_header) + relative, first)
        blob = bytes(patched)
    if m.elf is None:  # raw BTF: the blob is the input
        m.data[:] = blob
        m.btf = read_btf(bytes(m.data), 0, len(m.data))
        return True
    section = m.elf.section(".BTF")
    if section is None:
        return False
    m.data += b"\0" * (-len(m.data) % 8)
    offset = len(m.data)
    m.data += blob
    m.put(section.header + 24, 8, offset)
    m.put(section.header + 32, 8, len(blob))
    m.btf = read_btf(bytes(m.data), offset, len(blob))
    return True
