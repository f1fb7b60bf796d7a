"""CO-RE: relocations against synthetic BTF (pure) and against the running kernel."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from pathlib import Path

import pytest

import pylibbpf as bpf
from pylibbpf import insn
from pylibbpf.btf import Btf, EnumValue, Kind, Member, Type
from pylibbpf.btf.encode import encode
from pylibbpf.btf.ext import CoreRelo, CoreReloKind
from pylibbpf.errors import RelocationError
from pylibbpf.loader import BpfObject, inspect_core
from pylibbpf.spec.core import POISON_HELPER, CoreResolver, relocate
from pylibbpf.spec.insn import R0, R1, Size

INT = Type(1, Kind.INT, "int", size=4, encoding=1, bits=32)
U64 = Type(2, Kind.INT, "long long unsigned int", size=8, bits=64)
UINT = Type(3, Kind.INT, "unsigned int", size=4, bits=32)


def btf_of(*types: Type) -> Btf:
    return Btf(encode([INT, U64, UINT, *types]))


def struct(type_id: int, name: str, size: int, *members: Member) -> Type:
    return Type(type_id, Kind.STRUCT, name, size=size, members=members)


LOCAL = btf_of(
    struct(4, "s", 8, Member("a", 1, 0), Member("b", 3, 32)),
    struct(5, "bits", 4, Member("x", 3, 0, 3), Member("y", 3, 3, 5)),
    Type(6, Kind.ENUM, "color", size=4, values=(EnumValue("RED", 1), EnumValue("BLUE", 2))),
    struct(7, "s___v2", 8, Member("a", 1, 0), Member("b", 3, 32)),
    struct(8, "gone", 4, Member("a", 1, 0)),
)


def run(relo_kind: CoreReloKind, type_id: int, access: str, target: Btf, code: list[insn.Insn]):
    relo = CoreRelo(0, type_id, 0, relo_kind, access)
    results = relocate(code, [(0, relo)], CoreResolver(LOCAL, [target]), "test")
    return results[0], code


def load_b(off: int = 4, size: Size = Size.W) -> list[insn.Insn]:
    return [insn.ldx_mem(size, R0, R1, off), insn.exit_()]


def test_field_moved_and_flavoured_names() -> None:
    target = btf_of(struct(4, "s", 16, Member("x", 1, 0), Member("a", 1, 32), Member("b", 3, 96)))
    result, code = run(CoreReloKind.FIELD_BYTE_OFFSET, 4, "0:1", target, load_b())
    assert (result.local_value, result.target_value) == (4, 12) and code[0].off == 12
    result, code = run(CoreReloKind.FIELD_BYTE_OFFSET, 7, "0:1", target, load_b())
    assert code[0].off == 12  # s___v2 matches s: flavours are ignored


def test_field_found_through_anonymous_members() -> None:
    anon = Type(5, Kind.UNION, "", size=4, members=(Member("b", 3, 0), Member("c", 1, 0)))
    target = btf_of(struct(4, "s", 12, Member("a", 1, 0), Member("", 5, 64)), anon)
    _, code = run(CoreReloKind.FIELD_BYTE_OFFSET, 4, "0:1", target, load_b())
    assert code[0].off == 8


def test_field_removed_poisons_and_exists_is_zero() -> None:
    target = btf_of(struct(4, "s", 4, Member("a", 1, 0)))
    result, code = run(CoreReloKind.FIELD_BYTE_OFFSET, 4, "0:1", target, load_b())
    assert result.poisoned and code[0].is_call() and code[0].imm == POISON_HELPER
    exists, code = run(
        CoreReloKind.FIELD_EXISTS, 4, "0:1", target, [insn.mov64_imm(R0, 1), insn.exit_()]
    )
    assert exists.target_value == 0 and code[0].imm == 0


def test_field_resized_adjusts_the_load() -> None:
    target = btf_of(struct(4, "s", 16, Member("a", 1, 0), Member("b", 2, 64)))
    result, code = run(CoreReloKind.FIELD_BYTE_OFFSET, 4, "0:1", target, load_b())
    assert result.target_size == 8 and code[0].off == 8 and code[0].code & 0x18 == Size.DW
    _, code = run(
        CoreReloKind.FIELD_BYTE_SIZE, 4, "0:1", target, [insn.mov64_imm(R0, 4), insn.exit_()]
    )
    assert code[0].imm == 8


def test_bitfield_moved() -> None:
    target = btf_of(struct(5, "bits", 8, Member("x", 3, 0, 3), Member("y", 3, 40, 5)))
    shifts = {}
    for kind in (
        CoreReloKind.FIELD_BYTE_OFFSET,
        CoreReloKind.FIELD_LSHIFT_U64,
        CoreReloKind.FIELD_RSHIFT_U64,
        CoreReloKind.FIELD_SIGNED,
    ):
        local_value = {
            CoreReloKind.FIELD_BYTE_OFFSET: 0,
            CoreReloKind.FIELD_LSHIFT_U64: 56,
            CoreReloKind.FIELD_RSHIFT_U64: 59,
            CoreReloKind.FIELD_SIGNED: 0,
        }[kind]
        result, _ = run(kind, 5, "0:1", target, [insn.mov64_imm(R0, local_value), insn.exit_()])
        shifts[kind] = result.target_value
    # y sits at bits 40..44: read as the u32 at byte 4, shifted left 64-(8+5), right 64-5
    assert shifts == {
        CoreReloKind.FIELD_BYTE_OFFSET: 4,
        CoreReloKind.FIELD_LSHIFT_U64: 51,
        CoreReloKind.FIELD_RSHIFT_U64: 59,
        CoreReloKind.FIELD_SIGNED: 0,
    }


def test_enum_value_changed_and_missing() -> None:
    target = btf_of(Type(6, Kind.ENUM, "color", size=4, values=(EnumValue("BLUE", 5),)))
    blue, code = run(
        CoreReloKind.ENUMVAL_VALUE, 6, "1", target, [insn.mov64_imm(R0, 2), insn.exit_()]
    )
    assert blue.target_value == 5 and code[0].imm == 5
    red, _ = run(CoreReloKind.ENUMVAL_EXISTS, 6, "0", target, [insn.mov64_imm(R0, 1), insn.exit_()])
    assert red.target_value == 0


def test_type_missing_and_type_relocations() -> None:
    target = btf_of(struct(4, "s", 24, Member("a", 1, 0)))
    exists, _ = run(CoreReloKind.TYPE_EXISTS, 8, "0", target, [insn.mov64_imm(R0, 1), insn.exit_()])
    assert exists.target_value == 0
    size, _ = run(CoreReloKind.TYPE_SIZE, 4, "0", target, [insn.mov64_imm(R0, 8), insn.exit_()])
    assert size.target_value == 24
    type_id, code = run(
        CoreReloKind.TYPE_ID_TARGET, 4, "0", target, [*insn.ld_imm64(R0, 4), insn.exit_()]
    )
    assert type_id.target_value == target.find("s").id and code[0].imm == type_id.target_value
    gone, code = run(CoreReloKind.TYPE_SIZE, 8, "0", target, [insn.mov64_imm(R0, 4), insn.exit_()])
    assert not gone.poisoned and gone.target_value == 0  # as libbpf: a missing type's size
    assert code[0].imm == 0


def test_type_matches() -> None:
    same = btf_of(struct(4, "s", 8, Member("a", 1, 0), Member("b", 3, 32)))
    different = btf_of(struct(4, "s", 8, Member("a", 1, 0), Member("c", 3, 32)))
    for target, expected in ((same, 1), (different, 0)):
        result, _ = run(
            CoreReloKind.TYPE_MATCHES, 4, "0", target, [insn.mov64_imm(R0, 1), insn.exit_()]
        )
        assert result.target_value == expected


def test_ambiguous_candidates_are_an_error() -> None:
    target = btf_of(
        struct(4, "s", 8, Member("a", 1, 0), Member("b", 3, 32)),
        struct(5, "s___other", 12, Member("a", 1, 0), Member("b", 3, 64)),
    )
    with pytest.raises(RelocationError, match=r"struct s.*ambiguous"):
        run(CoreReloKind.FIELD_BYTE_OFFSET, 4, "0:1", target, load_b())


def test_instruction_disagreeing_with_btf_is_an_error() -> None:
    target = btf_of(struct(4, "s", 8, Member("a", 1, 0), Member("b", 3, 32)))
    with pytest.raises(RelocationError, match="holds 99, but the object's BTF says 4"):
        run(CoreReloKind.FIELD_BYTE_OFFSET, 4, "0:1", target, load_b(off=99))


def test_objects_relocate_against_their_own_btf(bpf_object: Callable[[str], Path]) -> None:
    path = bpf_object("core_sample")
    own = BpfObject.open(path).spec.btf
    assert own is not None
    results = inspect_core(path, own)["handle"]
    assert len(results) >= 5
    assert all(r.local_value == r.target_value and not r.poisoned for r in results)


@pytest.mark.skipif(not Path("/sys/kernel/btf/vmlinux").exists(), reason="kernel has no BTF")
def test_inspect_against_the_running_kernel(bpf_object: Callable[[str], Path]) -> None:
    results = {r.access: r for r in inspect_core(bpf_object("core_reads"))["record"]}
    kernel = Btf.load_vmlinux()
    task = kernel.find("task_struct", Kind.STRUCT)
    tgid = kernel.member_path(task.id, "tgid")[-1][1]
    assert results["struct task_struct::tgid"].target_value == tgid.bit_offset // 8
    fake = results["struct task_struct___fake::pylibbpf_no_such_field"]
    assert fake.target_value == 0  # FIELD_EXISTS comes first in the map; offsets poison


@pytest.mark.root
def test_core_reads_on_the_kernel_match_its_helpers(bpf_object: Callable[[str], Path]) -> None:
    with BpfObject.open(bpf_object("core_reads")) as obj:
        obj.load()
        links = obj.attach()
        assert len(links) == 1
        os.getppid()
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the child
            ctypes.CDLL(None).prctl(15, b"pylibbpf-child", 0, 0, 0)  # PR_SET_NAME
            os.getppid()
            os._exit(0)
        os.waitpid(child, 0)
        seen = dict(obj.maps["seen_by_tgid"].items())
    kids = [s for s in seen.values() if bytes(s.comm).rstrip(b"\0") == b"pylibbpf-child"]
    assert len(kids) == 1
    kid = kids[0]
    me = seen[kid.parent_tgid]  # our own record, keyed by the kernel helper's tgid
    with open("/proc/self/comm", "rb") as f:
        assert bytes(me.comm).rstrip(b"\0") == f.read().strip()[:15]
    for record in (me, kid):
        assert record.core_tgid == record.helper_tgid  # CO-RE read == the kernel's helper
        assert record.exists_real == 1 and record.exists_fake == 0
        assert record.ringbuf_type == bpf.MapType.RINGBUF
        assert record.task_size == Btf.load_vmlinux().find("task_struct", Kind.STRUCT).size
    assert kid.core_pid == kid.core_tgid  # single-threaded child


@pytest.mark.root
def test_a_poisoned_read_is_refused_by_the_kernel_and_named(
    bpf_object: Callable[[str], Path],
) -> None:
    """An unguarded read of a field no kernel has: the relocation poisons the instruction,
    the verifier refuses the call there, and the error says which relocation it was."""
    with BpfObject.open(bpf_object("core_poisoned")) as obj, pytest.raises(bpf.LoadError) as info:
        obj.load()
    message = str(info.value)
    assert f"unknown#{POISON_HELPER}" in info.value.log  # the kernel's own refusal
    assert "program 'read_missing'" in message
    assert "CO-RE relocation failed at instruction" in message
    assert "FIELD_BYTE_OFFSET" in message and "task_struct___fake" in message


def test_typedef_of_an_anonymous_struct_as_the_root() -> None:
    """`typedef struct { u64 key[2]; } siphash_key_t;`: the relocation names the typedef;
    candidates are typedefs, and the field is found in the struct behind them."""
    local = btf_of(
        Type(4, Kind.STRUCT, "", size=8, members=(Member("lo", 3, 0), Member("hi", 3, 32))),
        Type(5, Kind.TYPEDEF, "pair_t", type=4),
    )
    target = btf_of(
        Type(4, Kind.STRUCT, "", size=12, members=(Member("x", 3, 0), Member("hi", 3, 32))),
        Type(5, Kind.STRUCT, "", size=12, members=(Member("pad", 3, 0), Member("hi", 3, 64))),
        Type(6, Kind.TYPEDEF, "pair_t", type=5),
    )
    relo = CoreRelo(0, 5, 0, CoreReloKind.FIELD_BYTE_OFFSET, "0:1")
    code = load_b()
    (result,) = relocate(code, [(0, relo)], CoreResolver(local, [target]), "test")
    assert (result.local_value, result.target_value) == (4, 8) and code[0].off == 8
