"""The static linker (``pylibbpf.spec.linker``), without privileges: several BPF objects
into one, as libbpf's ``bpf_linker`` (``bpftool gen object``) does.

Symbol resolution (strong over weak in either order, the first weak one among weak ones,
externs, statics of one name kept apart, hidden visibility), the conflicts libbpf refuses,
BTF merged and deduplicated, every output compared with bpftool's (sections, bytes,
relocations, symbols, BTF types), relinking as a fixpoint, hostile inputs, the dedup
itself. The kernel half is test_linker_kernel.py.
"""

from __future__ import annotations

import io
import random
import struct
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from linker_objects import LINK_SETS, bpftools, build_object, link, selftest_object

from pylibbpf.btf import Btf, Kind, Type
from pylibbpf.btf.dedup import dedup
from pylibbpf.btf.ext import BtfExt
from pylibbpf.btf.types import LINKAGE_GLOBAL, LINKAGE_STATIC, Member
from pylibbpf.elf import parse_object
from pylibbpf.errors import ObjectError
from pylibbpf.spec.linker import link_objects


def _symbols(data: bytes) -> list[tuple[str, str, str, str, int]]:
    """(name, type, bind, section, value) of each symbol, read with pyelftools."""
    elf = ELFFile(io.BytesIO(data))
    symtab = elf.get_section_by_name(".symtab")
    out = []
    for sym in symtab.iter_symbols():
        index = sym["st_shndx"]
        section = elf.get_section(index).name if isinstance(index, int) and index else ""
        out.append(
            (sym.name, sym["st_info"]["type"], sym["st_info"]["bind"], section, sym["st_value"])
        )
    return out


def _btf_of(data: bytes) -> tuple[Btf, BtfExt]:
    elf = ELFFile(io.BytesIO(data))
    btf = Btf(elf.get_section_by_name(".BTF").data(), name="linked .BTF")
    return btf, BtfExt(elf.get_section_by_name(".BTF.ext").data(), btf)


def _elf_view(data: bytes) -> tuple[dict[str, object], list[tuple[object, ...]], list[object]]:
    """What a linked object says, independent of layout and order: each section's
    header and bytes (relocations as offset, symbol, type), the symbols, and the BTF types
    (DATASECs as their variables' types and sizes: bpftool's linker leaves them unsorted,
    at an extern's stale offset)."""
    elf = ELFFile(io.BytesIO(data))
    symbols = list(elf.get_section_by_name(".symtab").iter_symbols())

    def where(index: object) -> str:
        return elf.get_section(index).name if isinstance(index, int) and index else str(index)

    sections: dict[str, object] = {}
    for section in elf.iter_sections():
        if section.name in ("", ".strtab", ".symtab", ".BTF", ".BTF.ext"):
            continue
        if section["sh_type"] == "SHT_REL":
            sections[section.name] = sorted(
                (r["r_offset"], symbols[r["r_info_sym"]].name, r["r_info_type"])
                for r in section.iter_relocations()
            )
        else:
            nobits = section["sh_type"] == "SHT_NOBITS"
            sections[section.name] = (
                section["sh_type"],
                section["sh_flags"],
                section["sh_addralign"],
                section["sh_size"],
                b"" if nobits else section.data(),
            )
    described = sorted(
        (
            s.name,
            s["st_info"]["type"],
            s["st_info"]["bind"],
            s["st_other"]["visibility"],
            where(s["st_shndx"]),
            s["st_value"],
            s["st_size"],
        )
        for s in symbols
    )
    types: list[object] = []
    for t in Btf(elf.get_section_by_name(".BTF").data()):
        if t.kind == Kind.DATASEC:
            types.append((t.name, t.size, sorted((v.type, v.size) for v in t.vars)))
        else:
            types.append(t)
    return sections, described, types


# --------------------------------------------------------------------------- pure: symbols


def test_symbols_resolve_across_objects() -> None:
    linked = link("linker_lib", "linker_main")
    symbols = _symbols(linked)
    by_name: dict[str, list[tuple[str, str, str, str, int]]] = {}
    for sym in symbols:
        by_name.setdefault(sym[0], []).append(sym)
    # One global each: the strong definitions won over the library's weak ones.
    assert [s[1:3] for s in by_name["pick"]] == [("STT_FUNC", "STB_GLOBAL")]
    assert [s[1:3] for s in by_name["tunable"]] == [("STT_OBJECT", "STB_GLOBAL")]
    assert [s[1:4] for s in by_name["stats"]] == [("STT_OBJECT", "STB_GLOBAL", ".maps")]
    assert [s[1:3] for s in by_name["lib_value"]] == [("STT_OBJECT", "STB_GLOBAL")]
    # Statics of one name stay apart: two helpers, at different places in .text.
    helpers = by_name["helper"]
    assert [s[1:4] for s in helpers] == [("STT_FUNC", "STB_LOCAL", ".text")] * 2
    assert helpers[0][4] != helpers[1][4]
    # The strong pick is the main object's, placed after the library's .text.
    lib_text = ELFFile(io.BytesIO(build_object("linker_lib"))).get_section_by_name(".text")
    assert by_name["pick"][0][4] >= lib_text["sh_size"]
    # Local symbols come first, as ELF wants (sh_info: the first global).
    elf = ELFFile(io.BytesIO(linked))
    first_global = elf.get_section_by_name(".symtab")["sh_info"]
    binds = [s[2] for s in symbols]
    assert set(binds[:first_global]) == {"STB_LOCAL"}
    assert "STB_LOCAL" not in binds[first_global:]
    # Hidden visibility sticks to the definition (libbpf then makes lib_add static).
    lib_add = next(
        s for s in elf.get_section_by_name(".symtab").iter_symbols() if s.name == "lib_add"
    )
    assert lib_add["st_other"]["visibility"] == "STV_HIDDEN"


def test_linked_object_parses_with_both_programs_and_one_map() -> None:
    for order in (("linker_lib", "linker_main"), ("linker_main", "linker_lib")):
        spec = parse_object(link(*order), "linked")
        assert set(spec.programs) == {"lib_prog", "main_prog"}
        assert [m for m in spec.maps if not m.startswith(".")] == ["stats"]
        assert spec.maps["stats"].max_entries == 4
        assert spec.license == "GPL"
        # One copy of each global section, the library's lib_scale in .rodata.
        assert spec.datasecs[".rodata"].data[:4] == struct.pack("<i", 1000)


def test_statics_of_one_name_stay_apart_in_the_linked_object() -> None:
    """Two objects' static `count` and `seen` land in one section each twice: every copy
    is a variable at its own offset with its own initial value; by name, the object shows
    the first, and a subskeleton's lookup (globals only) does not take a static."""
    from pylibbpf.loader import BpfObject

    with BpfObject.open(link("linker_statics:SIDE=1", "linker_statics:SIDE=2")) as obj:
        counts = obj.section_variables(".data")
        by_name = {}
        for variable in counts:
            by_name.setdefault(variable.name, []).append(variable)
        assert [v.value for v in by_name["count"]] == [10, 20]
        assert len({v.offset for v in by_name["count"]}) == 2
        assert all(v.static for v in by_name["count"])
        assert [v.value for v in by_name["global1"] + by_name["global2"]] == [1, 2]
        seen = [v for v in obj.section_variables(".bss") if v.name == "seen"]
        assert len({v.offset for v in seen}) == 2
        assert obj.variables["count"] is by_name["count"][0]
        assert obj.find_variable(".data", "global2") is by_name["global2"][0]
        with pytest.raises(ObjectError, match="no global variable 'count' in .data"):
            obj.find_variable(".data", "count")


def test_btf_is_merged_once_with_sorted_datasecs() -> None:
    linked = link("linker_lib", "linker_main")
    btf, ext = _btf_of(linked)
    # The struct both objects declare, the globals both name: one type each.
    assert len(btf.find_all("counters", Kind.STRUCT)) == 1
    for name in ("pick", "lib_add", "main_prog", "lib_prog"):
        assert len(btf.find_all(name, Kind.FUNC)) == 1, name
    for name in ("tunable", "lib_value", "stats"):
        (var,) = btf.find_all(name, Kind.VAR)
        assert var.linkage == LINKAGE_GLOBAL, name  # the externs became the definitions
    assert len(btf.find_all("helper", Kind.FUNC)) == 1  # same prototype, same FUNC: dedup
    # DATASECs: sorted, sized, at the offsets of the final symbols.
    symbols = {(s[3], s[0]): s[4] for s in _symbols(linked) if s[1] == "STT_OBJECT"}
    sections = {s.name: s for s in ELFFile(io.BytesIO(linked)).iter_sections()}
    for datasec in (t for t in btf if t.kind == Kind.DATASEC):
        offsets = [v.offset for v in datasec.vars]
        assert offsets == sorted(offsets), datasec.name
        assert datasec.size == sections[datasec.name]["sh_size"]
        for entry in datasec.vars:
            var = btf[entry.type]
            if var.linkage == LINKAGE_GLOBAL:
                assert entry.offset == symbols[(datasec.name, var.name)], var.name
    # .BTF.ext: every function of both objects has its record, re-based in its section.
    lib_ext = _btf_of(build_object("linker_lib"))[1]
    main_ext = _btf_of(build_object("linker_main"))[1]
    for section in (".text", "xdp"):
        count = len(lib_ext.func_info[section]) + len(main_ext.func_info[section])
        assert len(ext.func_info[section]) == count
        lines = len(lib_ext.line_info[section]) + len(main_ext.line_info[section])
        assert len(ext.line_info[section]) == lines
    funcs = {f.insn_off: btf[f.type_id].name for f in ext.func_info["xdp"]}
    programs = {s[4]: s[0] for s in _symbols(linked) if s[3] == "xdp" and s[1] == "STT_FUNC"}
    assert funcs == programs


@pytest.mark.parametrize(
    ("defines", "message"),
    [
        (
            ["STRONG_LIB_VALUE"],
            "strong symbol 'lib_value' defined in both linker_lib.o and linker_main.o",
        ),
        (
            ["STATS_ENTRIES=8"],
            "conflicting definitions of map 'stats' in linker_lib.o and linker_main.o: "
            "max_entries 4 vs 8",
        ),
        (
            ["STATS_VALUE=__u64"],
            "conflicting definitions of map 'stats' in linker_lib.o and linker_main.o: "
            "value_size 16 vs 8",
        ),
        (
            ["LONG_LIB_VALUE"],
            "conflicting declarations of 'lib_value' in linker_lib.o and linker_main.o: "
            "INT 'int' has size 4 vs 8",
        ),
        (["OTHER_LICENSE"], "linker_main.o: section 'license' differs from the one in"),
    ],
)
def test_conflicts_name_objects_symbol_and_cause(defines: list[str], message: str) -> None:
    with pytest.raises(ObjectError) as error:
        link("linker_lib", ":".join(["linker_main", *defines]))
    assert message in str(error.value)


def test_first_weak_definition_wins() -> None:
    """first_weak is weak in both objects: the symbol is the first object's (its offset
    and its bytes), and stays weak."""
    for order, value in ((("linker_lib", "linker_main"), 1), (("linker_main", "linker_lib"), 2)):
        linked = link(*order)
        (symbol,) = [s for s in _symbols(linked) if s[0] == "first_weak"]
        assert symbol[1:4] == ("STT_OBJECT", "STB_WEAK", ".data")
        first_data = ELFFile(io.BytesIO(build_object(order[0]))).get_section_by_name(".data")
        assert symbol[4] < first_data["sh_size"]  # inside the first object's part
        data = parse_object(linked, "linked").datasecs[".data"].data
        assert struct.unpack_from("<i", data, symbol[4]) == (value,)


def test_a_strong_symbol_defined_twice_conflicts() -> None:
    with pytest.raises(ObjectError, match="strong symbol 'pick' defined in both a.o and b.o"):
        link_objects([build_object("linker_main")] * 2, ["a.o", "b.o"])


def test_unresolved_externs_stay_for_a_later_link() -> None:
    """A library linked alone keeps its externs (libbpf's library workflow)."""
    alone = link("linker_main")
    undefined = {s[0] for s in _symbols(alone) if s[3] == "" and s[2] != "STB_LOCAL"}
    assert {"lib_value", "lib_add", "stats"} <= undefined
    final = link_objects([alone, build_object("linker_lib")], ["main.linked.o", "lib.o"])
    assert not {s[0] for s in _symbols(final) if s[3] == "" and s[2] != "STB_LOCAL"}


def test_relinking_is_a_fixpoint() -> None:
    """As the selftests' Makefile checks for bpftool: linking a linked object again gives
    the same bytes from the second round on."""
    once = link("linker_lib", "linker_main")
    twice = link_objects([once])
    assert link_objects([twice]) == twice


@pytest.mark.parametrize("link_set", sorted(LINK_SETS))
def test_output_matches_bpftool_gen_object(link_set: str, tmp_path: Path) -> None:
    """Same sections, bytes, relocations, symbols and BTF types (the dedup result) as
    ``bpftool gen object`` (libbpf 1.5's linker when built, else the system's)."""
    bpftool = bpftools()[0]
    where, names = LINK_SETS[link_set]
    build = build_object if where == "tests" else selftest_object
    datas = [build(name) for name in names]
    inputs = []
    for name, data in zip(names, datas, strict=True):
        path = tmp_path / f"{name}.o"
        path.write_bytes(data)
        inputs.append(str(path))
    reference = tmp_path / "bpftool.o"
    subprocess.run([bpftool, "gen", "object", str(reference), *inputs], check=True)
    ours = link_objects(datas, [f"{name}.o" for name in names])
    mine, theirs = _elf_view(ours), _elf_view(reference.read_bytes())
    assert mine[0] == theirs[0]
    assert mine[1] == theirs[1]
    assert mine[2] == theirs[2]


def test_two_objects_naming_one_kfunc_or_typeless_ksym_link() -> None:
    """libbpf 1.5 refuses these ("failed to resolve size of underlying type"): a kfunc's
    FUNC and a ``const void`` ksym have no size. The linker keeps one of each, listed once
    in .ksyms."""
    linked = link("linker_kfunc:SIDE=1", "linker_kfunc:SIDE=2")
    btf, _ = _btf_of(linked)
    (ksyms,) = btf.find_all(".ksyms", Kind.DATASEC)
    names = sorted(btf[v.type].name for v in ksyms.vars)
    assert names == ["bpf_prog_fops", "bpf_rcu_read_lock", "bpf_rcu_read_unlock"]
    assert set(parse_object(linked, "kf").programs) == {"prog1", "prog2"}


# --------------------------------------------------------------------------- pure: hostile


def test_hostile_inputs_raise_object_error() -> None:
    lib, main = build_object("linker_lib"), build_object("linker_main")
    for bad, fragment in (
        (b"", "bad.o: not a valid ELF file"),
        (b"\x7fELF" + bytes(60), "bad.o"),
        (lib[:300], "bad.o"),
    ):
        with pytest.raises(ObjectError, match=fragment):
            link_objects([bad, main], ["bad.o", "main.o"])
    with pytest.raises(ObjectError, match="nothing to link"):
        link_objects([])
    # A relocation naming a symbol that does not exist.
    elf = ELFFile(io.BytesIO(lib))
    rel = elf.get_section_by_name(".relxdp")
    corrupt = bytearray(lib)
    struct.pack_into("<Q", corrupt, rel["sh_offset"] + 8, (9999 << 32) | 1)
    with pytest.raises(ObjectError, match=r"bad.o: relocation #0 in '.relxdp' names symbol #9999"):
        link_objects([bytes(corrupt), main], ["bad.o", "main.o"])


def test_mutated_objects_never_crash() -> None:
    """Bytes flipped anywhere in an input: the linker links or raises ObjectError."""
    lib, main = build_object("linker_lib"), build_object("linker_main")
    rng = random.Random(19)
    for _ in range(200):
        corrupt = bytearray(lib)
        for _ in range(rng.randint(1, 4)):
            corrupt[rng.randrange(len(corrupt))] = rng.randrange(256)
        try:
            link_objects([bytes(corrupt), main], ["bad.o", "main.o"])
        except ObjectError as error:
            assert str(error)


# --------------------------------------------------------------------------- pure: dedup


def _struct(type_id: int, name: str, members: Sequence[tuple[str, int]]) -> Type:
    fields = tuple(Member(n, t, 32 * i) for i, (n, t) in enumerate(members))
    return Type(type_id, Kind.STRUCT, name, size=4 * len(members), members=fields)


def test_dedup_merges_cycles_resolves_forwards_keeps_vars() -> None:
    types = [
        Type(1, Kind.INT, "int", size=4, bits=32, encoding=1),
        _struct(2, "node", [("value", 1), ("next", 3)]),
        Type(3, Kind.PTR, type=2),
        Type(4, Kind.INT, "int", size=4, bits=32, encoding=1),
        _struct(5, "node", [("value", 4), ("next", 6)]),
        Type(6, Kind.PTR, type=5),
        Type(7, Kind.FWD, "node"),  # resolves to struct node
        Type(8, Kind.PTR, type=7),  # then equals 3
        Type(9, Kind.VAR, "a", type=1, linkage=LINKAGE_STATIC),
        Type(10, Kind.VAR, "a", type=4, linkage=LINKAGE_STATIC),  # never merged
        Type(11, Kind.FWD, "elsewhere", kind_flag=True),  # no union of that name: kept
    ]
    kept, mapping = dedup(types)
    assert [t.kind for t in kept] == [Kind.INT, Kind.STRUCT, Kind.PTR, Kind.VAR, Kind.VAR, Kind.FWD]
    assert mapping == [0, 1, 2, 3, 1, 2, 3, 2, 3, 4, 5, 6]
    assert kept[1].members[1].type == 3 and kept[2].type == 2
    assert kept[3].type == kept[4].type == 1


def test_dedup_keeps_differing_types_apart() -> None:
    types = [
        Type(1, Kind.INT, "int", size=4, bits=32, encoding=1),
        Type(2, Kind.INT, "unsigned int", size=4, bits=32),
        _struct(3, "s", [("x", 1)]),
        _struct(4, "s", [("x", 2)]),  # same shape, another member type
        Type(5, Kind.FWD, "s"),  # two structs named s: ambiguous, stays a FWD
    ]
    kept, mapping = dedup(types)
    assert len(kept) == 5 and mapping == [0, 1, 2, 3, 4, 5]
