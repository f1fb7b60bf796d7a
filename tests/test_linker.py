"""The static linker (``pylibbpf.spec.linker``): several BPF objects into one, as libbpf's
``bpf_linker`` (``bpftool gen object``) does.

Privilege-free: symbol resolution (strong over weak in either order, the first weak one
among weak ones, externs, statics of one name kept apart, hidden visibility), the
conflicts libbpf refuses, BTF merged and deduplicated as bpftool does, relinking as a
fixpoint, hostile inputs. With root: the linked objects run (BPF_PROG_TEST_RUN shows which
definition each call reached), the kernel selftests' linked_funcs/linked_vars/linked_maps
are linked, loaded, attached and triggered as their prog_tests do, with the values those
tests check; the subskeleton and USDT selftest objects link and load; bpftool and libbpf
load pylibbpf's output and pylibbpf loads bpftool's.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import random
import shutil
import struct
import subprocess
import sys
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import BPF_SRC, CACHE, _clang, _multiarch, kernel_selftests_dir, vmlinux_h_dir
from elftools.elf.elffile import ELFFile

from pylibbpf.btf import Btf, Kind, Type
from pylibbpf.btf.dedup import dedup
from pylibbpf.btf.ext import BtfExt
from pylibbpf.btf.types import LINKAGE_GLOBAL, LINKAGE_STATIC, Member
from pylibbpf.elf import parse_object
from pylibbpf.errors import ObjectError
from pylibbpf.object import BpfObject
from pylibbpf.spec.linker import link_objects

SYS_GETPGID = {"x86_64": 121, "aarch64": 155}
TARGET_ARCH = {"x86_64": "x86", "aarch64": "arm64"}
LIBBPF_SO = Path(os.environ.get("PYLIBBPF_TEST_LIBBPF", "/work/wt/cache/libbpf-1.5/libbpf.so"))
BPFTOOL_15 = Path(
    os.environ.get("PYLIBBPF_TEST_BPFTOOL", "/work/wt/cache/bpftool-1.5/sbin/bpftool")
)
PACKET = bytes(64)


def expected_results(first_weak: int) -> list[tuple[int, int]]:
    """(hits, last) of stats[0] and stats[1] after one run of main_prog and lib_prog on a
    64-byte packet (see the sources): main calls its own strong pick (n + 100) and helper
    (5n), the library's lib_add (3n + 7), reads its strong tunable (5) and the library's
    lib_value (7); the library's program reaches the same strong pick and tunable but its
    own helper (3n). first_weak is the first object's weak value (1: the library's)."""
    main = (64 + 100) + 5 * 64 + (3 * 64 + 7) + 5 + 7 + first_weak * 10000
    lib = (64 + 100) * 1000 + 5 + 3 * 64 + first_weak * 10
    return [(1, main), (1, lib)]


# --------------------------------------------------------------------------- building


def _build(source: Path, includes: Sequence[Path], defines: Sequence[str] = ()) -> bytes:
    """Compile a BPF C file as the selftests do (-O2 -g -mcpu=v3), cached by content."""
    clang = _clang()
    arch = TARGET_ARCH.get(platform.machine(), "x86")
    flags = ["-O2", "-g", "-Wall", "-target", "bpf", "-mcpu=v3", "-mlittle-endian"]
    flags += [f"-D__TARGET_ARCH_{arch}", "-Wno-compare-distinct-pointer-types"]
    flags += [f"-D{define}" for define in defines]
    flags += [arg for path in includes for arg in ("-I", str(path))]
    version = subprocess.run([clang, "--version"], capture_output=True, text=True).stdout
    digest = hashlib.sha256("\0".join([source.read_text(), version, *flags]).encode())
    out = CACHE / "linker" / digest.hexdigest()[:16] / f"{source.stem}.o"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        result = subprocess.run(
            [clang, *flags, "-c", str(source), "-o", str(tmp)], capture_output=True, text=True
        )
        if result.returncode:
            raise RuntimeError(f"clang failed on {source}:\n{result.stderr[-3000:]}")
        tmp.replace(out)
    return out.read_bytes()


def build_object(name: str, *defines: str) -> bytes:
    """tests/bpf/<name>.bpf.c (plain <linux/bpf.h> and <bpf/bpf_helpers.h>)."""
    return _build(BPF_SRC / f"{name}.bpf.c", [Path(f"/usr/include/{_multiarch()}")], defines)


def selftest_object(name: str) -> bytes:
    """tools/testing/selftests/bpf/progs/<name>.c of linux-source-6.12."""
    tools = kernel_selftests_dir()
    progs = tools / "testing/selftests/bpf/progs"
    includes = [vmlinux_h_dir(), tools / "lib", Path("/usr/include/bpf"), progs, progs.parent]
    includes += [tools / "include/uapi", Path(f"/usr/include/{_multiarch()}")]
    return _build(progs / f"{name}.c", includes)


def precompile() -> None:
    """Build every object these tests use (vm-tests/run calls it on the host)."""
    for name, *defines in (
        ("linker_lib",),
        ("linker_main",),
        ("linker_main", "STRONG_LIB_VALUE"),
        ("linker_main", "LONG_LIB_VALUE"),
        ("linker_main", "STATS_ENTRIES=8"),
        ("linker_main", "STATS_VALUE=__u64"),
        ("linker_main", "OTHER_LICENSE"),
        ("linker_kfunc", "SIDE=1"),
        ("linker_kfunc", "SIDE=2"),
    ):
        build_object(name, *defines)
    for where, names in LINK_SETS.values():
        for name in names:
            (build_object if where == "tests" else selftest_object)(name)


def link(*names: str) -> bytes:
    """Link tests/bpf objects (a ``name:DEFINE`` entry compiles with -DDEFINE)."""
    datas, labels = [], []
    for entry in names:
        name, *defines = entry.split(":")
        datas.append(build_object(name, *defines))
        labels.append(f"{name}.o")
    return link_objects(datas, labels)


def link_selftests(*names: str) -> bytes:
    return link_objects([selftest_object(n) for n in names], [f"{n}.bpf.o" for n in names])


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


LINK_SETS = {
    "linker_lib+main": ("tests", ["linker_lib", "linker_main"]),
    "linked_funcs": ("selftests", ["linked_funcs1", "linked_funcs2"]),
    "linked_vars": ("selftests", ["linked_vars1", "linked_vars2"]),
    "linked_maps": ("selftests", ["linked_maps1", "linked_maps2"]),
    "subskeleton": (
        "selftests",
        ["test_subskeleton_lib2", "test_subskeleton_lib", "test_subskeleton"],
    ),
    "usdt": ("selftests", ["test_usdt", "test_usdt_multispec"]),
    "one object": ("selftests", ["test_subskeleton"]),
}


@pytest.mark.parametrize("link_set", sorted(LINK_SETS))
def test_output_matches_bpftool_gen_object(link_set: str, tmp_path: Path) -> None:
    """Same sections, bytes, relocations, symbols and BTF types (the dedup result) as
    ``bpftool gen object`` (libbpf 1.5's linker when built, else the system's)."""
    bpftool = _bpftools()[0]
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


# --------------------------------------------------------------------------- kernel


def _run_xdp(obj: BpfObject) -> list[tuple[int, int]]:
    for name in ("main_prog", "lib_prog"):
        assert obj.programs[name].test_run(PACKET).retval == 2  # XDP_PASS
    stats = obj.maps["stats"]
    return [(stats[slot].hits, stats[slot].last) for slot in (0, 1)]


@pytest.mark.root
def test_linked_programs_reach_the_right_definitions() -> None:
    for order, first_weak in (
        (("linker_lib", "linker_main"), 1),
        (("linker_main", "linker_lib"), 2),
    ):
        with BpfObject.open(link(*order), name="linked") as obj:
            obj.load()
            assert _run_xdp(obj) == expected_results(first_weak), order


def _getpgid_number() -> int:
    number = SYS_GETPGID.get(platform.machine())
    if number is None:
        pytest.skip(f"no getpgid syscall number for {platform.machine()}")
    return number


def _trigger_and_read(obj: BpfObject, prefix: str = "output") -> dict[str, int]:
    links = obj.attach()
    try:
        os.getpgid(0)  # the selftests' syscall(SYS_getpgid)
    finally:
        for each in links:
            each.close()
    return {n: v.value for n, v in obj.variables.items() if n.startswith(prefix)}


def _linked_funcs(data: bytes) -> dict[str, int]:
    with BpfObject.open(data, name="linked_funcs") as obj:
        for program in obj.programs.values():
            program.autoload = True  # SEC("?raw_tp/sys_enter")
        obj.variables["my_tid"].value = threading.get_native_id()
        obj.variables["syscall_id"].value = _getpgid_number()
        obj.load()
        return _trigger_and_read(obj)


def _linked_vars(data: bytes) -> dict[str, int]:
    with BpfObject.open(data, name="linked_vars") as obj:
        obj.variables["input_bss1"].value = 1000
        obj.variables["input_bss2"].value = 2000
        obj.variables["input_bss_weak"].value = 3000
        obj.load()
        return _trigger_and_read(obj)


def _linked_maps(data: bytes) -> dict[str, int]:
    with BpfObject.open(data, name="linked_maps") as obj:
        obj.load()
        return _trigger_and_read(obj)


def _check_funcs(out: dict[str, int]) -> None:
    """prog_tests/linked_funcs.c's assertions."""
    number = _getpgid_number()
    assert out["output_val1"] == 2000 + 2000
    assert out["output_ctx1"] == number
    assert out["output_weak1"] == 42
    assert out["output_val2"] == 2 * 1000 + 2 * (2 * 1000)
    assert out["output_ctx2"] == number
    assert out["output_weak2"] == 0  # the second weak set_output_weak never runs


def _check_vars(out: dict[str, int]) -> None:
    """prog_tests/linked_vars.c's: 10 and 100 are the first object's weak values."""
    assert out["output_bss1"] == out["output_bss2"] == 1000 + 2000 + 3000
    assert out["output_data1"] == out["output_data2"] == 1 + 2 + 10
    assert out["output_rodata1"] == out["output_rodata2"] == 11 + 22 + 100


def _check_maps(out: dict[str, int]) -> None:
    """prog_tests/linked_maps.c's: each object reads what the other wrote."""
    assert out["output_first1"] == 2000
    assert out["output_second1"] == 2
    assert out["output_weak1"] == 2


LINKED_SELFTESTS = {
    "linked_funcs": (_linked_funcs, _check_funcs),
    "linked_vars": (_linked_vars, _check_vars),
    "linked_maps": (_linked_maps, _check_maps),
}


@pytest.mark.root
@pytest.mark.parametrize("test", sorted(LINKED_SELFTESTS))
def test_selftest_linked_objects_run(test: str) -> None:
    run, check = LINKED_SELFTESTS[test]
    check(run(link_selftests(f"{test}1", f"{test}2")))


def _bpftool_linked(bpftool: str, tmp_path: Path, names: Sequence[str]) -> bytes:
    inputs = []
    for name in names:
        path = tmp_path / f"{name}.bpf.o"
        path.write_bytes(selftest_object(name))
        inputs.append(str(path))
    out = tmp_path / "bpftool-linked.o"
    subprocess.run([bpftool, "gen", "object", str(out), *inputs], check=True)
    return out.read_bytes()


def _bpftools() -> list[str]:
    tools = [str(BPFTOOL_15)] if os.access(BPFTOOL_15, os.X_OK) else []
    system = shutil.which("bpftool")
    if system is not None:
        tools.append(system)
    if not tools:
        pytest.skip("bpftool is not installed")
    return tools


@pytest.mark.root
@pytest.mark.parametrize("test", sorted(LINKED_SELFTESTS))
def test_bpftool_gen_object_output_runs_with_pylibbpf(test: str, tmp_path: Path) -> None:
    run, check = LINKED_SELFTESTS[test]
    ours = parse_object(link_selftests(f"{test}1", f"{test}2"), "ours")
    for bpftool in _bpftools():
        theirs = _bpftool_linked(bpftool, tmp_path, [f"{test}1", f"{test}2"])
        spec = parse_object(theirs, "theirs")
        assert list(spec.programs) == list(ours.programs)
        assert list(spec.maps) == list(ours.maps)
        check(run(theirs))


@pytest.mark.root
def test_bpftool_loads_pylibbpf_output(tmp_path: Path, pin_dir: Path) -> None:
    objects = {
        "linker": (link("linker_lib", "linker_main"), {"lib_prog", "main_prog"}),
        "linked_vars": (link_selftests("linked_vars1", "linked_vars2"), {"handler1", "handler2"}),
        "linked_maps": (
            link_selftests("linked_maps1", "linked_maps2"),
            {"handler_enter1", "handler_enter2", "handler_exit1", "handler_exit2"},
        ),
    }
    for bpftool in _bpftools():
        for name, (data, programs) in objects.items():
            path = tmp_path / f"{name}.o"
            path.write_bytes(data)
            target = pin_dir / f"{name}-{uuid.uuid4().hex[:6]}"
            result = subprocess.run(
                [bpftool, "prog", "loadall", str(path), str(target)], capture_output=True, text=True
            )
            try:
                assert result.returncode == 0, f"{bpftool} {name}: {result.stderr}"
                assert {p.name for p in target.iterdir()} == programs
            finally:
                if target.exists():
                    for pin in target.iterdir():
                        pin.unlink()
                    target.rmdir()


_LIBBPF_LOADER = """
import ctypes, json, sys
lib = ctypes.CDLL(sys.argv[1])
P = ctypes.c_void_p
lib.bpf_object__open_mem.restype = P
lib.bpf_object__open_mem.argtypes = [ctypes.c_char_p, ctypes.c_size_t, P]
for fn in ("bpf_object__next_program", "bpf_object__next_map"):
    getattr(lib, fn).restype = P
    getattr(lib, fn).argtypes = [P, P]
for fn in ("bpf_program__name", "bpf_map__name"):
    getattr(lib, fn).restype = ctypes.c_char_p
    getattr(lib, fn).argtypes = [P]
lib.bpf_program__set_autoload.argtypes = [P, ctypes.c_bool]
lib.bpf_object__load.argtypes = [P]
lib.bpf_object__close.argtypes = [P]
data = sys.stdin.buffer.read()
obj = lib.bpf_object__open_mem(data, len(data), None)
if not obj:
    print(json.dumps({"open": "failed"}))
    sys.exit()
programs = []
prog = lib.bpf_object__next_program(obj, None)
while prog:
    programs.append(lib.bpf_program__name(prog).decode())
    lib.bpf_program__set_autoload(prog, True)
    prog = lib.bpf_object__next_program(obj, prog)
rc = lib.bpf_object__load(obj)
lib.bpf_object__close(obj)
print(json.dumps({"load": rc, "programs": programs}))
"""


@pytest.mark.root
def test_libbpf_loads_pylibbpf_output() -> None:
    """libbpf 1.5 (built from linux-6.12 as a reference tool) opens and loads every object
    the linker makes here, autoload-off programs and a kfunc called from two objects
    included."""
    if not os.access(LIBBPF_SO, os.R_OK):
        pytest.skip(f"no reference libbpf at {LIBBPF_SO} (PYLIBBPF_TEST_LIBBPF)")
    objects = {
        "linker": link("linker_lib", "linker_main"),
        "kfunc": link("linker_kfunc:SIDE=1", "linker_kfunc:SIDE=2"),
    }
    for test in LINKED_SELFTESTS:
        objects[test] = link_selftests(f"{test}1", f"{test}2")
    for name, data in objects.items():
        result = subprocess.run(
            [sys.executable, "-c", _LIBBPF_LOADER, str(LIBBPF_SO)],
            input=data,
            capture_output=True,
            check=True,
        )
        report = json.loads(result.stdout)
        assert report.get("load") == 0, f"{name}: {report} {result.stderr.decode()[-2000:]}"
        assert report["programs"] == list(parse_object(data, name).programs), name


@pytest.mark.root
def test_kfunc_called_from_two_objects_loads() -> None:
    with BpfObject.open(link("linker_kfunc:SIDE=1", "linker_kfunc:SIDE=2"), name="kf") as obj:
        try:
            obj.load()
        except ObjectError as error:
            if "bpf_rcu_read_" in str(error):
                pytest.skip(f"this kernel lacks the bpf_rcu_read_lock kfunc: {error}")
            raise
        out = _trigger_and_read(obj, "out")
    assert out["out1"] == 1 and out["out2"] == 2


@pytest.mark.root
def test_subskeleton_selftest_objects_run() -> None:
    """test_subskeleton_lib2 + _lib + test_subskeleton, set up and checked as
    prog_tests/subskeleton.c does through its skeleton and subskeleton."""
    names = ("test_subskeleton_lib2", "test_subskeleton_lib", "test_subskeleton")
    library = link_selftests(*names[:2])
    assert set(parse_object(library, "lib").programs) == {"lib_perf_handler"}
    with BpfObject.open(link_selftests(*names), name="test_subskeleton") as obj:
        obj.variables["rovar1"].value = 10
        obj.variables["var1"].value = 1
        obj.variables["var2"].value = 2
        obj.variables["var3"].raw = struct.pack("<i4xq", 3, 4)
        obj.load()
        with obj.programs["handler1"].attach():  # raw_tp/sys_enter: any syscall runs it
            os.getppid()
        libout1 = obj.variables["libout1"].value
        assert libout1 == 1 + 2 + 3 + 4 + 5 + 6
        assert obj.variables["out1"].value == libout1 * 10
        assert obj.variables["var5"].value == 5  # the strong definition beat the __weak one
        assert obj.variables["var6"].value == 6  # the extern, defined in lib2
        assert {"map1", "map2"} <= set(obj.maps)


@pytest.mark.root
def test_usdt_selftest_objects_link_and_load() -> None:
    linked = link_selftests("test_usdt", "test_usdt_multispec")
    with BpfObject.open(linked, name="test_usdt") as obj:
        assert set(obj.programs) == {"usdt0", "usdt3", "usdt12", "usdt_100"}
        assert {"__bpf_usdt_specs", "__bpf_usdt_ip_to_spec_id"} <= set(obj.maps)
        obj.load()
        assert all(program.fd is not None for program in obj.programs.values())
