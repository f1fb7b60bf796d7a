"""The BTF header and the kind layout section (Linux 7.1+), and how long a record is.

What this module relies on (``include/uapi/linux/btf.h`` as of Linux 7.1; the kernel's
``btf_parse_layout_sec`` and libbpf's layout support, April 2026):

- The header grew from 24 to 32 bytes: after ``str_off``/``str_len`` (bytes 16-23) come
  ``layout_off`` and ``layout_len`` (bytes 24-27 and 28-31), offsets relative to the end
  of the header like the others. A ``hdr_len`` below 32 means there is no layout section,
  and so does ``layout_len`` 0.
- The layout section is an array of 4-byte ``struct btf_layout`` entries indexed by kind
  number: a u8 ``info_sz`` (bytes after the 12-byte common record header), a u8
  ``elem_sz`` (bytes per vlen element) and a u16 ``flags`` (unused so far). A record of
  kind K is ``12 + info_sz + vlen * elem_sz`` bytes. It may hold fewer entries than there
  are kinds (libbpf's own feature probe sends two); libbpf writes one per kind it knows,
  4-byte aligned, between the types and the strings.
- The kernel refuses a ``layout_off`` that is not 4-byte aligned, a ``layout_len`` that
  is not a whole number of entries, a section past the end of the data, and sections that
  overlap.
- In the record's info word the kind widened from bits 24-28 to 24-30 (``BTF_MAX_KIND``
  0x7f) and vlen from bits 0-15 to 0-23 (``BTF_MAX_VLEN`` 0xffffff), in unused bits, with
  no version bump. Kernels before 7.1 refuse both (and any non-zero header tail).

Decisions of this library where the sources say nothing: kinds it knows are decoded by
their definition whatever the layout says of them (libbpf, too, consults the layout only
for kinds it does not know); a layout entry is used only for a kind it does not know, and
must give whole 4-byte words (every BTF record is word-aligned); kind 0 stays invalid.
"""

from __future__ import annotations

import mmap
import struct
from collections import namedtuple

from ..errors import ObjectError
from ..records import dataclass
from .types import MAX_KIND, MAX_KIND_NUMBER, MAX_VLEN, Kind

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import NamedTuple

BTF_MAGIC = 0xEB9F
HEADER = struct.Struct("HBBIIIII")  # magic, version, flags, hdr_len, type/str off+len
HEADER_SIZE = 24
LAYOUT_FIELDS = struct.Struct("II")  # layout_off, layout_len: header bytes 24-31
LAYOUT_HEADER_SIZE = HEADER_SIZE + LAYOUT_FIELDS.size
ENTRY = struct.Struct("BBH")  # struct btf_layout: info_sz, elem_sz, flags

# Words after the 3-word common header: fixed part, and per-vlen part (keyed by kind: a
# ``Kind`` member or its number finds the same entry, an ``IntEnum`` hashing as its int).
FIXED_WORDS: dict[int, int] = {Kind.INT: 1, Kind.ARRAY: 3, Kind.VAR: 1, Kind.DECL_TAG: 1}
VLEN_WORDS: dict[int, int] = {
    Kind.STRUCT: 3,
    Kind.UNION: 3,
    Kind.ENUM: 2,
    Kind.FUNC_PROTO: 2,
    Kind.DATASEC: 3,
    Kind.ENUM64: 3,
}


if TYPE_CHECKING:

    class KindLayout(NamedTuple):
        info_size: int  # bytes after the 12-byte common header
        elem_size: int  # bytes per vlen element
        flags: int = 0

else:  # the same class from collections, as typing.NamedTuple makes it (typing unimported)
    KindLayout = namedtuple("KindLayout", ["info_size", "elem_size", "flags"], defaults=[0])
KindLayout.__doc__ = (
    "One ``struct btf_layout``: the sizes of a kind's record beyond the common header."
)


# The layout of every kind this library knows, as an encoder describes it (kind 0 too:
# libbpf's entries start there).
KNOWN_LAYOUT = tuple(
    KindLayout(4 * FIXED_WORDS.get(kind, 0), 4 * VLEN_WORDS.get(kind, 0))
    for kind in range(MAX_KIND + 1)
)

# The same by kind number (``Kind(number)`` is a call into the enum machinery, and the
# walk over a BTF computes a length for most of its records).
_FIXED_BY_NUMBER = tuple(FIXED_WORDS.get(kind, 0) for kind in range(MAX_KIND + 1))
_VLEN_BY_NUMBER = tuple(VLEN_WORDS.get(kind, 0) for kind in range(MAX_KIND + 1))

# info word -> record length in words, shared by every BTF (a pure function of info for
# the kinds this library knows; a layout-described kind is per BTF and never cached here).
STEP: dict[int, int] = {}


def record_words(info: int) -> int | None:
    """Length in 4-byte words of a record with this info word; None for unknown kinds."""
    step = STEP.get(info)
    if step is None:
        step = known_record_words(info)
        if step is not None:
            STEP[info] = step
    return step


def known_record_words(info: int) -> int | None:
    """Length in words of a record of a kind this library knows (uncached); None else."""
    kind = (info >> 24) & MAX_KIND_NUMBER
    if kind == 0 or kind > MAX_KIND:
        return None
    return 3 + _FIXED_BY_NUMBER[kind] + _VLEN_BY_NUMBER[kind] * (info & MAX_VLEN)


def layout_record_words(info: int, layout: tuple[KindLayout, ...] | None) -> int | None:
    """Length in words of a record of a kind only the layout section describes; None if
    it does not describe it. Raises ``ValueError`` (with the reason) for entries that do
    not give whole words."""
    kind = (info >> 24) & MAX_KIND_NUMBER
    if layout is None or kind == 0 or kind >= len(layout):
        return None
    entry = layout[kind]
    if entry.info_size % 4 or entry.elem_size % 4:
        raise ValueError(
            f"the layout section gives kind {kind} {entry.info_size}-byte info and "
            f"{entry.elem_size}-byte elements, not whole 4-byte words"
        )
    return 3 + entry.info_size // 4 + entry.elem_size // 4 * (info & MAX_VLEN)


@dataclass(frozen=True)
class Header:
    """A BTF header, checked against the data it heads."""

    byteorder: str  # "little" or "big"
    version: int
    flags: int
    hdr_len: int
    type_off: int
    type_len: int
    str_off: int
    str_len: int
    layout_off: int = 0
    layout_len: int = 0

    @property
    def order(self) -> str:
        """The ``struct`` byte-order prefix of this BTF."""
        return "<" if self.byteorder == "little" else ">"


def read_header(buffer: bytes | mmap.mmap, name: str) -> Header:
    """The header of raw BTF, every offset checked against the data's length."""
    if len(buffer) < HEADER_SIZE:
        raise ObjectError(f"{name}: {len(buffer)} bytes is too short for a BTF header")
    magic = struct.unpack_from("<H", buffer)[0]
    if magic == BTF_MAGIC:
        byteorder = "little"
    elif magic == 0x9FEB:
        byteorder = "big"
    else:
        raise ObjectError(f"{name}: bad BTF magic 0x{magic:04x}")
    order = "<" if byteorder == "little" else ">"
    _, version, flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
        order + HEADER.format, buffer
    )
    if hdr_len < HEADER_SIZE or hdr_len > len(buffer):
        raise ObjectError(f"{name}: BTF header length {hdr_len} is invalid")
    layout_off = layout_len = 0
    if hdr_len >= LAYOUT_HEADER_SIZE:
        layout_off, layout_len = struct.unpack_from(order + LAYOUT_FIELDS.format, buffer, 24)
    sections = [("type", type_off, type_len), ("string", str_off, str_len)]
    if layout_len:
        if layout_off % 4:
            raise ObjectError(
                f"{name}: BTF layout section offset {layout_off} is not 4-byte aligned"
            )
        if layout_len % ENTRY.size:
            raise ObjectError(
                f"{name}: BTF layout section length {layout_len} is not a whole number of "
                f"{ENTRY.size}-byte kind entries"
            )
        sections.append(("layout", layout_off, layout_len))
    else:
        layout_off = 0  # without a length, an offset describes nothing
    for label, offset, length in sections:
        start = hdr_len + offset
        if start + length > len(buffer):
            raise ObjectError(
                f"{name}: BTF {label} section ({length} bytes at {start}) runs past the "
                f"end of the data ({len(buffer)} bytes)"
            )
    if layout_len:
        _check_no_overlap(sections, name)
    return Header(
        byteorder, version, flags, hdr_len, type_off, type_len, str_off, str_len,
        layout_off, layout_len,
    )  # fmt: skip


def _check_no_overlap(sections: list[tuple[str, int, int]], name: str) -> None:
    """The layout section may share no byte with the type or string section."""
    _, layout_off, layout_len = sections[-1]
    for label, offset, length in sections[:-1]:
        if length and offset < layout_off + layout_len and layout_off < offset + length:
            raise ObjectError(f"{name}: BTF {label} and layout sections overlap")


def read_layout(data: bytes | mmap.mmap, header: Header) -> tuple[KindLayout, ...] | None:
    """The kind layout entries (index: kind number), or None without a layout section."""
    if not header.layout_len:
        return None
    start = header.hdr_len + header.layout_off
    # Entries past the largest kind number a record can carry can never apply.
    count = min(header.layout_len // ENTRY.size, MAX_KIND_NUMBER + 1)
    fmt = header.order + "BBH" * count
    values = struct.unpack_from(fmt, data, start)
    return tuple(KindLayout(*values[i : i + 3]) for i in range(0, len(values), 3))
