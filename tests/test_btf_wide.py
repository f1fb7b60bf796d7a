"""BTF from Linux 7.1+: the 32-byte header with its kind layout section, kinds above 31
(7 bits) and vlen above 65535 (24 bits). Synthetic BTF built with the encoder; parse
results, round trips, hostile headers and layout sections, the sanitizer; and one root
test that a sanitized 7.1-form BTF loads into the running kernel."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pylibbpf.btf import Btf, Kind, Member, Type
from pylibbpf.btf.encode import (
    KernelBtfSupport,
    RawType,
    encode,
    encode_btf,
    extend_layout,
    raw_types,
    sanitize,
)
from pylibbpf.btf.layout import KNOWN_LAYOUT, KindLayout
from pylibbpf.btf.records import Records
from pylibbpf.btf.types import EnumValue, OpaqueType
from pylibbpf.cli.btf import type_text
from pylibbpf.errors import ObjectError

INT = Type(1, Kind.INT, "int", size=4, encoding=1, bits=32)
PAIR = Type(2, Kind.STRUCT, "pair", size=8, members=(Member("a", 1, 0), Member("b", 1, 32)))
# Kind 40: 8 bytes of info, then 12 bytes per vlen element (two here), kind_flag set.
ODD_INFO = (1 << 31) | (40 << 24) | 2
ODD = OpaqueType(
    3, Kind.OPAQUE, "odd", size=16, type=16, kind_flag=True, info=ODD_INFO, raw=tuple(range(8))
)
AFTER = Type(4, Kind.TYPEDEF, "after_odd", type=2)
POINTER = Type(5, Kind.PTR, "", type=3)
ODD_LAYOUT = extend_layout(KNOWN_LAYOUT, 40, KindLayout(8, 12))


def header(raw: bytes) -> tuple[int, ...]:
    """hdr_len, type_off, type_len, str_off, str_len, layout_off, layout_len."""
    return struct.unpack_from("<IIIIIII", raw, 4)


def with_header(raw: bytes, **fields: int) -> bytes:
    names = ("hdr_len", "type_off", "type_len", "str_off", "str_len", "layout_off", "layout_len")
    values = dict(zip(names, header(raw), strict=True)) | fields
    return raw[:4] + struct.pack("<7I", *(values[n] for n in names)) + raw[32:]


# --------------------------------------------------------------------------- the format


def test_encoder_writes_the_7_1_header_and_layout_section() -> None:
    raw = encode([INT, PAIR], layout=KNOWN_LAYOUT)
    hdr_len, type_off, type_len, str_off, str_len, layout_off, layout_len = header(raw)
    assert (hdr_len, type_off, type_len) == (32, 0, 16 + 12 + 2 * 12)
    assert (layout_off, layout_len) == (type_len, 4 * 20)  # one entry per kind 0..19
    assert str_off == layout_off + layout_len and hdr_len + str_off + str_len == len(raw)
    entry = struct.unpack_from("<BBH", raw, hdr_len + layout_off + 4 * Kind.STRUCT)
    assert entry == (0, 12, 0)  # no fixed part, 12 bytes per member
    btf = Btf(raw, name="wide")
    assert btf.layout == KNOWN_LAYOUT
    assert list(btf) == [INT, PAIR] and btf.find("pair").members[1].name == "b"
    assert encode_btf(btf) == raw
    # A header of 24 to 31 bytes has no layout fields (the kernel reads them as zero).
    short = with_header(raw, hdr_len=28, type_off=4, str_off=4 + 52 + 80)
    assert Btf(short).layout is None and list(Btf(short)) == [INT, PAIR]
    # Without a layout the classic 24-byte form, as before.
    classic = encode([INT, PAIR])
    assert struct.unpack_from("<I", classic, 4)[0] == 24 and Btf(classic).layout is None


def test_a_kind_above_31_is_stepped_over_with_the_layout_section() -> None:
    raw = encode([INT, PAIR, ODD, AFTER, POINTER], layout=ODD_LAYOUT)
    btf = Btf(raw, name="odd kinds")
    assert len(btf) == 5 and btf.kind_of(3) == Kind.OPAQUE
    odd = btf[3]
    assert isinstance(odd, OpaqueType)
    assert (odd.kind_number, odd.vlen, odd.kind_flag) == (40, 2, True)
    assert (odd.name, odd.size, odd.raw) == ("odd", 16, tuple(range(8)))
    assert odd.describe() == "kind 40 odd"
    # Types after it keep their ids and decode as usual.
    assert btf.find("after_odd").id == 4 and btf[4].type == 2
    assert btf[5] == POINTER and [t.id for t in btf.walk(5)] == [5, 3]
    assert encode_btf(btf) == raw  # word for word
    records = Records(btf)
    assert records.kinds[3] == 40 and records.member_types(2) == [1, 1]
    # bpftool's raw dump names it as bpftool names kinds it does not know.
    assert type_text(btf, odd) == "[3] UNKNOWN 'odd' kind=40 vlen=2"
    assert "struct pair {" in btf.dump_c() and "after_odd;" in btf.dump_c()


def test_kind_127_with_wide_vlen_and_kind_0_stays_invalid() -> None:
    top = OpaqueType(2, Kind.OPAQUE, "", info=(127 << 24) | 0x10000, raw=())
    layout = extend_layout(KNOWN_LAYOUT, 127, KindLayout(0, 0))
    btf = Btf(encode([INT, top, Type(3, Kind.TYPEDEF, "t", type=1)], layout=layout))
    assert btf[2].kind_number == 127 and btf[2].vlen == 0x10000  # type: ignore[attr-defined]
    assert btf.find("t").id == 3
    # A kind-0 record is invalid whatever the layout's entry 0 says.
    zero = with_kind(encode([INT, AFTER], layout=KNOWN_LAYOUT), record=1, kind=0)
    with pytest.raises(ObjectError, match=r"offset 16: unknown BTF kind 0"):
        Btf(zero, name="zero")


def with_kind(raw: bytes, *, record: int, kind: int) -> bytes:
    """``raw`` with the ``record``-th record (0-based; records of 4 words: INT first)
    given another kind number."""
    hdr_len = struct.unpack_from("<I", raw, 4)[0]
    at = hdr_len + 16 * record + 4
    info = struct.unpack_from("<I", raw, at)[0]
    return raw[:at] + struct.pack("<I", (info & 0x80FFFFFF) | kind << 24) + raw[at + 4 :]


def test_the_layout_entry_decides_what_an_unknown_kind_swallows() -> None:
    """As libbpf's btf_kind selftest: kind 20 (unknown here) laid out with 12 bytes of
    info swallows the next record, so later ids move down by one."""
    types = [
        INT,
        Type(2, Kind.TYPEDEF, "unknown_soon", type=1),
        Type(3, Kind.TYPEDEF, "swallowed", type=1),
        Type(4, Kind.TYPEDEF, "lookup2", type=1),
    ]
    layout = extend_layout(KNOWN_LAYOUT, 20, KindLayout(0, 0))
    base = with_kind(encode(types, layout=layout), record=1, kind=20)
    btf = Btf(base)
    assert btf.kind_of(2) == Kind.OPAQUE and btf.find("lookup2").id == 4
    entry_20 = 32 + header(base)[5] + 4 * 20
    swallow = base[:entry_20] + bytes([12, 0, 0, 0]) + base[entry_20 + 4 :]
    btf = Btf(swallow)
    assert len(btf) == 3 and btf.find_id("swallowed") is None
    assert btf.find("lookup2").id == 3
    assert btf[2].raw[:3] == (btf.strings.index(b"swallowed\0"), 8 << 24, 1)  # type: ignore[attr-defined]


def test_a_struct_with_more_than_65535_members() -> None:
    count = 70_000
    members = tuple(Member(f"m{i}", 1, 32 * i) for i in range(count))
    big = Type(2, Kind.STRUCT, "huge", size=4 * count, members=members)
    values = tuple(EnumValue(f"E{i}", i) for i in range(66_000))
    enum = Type(3, Kind.ENUM, "many", size=4, values=values)
    raw = encode([INT, big, enum, AFTER])
    info = struct.unpack_from("<I", raw, 24 + 16 + 4)[0]
    assert (info >> 24, info & 0xFFFFFF) == (Kind.STRUCT, count)  # bits 16-23 in use
    btf = Btf(raw, name="huge")
    assert btf.find("huge").members[-1] == Member(f"m{count - 1}", 1, 32 * (count - 1))
    assert len(btf[2].members) == count and len(btf[3].values) == 66_000
    assert btf[3].values[-1] == EnumValue("E65999", 65_999)
    assert btf.find("after_odd").id == 4
    assert len(Records(btf).member_types(2)) == count
    with pytest.raises(ObjectError, match="exceeds the 16777215 limit"):
        encode([Type(1, Kind.ENUM, "e", size=4, values=(EnumValue("A", 0),) * (1 << 24))])


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"layout_len": 4 * 20 + 2}, r"length 82 is not a whole number of 4-byte kind"),
        ({"layout_off": 2}, r"layout section offset 2 is not 4-byte aligned"),
        ({"layout_len": 4 * 4000}, r"BTF layout section \(16000 bytes at \d+\) runs past"),
        ({"layout_off": 0}, r"BTF type and layout sections overlap"),
        ({"layout_off": 56}, r"BTF string and layout sections overlap"),
        ({"hdr_len": 4096}, r"BTF header length 4096 is invalid"),
    ],
)
def test_hostile_headers_are_refused_naming_the_cause(fields: dict[str, int], message: str) -> None:
    raw = encode([INT, PAIR], layout=KNOWN_LAYOUT)  # types 0-52, layout 52-132, strings
    with pytest.raises(ObjectError, match=message):
        Btf(with_header(raw, **fields), name="hostile")


def test_truncated_layout_section() -> None:
    raw = encode([INT, PAIR], layout=KNOWN_LAYOUT)
    hdr_len, _, _, _, _, layout_off, _ = header(raw)
    cut = raw[: hdr_len + layout_off + 10]
    with pytest.raises(ObjectError, match=r"hostile: BTF (string|layout) section .* runs past"):
        Btf(cut, name="hostile")
    with pytest.raises(ObjectError, match=r"too short for a BTF header"):
        Btf(raw[:20], name="hostile")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (KindLayout(255, 0), r"kind 40 255-byte info and 0-byte elements, not whole 4-byte"),
        (KindLayout(0, 6), r"kind 40 0-byte info and 6-byte elements, not whole 4-byte"),
        (KindLayout(252, 252), r"offset 52: the kind 40 record runs past the end"),
    ],
)
def test_layout_entries_claiming_absurd_sizes(entry: KindLayout, message: str) -> None:
    raw = encode([INT, PAIR, ODD, AFTER], layout=ODD_LAYOUT)
    entry_40 = header(raw)[0] + header(raw)[5] + 4 * 40
    bad = raw[:entry_40] + struct.pack("<BBH", *entry) + raw[entry_40 + 4 :]
    with pytest.raises(ObjectError, match=message):
        Btf(bad, name="absurd")


def test_unknown_kinds_without_layout_are_refused() -> None:
    raw = with_kind(encode([INT, AFTER]), record=1, kind=40)
    with pytest.raises(ObjectError, match=r"offset 16: unknown BTF kind 40 \(no layout section\)"):
        Btf(raw, name="no layout")
    raw = with_kind(encode([INT, AFTER], layout=KNOWN_LAYOUT), record=1, kind=40)
    with pytest.raises(ObjectError, match=r"unknown BTF kind 40 \(no layout entry for it\)"):
        Btf(raw, name="short layout")
    # The encoder will not write what a parser could not step over.
    with pytest.raises(ObjectError, match=r"type id 3 \(kind 40\) is 11 words long but the la"):
        encode([INT, PAIR, ODD], layout=KNOWN_LAYOUT)
    with pytest.raises(ObjectError, match=r"is 11 words long but the layout describes 5 words"):
        encode([INT, PAIR, ODD], layout=extend_layout(KNOWN_LAYOUT, 40, KindLayout(8, 0)))


_WIDE = encode([INT, PAIR, ODD, AFTER, POINTER], layout=ODD_LAYOUT)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_7_1_btf_raises_only_object_error(data: st.DataObject) -> None:
    blob = bytearray(_WIDE)
    for _ in range(data.draw(st.integers(1, 8))):
        # Mostly the header and the layout section, where the new fields are.
        limit = data.draw(st.sampled_from([32, 32 + header(_WIDE)[5] + 4 * 41, len(blob)]))
        blob[data.draw(st.integers(0, limit - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    with contextlib.suppress(ObjectError):
        btf = Btf(bytes(blob[:cut]) if data.draw(st.booleans()) else bytes(blob), name="fuzz")
        for t in btf:
            btf.kind_of(t.id)
            for member in t.members:
                btf.kind_of(member.type)
        btf.find_all("after_odd")
        encode_btf(btf)


# --------------------------------------------------------------------------- sanitizer


def test_sanitizer_strips_the_layout_and_unknown_kinds() -> None:
    types = list(Btf(_WIDE))
    clean = sanitize(types, KernelBtfSupport(layout=False))
    assert [t.id for t in clean] == [1, 2, 3, 4, 5]
    assert clean[2] == Type(3, Kind.INT, "odd", size=1, bits=8)  # id kept, kernel-readable
    assert clean[3] == AFTER and clean[4] == POINTER
    raw = encode(clean)
    assert header(raw)[0] == 24 and Btf(raw).layout is None
    # A kernel that takes layouts still gets no opaque kind: none can be assumed known.
    assert sanitize(types, KernelBtfSupport())[2].kind == Kind.INT


def test_sanitizer_refuses_wide_vlen_for_kernels_before_7_1() -> None:
    members = tuple(Member(f"m{i}", 1, 32 * i) for i in range(65_536))
    wide = Type(2, Kind.STRUCT, "wide", size=4 * 65_536, members=members)
    narrow = Type(3, Kind.STRUCT, "narrow", size=4 * 65_535, members=members[:65_535])
    with pytest.raises(ObjectError, match=r"type id 2 \(struct wide\) has 65536 entries; ker"):
        sanitize([INT, wide], KernelBtfSupport(layout=False))
    assert sanitize([INT, narrow], KernelBtfSupport(layout=False))[1] == narrow
    assert sanitize([INT, wide], KernelBtfSupport())[1] == wide


def test_sanitizer_reads_the_width_of_records_kept_raw() -> None:
    """An object's first load keeps records raw (``raw_types``): their counts come from the
    info word, and one past 16 bits is refused for kernels before 7.1 all the same."""
    members = tuple(Member(f"m{i}", 1, 32 * i) for i in range(65_536))
    old_kernel = KernelBtfSupport(layout=False)
    wide_btf = Btf(encode([INT, Type(2, Kind.STRUCT, "wide", size=4 * 65_536, members=members)]))
    types, _ = raw_types(wide_btf, old_kernel)
    assert isinstance(types[1], RawType)
    with pytest.raises(ObjectError, match=r"type id 2 \(struct wide\) has 65536 entries"):
        sanitize(types, old_kernel)
    narrow = Type(2, Kind.STRUCT, "narrow", size=4 * 65_535, members=members[:65_535])
    types, _ = raw_types(Btf(encode([INT, narrow])), old_kernel)
    assert [t.kind for t in sanitize(types, old_kernel)] == [Kind.INT, Kind.STRUCT]
    assert isinstance(types[1], RawType) and types[1].members == narrow.members


# --------------------------------------------------------------------------- the kernel


@pytest.mark.root
def test_sanitized_7_1_btf_loads_into_the_running_kernel() -> None:
    from pylibbpf.syscall import features
    from pylibbpf.syscall.attrs import BtfInfo
    from pylibbpf.syscall.bpf import obj_get_info_by_fd
    from pylibbpf.syscall.kernel_btf import fetch_btf, load_btf

    wide = Btf(_WIDE, name="wide")
    assert wide.kind_of(3) == Kind.OPAQUE
    support = features.btf_support()
    raw = encode(sanitize(list(wide), support), strings_base=wide.strings)
    with load_btf(raw, name="sanitized 7.1 BTF") as fd:
        info = BtfInfo()
        obj_get_info_by_fd(fd.fd, info, what="sanitized 7.1 BTF")
        held = fetch_btf(info.id)  # the kernel's copy, by id
    assert len(held) == 5
    assert held.find("pair", Kind.STRUCT).members == PAIR.members
    assert held[3].kind == Kind.INT and held[3].name == "odd" and held[3].size == 1
    assert held.find("after_odd").id == 4 and held[4].type == 2
    assert held[5].kind == Kind.PTR and held[5].type == 3
    if not support.layout:  # before 7.1 the unsanitized form is refused, as expected
        with pytest.raises(ObjectError, match="the kernel rejected the BTF"):
            load_btf(encode(list(wide)[:2], layout=KNOWN_LAYOUT), name="7.1 form")
    else:
        with load_btf(encode(list(wide)[:2], layout=KNOWN_LAYOUT), name="7.1 form") as fd:
            assert fd.fd >= 0
