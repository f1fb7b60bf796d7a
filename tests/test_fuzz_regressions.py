"""Every defect the fuzzer found keeps a regression test here.

Two kinds: BTF shapes written out as types (a loop, a chain deeper than any compiler
writes, a size past 32 bits), small enough to read; and the fuzzer's own minimised
reproducers in ``tests/fuzz_cases/``, replayed through every fuzzing target in a forked
child under the fuzzer's limits (a segfault or a hang fails the test instead of the
run). The oracle is the fuzzer's: success or a ``BpfError``, nothing else.

A reproducer saved before its fix names the function to fix (``Case.owner``) and runs
as ``xfail(strict=True)``: when the fix lands the test passes, strict xfail turns that
into a failure, and the owner has to go. Every saved case is fixed now; the fixed ones
also check what the error says.
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pylibbpf.btf import Btf, EnumValue, Kind, Member, Param, Type, VarSecinfo
from pylibbpf.btf.encode import encode
from pylibbpf.btf.graph import MAX_NESTING
from pylibbpf.errors import ObjectError

ROOT = Path(__file__).resolve().parents[1]
CASES = Path(__file__).parent / "fuzz_cases"

INT = Type(1, Kind.INT, "int", size=4, encoding=1, bits=32)


def btf_of(*types: Type) -> Btf:
    return Btf(encode(types), name="case")


# --------------------------------------------------------------------------- type loops

LOOPS = {
    "struct containing itself": (
        [INT, Type(2, Kind.STRUCT, "s", size=8, members=(Member("a", 1, 0), Member("me", 2, 32)))],
        "a type contains itself",
        "struct s [2] -> struct s [2]",
    ),
    "array of itself": (
        [INT, Type(2, Kind.ARRAY, "", type=2, index_type=1, nelems=2)],
        "a type contains itself",
        "array [2] -> array [2]",
    ),
    "variable of itself": (
        [INT, Type(2, Kind.VAR, "v", type=2, linkage=1)],
        "a type contains itself",
        "var v [2] -> var v [2]",
    ),
    "typedef of its own const": (
        [INT, Type(2, Kind.TYPEDEF, "t", type=3), Type(3, Kind.CONST, "", type=2)],
        "a typedef/qualifier loop",
        "typedef t [2] -> const [3] -> typedef t [2]",
    ),
    "pointer to its own qualifier": (
        [INT, Type(2, Kind.PTR, "", type=3), Type(3, Kind.VOLATILE, "", type=2)],
        "a pointer loop through unnamed types",
        "ptr [2] -> volatile [3] -> ptr [2]",
    ),
    "anonymous union with itself as its unnamed member": (
        [INT, Type(2, Kind.UNION, "", size=4, members=(Member("", 2, 0), Member("x", 1, 0)))],
        "a type contains itself",
        "union [2] -> union [2]",
    ),
    "function prototype returning itself": (
        [INT, Type(2, Kind.FUNC_PROTO, "", type=2, params=(Param("a", 1),))],
        "a function prototype refers to itself",
        "func_proto [2] -> func_proto [2]",
    ),
}


@pytest.mark.parametrize("name", LOOPS)
def test_type_loops_are_object_errors_naming_the_loop(name: str) -> None:
    types, what, chain = LOOPS[name]
    btf = btf_of(*types)
    for call in (
        btf.check_graph,
        lambda: btf.check_graph(2),
        lambda: btf.alignof(2),
        lambda: btf.ctype(2),
        btf.dump_c,
        lambda: btf.dump_c([2]),
    ):
        with pytest.raises(ObjectError, match="type loop") as error:
            call()
        assert what in str(error.value) and chain in str(error.value)
    # Walks that do not recurse by value stay usable: a loop is visited once.
    assert {t.id for t in btf.walk(2)} <= {1, 2, 3}
    with contextlib.suppress(ObjectError):  # a typedef loop cannot even be resolved
        assert btf.member_path(2, "nothing") == []


def test_loops_through_qualifiers_and_variables_stop_sizeof_and_resolve() -> None:
    btf = btf_of(*LOOPS["variable of itself"][0])
    with pytest.raises(ObjectError, match=r"type loop.*var v \[2\]"):
        btf.sizeof(2)
    btf = btf_of(*LOOPS["typedef of its own const"][0])
    with pytest.raises(ObjectError, match=r"typedef/qualifier loop"):
        btf.resolve(2)


def test_a_pointer_to_a_named_type_breaks_a_loop() -> None:
    """``struct node { struct node *next; }`` is not a loop, and neither is a pointer to
    a typedef of it, nor a callback taking the struct."""
    btf = btf_of(
        INT,
        Type(
            2,
            Kind.STRUCT,
            "node",
            size=24,
            members=(
                Member("next", 3, 0),
                Member("alias", 5, 64),
                Member("cb", 6, 128),
            ),
        ),
        Type(3, Kind.PTR, "", type=4),
        Type(4, Kind.CONST, "", type=2),
        Type(5, Kind.PTR, "", type=7),
        Type(6, Kind.PTR, "", type=8),
        Type(7, Kind.TYPEDEF, "node_t", type=2),
        Type(8, Kind.FUNC_PROTO, "", type=1, params=(Param("n", 3),)),
    )
    btf.check_graph()
    assert btf.sizeof(2) == 24 and btf.alignof(2) == 8
    assert "struct node *next;" in btf.dump_c()


def test_split_btf_checks_its_own_types_on_top_of_its_base() -> None:
    """Module BTF refers to vmlinux's types: their heights come from the base's check."""
    base = btf_of(*_chain(Kind.TYPEDEF, 10))  # ids 1..11, 2 -> ... -> 11 -> int
    first = base.type_count  # 12
    split = Btf(
        encode(
            [
                Type(first, Kind.STRUCT, "", size=4, members=(Member("", 2, 0),)),
                Type(first + 1, Kind.ARRAY, "", type=first + 1, index_type=1, nelems=1),
            ]
        ),
        name="module",
        base=base,
    )
    assert split.check_graph(first) == base.check_graph(2) + 1 == 12
    with pytest.raises(ObjectError, match=rf"module: type loop .*array \[{first + 1}\]"):
        split.check_graph()
    assert split.sizeof(first) == 4 and split.alignof(first) == 4


def test_the_kernels_own_btf_has_no_loop_and_nests_within_the_bound() -> None:
    if not Path("/sys/kernel/btf/vmlinux").exists():
        pytest.skip("the running kernel has no BTF (/sys/kernel/btf/vmlinux)")
    vmlinux = Btf.load_vmlinux()
    vmlinux.check_graph()  # every type
    task = vmlinux.find("task_struct", Kind.STRUCT)
    assert 1 < vmlinux.check_graph(task.id) <= MAX_NESTING


# --------------------------------------------------------------------------- depth and size


def _chain(kind: Kind, length: int) -> list[Type]:
    """Type 2 -> 3 -> ... -> length+1 -> int, all of ``kind``."""
    out = [INT]
    for type_id in range(2, length + 2):
        target = type_id + 1 if type_id < length + 1 else 1
        if kind == Kind.ARRAY:
            out.append(Type(type_id, kind, "", type=target, index_type=1, nelems=1))
        elif kind == Kind.STRUCT:
            out.append(Type(type_id, kind, "", size=4, members=(Member("m", target, 0),)))
        else:
            out.append(Type(type_id, kind, f"t{type_id}", type=target))
    return out


@pytest.mark.parametrize("kind", [Kind.TYPEDEF, Kind.ARRAY, Kind.STRUCT], ids=lambda k: k.name)
def test_nesting_deeper_than_the_bound_is_an_object_error(kind: Kind) -> None:
    deep = btf_of(*_chain(kind, 3 * MAX_NESTING))
    with pytest.raises(ObjectError, match=f"nest more than {MAX_NESTING} deep"):
        deep.ctype(2)
    with pytest.raises(ObjectError, match=f"nest more than {MAX_NESTING} deep"):
        deep.dump_c()
    if kind == Kind.STRUCT:
        assert deep.sizeof(2) == 4  # a struct's size is in its record: no walk
    else:
        with pytest.raises(ObjectError, match=f"nest more than {MAX_NESTING} deep"):
            deep.sizeof(2)
    # Within the bound, everything works (and needs no more recursion than Python has).
    fine = btf_of(*_chain(kind, MAX_NESTING - 2))
    assert fine.sizeof(2) == 4
    assert fine.alignof(2) == 4
    assert fine.check_graph(2) == MAX_NESTING - 1
    fine.ctype(2)
    fine.dump_c()


def test_sizes_past_32_bits_are_object_errors() -> None:
    btf = btf_of(
        INT,
        Type(2, Kind.ARRAY, "", type=1, index_type=1, nelems=(1 << 30) - 1),
        Type(3, Kind.ARRAY, "", type=2, index_type=1, nelems=2),
    )
    assert btf.sizeof(2) == 0xFFFFFFFC  # the largest size the kernel accepts, nearly
    with pytest.raises(ObjectError, match=r"type id 3 is 8589934584 bytes, more than 32 bits"):
        btf.sizeof(3)


def test_shared_anonymous_members_are_searched_once() -> None:
    """A struct whose 300 unnamed members all have one union type, which has 300 unnamed
    members of another: a search that revisits shared types would do 90,000 steps per
    level; member_path and alignof visit each type once."""
    leaf = Type(4, Kind.UNION, "", size=4, members=(Member("x", 1, 0),))
    middle = Type(3, Kind.UNION, "", size=4, members=tuple(Member("", 4, 0) for _ in range(300)))
    top = Type(2, Kind.STRUCT, "top", size=4, members=tuple(Member("", 3, 0) for _ in range(300)))
    btf = btf_of(INT, top, middle, leaf)
    assert btf.member_path(2, "missing") == []
    path = btf.member_path(2, "x")
    assert [t.id for t, _ in path] == [2, 3, 4] and path[-1][1].name == "x"
    assert btf.alignof(2) == 4


# --------------------------------------------------------------------------- other BTF input


def test_encoder_refuses_fields_past_32_bits_naming_the_type() -> None:
    """load() encodes DATASECs with offsets taken from ELF symbols (64-bit): a corrupt
    st_value was a struct.error out of load()."""
    types = [
        INT,
        Type(2, Kind.VAR, "counter", type=1, linkage=1),
        Type(3, Kind.DATASEC, ".bss", size=4, vars=(VarSecinfo(2, 1 << 40, 4),)),
    ]
    with pytest.raises(ObjectError, match=r"\.bss \(type id 3\): value 1099511627776"):
        encode(types)


def test_string_reads_outside_the_section_are_object_errors() -> None:
    btf = btf_of(INT)
    with pytest.raises(ObjectError, match="negative"):
        btf.string_at(-1)
    with pytest.raises(ObjectError, match="past the string section"):
        btf.string_at(btf.strings_size + 5)


def test_an_unterminated_last_string_is_still_found_by_prefix() -> None:
    raw = bytearray(encode([INT, Type(2, Kind.ENUM, "", size=4, values=(EnumValue("zed", 1),))]))
    assert raw[-1] == 0
    raw[-1] = ord("q")  # "zed" runs off the end of the section
    btf = Btf(bytes(raw), name="case")
    assert btf.names_with_prefix("ze") == ["zedq"]


@pytest.mark.parametrize("kind", [20, 21, 31])
def test_future_kinds_are_errors_naming_the_kind(kind: int) -> None:
    raw = bytearray(encode([INT, Type(2, Kind.PTR, "", type=1)]))
    raw[24 + 16 + 7] = kind  # the PTR's info word: kind in bits 24..28
    with pytest.raises(ObjectError, match=f"offset 16: unknown BTF kind {kind}"):
        Btf(bytes(raw), name="case")


# --------------------------------------------------------------------------- fuzzer reproducers


@dataclass(frozen=True)
class Case:
    """A saved reproducer: what was wrong, and (while unfixed) whose fix it is."""

    defect: str
    signature: str  # the fuzzer's: kind:exception@file:function
    owner: str = ""  # the function to fix, while it lives outside this phase's files
    fix: str = ""


KNOWN: dict[str, Case] = {
    "bss_size_1tib.elf": Case(
        ".bss claims 1 TiB: open() allocates it (bytes(sh_size))",
        "memory:MemoryError@spec/elf.py:section_data",
    ),
    "bss_size_256mib.elf": Case(
        ".bss claims 256 MiB (under the 512 MiB bound): MemoryError under the fuzzer's limit",
        "memory:MemoryError@spec/elf.py:section_data",
    ),
    "bss_copy_past_memory.elf": Case(
        "a .bss the address-space limit allows once but not twice: open() copies it",
        "memory:MemoryError@loader/object.py:__init__",
    ),
    "map_in_map_names_itself.elf": Case(
        "a map-in-map whose inner definition is the outer one: map_from_btf recursed",
        "recursion:RecursionError@btf/parse.py:resolve",
    ),
    "bss_size_2p63.elf": Case(
        ".bss claims 2^63 bytes: open() fails in bytes(sh_size)",
        "exception:OverflowError@spec/elf.py:section_data",
    ),
    "ctype_anonymous_member_of_anonymous_member.btf": Case(
        "a union whose unnamed member has an unnamed member: both are '_anon0', and "
        "ctypes' flattening of _anonymous_ crashes the interpreter",
        "signal:SIGSEGV@btf/ctype.py:_first_mismatch",
    ),
    "dump_c_2gib_struct.btf": Case(
        "dump_c of a 2 GiB struct writes its padding a line at a time (seconds, gigabytes)",
        "memory:MemoryError@btf/dump_c.py:_padding",
    ),
    "dump_c_shared_anonymous_structs.btf": Case(
        "26 anonymous structs, each holding the next one twice: dump_c orders and writes "
        "them inline 2^26 times",
        "timeout:InputTimeout@btf/dump_c.py:_order_type",
    ),
    "ctype_member_named_init.btf": Case(
        "a member named __init__: the ctypes class ctype() returns cannot be instantiated",
        "oracle:TypeError@btf/ctype.py:ctype",
    ),
    "ctype_bitfield_named_fields.btf": Case(
        "a bitfield named _fields_: TypeError while building the ctypes class",
        "exception:TypeError@btf/ctype.py:_with_bit_properties",
    ),
    "dump_c_wide_anonymous_struct_nested_30_deep.btf": Case(
        "an anonymous struct of 2000 anonymous-union members, wrapped in 30 anonymous "
        "structs: dump_c writes its body again at each indent and runs out of memory",
        "memory:MemoryError@btf/dump_c.py:_struct_body",
    ),
    "elf_no_section_headers.elf": Case(
        "an ELF whose e_shnum and e_shstrndx are 0: IndexError reading the section table",
        "exception:IndexError@spec/elf.py:_section_table",
    ),
    "dump_c_struct_member_of_kind_var.btf": Case(
        "dump_c of a struct whose member's type is a VAR: ValueError",
        "exception:ValueError@btf/dump_c.py:_base_name",
    ),
    "dump_c_member_of_kind_decl_tag.btf": Case(
        "dump_c of a struct whose member's type is a DECL_TAG (of an INT): ValueError",
        "exception:ValueError@btf/dump_c.py:_base_name",
    ),
    "skeleton_name_with_control_character.elf": Case(
        "a BTF name with U+007F: the generated skeleton does not compile",
        "oracle:SyntaxError@skelgen.py:generate",
    ),
    "skeleton_name_not_utf8.elf": Case(
        "a BTF name that is not UTF-8: writing the skeleton raises UnicodeEncodeError",
        "oracle:UnicodeEncodeError@skelgen.py:generate",
    ),
    "variable_size_mismatch.elf": Case(
        "a variable whose BTF type is larger than its DATASEC entry: reading it is a "
        "ValueError from ctypes",
        "exception:ValueError@spec/codec.py:decode",
    ),
    "kconfig_value_wider_than_its_type.elf": Case(
        "a __kconfig extern whose INT is 1 byte: the host's value does not fit, OverflowError",
        "exception:OverflowError@spec/kconfig.py:_kconfig_bytes",
    ),
    "kconfig_extern_of_4gib.elf": Case(
        "a __kconfig extern whose INT claims gigabytes: open() allocates the .kconfig image",
        "memory:MemoryError@spec/kconfig.py:layout_kconfig",
    ),
    "core_bitfield_of_zero_size.elf": Case(
        "a CO-RE bitfield relocation on a member whose type is 0 bytes: ZeroDivisionError",
        "exception:ZeroDivisionError@spec/core.py:_field_value",
    ),
    "core_negative_access_index.elf": Case(
        "a CO-RE access string with a negative index ('0:0:-9'): IndexError; '-1' silently "
        "picks the last member",
        "exception:IndexError@spec/core.py:_local_field",
    ),
}
# The same defects seen another way by the fuzzer (a timeout or a kill instead of a
# MemoryError, the list comprehension around the padding).
ALSO_SEEN = {
    "timeout:InputTimeout@btf/dump_c.py:_padding": "dump_c_2gib_struct.btf",
    "hang:killed@btf/dump_c.py:_padding": "dump_c_2gib_struct.btf",
    "memory:MemoryError@btf/dump_c.py:<listcomp>": "dump_c_2gib_struct.btf",
    "signal:SIGSEGV@btf/ctype.py:_make": "ctype_anonymous_member_of_anonymous_member.btf",
    "exception:TypeError@targets.py:_ctypes": "ctype_member_named_init.btf",
}


def _kind_type_function(signature: str) -> tuple[str, str]:
    """``memory:MemoryError@spec/elf.py:section_data`` -> (``memory:MemoryError``,
    ``section_data``): modules move (the layering work), functions mostly keep names."""
    head, _, where = signature.partition("@")
    return head, where.rsplit(":", 1)[-1]


def known_defect(signature: str) -> bool:
    """Whether a defect the fuzzer reports is one a saved, still unfixed reproducer
    already shows (the smoke test fails only on new ones)."""
    wanted = _kind_type_function(signature)
    signatures = [c.signature for c in KNOWN.values() if c.owner]
    signatures += [s for s, name in ALSO_SEEN.items() if KNOWN[name].owner]
    return any(_kind_type_function(s) == wanted for s in signatures)


def _require_fuzzer() -> None:
    """The fuzzer lives in tools/, which an sdist does not ship."""
    if not (ROOT / "tools" / "fuzz").is_dir():
        pytest.skip("the fuzzer (tools/fuzz) is not in this tree (an sdist ships tests only)")


def _runner() -> object:
    _require_fuzzer()
    sys.path.insert(0, str(ROOT))
    try:
        from tools.fuzz.targets import Runner
    finally:
        sys.path.remove(str(ROOT))
    try:
        vmlinux = Btf.load_vmlinux()
    except Exception:
        vmlinux = None
    return Runner(vmlinux)


def _case_files() -> list[Path]:
    return sorted(p for p in CASES.glob("*") if p.suffix in (".elf", ".btf"))


def test_every_reproducer_is_described() -> None:
    names = {p.name for p in _case_files()}
    assert names == set(KNOWN), "tests/fuzz_cases and KNOWN must list the same files"


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_reproducer_gives_success_or_a_pylibbpf_error(
    name: str, request: pytest.FixtureRequest
) -> None:
    case = KNOWN[name]
    if case.owner:
        request.applymarker(
            pytest.mark.xfail(strict=True, reason=f"{case.defect}; fix in {case.owner}: {case.fix}")
        )
    _require_fuzzer()
    sys.path.insert(0, str(ROOT))
    try:
        from tools.fuzz.minimize import signatures
    finally:
        sys.path.remove(str(ROOT))
    path = CASES / name
    kind = "object" if path.suffix == ".elf" else "btf"
    found = signatures(_runner(), kind, path.read_bytes())  # type: ignore[arg-type]
    assert found == set(), f"{name}: {case.defect}: {sorted(found)}"


# ------------------------------------------------------- what the fixed reproducers say


def _open_case(name: str) -> object:
    from pylibbpf.loader import BpfObject

    return BpfObject.open((CASES / name).read_bytes(), name="case")


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("bss_size_1tib.elf", ["case:", "'.bss'", "1099511627776 bytes"]),
        ("bss_size_2p63.elf", ["case:", "'.bss'", "9223372036854775808 bytes"]),
        ("kconfig_extern_of_4gib.elf", ["case", "__kconfig extern", "4278190084 bytes"]),
        ("elf_no_section_headers.elf", ["case:", "no section header table"]),
        ("map_in_map_names_itself.elf", ["'outer.inner'", "an inner map cannot hold maps"]),
    ],
)
def test_open_refuses_malformed_objects_naming_the_cause(name: str, words: list[str]) -> None:
    with pytest.raises(ObjectError) as caught:
        _open_case(name)
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("core_negative_access_index.elf", ["program 'handle'", "access string '0:0:-9'"]),
        ("core_bitfield_of_zero_size.elf", ["program 'task_fields'", "0 bytes"]),
    ],
)
def test_malformed_core_relocations_are_relocation_errors(name: str, words: list[str]) -> None:
    from pylibbpf.errors import RelocationError
    from pylibbpf.loader import inspect_core

    try:
        vmlinux = Btf.load_vmlinux()
    except Exception as error:  # no kernel BTF here: nothing to resolve against
        pytest.skip(f"no vmlinux BTF: {error}")
    with pytest.raises(RelocationError) as caught:
        inspect_core((CASES / name).read_bytes(), vmlinux)
    for word in ["CO-RE", *words]:
        assert word in str(caught.value)


@pytest.mark.parametrize("access", ["-1", "0:-9", "+1", "0_1", " 0", "0:\u0661", "0::1", ""])
def test_access_strings_are_plain_decimals(access: str) -> None:
    from pylibbpf.errors import RelocationError
    from pylibbpf.spec.core import _access_indices

    with pytest.raises(RelocationError, match="malformed CO-RE access string"):
        _access_indices(access, "here")
    assert _access_indices("0:12:3", "here") == [0, 12, 3]


def test_a_variable_whose_type_outgrows_its_entry_names_both_sizes() -> None:
    obj: Any = _open_case("variable_size_mismatch.elf")
    banner = obj.variables["banner"]
    with pytest.raises(ObjectError, match=r"'banner' in \.rodata\.banner: .* 64 bytes .* 8"):
        _ = banner.value
    assert banner.raw == b"skel\0\0\0\0"  # the bytes stay readable


def test_a_kconfig_value_too_wide_for_its_extern_is_an_error_naming_it() -> None:
    from pylibbpf.loader.externs import kconfig_layout
    from pylibbpf.spec.kconfig import fill_kconfig

    spec: Any = _open_case("kconfig_value_wider_than_its_type.elf").spec  # type: ignore[attr-defined]
    layout, size = kconfig_layout(spec)
    externs = [e for e in spec.externs.values() if e.section == ".kconfig"]
    values = {e.name: "y" for e in externs} | {"LINUX_KERNEL_VERSION": "397868"}
    with pytest.raises(ObjectError, match="LINUX_KERNEL_VERSION.*does not fit in its 1-byte"):
        fill_kconfig("case", spec.btf, externs, layout, bytearray(size), values)


@pytest.mark.parametrize(
    "name",
    ["dump_c_shared_anonymous_structs.btf", "dump_c_wide_anonymous_struct_nested_30_deep.btf"],
)
def test_dump_c_bounds_anonymous_types_written_out_at_every_use(name: str) -> None:
    btf = Btf((CASES / name).read_bytes(), name="case")
    with pytest.raises(ObjectError, match=r"case: type id \d+ would take more C than a dump"):
        btf.dump_c()


@pytest.mark.parametrize(
    ("name", "room_mib", "says"),
    [
        ("bss_size_256mib.elf", 64, "case: section '.bss' claims 268435968 bytes"),
        # 128 MiB of zeros fit once in 192 MiB of room, not twice (open() copies them)
        ("bss_copy_past_memory.elf", 192, "object 'case': opening it needs more memory"),
    ],
)
def test_a_bss_larger_than_the_memory_left_is_an_object_error(
    name: str, room_mib: int, says: str
) -> None:
    """A .bss under the 512 MiB bound that this process cannot allocate (an address-space
    limit, as the fuzzer's workers have) is refused naming the section or the object, not
    MemoryError."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(read)
        try:
            with open("/proc/self/statm") as statm:
                used = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            limit = used + (room_mib << 20)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            try:
                _open_case(name)
                said = "opened"
            except BaseException as error:  # what escaped is the answer
                said = f"{type(error).__name__}: {error}"
            os.write(write, said.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as answer:
        said = answer.read().decode()
    os.waitpid(pid, 0)
    assert said.startswith(f"ObjectError: {says}"), said
    assert "more memory than this process can allocate" in said
