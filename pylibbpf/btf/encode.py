"""Writing BTF: an encoder for ``Type`` lists, the kernel-compatibility sanitizer, and the
fix-ups a loader applies to compiler output before uploading it.

Used to upload object BTF, to build struct_ops and feature-probe BTF, and by tests to
make synthetic BTF. The encoder writes exactly the record layout the parser reads, in
either byte order, so ``parse(encode(types)) == types``.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterable, Sequence

from ..errors import ObjectError
from ..records import dataclass, replace
from .layout import (
    BTF_MAGIC,
    ENTRY,
    HEADER_SIZE,
    LAYOUT_HEADER_SIZE,
    KindLayout,
    layout_record_words,
)
from .parse import Btf
from .types import (
    KIND_BY_NUMBER,
    LINKAGE_EXTERN,
    LINKAGE_GLOBAL,
    LINKAGE_STATIC,
    MAX_KIND_NUMBER,
    MAX_VLEN,
    MAX_VLEN_BEFORE_7_1,
    EnumValue,
    Kind,
    Member,
    OpaqueType,
    Type,
)

_SECTION_NAME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_."
# The kinds the per-record loops below test, as module globals: ``Kind.VAR`` is an
# attribute read on the enum class, several times slower than a global's, and these
# loops run once per record of an object's BTF on its first load.
_VAR, _FUNC, _DATASEC, _OPAQUE = Kind.VAR, Kind.FUNC, Kind.DATASEC, Kind.OPAQUE


class StringTable:
    """A deduplicated BTF string section (offset 0 is the empty string).

    Started from an existing section, that section is kept byte for byte (new strings are
    appended), so offsets held elsewhere — line_info, CO-RE access strings — stay valid.
    """

    def __init__(self, base: bytes = b"") -> None:
        self.base = base  # the section kept verbatim (``RawType`` records point into it)
        self._data = bytearray(base or b"\0")
        # Strings added so far; one of ``base`` is found in it when first added (an
        # object's BTF keeps most of its records verbatim: few of its strings are asked).
        self._offsets: dict[str, int] = {"": 0}

    def add(self, text: str) -> int:
        offset = self._offsets.get(text)
        if offset is None:
            encoded = text.encode("utf-8", "surrogateescape")
            offset = self._in_base(encoded)
            if offset < 0:
                offset = len(self._data)
                self._data += encoded + b"\0"
            self._offsets[text] = offset
        return offset

    def _in_base(self, encoded: bytes) -> int:
        """The offset of the first whole string ``encoded`` in ``base``, or -1."""
        if not self.base or b"\0" in encoded:
            return -1
        if self.base.startswith(encoded + b"\0"):
            return 0
        found = self.base.find(b"\0" + encoded + b"\0")
        return found + 1 if found >= 0 else -1

    def __bytes__(self) -> bytes:
        return bytes(self._data)


def _info(kind: Kind, vlen: int, kind_flag: bool) -> int:
    if vlen > MAX_VLEN:
        raise ObjectError(f"BTF {kind.name} with {vlen} entries exceeds the {MAX_VLEN} limit")
    return (int(kind_flag) << 31) | (int(kind) << 24) | vlen


def encode_type(t: Type, strings: StringTable) -> list[int]:
    """The 32-bit words of one type record."""
    if type(t) is RawType and strings.base is getattr(t, "raw_strings", None):
        return t.raw_words.tolist()  # the record as it was: its name offsets still hold
    name = strings.add(t.name)
    kind = t.kind
    if kind == Kind.INT:
        extra = (t.encoding << 24) | (t.bit_offset << 16) | t.bits
        return [name, _info(kind, 0, t.kind_flag), t.size, extra]
    if kind == Kind.ARRAY:
        return [name, _info(kind, 0, False), 0, t.type, t.index_type, t.nelems]
    if kind in (Kind.STRUCT, Kind.UNION):
        bitfields = t.kind_flag or any(m.bitfield_size for m in t.members)
        words = [name, _info(kind, len(t.members), bitfields), t.size]
        for m in t.members:
            offset = (m.bitfield_size << 24 | m.bit_offset) if bitfields else m.bit_offset
            words += [strings.add(m.name), m.type, offset]
        return words
    if kind == Kind.ENUM:
        words = [name, _info(kind, len(t.values), t.kind_flag), t.size]
        for v in t.values:
            words += [strings.add(v.name), v.value & 0xFFFFFFFF]
        return words
    if kind == Kind.ENUM64:
        words = [name, _info(kind, len(t.values), t.kind_flag), t.size]
        for v in t.values:
            value = v.value & 0xFFFFFFFFFFFFFFFF
            words += [strings.add(v.name), value & 0xFFFFFFFF, value >> 32]
        return words
    if kind == Kind.FUNC_PROTO:
        words = [name, _info(kind, len(t.params), False), t.type]
        for p in t.params:
            words += [strings.add(p.name), p.type]
        return words
    if kind == Kind.DATASEC:
        words = [name, _info(kind, len(t.vars), False), t.size]
        for entry in t.vars:
            words += [entry.type, entry.offset, entry.size]
        return words
    if kind == Kind.VAR:
        return [name, _info(kind, 0, False), t.type, t.linkage]
    if kind == Kind.DECL_TAG:
        return [name, _info(kind, 0, False), t.type, t.component_idx & 0xFFFFFFFF]
    if kind == Kind.FUNC:
        return [name, _info(kind, t.linkage, False), t.type]
    if kind == Kind.FLOAT:
        return [name, _info(kind, 0, False), t.size]
    if kind == Kind.UNKN:
        raise ObjectError("void (type id 0) cannot be encoded as a record")
    if kind == Kind.OPAQUE:
        if not isinstance(t, OpaqueType):
            raise ObjectError(f"type id {t.id}: an OPAQUE type needs its record's words")
        return [name, t.info, t.size, *t.raw]
    return [name, _info(kind, 0, t.kind_flag), t.type]


def encode(
    types: Iterable[Type],
    *,
    byteorder: str = "little",
    strings_base: bytes = b"",
    layout: Sequence[KindLayout] | None = None,
) -> bytes:
    """Raw BTF holding ``types`` as ids 1, 2, … in the order given (``strings_base``: an
    original string section to keep verbatim, so its offsets stay meaningful).

    With ``layout`` (``KNOWN_LAYOUT``, or a BTF's own ``layout``) the 7.1+ form: a 32-byte
    header and a kind layout section between the types and the strings, which kernels
    before 7.1 refuse. Opaque types need it: it is how a parser steps over them.
    """
    strings = StringTable(strings_base)
    order = "<" if byteorder == "little" else ">"
    # Records kept verbatim (``RawType``) go in as their bytes when the byte order is
    # this machine's; the others as words, packed a run at a time.
    verbatim = (byteorder == "little") == (sys.byteorder == "little")
    pieces: list[bytes | memoryview] = []
    words: list[int] = []
    types = list(types)
    entries = tuple(layout) if layout is not None else None
    try:
        for t in types:
            if (
                verbatim
                and type(t) is RawType
                and t.kind != _OPAQUE
                and strings.base is t.raw_strings
            ):
                if words:
                    pieces.append(struct.pack(f"{order}{len(words)}I", *words))
                    words = []
                pieces.append(t.raw_words)
                continue
            record = encode_type(t, strings)
            if t.kind == _OPAQUE:
                _check_laid_out(t, record, entries)
            words += record
        pieces.append(struct.pack(f"{order}{len(words)}I", *words))
    except struct.error:
        raise _field_range_error(types, strings) from None
    type_data = b"".join(pieces)
    layout_data = (
        None
        if entries is None
        else b"".join(struct.pack(order + ENTRY.format, *entry) for entry in entries)
    )
    return raw_btf(type_data, bytes(strings), layout_data, order=order)


def raw_btf(
    type_data: bytes, string_data: bytes, layout_data: bytes | None = None, *, order: str = "<"
) -> bytes:
    """Raw BTF of encoded type records and strings: the header, then the sections; with
    ``layout_data`` (a kind layout section, possibly empty), 7.1's 32-byte header."""
    if layout_data is None:
        header = struct.pack(
            f"{order}HBBIIIII",
            BTF_MAGIC,
            1,
            0,
            HEADER_SIZE,
            0,
            len(type_data),
            len(type_data),
            len(string_data),
        )
        return header + type_data + string_data
    header = struct.pack(
        f"{order}HBBIIIIIII",
        BTF_MAGIC,
        1,
        0,
        LAYOUT_HEADER_SIZE,
        0,
        len(type_data),
        len(type_data) + len(layout_data),
        len(string_data),
        len(type_data),
        len(layout_data),
    )
    return header + type_data + layout_data + string_data


def _check_laid_out(t: Type, record: list[int], layout: tuple[KindLayout, ...] | None) -> None:
    """An opaque record must be one the layout section steps over exactly."""
    assert isinstance(t, OpaqueType)
    try:
        words = layout_record_words(t.info, layout)
    except ValueError as error:
        raise ObjectError(f"type id {t.id}: {error}") from None
    if words != len(record):
        described = f"{words} words" if words is not None else "nothing"
        raise ObjectError(
            f"type id {t.id} (kind {t.kind_number}) is {len(record)} words long but the "
            f"layout describes {described}"
        )


def _field_range_error(types: list[Type], strings: StringTable) -> ObjectError:
    """The type whose record has a field outside 32 bits (sizes and offsets copied from
    a corrupt ELF, say): found again only when packing failed."""
    for index, t in enumerate(types):
        words = encode_type(t, strings)
        bad = [w for w in words if not 0 <= w <= 0xFFFFFFFF]
        if bad:
            return ObjectError(
                f"BTF {t.describe()} (type id {index + 1}): value {bad[0]} does not fit "
                "in a 32-bit field"
            )
    return ObjectError("BTF: a value does not fit in a 32-bit field")


def encode_btf(btf: Btf, *, byteorder: str = "little") -> bytes:
    """Re-encode a parsed BTF (its own types; ids and references unchanged; its layout
    section, if it had one)."""
    return encode(iter(btf), byteorder=byteorder, layout=btf.layout)


def extend_layout(
    layout: Sequence[KindLayout], kind: int, entry: KindLayout
) -> tuple[KindLayout, ...]:
    """``layout`` with ``entry`` for ``kind`` (zero entries fill any gap before it)."""
    entries = list(layout) + [KindLayout(0, 0)] * max(0, kind + 1 - len(layout))
    entries[kind] = entry
    return tuple(entries)


# --------------------------------------------------------------------------- raw records


class RawType(Type):
    """A type record kept as its words, decoded only if something reads more than its id
    and kind: the fix-ups and the sanitizer change a few kinds (VAR, FUNC, DATASEC, and
    what the kernel lacks), so on an object's first load the other records need not be
    decoded and encoded again. Encoded against the same string section (``strings_base``
    of ``raw_types``), it is written back word for word."""

    __slots__ = ("_btf", "raw_strings", "raw_words")
    _btf: Btf
    raw_strings: bytes
    raw_words: memoryview

    def __getattr__(self, name: str) -> object:
        if name in RawType.__slots__:
            raise AttributeError(name)
        return getattr(self._btf[self.id], name)


_ALWAYS_DECODED = frozenset({Kind.VAR, Kind.FUNC, Kind.DATASEC})


def raw_types(btf: Btf, support: KernelBtfSupport) -> tuple[list[Type], bytes]:
    """``btf``'s types for the fix-ups and ``sanitize``: the kinds they may change
    decoded, the others as ``RawType``; and the string section to encode them against."""
    strings = btf.strings
    if btf.base is not None or (btf.byteorder == "little") != (sys.byteorder == "little"):
        return list(btf), strings
    decoded = set(_ALWAYS_DECODED)
    lacking = {
        (Kind.FUNC_PROTO,): not support.func,
        (Kind.FLOAT,): not support.float,
        (Kind.DECL_TAG,): not support.decl_tag,
        (Kind.TYPE_TAG,): not support.type_tag,
        (Kind.ENUM64, Kind.ENUM): not support.enum64,
    }
    for kinds, lacks in lacking.items():
        if lacks:
            decoded.update(kinds)
    data = btf.raw_data
    hdr_len, type_off, type_len = struct.unpack_from("<I I I", data, 4)
    start = hdr_len + type_off
    words = memoryview(data)[start : start + type_len].cast("I")
    offsets = btf.raw_offsets
    ends = [*offsets[1:], len(words)]
    out: list[Type] = []
    new, set_slot = object.__new__, object.__setattr__
    # Each record's kind from its info word (what ``btf.kind_of`` reads, without a call
    # and its range checks per record: these ids are this BTF's own, 1..count).
    by_number = [*KIND_BY_NUMBER, *[Kind.OPAQUE] * (MAX_KIND_NUMBER + 1 - len(KIND_BY_NUMBER))]
    for index, start in enumerate(offsets):
        kind_id = by_number[(words[start + 1] >> 24) & MAX_KIND_NUMBER]
        type_id = index + 1
        if kind_id in decoded:
            out.append(btf[type_id])
            continue
        raw = new(RawType)
        set_slot(raw, "id", type_id)
        set_slot(raw, "kind", kind_id)
        set_slot(raw, "_btf", btf)
        set_slot(raw, "raw_strings", strings)
        set_slot(raw, "raw_words", words[start : ends[index]])
        out.append(raw)
    return out, strings


# --------------------------------------------------------------------------- sanitizing


@dataclass(frozen=True)
class KernelBtfSupport:
    """Which BTF features the target kernel accepts (probed in ``features``)."""

    datasec: bool = True  # DATASEC and VAR (5.2)
    func: bool = True  # FUNC and FUNC_PROTO (5.0)
    func_global: bool = True  # FUNC with global linkage (5.6)
    float: bool = True  # FLOAT (5.13)
    decl_tag: bool = True  # DECL_TAG (5.16)
    type_tag: bool = True  # TYPE_TAG (5.17)
    enum64: bool = True  # ENUM64 and signed ENUM (6.0)
    layout: bool = True  # the 32-byte header with a layout section, and 24-bit vlen (7.1)


def sanitize(types: Sequence[Type], support: KernelBtfSupport) -> list[Type]:
    """Rewrite kinds the kernel lacks into ones it accepts, keeping every id and size.

    The replacements are the ones libbpf makes, so programs whose func_info/line_info
    point into this BTF still load: VAR → 1-byte INT, DATASEC → STRUCT of its variables,
    FUNC → TYPEDEF, FUNC_PROTO → ENUM, global FUNC → static, FLOAT → empty STRUCT,
    DECL_TAG → 1-byte INT, TYPE_TAG → CONST, ENUM64 → UNION of placeholder integers
    (appended once per size), signed ENUM → unsigned.

    The result is for ``encode`` without a layout section, the form every kernel takes.
    Kinds this library does not know (``OPAQUE``, skipped thanks to a layout section)
    become 1-byte INTs as well: no kernel can be assumed to know them. A kernel before
    7.1 cannot hold more than 65535 members, enumerators or parameters in one type: that
    is refused, naming the type.
    """
    out: list[Type] = []
    placeholders: dict[int, int] = {}
    byte_int = {"encoding": 0, "bit_offset": 0, "bits": 8, "size": 1, "type": 0}
    narrow = not support.layout
    changed = _kinds_sanitized(support)

    for t in types:
        kind = t.kind
        if narrow:
            _check_narrow_vlen(t)
        if kind not in changed:  # (most records: kept as they are)
            out.append(t)
            continue
        if kind == Kind.OPAQUE:
            name = t.name if t.name.isascii() and t.name.isidentifier() else ""  # a C name
            out.append(Type(t.id, Kind.INT, name, **byte_int))  # type: ignore[arg-type]
            continue
        if kind == Kind.DATASEC and t.name.strip(_SECTION_NAME_CHARS):
            # Older kernels accept only [A-Za-z0-9_.] in section names ('?.struct_ops').
            import re

            t = replace(t, name=re.sub(r"[^A-Za-z0-9_.]", "_", t.name))
        if kind == Kind.VAR and not support.datasec:
            t = Type(t.id, Kind.INT, t.name, **byte_int)  # type: ignore[arg-type]
        elif kind == Kind.DATASEC and not support.datasec:
            members = tuple(Member(_var_name(types, v.type), v.type, v.offset * 8) for v in t.vars)
            t = Type(t.id, Kind.STRUCT, t.name.replace(".", "_"), size=t.size, members=members)
        elif kind == Kind.FUNC and not support.func:
            t = Type(t.id, Kind.TYPEDEF, t.name, type=t.type)
        elif kind == Kind.FUNC_PROTO and not support.func:
            # Unnamed parameters (function-pointer types) would be nameless enumerators,
            # which the kernel refuses: give them placeholder names.
            values = tuple(
                EnumValue(p.name or f"__param{index}", p.type) for index, p in enumerate(t.params)
            )
            t = Type(t.id, Kind.ENUM, "", size=4, values=values)
        elif kind == Kind.FUNC and not support.func_global and t.linkage == LINKAGE_GLOBAL:
            t = replace(t, linkage=LINKAGE_STATIC)
        elif kind == Kind.FLOAT and not support.float:
            t = Type(t.id, Kind.STRUCT, t.name, size=t.size)
        elif kind == Kind.DECL_TAG and not support.decl_tag:
            t = Type(t.id, Kind.INT, t.name, **byte_int)  # type: ignore[arg-type]
        elif kind == Kind.TYPE_TAG and not support.type_tag:
            t = Type(t.id, Kind.CONST, "", type=t.type)
        elif kind == Kind.ENUM64 and not support.enum64:
            if t.size not in placeholders:
                placeholders[t.size] = len(types) + 1 + len(placeholders)
            holder = placeholders[t.size]
            members = tuple(Member(v.name, holder, 0) for v in t.values)
            t = Type(t.id, Kind.UNION, t.name, size=t.size, members=members)
        elif kind == Kind.ENUM and not support.enum64 and t.kind_flag:
            t = replace(t, kind_flag=False)
        out.append(t)
    for size, type_id in placeholders.items():
        out.append(Type(type_id, Kind.INT, "enum64_placeholder", size=size, bits=size * 8))
    return out


def _kinds_sanitized(support: KernelBtfSupport) -> frozenset[Kind]:
    """The kinds ``sanitize`` may rewrite for ``support`` (the others pass as they are)."""
    kinds = {Kind.OPAQUE, Kind.DATASEC}  # (a DATASEC's name may need its characters fixed)
    lacking = {
        (Kind.VAR,): not support.datasec,
        (Kind.FUNC, Kind.FUNC_PROTO): not support.func,
        (Kind.FUNC,): not support.func_global,
        (Kind.FLOAT,): not support.float,
        (Kind.DECL_TAG,): not support.decl_tag,
        (Kind.TYPE_TAG,): not support.type_tag,
        (Kind.ENUM64, Kind.ENUM): not support.enum64,
    }
    for named, lacks in lacking.items():
        if lacks:
            kinds.update(named)
    return frozenset(kinds)


# The kinds whose vlen counts entries (FUNC's is its linkage; DATASEC is never kept raw).
_COUNTED_KINDS = frozenset(
    {Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.FUNC_PROTO, Kind.DATASEC}
)


def _check_narrow_vlen(t: Type) -> None:
    if isinstance(t, RawType):  # its count from the info word, without decoding it
        vlen = t.raw_words[1] & MAX_VLEN if t.kind in _COUNTED_KINDS else 0
    else:
        vlen = len(t.members or t.values or t.params or t.vars)
    if vlen > MAX_VLEN_BEFORE_7_1:
        raise ObjectError(
            f"BTF type id {t.id} ({t.describe()}) has {vlen} entries; kernels before 7.1 "
            f"accept at most {MAX_VLEN_BEFORE_7_1}"
        )


def _var_name(types: Sequence[Type], type_id: int) -> str:
    index = type_id - 1
    return types[index].name if 0 <= index < len(types) else ""


# --------------------------------------------------------------------------- loader fix-ups


def _is_void(types: Sequence[Type], type_id: int) -> bool:
    """Whether ``type_id`` is void through qualifiers (``const void``)."""
    for _ in range(64):
        if type_id == 0:
            return True
        if not 0 < type_id <= len(types):
            return False
        t = types[type_id - 1]
        if t.kind not in (Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPEDEF, Kind.TYPE_TAG):
            return False
        type_id = t.type
    return False


def fixup_externs(types: Sequence[Type]) -> list[Type]:
    """The kernel refuses ``extern`` linkage: extern variables (``__kconfig``, ``__ksym``)
    become global, extern functions (kfuncs) typedefs — the loader resolves them itself."""
    out = []
    for t in types:
        kind = t.kind
        if kind != _VAR and kind != _FUNC:
            out.append(t)
            continue
        if kind == _VAR and t.linkage == LINKAGE_EXTERN and _is_void(types, t.type):
            # A typeless ksym (``extern const void sym __ksym``): a void VAR is invalid.
            t = Type(t.id, Kind.INT, t.name, size=4, bits=32)
        elif kind == _VAR and t.linkage == LINKAGE_EXTERN:
            t = replace(t, linkage=LINKAGE_GLOBAL)
        elif kind == _FUNC and t.linkage == LINKAGE_EXTERN:
            # A kfunc declaration: its parameters are often unnamed, which the kernel
            # refuses for a FUNC. Calls are resolved against kernel BTF, so the object only
            # needs the name and prototype: a typedef of the prototype keeps both.
            t = Type(t.id, Kind.TYPEDEF, t.name, type=t.type)
        out.append(t)
    return out


def fixup_datasecs(
    types: Sequence[Type],
    section_sizes: dict[str, int],
    symbol_offsets: dict[str, int],
) -> list[Type]:
    """Fill in what clang leaves to the loader: DATASEC sizes from the ELF sections and
    variable offsets from the ELF symbols, sorted by offset as the kernel requires.

    ``symbol_offsets`` maps a variable's name to its value (offset) in its section.
    Sections that are not in the ELF (``.ksyms`` for instance) keep size 0.
    """
    out = list(types)
    for index, t in enumerate(out):
        if t.kind != _DATASEC:
            continue
        size = section_sizes.get(t.name, t.size)
        entries = []
        for v in t.vars:
            var = out[v.type - 1] if 0 < v.type <= len(out) else None
            offset = v.offset
            # Static variables keep their offset (clang's, or the static linker's): their
            # names are not unique once objects are linked, so ELF symbols cannot say.
            if (
                var is not None
                and var.kind == Kind.VAR
                and var.linkage != LINKAGE_STATIC
                and var.name in symbol_offsets
            ):
                offset = symbol_offsets[var.name]
            entries.append(replace(v, offset=offset))
        entries.sort(key=lambda v: v.offset)
        out[index] = replace(t, size=size, vars=tuple(entries))
    return out


def fixup_hidden(types: Sequence[Type], hidden: frozenset[str]) -> list[Type]:
    """Global functions and variables with hidden visibility (``__hidden``, as in
    libbpf's ``usdt.bpf.h``) get static linkage, as libbpf does: the verifier then checks
    a hidden function in its caller's context instead of on its own."""
    out = list(types)
    if not hidden:
        return out
    for index, t in enumerate(out):
        if (t.kind == _FUNC or t.kind == _VAR) and t.linkage == LINKAGE_GLOBAL and t.name in hidden:
            out[index] = replace(t, linkage=LINKAGE_STATIC)
    return out
