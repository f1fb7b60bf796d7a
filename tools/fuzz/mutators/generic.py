"""Byte-level mutators: they know nothing of the format, and find what structure misses."""

from __future__ import annotations

from .base import Mutation


def bitflip(m: Mutation) -> bool:
    if not m.data:
        return False
    for _ in range(m.rng.randint(1, 8)):
        position = m.rng.randrange(len(m.data) * 8)
        m.data[position // 8] ^= 1 << (position % 8)
    return True


def byteset(m: Mutation) -> bool:
    if not m.data:
        return False
    for _ in range(m.rng.randint(1, 4)):
        m.data[m.rng.randrange(len(m.data))] = m.rng.choice(
            [0, 1, 0x7F, 0x80, 0xFF, m.rng.getrandbits(8)]
        )
    return True


def word32(m: Mutation) -> bool:
    if len(m.data) < 4:
        return False
    return m.put(m.rng.randrange(0, len(m.data) - 3) & ~3, 4, m.interesting(4))


def chunk_copy(m: Mutation) -> bool:
    if len(m.data) < 8:
        return False
    length = m.rng.randint(1, min(64, len(m.data) // 2))
    source = m.rng.randrange(len(m.data) - length)
    target = m.rng.randrange(len(m.data) - length)
    m.data[target : target + length] = m.data[source : source + length]
    return True


def truncate(m: Mutation) -> bool:
    if len(m.data) < 2:
        return False
    cut = (
        len(m.data) - m.rng.randint(1, len(m.data) - 1)
        if m.rng.random() < 0.3
        else (len(m.data) - m.rng.randint(1, min(64, len(m.data) - 1)))
    )
    del m.data[cut:]
    return True


def append(m: Mutation) -> bool:
    m.data += bytes(m.rng.getrandbits(8) for _ in range(m.rng.randint(1, 64)))
    return True
