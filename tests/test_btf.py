"""BTF parsing, lookups, encoding, sanitizing, .BTF.ext, and the on-disk index.

Tests marked root use the running kernel (its BTF, BTF_LOAD); the others are pure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pylibbpf import features
from pylibbpf.btf import Btf, Kind, Member, Type
from pylibbpf.btf.encode import KernelBtfSupport, encode, encode_btf, fixup_datasecs, sanitize
from pylibbpf.btf.ext import BtfExt, CoreReloKind
from pylibbpf.btf.file import from_elf
from pylibbpf.errors import ObjectError
from pylibbpf.syscall import btf_index
from pylibbpf.syscall.kernel_btf import load_btf

VMLINUX = Path("/sys/kernel/btf/vmlinux")
needs_vmlinux = pytest.mark.skipif(not VMLINUX.exists(), reason="kernel has no BTF")


def object_btf(path: Path) -> tuple[Btf, BtfExt]:
    data = path.read_bytes()
    btf = from_elf(data, name=path.name)
    with path.open("rb") as f:
        ext = BtfExt(bytes(ELFFile(f).get_section_by_name(".BTF.ext").data()), btf)
    return btf, ext


# --------------------------------------------------------------------------- kernel BTF


@needs_vmlinux
def test_vmlinux_lookups() -> None:
    btf = Btf.load_vmlinux()
    assert Btf.load_vmlinux() is btf  # parsed once per process
    task = btf.find("task_struct", Kind.STRUCT)
    assert task.kind == Kind.STRUCT and task.size > 1000
    assert btf.find_id("task_struct", Kind.STRUCT) == task.id
    path = btf.member_path(task.id, "pid")
    assert path and path[-1][1].name == "pid" and btf.sizeof(path[-1][1].type) == 4
    with pytest.raises(KeyError, match="no STRUCT type named 'no_such_struct_xyz'"):
        btf.find("no_such_struct_xyz", Kind.STRUCT)
    assert btf.find("int", Kind.INT).size == 4
    assert btf.resolve(btf.find("u32", Kind.TYPEDEF).id).kind == Kind.INT


@needs_vmlinux
def test_member_lookup_through_anonymous_members() -> None:
    btf = Btf.load_vmlinux()
    skb = btf.find("sk_buff", Kind.STRUCT)
    # sk_buff.next lives inside an anonymous union/struct nest
    chain = btf.member_path(skb.id, "next")
    assert len(chain) >= 2 and all(member.name == "" for _, member in chain[:-1])
    assert chain[-1][1].name == "next"


@needs_vmlinux
def test_vmlinux_round_trip() -> None:
    btf = Btf.load_vmlinux()
    again = Btf(encode_btf(btf), name="re-encoded")
    assert again.type_count == btf.type_count
    assert all(btf[i] == again[i] for i in range(1, btf.type_count))


@needs_vmlinux
def test_ctypes_layouts_match_kernel_btf() -> None:
    btf = Btf.load_vmlinux()
    for name in ("task_struct", "sk_buff", "tcp_sock", "bpf_struct_ops_tcp_congestion_ops"):
        t = btf.find(name, Kind.STRUCT)
        cls = btf.ctype(t.id)
        assert ctypes_size(cls) == t.size, name
        for member in t.members:
            if member.name and not member.bitfield_size:
                assert getattr(cls, member.name).offset * 8 == member.bit_offset, member.name
    # every named struct and union of the kernel, not only the famous ones
    failures = []
    for t in btf:
        if t.kind in (Kind.STRUCT, Kind.UNION) and t.name:
            try:
                if ctypes_size(btf.ctype(t.id)) != t.size:
                    failures.append(t.name)
            except ObjectError as error:
                failures.append(str(error))
    assert failures == []


def ctypes_size(cls: object) -> int:
    import ctypes

    return ctypes.sizeof(cls)  # type: ignore[arg-type]


def test_ctype_bitfields_read_and_write() -> None:
    u32 = Type(1, Kind.INT, "unsigned int", size=4, bits=32)
    flags = Type(
        2,
        Kind.STRUCT,
        "flags",
        size=8,
        members=(
            Member("a", 1, 0, 3),
            Member("b", 1, 3, 5),
            Member("c", 1, 32, 0),
        ),
    )
    btf = Btf(encode([u32, flags]))
    cls = btf.ctype(2)
    value = cls.from_buffer_copy(struct.pack("<II", 0b10101_110, 7))
    assert (value.a, value.b, value.c) == (0b110, 0b10101, 7)


@needs_vmlinux
def test_dumped_header_compiles_with_exact_layouts(tmp_path: Path) -> None:
    """Every named struct's size and member offsets, asserted by the compiler."""
    from conftest import vmlinux_h_dir

    from pylibbpf.btf.dump_c import CDumper

    btf = Btf.load_vmlinux()
    dumper = CDumper(btf)
    skip = _holds_va_list(btf)
    checks = [f'#include "{vmlinux_h_dir()}/vmlinux.h"']
    for t in btf:
        if t.kind not in (Kind.STRUCT, Kind.UNION) or not t.name or t.id in skip:
            continue
        c_name = f"{'struct' if t.kind == Kind.STRUCT else 'union'} {dumper.name_of(t)}"
        checks.append(f'_Static_assert(sizeof({c_name}) == {t.size}, "{c_name}");')
        for m in t.members:
            if m.name and not m.bitfield_size:
                offset = m.bit_offset // 8
                checks.append(
                    f"_Static_assert(__builtin_offsetof({c_name}, {m.name}) == {offset}, "
                    f'"{c_name}.{m.name}");'
                )
    source = tmp_path / "layout.c"
    source.write_text("\n".join(checks) + "\n")
    clang = "clang-19"
    result = subprocess.run(
        [clang, "-target", "bpf", "-fsyntax-only", "-Werror", str(source)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def _holds_va_list(btf: Btf) -> set[int]:
    """Structs containing a va_list by value (its size differs for the BPF target)."""
    holders: set[int] = set()
    for t in btf:
        if t.kind == Kind.STRUCT and any(
            btf[m.type].kind == Kind.TYPEDEF and btf[m.type].name in ("va_list", "__va_list")
            for m in t.members
        ):
            holders.add(t.id)
    return holders


@needs_vmlinux
def test_on_disk_index_cold_warm_and_corrupt(tmp_path: Path) -> None:
    script = (
        "import time, pylibbpf.btf as B\n"
        "t = time.perf_counter(); b = B.Btf.load_vmlinux()\n"
        "print(b.find('task_struct', B.Kind.STRUCT).id)\n"
    )
    env = {"XDG_CACHE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}

    def run() -> str:
        return subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        ).stdout

    first = run()
    (index,) = (tmp_path / "pylibbpf").glob("btf-vmlinux-*.idx")
    assert run() == first  # warm: read from the index
    index.write_bytes(b"PLBTFIX1" + b"\xff" * 64)  # corrupt: ignored and rewritten
    assert run() == first
    assert index.read_bytes() != b"PLBTFIX1" + b"\xff" * 64


def test_stale_index_is_rejected() -> None:
    u32 = Type(1, Kind.INT, "u32", size=4, bits=32)
    ptr = Type(2, Kind.PTR, "", type=1)
    good = Btf(encode([u32, ptr]))
    from array import array

    wrong: array[int] = array("I", [0, 3])  # claims the second record starts at word 3
    stale = Btf(encode([u32, ptr]), offsets=wrong)
    assert btf_index._index_consistent(good) and not btf_index._index_consistent(stale)


@pytest.mark.skipif(not Btf.module_names(), reason="no module BTF on this kernel (no modules)")
def test_module_btf_is_split_on_vmlinux() -> None:
    vmlinux = Btf.load_vmlinux()
    for name in Btf.module_names():
        module = Btf.load_module(name)
        assert module.first_id == vmlinux.type_count
        own = next(iter(module), None)
        if own is None:
            continue
        assert own.id >= vmlinux.type_count
        if own.name:
            assert any(t.id == own.id for t in module.find_all(own.name))
        # a module type's members may refer to vmlinux types
        for t in module:
            for member in t.members:
                assert module[member.type] is not None
        return


# --------------------------------------------------------------------------- object BTF


@pytest.fixture(scope="module")
def sample(bpf_object: Callable[[str], Path]) -> Path:
    return bpf_object("core_sample")


def test_object_btf_round_trip_and_byte_orders(sample: Path) -> None:
    btf, _ = object_btf(sample)
    for order in ("little", "big"):
        again = Btf(encode_btf(btf, byteorder=order))
        assert again.byteorder == order
        assert list(again) == list(btf)
    event = btf.find("event", Kind.STRUCT)
    assert event.size == 37  # packed
    assert [m.bitfield_size for m in event.members if m.name.startswith("flag")] == [1, 3]
    assert btf.find("color", Kind.ENUM64).values[2].value == 1 << 32


def test_btf_ext_line_info_and_core_relocations(sample: Path) -> None:
    btf, ext = object_btf(sample)
    section = "tp/syscalls/sys_enter_getppid"
    assert [f.insn for f in ext.func_info[section]] == [0]
    line = ext.line_for(section, 0)
    assert line is not None and line.file.endswith("core_sample.bpf.c")
    source_lines = Path(line.file).read_text().splitlines()
    assert source_lines[line.line - 1] == line.source  # the text is the file's line
    assert "bpf_get_current_task" in line.source
    relos = ext.core_relos[section]
    task = btf.find("task_struct", Kind.STRUCT)
    field_relos = [r for r in relos if r.kind == CoreReloKind.FIELD_BYTE_OFFSET]
    accessed = {task.members[int(r.access.split(":")[1])].name for r in field_relos}
    assert {"pid", "tgid", "real_parent"} <= accessed
    assert any(r.kind == CoreReloKind.ENUMVAL_VALUE for r in relos)


def elf_layout(path: Path) -> tuple[dict[str, int], dict[str, int]]:
    """Section sizes and symbol offsets: what clang leaves for the loader to fill in."""
    with path.open("rb") as f:
        elf = ELFFile(f)
        sizes = {s.name: s["sh_size"] for s in elf.iter_sections()}
        symbols = {
            sym.name: sym["st_value"]
            for sym in elf.get_section_by_name(".symtab").iter_symbols()
            if sym["st_info"]["type"] == "STT_OBJECT"
        }
    return sizes, symbols


def test_datasec_fixups_from_elf(sample: Path) -> None:
    btf, _ = object_btf(sample)
    assert btf.find(".bss", Kind.DATASEC).size == 0  # as clang leaves it
    fixed = {t.name: t for t in fixup_datasecs(list(btf), *elf_layout(sample)) if t.name}
    bss, data = fixed[".bss"], fixed[".data"]
    assert bss.size == 8 and data.size == 16  # hits; counter_array[4]
    rodata = fixed[".rodata"]
    assert [btf[v.type].name for v in rodata.vars] == ["target_pid"]


def test_btf_support_probes_are_what_encode_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kind probes are raw bytes (no encoder at a first load): each is ``encode`` of the
    types it stands for, so the kernel judges the same BTF as before."""
    from pylibbpf.btf import EnumValue, Param, VarSecinfo
    from pylibbpf.btf.layout import KNOWN_LAYOUT
    from pylibbpf.syscall import features as probes

    int_t = Type(1, Kind.INT, "int", size=4, encoding=1, bits=32)
    proto = Type(2, Kind.FUNC_PROTO, "", type=1, params=(Param("a", 1),))
    expected = {
        "datasec": encode([
            int_t,
            Type(2, Kind.VAR, "x", type=1, linkage=1),
            Type(3, Kind.DATASEC, ".data", size=4, vars=(VarSecinfo(2, 0, 4),)),
        ]),
        "func": encode([int_t, proto, Type(3, Kind.FUNC, "f", type=2)]),
        "func_global": encode([int_t, proto, Type(3, Kind.FUNC, "f", type=2, linkage=1)]),
        "float": encode([Type(1, Kind.FLOAT, "float", size=4)]),
        "decl_tag": encode([
            int_t,
            Type(2, Kind.TYPEDEF, "t", type=1),
            Type(3, Kind.DECL_TAG, "tag", type=2, component_idx=-1),
        ]),
        "type_tag": encode([
            int_t, Type(2, Kind.TYPE_TAG, "tag", type=1), Type(3, Kind.PTR, "", type=2)
        ]),
        "enum64": encode([Type(1, Kind.ENUM64, "e", size=8, values=(EnumValue("A", 1 << 40),))]),
        "layout": encode([int_t], layout=KNOWN_LAYOUT[: Kind.INT + 1]),
    }  # fmt: skip
    sent: list[bytes] = []

    def accepted(raw: bytes) -> bool:  # (every other probe refused: the answers keep order)
        sent.append(raw)
        return len(sent) % 2 == 1

    monkeypatch.setattr(probes, "_btf_accepted", accepted)
    support = probes.btf_support.__wrapped__()  # type: ignore[attr-defined]
    assert sent == list(expected.values())
    assert dataclasses.asdict(support) == {
        name: number % 2 == 1 for number, name in enumerate(expected, 1)
    }


@pytest.mark.root
def test_sanitized_object_btf_loads_into_the_kernel(sample: Path) -> None:
    btf, _ = object_btf(sample)
    types = fixup_datasecs(list(btf), *elf_layout(sample))
    nothing = KernelBtfSupport(False, False, False, False, False, False, False)
    clean = sanitize(types, nothing)
    forbidden = {
        Kind.VAR,
        Kind.DATASEC,
        Kind.FUNC,
        Kind.FUNC_PROTO,
        Kind.FLOAT,
        Kind.DECL_TAG,
        Kind.TYPE_TAG,
        Kind.ENUM64,
    }
    assert not {t.kind for t in clean} & forbidden
    assert [t.id for t in clean[: len(types)]] == [t.id for t in types]  # ids preserved
    with load_btf(encode(clean), name="sanitized core_sample") as fd:
        assert fd.fd > 0
    # and the unsanitized BTF, on this kernel that supports every kind (the 7.1 layout
    # section aside, which the sanitizer never sends)
    assert dataclasses.replace(features.btf_support(), layout=True) == KernelBtfSupport()
    with load_btf(encode(types), name="core_sample") as fd:
        assert fd.fd > 0


@pytest.mark.root
def test_rejected_btf_quotes_the_kernel_log() -> None:
    with pytest.raises(
        ObjectError, match=r"bad: the kernel rejected the BTF[\s\S]*Invalid type_id"
    ):
        load_btf(encode([Type(1, Kind.PTR, "", type=99)]), name="bad")


def test_sanitizer_rewrites_kinds_like_libbpf() -> None:
    types = [
        Type(1, Kind.INT, "int", size=4, encoding=1, bits=32),
        Type(2, Kind.VAR, "x", type=1, linkage=1),
        Type(3, Kind.DATASEC, ".data", size=4, vars=(dataclasses_var(2),)),
        Type(4, Kind.ENUM64, "big", size=8, values=()),
        Type(5, Kind.TYPE_TAG, "user", type=1),
    ]
    out = sanitize(types, KernelBtfSupport(datasec=False, enum64=False, type_tag=False))
    assert out[1].kind == Kind.INT and out[1].size == 1
    assert out[2].kind == Kind.STRUCT and out[2].name == "_data"
    assert out[2].members[0].name == "x" and out[2].members[0].type == 2
    assert out[3].kind == Kind.UNION and out[4].kind == Kind.CONST


def dataclasses_var(type_id: int) -> object:
    from pylibbpf.btf.types import VarSecinfo

    return VarSecinfo(type_id, 0, 4)


# --------------------------------------------------------------------------- bad input

_SMALL = encode(
    [
        Type(1, Kind.INT, "int", size=4, encoding=1, bits=32),
        Type(2, Kind.STRUCT, "s", size=8, members=(Member("a", 1, 0), Member("b", 3, 32))),
        Type(3, Kind.PTR, "", type=2),
        Type(4, Kind.ENUM, "e", size=4, values=()),
        Type(5, Kind.FUNC_PROTO, "", type=1),
        Type(6, Kind.ARRAY, "", type=1, index_type=1, nelems=3),
    ]
)


def _parse_everything(data: bytes) -> None:
    btf = Btf(data, name="fuzzed")
    for t in btf:
        for member in t.members:
            btf.kind_of(member.type)
        if t.kind in (Kind.STRUCT, Kind.UNION, Kind.ARRAY, Kind.INT):
            btf.sizeof(t.id)
    btf.find_all("s")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_btf_raises_only_object_error(data: st.DataObject) -> None:
    blob = bytearray(_SMALL)
    for _ in range(data.draw(st.integers(1, 8))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    with contextlib.suppress(ObjectError):
        _parse_everything(bytes(blob[:cut]) if data.draw(st.booleans()) else bytes(blob))


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_object_error(blob: bytes) -> None:
    with contextlib.suppress(ObjectError):
        _parse_everything(blob)


def test_unknown_kind_names_offset_and_kind() -> None:
    blob = bytearray(_SMALL)
    # the second record's info word: set kind 30
    struct.pack_into("<I", blob, 24 + 16 + 4, 30 << 24)
    with pytest.raises(ObjectError, match=r"offset 16: unknown BTF kind 30"):
        Btf(bytes(blob), name="fuzzed")


def test_big_endian_btf_parses() -> None:
    little = Btf(_SMALL)
    big = Btf(encode(list(little), byteorder="big"))
    assert big.byteorder == "big" and list(big) == list(little)
