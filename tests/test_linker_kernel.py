"""The static linker's output in the kernel (root): linked objects run, and each
call reaches the definition libbpf's rules pick (BPF_PROG_TEST_RUN); the kernel
selftests' linked_funcs/linked_vars/linked_maps are linked, loaded, attached and triggered
as their prog_tests do, with the values those tests check; the subskeleton and USDT
selftest objects link and load; bpftool and libbpf 1.5 load pylibbpf's output, and
pylibbpf loads and runs bpftool's.
"""

from __future__ import annotations

import json
import os
import platform
import struct
import subprocess
import sys
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest
from linker_objects import (
    REFERENCE_CACHE,
    bpftools,
    build_object,
    link,
    link_selftests,
    selftest_object,
)

from pylibbpf.elf import parse_object
from pylibbpf.errors import ObjectError
from pylibbpf.object import BpfObject

pytestmark = pytest.mark.root

SYS_GETPGID = {"x86_64": 121, "aarch64": 155}
LIBBPF_SO = Path(
    os.environ.get("PYLIBBPF_TEST_LIBBPF", REFERENCE_CACHE / "libbpf-1.5" / "libbpf.so")
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


def _run_xdp(obj: BpfObject) -> list[tuple[int, int]]:
    for name in ("main_prog", "lib_prog"):
        assert obj.programs[name].test_run(PACKET).retval == 2  # XDP_PASS
    stats = obj.maps["stats"]
    return [(stats[slot].hits, stats[slot].last) for slot in (0, 1)]


def test_linked_programs_reach_the_right_definitions() -> None:
    for order, first_weak in (
        (("linker_lib", "linker_main"), 1),
        (("linker_main", "linker_lib"), 2),
    ):
        with BpfObject.open(link(*order), name="linked") as obj:
            obj.load()
            assert _run_xdp(obj) == expected_results(first_weak), order


def test_open_links_a_list_of_files_and_gen_object_writes_the_same(tmp_path: Path) -> None:
    paths = []
    for name in ("linker_lib", "linker_main"):
        path = tmp_path / f"{name}.bpf.o"
        path.write_bytes(build_object(name))
        paths.append(path)
    with BpfObject.open(paths) as obj:  # as libbpf names it: after the first file
        assert obj.name == "linker_lib"
        obj.load()
        assert _run_xdp(obj) == expected_results(1)
    out = tmp_path / "linked.bpf.o"
    cli = [sys.executable, "-m", "pylibbpf", "gen", "object", str(out), *map(str, paths)]
    subprocess.run(cli, check=True)
    assert out.read_bytes() == link("linker_lib", "linker_main")
    with BpfObject.open([out.read_bytes()]) as obj:  # bytes, alone: linking is a no-op
        obj.load()
        assert _run_xdp(obj) == expected_results(1)


def test_statics_of_one_name_each_reach_their_own_program() -> None:
    """Each object's program adds its own static `count` (10 or 20) and global (1 or 2)
    into its own static `seen`: the kernel's BTF and the variables agree on where each
    copy lives."""
    with BpfObject.open(link("linker_statics:SIDE=1", "linker_statics:SIDE=2")) as obj:
        obj.load()
        for name in ("prog1", "prog2", "prog2"):
            assert obj.programs[name].test_run(PACKET).retval == 2  # XDP_PASS
        seen = [v.value for v in obj.section_variables(".bss") if v.name == "seen"]
        assert seen == [11, 2 * 22]


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


@pytest.mark.parametrize("test", sorted(LINKED_SELFTESTS))
def test_bpftool_gen_object_output_runs_with_pylibbpf(test: str, tmp_path: Path) -> None:
    run, check = LINKED_SELFTESTS[test]
    ours = parse_object(link_selftests(f"{test}1", f"{test}2"), "ours")
    for bpftool in bpftools():
        theirs = _bpftool_linked(bpftool, tmp_path, [f"{test}1", f"{test}2"])
        spec = parse_object(theirs, "theirs")
        assert list(spec.programs) == list(ours.programs)
        assert list(spec.maps) == list(ours.maps)
        check(run(theirs))


def test_bpftool_loads_pylibbpf_output(tmp_path: Path, pin_dir: Path) -> None:
    objects = {
        "linker": (link("linker_lib", "linker_main"), {"lib_prog", "main_prog"}),
        "linked_vars": (link_selftests("linked_vars1", "linked_vars2"), {"handler1", "handler2"}),
        "linked_maps": (
            link_selftests("linked_maps1", "linked_maps2"),
            {"handler_enter1", "handler_enter2", "handler_exit1", "handler_exit2"},
        ),
    }
    for bpftool in bpftools():
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


def test_usdt_selftest_objects_link_and_load() -> None:
    linked = link_selftests("test_usdt", "test_usdt_multispec")
    with BpfObject.open(linked, name="test_usdt") as obj:
        assert set(obj.programs) == {"usdt0", "usdt3", "usdt12", "usdt_100"}
        assert {"__bpf_usdt_specs", "__bpf_usdt_ip_to_spec_id"} <= set(obj.maps)
        obj.load()
        assert all(program.fd is not None for program in obj.programs.values())
