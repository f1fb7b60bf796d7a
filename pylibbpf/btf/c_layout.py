"""Where a C compiler puts struct members, and what a C dump adds so it puts them where
BTF says: padding members, bitfield placement, ``packed``. Pure arithmetic on bit offsets
for ``dump_c``, which gives each member's type as ``MemberFacts``."""

from __future__ import annotations

from collections.abc import Callable, Iterable

# What a struct body needs of a member's type (``CDumper._facts``): 8 x its alignment
# (8 if none), its size in bits (0 if none), the text before and after a member name
# (with the indent and the ';'), the member without a name; then the exact alignment
# (None if none), the suffix alone, and the most a member of it adds to a body.
MemberFacts = tuple[int, int, str, str, str, int | None, str, int]

_PAD_UNITS = ((64, "long"), (32, "int"), (16, "short"), (8, "char"))
# A gap wider than this is one named char array, not a line per 8 bytes: the text stays
# small for any struct size (vmlinux's widest gap, a page, still gets bitfield lines).
_COMPACT_PAD_BYTES = 4096


def round_up(value: int, multiple: int) -> int:
    return value if multiple <= 1 else -(-value // multiple) * multiple


def is_packed(
    members: list[MemberFacts], offsets: Iterable[int], has_bitfields: bool, size: int
) -> tuple[bool, int | None]:
    """Whether a member sits off its natural alignment or the size is not a multiple of
    the alignment (only ``packed`` explains that), and the struct's natural alignment
    (None if a member has none)."""
    max_align, aligned, packed = 8, True, False
    for facts, offset in zip(members, offsets, strict=True):
        align8 = facts[0]
        if align8 > max_align:
            max_align = align8
        if facts[5] is None:
            aligned = False
        if has_bitfields:
            if not offset >> 24 and (offset & 0xFFFFFF) % align8:
                packed = True
        elif offset % align8:
            packed = True
    return packed or (8 * size) % max_align != 0, max_align // 8 if aligned else None


def bitfield_members(
    is_struct: bool,
    names: Iterable[str],
    members: list[MemberFacts],
    offsets: Iterable[int],
    packed: bool,
    lines: list[str],
    pad: str,
    taken: Callable[[], set[str]],
) -> int:
    """A struct body's member lines when some are bitfields (offsets carry their widths),
    with the padding before any a compiler would place earlier, appended to ``lines``;
    returns the bits laid out. ``taken``: the member names, for a padding array's."""
    position = 0
    for name, facts, offset in zip(names, members, offsets, strict=True):
        align8, size8, left, right, bare_line, _, suffix, _ = facts
        bitfield_size, bit_offset = offset >> 24, offset & 0xFFFFFF
        if is_struct:
            # Where a C compiler would put the member after ``position`` bits.
            if bitfield_size:
                unit = size8 or 8
                natural = position
                if not packed:
                    start = position - position % unit
                    if position + bitfield_size > start + unit:
                        natural = start + unit
            elif packed:
                natural = (position + 7) & ~7
            else:
                natural = (position + align8 - 1) // align8 * align8
            if bit_offset > natural:
                lines += [pad + p for p in padding(position, bit_offset, taken)]
                position = bit_offset
        if bitfield_size:
            text = left + name + suffix if name else bare_line[:-1]  # (less its ';')
            lines.append(f"{text}: {bitfield_size};")
            end = bit_offset + bitfield_size
        else:
            lines.append(left + name + right if name else bare_line)
            end = bit_offset + size8
        if end > position:
            position = end
    return position


def padding(start: int, end: int, taken: Callable[[], set[str]]) -> list[str]:
    """Members covering bits [start, end) without adding alignment: anonymous bitfields,
    or one char array (named clear of the ``taken`` member names) for a gap too wide to
    spell out."""
    out = []
    position = start
    if position % 8:
        bits = min(8 - position % 8, end - position)
        out.append(f"char: {bits};")
        position += bits
    whole_bytes = (end - position) // 8
    if whole_bytes > _COMPACT_PAD_BYTES:
        names = taken()
        name = f"__pad_{position // 8}"
        while name in names:
            name += "_"
        out.append(f"char {name}[{whole_bytes}];")
        position += 8 * whole_bytes
        if position < end:
            out.append(f"char: {end - position};")
        return out
    while position < end:
        for unit, unit_name in _PAD_UNITS:
            if position % unit == 0 and end - position >= unit:
                out.append(f"{unit_name}: {unit};")
                position += unit
                break
        else:
            bits = end - position
            out.append(f"char: {bits};")
            position += bits
    return out
