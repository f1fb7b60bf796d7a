"""The C dumper (``Btf.dump_c``) on small and hostile BTF; pure, no privileges.

The whole-vmlinux checks (the header compiles with every layout asserted) are in
test_btf.py. Here: what clang makes of headers for hand-made types, and malformed BTF
failing with ObjectError instead of ValueError, RecursionError or hours of padding.
"""

from __future__ import annotations

import shutil
import subprocess
from array import array
from pathlib import Path

import pytest

from pylibbpf.btf import Btf, Kind, Member, Type
from pylibbpf.btf.dump_c import (
    CHECKED_TABLE,
    FORWARD_TABLE,
    HEADER,
    LAYOUT_TABLE,
    NAMED_TABLE,
    PIECE,
    CDumper,
)
from pylibbpf.btf.encode import encode
from pylibbpf.btf.records import TYPE_STRINGS_TABLE, Records
from pylibbpf.btf.tables import STORE
from pylibbpf.btf.types import EnumValue, Param
from pylibbpf.errors import ObjectError

CLANG = shutil.which("clang-19") or shutil.which("clang")
needs_clang = pytest.mark.skipif(CLANG is None, reason="clang is not installed")

INT = Type(1, Kind.INT, "int", size=4, bits=32, encoding=1)
CHAR = Type(2, Kind.INT, "char", size=1, bits=8, encoding=2)


def assert_compiles(tmp_path: Path, header: str, checks: list[str]) -> None:
    """clang accepts ``header`` and every ``_Static_assert`` in ``checks``."""
    (tmp_path / "types.h").write_text(header)
    source = tmp_path / "check.c"
    source.write_text('#include "types.h"\n' + "\n".join(checks) + "\n")
    assert CLANG is not None
    result = subprocess.run(
        [CLANG, "-target", "bpf", "-fsyntax-only", "-Werror", str(source)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]


@needs_clang
def test_huge_struct_gets_compact_padding_with_exact_layout(tmp_path: Path) -> None:
    """A 2 GiB struct with a 256 MiB hole and ~1.75 GiB of tail (member offsets are 32
    bits of bits): a few lines, not 2^28 ``long: 64;``, and clang lays it out as BTF says."""
    big = 1 << 31
    huge = Type(
        3,
        Kind.STRUCT,
        "huge",
        size=big,
        members=(Member("head", 1, 0), Member("middle", 2, 8 * (1 << 28))),
    )
    header = Btf(encode([INT, CHAR, huge])).dump_c()
    body = header[header.index("struct huge {") :]
    body = body[: body.index("};")]
    assert len(body.splitlines()) < 20
    assert "char __pad_4[" in body and f"char __pad_{(1 << 28) + 1}[" in body
    assert_compiles(
        tmp_path,
        header,
        [
            f'_Static_assert(sizeof(struct huge) == {big}ULL, "size");',
            f'_Static_assert(__builtin_offsetof(struct huge, middle) == {1 << 28}, "middle");',
        ],
    )


@needs_clang
def test_compact_padding_avoids_member_names_and_keeps_bit_offsets(tmp_path: Path) -> None:
    """The padding array's name is free in the struct; a gap starting mid-byte and a
    member after it at a bit offset keep their places."""
    u8 = Type(3, Kind.INT, "unsigned char", size=1, bits=8)
    gap_start = 8 * 4 + 3  # after a 3-bit field in the fifth byte
    odd = Type(
        4,
        Kind.STRUCT,
        "odd",
        size=8 + (1 << 20),
        kind_flag=True,
        members=(
            Member("__pad_5", 1, 0),
            Member("flag", 3, 32, 3),
            Member("late", 3, 8 * (1 << 20) + 5, 3),
        ),
    )
    header = Btf(encode([INT, CHAR, u8, odd])).dump_c()
    body = header[header.index("struct odd {") :]
    body = body[: body.index("};")]
    assert "__pad_5_[" in body and len(body.splitlines()) < 20
    assert gap_start < 8 * (1 << 20)
    assert_compiles(
        tmp_path,
        header,
        [
            f'_Static_assert(sizeof(struct odd) == {8 + (1 << 20)}, "size");',
            '_Static_assert(__builtin_offsetof(struct odd, __pad_5) == 0, "first");',
        ],
    )


@needs_clang
def test_page_sized_gap_keeps_bitfield_padding(tmp_path: Path) -> None:
    """Gaps up to a page are spelled as anonymous bitfields, as vmlinux.h has them."""
    aligned = Type(
        3, Kind.STRUCT, "aligned", size=8192, members=(Member("a", 1, 0), Member("b", 1, 32768))
    )
    header = Btf(encode([INT, CHAR, aligned])).dump_c()
    # 4092 bytes before b and as many after it: an int and 511 longs each.
    assert "__pad" not in header and header.count("long: 64;") == 2 * 511
    assert_compiles(
        tmp_path,
        header,
        ['_Static_assert(__builtin_offsetof(struct aligned, b) == 4096, "b");'],
    )


def test_decl_tag_used_as_a_type_is_an_object_error() -> None:
    """A DECL_TAG (here of an INT) referenced as a typedef's, pointer's or member's type."""
    tag = Type(2, Kind.DECL_TAG, "tagged", type=1, component_idx=-1)
    for user in (
        Type(3, Kind.TYPEDEF, "tagged_int", type=2),
        Type(3, Kind.PTR, "", type=2),
        Type(3, Kind.STRUCT, "s", size=4, members=(Member("m", 2, 0),)),
    ):
        extra = [Type(4, Kind.TYPEDEF, "via_ptr", type=3)] if user.kind == Kind.PTR else []
        btf = Btf(encode([INT, tag, user, *extra]))
        with pytest.raises(ObjectError, match="type id 2 is a DECL_TAG"):
            btf.dump_c()
    # A tag on a type (what the kernel emits) is fine and not written.
    assert "tagged" not in Btf(encode([INT, tag])).dump_c()


@pytest.mark.parametrize(
    "types",
    [
        [INT, Type(2, Kind.PTR, "", type=2), Type(3, Kind.TYPEDEF, "loop", type=2)],
        [INT, Type(2, Kind.CONST, "", type=3), Type(3, Kind.VOLATILE, "", type=2)],
        [INT, Type(2, Kind.ARRAY, "", type=2, index_type=1, nelems=2)],
        [
            INT,
            Type(2, Kind.STRUCT, "", size=4, members=(Member("self", 2, 0),)),
            Type(3, Kind.TYPEDEF, "user", type=2),
        ],
    ],
    ids=["pointer-to-itself", "qualifier-loop", "array-of-itself", "anonymous-struct-in-itself"],
)
def test_cycles_c_cannot_express_are_object_errors(types: list[Type]) -> None:
    with pytest.raises(ObjectError):
        Btf(encode(types)).dump_c()


def test_dangling_member_type_names_the_struct() -> None:
    broken = Type(2, Kind.STRUCT, "broken", size=4, members=(Member("m", 77, 0),))
    with pytest.raises(ObjectError, match=r"struct broken \(id 2\) refers to type id 77"):
        Btf(encode([INT, broken])).dump_c()


def test_subset_dump_of_an_unknown_id_is_an_object_error() -> None:
    with pytest.raises(ObjectError, match="no type id 9"):
        Btf(encode([INT])).dump_c([9])


@needs_clang
def test_small_header_declarations_compile(tmp_path: Path) -> None:
    """Function pointers, arrays of pointers, qualified pointers, anonymous members,
    enums with 64-bit values and a name collision, all in one struct."""
    types = [
        INT,
        CHAR,
        Type(3, Kind.PTR, "", type=2),
        Type(4, Kind.FUNC_PROTO, "", type=1, params=(Param("x", 1), Param("p", 3))),
        Type(5, Kind.PTR, "", type=4),
        Type(6, Kind.ARRAY, "", type=3, index_type=1, nelems=4),
        Type(7, Kind.CONST, "", type=3),
        Type(8, Kind.UNION, "", size=8, members=(Member("i", 1, 0), Member("c", 3, 0))),
        Type(
            9,
            Kind.ENUM64,
            "big",
            size=8,
            values=(EnumValue("SMALL", 1), EnumValue("HUGE", 1 << 40)),
        ),
        Type(10, Kind.ENUM, "big", size=4, values=(EnumValue("OTHER", 2),)),
        Type(
            11,
            Kind.STRUCT,
            "mixed",
            size=72,
            members=(
                Member("handler", 5, 0),
                Member("names", 6, 64),
                Member("fixed", 7, 320),
                Member("", 8, 384),
                Member("kind", 9, 448),
                Member("other", 10, 512),
            ),
        ),
    ]
    btf = Btf(encode(types))
    header = btf.dump_c()
    assert "int (*handler)(int x, char *p);" in header
    assert "char *names[4];" in header and "char * const fixed;" not in header
    assert "enum big___2 {" in header
    assert CDumper(btf).name_of(btf[10]) == "big___2"
    assert_compiles(
        tmp_path,
        header,
        [
            '_Static_assert(sizeof(struct mixed) == 72, "size");',
            '_Static_assert(__builtin_offsetof(struct mixed, kind) == 56, "kind");',
            '_Static_assert(__builtin_offsetof(struct mixed, c) == 48, "anonymous");',
            '_Static_assert(HUGE == 1ULL << 40, "enum64");',
        ],
    )


def test_whole_dump_declares_named_types_as_a_subset_dump_does() -> None:
    """A whole dump makes the declarations of named types (and its unions' alignment)
    in bulk; a subset's dump one at a time: the definitions are the same text, renamed
    duplicates (``dup___2``, ``dup_t___2``) and a union's tail padding included."""
    types = [
        INT,
        CHAR,
        Type(3, Kind.STRUCT, "dup", size=4, members=(Member("a", 1, 0),)),
        Type(4, Kind.STRUCT, "dup", size=8, members=(Member("b", 1, 0), Member("c", 2, 32))),
        Type(5, Kind.PTR, "", type=4),
        Type(6, Kind.TYPEDEF, "dup_t", type=4),
        Type(7, Kind.TYPEDEF, "dup_t", type=3),
        Type(8, Kind.ENUM, "dup", size=4, values=(EnumValue("ONE", 1),)),
        Type(9, Kind.UNION, "holder", size=16, members=(Member("s", 4, 0), Member("t", 7, 0))),
        Type(
            10,
            Kind.STRUCT,
            "user",
            size=40,
            members=(
                Member("p", 5, 0),
                Member("d", 6, 64),
                Member("e", 8, 128),
                Member("h", 9, 192),
                Member("q", 5, 320),
            ),
        ),
    ]
    btf = Btf(encode(types))
    whole = btf.dump_c()
    assert "struct dup___2 *p;" in whole and "dup_t___2 t;" in whole
    assert "union holder {" in whole and "\tchar __pad[16];\n};" in whole  # (tail padding)
    for root in (4, 7, 9, 10):
        subset = btf.dump_c([root])
        definitions = [part for part in subset.split("\n\n") if part.endswith("};")]
        assert definitions and all(definition in whole for definition in definitions)


VMLINUX = Path("/sys/kernel/btf/vmlinux")
needs_vmlinux = pytest.mark.skipif(not VMLINUX.exists(), reason="kernel has no BTF")


def written_pieces(btf: Btf, type_ids: list[int] | None = None) -> list[str]:
    pieces: list[str] = []
    btf.write_c(pieces.append, type_ids)
    return pieces


def test_written_pieces_are_the_dump_of_a_small_btf() -> None:
    """A header shorter than a piece comes whole; one with no definition too."""
    btf = Btf(encode([INT, CHAR, Type(3, Kind.STRUCT, "pair", size=8)]))
    assert written_pieces(btf) == [btf.dump_c()]
    assert "struct pair {" in btf.dump_c()
    bare = Btf(encode([INT]))
    assert written_pieces(bare) == [bare.dump_c()]
    assert written_pieces(bare, [1]) == [bare.dump_c([1])]


@needs_vmlinux
def test_written_pieces_are_the_dump_of_vmlinux() -> None:
    """``Btf.write_c`` hands on vmlinux's header in pieces of some 64k characters (the
    CLI writes each out), which join to ``dump_c``'s text; a subset's too."""
    btf = Btf.from_file(VMLINUX)
    pieces = written_pieces(btf)
    assert "".join(pieces) == btf.dump_c()
    assert len(pieces) > 20 and all(pieces)
    assert pieces[0].startswith(HEADER) and pieces[0].endswith(";\n\n")  # (declarations)
    assert max(map(len, pieces[1:])) < 2 * PIECE  # (a piece ends at a definition's end)
    task = btf.find("task_struct", Kind.STRUCT)
    subset = written_pieces(btf, [task.id])
    assert "".join(subset) == btf.dump_c([task.id])
    assert "struct task_struct {" in "".join(subset)


class TableDict(dict[str, bytes]):
    """A ``tables.TableStore`` in memory."""

    def put(self, name: str, table: bytes) -> None:
        self[name] = table


@needs_vmlinux
def test_dump_from_kept_type_strings_is_the_dump_from_all_strings() -> None:
    """With kept tables, a dump reads only the strings that name types, members,
    parameters and enumerators (not functions'), and writes the same header; a string
    not kept (a function's name) is read from the section when asked for."""
    store = TableDict()
    first = Btf.from_file(VMLINUX)
    first.memo[STORE] = store
    expected = first.dump_c()  # derives every table, the strings that name types too
    kept = {TYPE_STRINGS_TABLE, CHECKED_TABLE, LAYOUT_TABLE, FORWARD_TABLE, NAMED_TABLE}
    assert kept <= store.keys()
    second = Btf.from_file(VMLINUX)
    second.memo[STORE] = store
    records = Records(second, type_strings_only=True)
    everything = Records(Btf.from_file(VMLINUX))
    assert len(records.strings) < 0.7 * len(everything.strings)
    function = second.find("schedule", Kind.FUNC)
    name_offset = records.words_of[function.id][records.starts[function.id]]
    assert name_offset not in records.strings
    assert records.strings[name_offset] == "schedule"
    assert second.dump_c() == expected == Btf.from_file(VMLINUX).dump_c()


def test_enum_members_are_the_names_and_numbers() -> None:
    """``Records.enum_members`` (a dump's enums, read at once) gives ``enum_names`` and
    ``enum_numbers``: of signed and unsigned enums, 32- and 64-bit, and an empty one."""
    values = (EnumValue("A", 1), EnumValue("B", -2), EnumValue("C", 0x7FFFFFFF))
    types = [
        Type(1, Kind.ENUM, "s", size=4, values=values, kind_flag=True),
        Type(2, Kind.ENUM, "u", size=4, values=(EnumValue("D", 0xFFFFFFFF),)),
        Type(3, Kind.ENUM64, "w", size=8, values=(EnumValue("E", -(1 << 40)),), kind_flag=True),
        Type(4, Kind.ENUM, "none", size=4),
    ]
    records = Records(Btf(encode(types)))
    for t in types:
        members = records.enum_members(t.id)
        assert members == (records.enum_names(t.id), records.enum_numbers(t.id))
        assert members == ([v.name for v in t.values], [v.value for v in t.values])


@needs_vmlinux
def test_kept_declaration_tables_not_of_these_types_are_not_used() -> None:
    """The forward declarations' order and the named types' ids, kept by an earlier
    dump, are used only when they name types of this BTF of the kinds they list (else
    the dump makes them itself); the header is the same either way."""
    store = TableDict()
    first = Btf.from_file(VMLINUX)
    first.memo[STORE] = store
    expected = first.dump_c()
    schedule = first.find("schedule", Kind.FUNC).id  # (no struct, typedef or pointer)
    past = first.type_count + 7  # (no type has this id)
    typedef = first.find("pid_t", Kind.TYPEDEF).id  # (named, but no struct or union)
    junks = [[1, schedule], [0, schedule], [5, 1], [1, past], [0, past], [1, 1, past]]
    for junk in [*junks, [1, typedef], [0, typedef]]:
        store[NAMED_TABLE] = store[FORWARD_TABLE] = array("I", junk).tobytes()
        store[LAYOUT_TABLE] = b"\x80" * 3  # (not one byte a type)
        second = Btf.from_file(VMLINUX)
        second.memo[STORE] = store
        assert second.dump_c() == expected
