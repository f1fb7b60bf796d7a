"""BPF arenas with the kernel selftests' arena programs (arena_list, arena_htab,
arena_atomics), checked the way prog_tests/arena_*.c check them: what a program built in
the arena is read back from Python by following its pointers, and what Python writes
into the arena (``__arena`` globals, list elements) is what the program then computes
with. Plus the object rules (``__ulong(map_extra)``, one arena, globals at its end)."""

from __future__ import annotations

import ctypes
import mmap
import os
import platform
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from linker_objects import build_object, selftest_object
from test_skeleton import import_file, write_skeleton

from pylibbpf import introspect
from pylibbpf.arena import arena_size, globals_offset
from pylibbpf.errors import BpfError, NotSupportedError, ObjectError
from pylibbpf.introspect import kind_name
from pylibbpf.object import BpfObject
from pylibbpf.syscall import features
from pylibbpf.uapi import MapFlags, MapType

# Where arena_list and arena_atomics ask their arena to be mapped (their map_extra).
MAP_EXTRA = 1 << 32 if platform.machine() == "aarch64" else 1 << 44
PAGE = mmap.PAGESIZE


def arena_object(name: str) -> bytes:
    """A selftest arena program, built as the selftests build it."""
    return (
        selftest_object(name, "ENABLE_ATOMICS_TESTS")
        if name == "arena_atomics"
        else (selftest_object(name))
    )


def precompile() -> None:
    """The objects these tests build (vm-tests/run calls this on the host)."""
    for name in ("arena_list", "arena_htab", "arena_htab_asm", "arena_atomics"):
        arena_object(name)
    for variant in ((), ("TWO_ARENAS",), ("NO_ARENA",)):
        build_object("arena_rules", *variant)


class ListNode(ctypes.Structure):
    """struct arena_list_node (bpf_arena_list.h): arena pointers are user addresses."""

    _fields_ = [("next", ctypes.c_uint64), ("pprev", ctypes.c_uint64)]


class ListElem(ctypes.Structure):
    """arena_list.c's struct elem."""

    _fields_ = [("node", ListNode), ("value", ctypes.c_uint64)]


class Htab(ctypes.Structure):
    """bpf_arena_htab.h's struct htab."""

    _fields_ = [("buckets", ctypes.c_uint64), ("n_buckets", ctypes.c_int32)]


class HtabElem(ctypes.Structure):
    """bpf_arena_htab.h's struct hashtab_elem."""

    _fields_ = [
        ("hash", ctypes.c_int32),
        ("key", ctypes.c_int32),
        ("value", ctypes.c_int32),
        ("hash_node", ListNode),
    ]


# --------------------------------------------------------------------------- pure


def test_ulong_map_extra_and_arena_globals_are_read_at_open() -> None:
    obj = BpfObject.open(arena_object("arena_list"), name="arena_list")
    assert obj.spec.maps["arena"].map_type == MapType.ARENA
    assert obj.spec.maps["arena"].map_extra == MAP_EXTRA  # __ulong(map_extra, ...)
    assert obj.maps["arena"].map_extra == MAP_EXTRA
    assert obj.spec.arena_map == "arena"
    assert obj.spec.arena is not None and obj.spec.arena.name == ".addr_space.1"
    # __arena globals are variables, with their initial values before load.
    assert obj.variables["test_val"].section == ".addr_space.1"
    assert obj.variables["test_val"].value == 1
    obj.close()


def test_globals_sit_in_the_arenas_last_pages() -> None:
    assert arena_size(100) == 100 * PAGE
    assert globals_offset(100, 1) == 99 * PAGE
    assert globals_offset(100, PAGE + 1) == 98 * PAGE
    assert globals_offset(1, 2 * PAGE) < 0  # does not fit: the load refuses it


def test_arena_rules_at_open() -> None:
    BpfObject.open(build_object("arena_rules"), name="arena_rules").close()
    with pytest.raises(ObjectError, match="only one ARENA map"):
        BpfObject.open(build_object("arena_rules", "TWO_ARENAS"), name="arena_rules")
    with pytest.raises(ObjectError, match="no ARENA map") as missing:
        BpfObject.open(build_object("arena_rules", "NO_ARENA"), name="arena_rules")
    assert ".addr_space.1" in str(missing.value)


# --------------------------------------------------------------------------- kernel


def _require_arenas() -> None:
    if not features.has_map_type(MapType.ARENA):
        pytest.skip("this kernel has no BPF arenas (BPF_MAP_TYPE_ARENA needs Linux 6.9+)")


@pytest.fixture
def arena_list() -> Iterator[BpfObject]:
    _require_arenas()
    with BpfObject.open(arena_object("arena_list"), name="arena_list") as obj:
        obj.load()
        yield obj


def _list(obj: BpfObject, head: int) -> list[Any]:
    """The elements of an arena list, walked from Python through the program's pointers."""
    arena = obj.maps["arena"].arena()
    elements = []
    pointer = arena.view(head, ctypes.c_uint64).value  # struct arena_list_head { first }
    while pointer:
        element = arena.view(pointer, ListElem)
        elements.append(element)
        pointer = element.node.next
    return elements


@pytest.mark.root
@pytest.mark.parametrize("count", [1, 1000])
def test_arena_list_add_del(arena_list: BpfObject, count: int) -> None:
    obj = arena_list
    arena = obj.maps["arena"].arena()
    assert arena.address == MAP_EXTRA  # where the object's map_extra said
    assert obj.maps["arena"].info().map_extra == MAP_EXTRA
    obj.variables["cnt"].value = count
    assert obj.programs["arena_list_add"].test_run().retval == 0
    if obj.variables["skip"].value:
        pytest.skip("clang lacks __BPF_FEATURE_ADDR_SPACE_CAST")
    expected = count * (count - 1) // 2
    head = obj.variables["list_head"].value
    # The program pointed list_head at its __arena global, in the arena's last page.
    assert arena.offset(head) >= arena.size - PAGE
    assert sum(element.value for element in _list(obj, head)) == expected
    assert obj.variables["arena_sum"].value == expected
    assert obj.variables["test_val"].value == count + 1

    # Python edits the elements in place; the program's walk sums what Python wrote.
    for element in _list(obj, head):
        element.value *= 3
    assert obj.programs["arena_list_del"].test_run().retval == 0
    assert sum(element.value for element in _list(obj, head)) == 0  # freed, as the C test
    assert obj.variables["list_sum"].value == 3 * expected
    assert obj.variables["arena_sum"].value == 3 * expected


@pytest.mark.root
def test_arena_globals_written_before_and_after_load() -> None:
    _require_arenas()
    with BpfObject.open(arena_object("arena_list"), name="arena_list") as obj:
        obj.variables["test_val"].value = 100  # the initial image, copied in at load
        obj.load()
        arena = obj.maps["arena"].arena()
        start = globals_offset(obj.maps["arena"].max_entries, obj.spec.arena.size)  # type: ignore[union-attr]
        offset = obj.variables["test_val"].offset
        assert int.from_bytes(arena.memory[start + offset : start + offset + 4], "little") == 100
        obj.variables["cnt"].value = 5
        obj.programs["arena_list_add"].test_run()
        if obj.variables["skip"].value:
            pytest.skip("clang lacks __BPF_FEATURE_ADDR_SPACE_CAST")
        assert obj.variables["test_val"].value == 105
        obj.variables["test_val"].value = 7  # live, in the shared page
        obj.programs["arena_list_add"].test_run()
        assert obj.variables["test_val"].value == 12


def _htab_lookup(obj: BpfObject, htab_pointer: int, key: int) -> int:
    """bpf_arena_htab.h's htab_lookup_elem, from Python."""
    arena = obj.maps["arena"].arena()
    htab = arena.view(htab_pointer, Htab)
    bucket = htab.buckets + (key & (htab.n_buckets - 1)) * 8  # struct htab_bucket
    node = arena.view(bucket, ctypes.c_uint64).value
    while node:
        element = arena.view(node - HtabElem.hash_node.offset, HtabElem)
        if element.hash == key and element.key == key:
            return int(element.value)
        node = element.hash_node.next
    return 0


@pytest.mark.root
@pytest.mark.parametrize(
    ("name", "program"), [("arena_htab", "arena_htab_llvm"), ("arena_htab_asm", "arena_htab_asm")]
)
def test_arena_htab(name: str, program: str) -> None:
    _require_arenas()
    with BpfObject.open(arena_object(name), name=name) as obj:
        obj.load()
        arena = obj.maps["arena"].arena()
        assert obj.maps["arena"].map_extra == 0  # the kernel chose where: our mapping
        memory = obj.maps["arena"].mmap()
        memory[0:4] = (0x55AA).to_bytes(4, "little")  # fault in page 0 from user space
        assert obj.programs[program].test_run().retval == 0
        if obj.variables["skip"].value:
            pytest.skip("clang lacks __BPF_FEATURE_ADDR_SPACE_CAST")
        htab = obj.variables["htab_for_user"].value
        assert htab and arena.offset(htab) < arena.size
        assert arena.view(htab, Htab).n_buckets > 0
        for key in range(0, 16, 4):
            assert _htab_lookup(obj, htab, key) == key


ATOMICS = {
    "add": {"add64_value": 3, "add64_result": 1, "add32_value": 3, "add32_result": 1,
            "add_stack_value_copy": 3, "add_stack_result": 1, "add_noreturn_value": 3},
    "sub": {"sub64_value": -1, "sub64_result": 1, "sub32_value": -1, "sub32_result": 1,
            "sub_stack_value_copy": -1, "sub_stack_result": 1, "sub_noreturn_value": -1},
    "and": {"and64_value": 0x010 << 32, "and32_value": 0x010},
    "or": {"or64_value": 0x111 << 32, "or32_value": 0x111},
    "xor": {"xor64_value": 0x101 << 32, "xor32_value": 0x101},
    "cmpxchg": {"cmpxchg64_value": 2, "cmpxchg64_result_fail": 1,
                "cmpxchg64_result_succeed": 1, "cmpxchg32_value": 2,
                "cmpxchg32_result_fail": 1, "cmpxchg32_result_succeed": 1},
    "xchg": {"xchg64_value": 2, "xchg64_result": 1, "xchg32_value": 2, "xchg32_result": 1},
}  # fmt: skip


@pytest.mark.root
def test_arena_atomics() -> None:
    _require_arenas()
    with BpfObject.open(arena_object("arena_atomics"), name="arena_atomics") as obj:
        obj.variables["pid"].value = os.getpid()
        obj.load()
        if obj.variables["skip_tests"].value:
            pytest.skip("clang lacks arena atomics (__BPF_FEATURE_ADDR_SPACE_CAST)")
        for program, expected in ATOMICS.items():
            assert obj.programs[program].test_run().retval == 0, program
            got = {name: obj.variables[name].value for name in expected}
            assert got == expected, program
        # The other way round: what Python stores, the program's atomics start from.
        obj.variables["add64_value"].value = 40
        obj.programs["add"].test_run()
        assert obj.variables["add64_value"].value == 42
        assert obj.variables["add64_result"].value == 40


@pytest.mark.root
def test_arena_through_a_skeleton(tmp_path: Path) -> None:
    _require_arenas()
    path = tmp_path / "arena_list.bpf.o"
    path.write_bytes(arena_object("arena_list"))
    module = import_file(write_skeleton(path, tmp_path / "arena_list_skel.py"))
    with module.ArenaListSkel.open_and_load() as skel:
        assert skel.arena.test_val == 1
        skel.bss.cnt = 4
        skel.progs.arena_list_add.test_run()
        if skel.bss.skip:
            pytest.skip("clang lacks __BPF_FEATURE_ADDR_SPACE_CAST")
        assert skel.arena.arena_sum == 0 + 1 + 2 + 3
        assert skel.arena.test_val == 5
        skel.arena.test_val = 50
        skel.progs.arena_list_add.test_run()
        assert skel.arena.test_val == 54


@pytest.mark.root
def test_arena_handles_refuse_what_they_cannot_do() -> None:
    _require_arenas()
    with BpfObject.open(arena_object("arena_list"), name="arena_list") as obj:
        obj.load()
        arena = obj.maps["arena"].arena()
        assert obj.maps["arena"].flags & MapFlags.MMAPABLE
        with pytest.raises(BpfError, match="NULL"):
            arena.view(0, ctypes.c_uint64)
        with pytest.raises(BpfError, match="not in the arena"):
            arena.offset(arena.address + arena.size)
        with pytest.raises(BpfError, match="not an arena"):
            obj.maps[".bss"].arena()
        # Map.mmap() of an mmapable array is its values: what the object's variables use.
        bss = obj.maps[".bss"].mmap()
        offset = obj.variables["cnt"].offset
        bss[offset : offset + 4] = (77).to_bytes(4, "little")
        assert obj.variables["cnt"].value == 77
        # What `map list` and `map dump` make of it, as bpftool: an "arena", no entries.
        listed = next(m for m in introspect.maps() if m.id == obj.maps["arena"].id)
        assert kind_name(MapType, listed.type) == "arena"
        assert listed.map_extra == MAP_EXTRA
        with pytest.raises(BpfError, match="is an arena"):
            introspect.dump_map(obj.maps["arena"])
    assert arena.closed  # closing the object dropped the mapping


@pytest.mark.root
def test_kernels_without_arenas_refuse_naming_the_release() -> None:
    if features.has_map_type(MapType.ARENA):
        pytest.skip("this kernel has arenas (the refusal is for kernels before 6.9)")
    with (
        BpfObject.open(arena_object("arena_list"), name="arena_list") as obj,
        pytest.raises(NotSupportedError, match=r"ARENA maps \(Linux 6\.9\+\)"),
    ):
        obj.load()
