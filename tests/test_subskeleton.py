"""Subskeletons (``gen subskeleton``): a library object's typed view of an object that
linked it in, bound at run time by section and name. The library is the kernel selftests'
test_subskeleton_lib2 + test_subskeleton_lib (as their Makefile links it); the final object
adds test_subskeleton. Generated modules are clean and stable, bind where the linker put
each variable, refuse an object without the library, and (root) carry
prog_tests/subskeleton.c's checks.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from linker_objects import build_object, link, link_selftests, selftest_object
from test_skeleton import import_file

from pylibbpf import cli
from pylibbpf.errors import ObjectError
from pylibbpf.loader import BpfObject
from pylibbpf.subskelgen import subskeleton_for_files

ROOT = Path(__file__).resolve().parent.parent
TOOLS = Path(sys.executable).parent
LIBRARY = ("test_subskeleton_lib2", "test_subskeleton_lib")
PROGRAM = "test_subskeleton"


def _write_library(tmp_path: Path, names: tuple[str, ...], build: Any) -> list[str]:
    paths = []
    for name in names:
        path = tmp_path / f"{name}.bpf.o"
        path.write_bytes(build(name))
        paths.append(str(path))
    return paths


def _generate(tmp_path: Path, paths: list[str], out_name: str) -> Path:
    out = tmp_path / out_name
    assert cli.main(["gen", "subskeleton", *paths, "-o", str(out)]) == 0
    return out


@pytest.fixture
def library(tmp_path: Path) -> ModuleType:
    """The selftests' library subskeleton, generated and imported."""
    paths = _write_library(tmp_path, LIBRARY, selftest_object)
    return import_file(_generate(tmp_path, paths, "lib_subskel.py"))


def _subskel_class(module: ModuleType) -> Any:
    return next(
        value
        for value in vars(module).values()
        if isinstance(value, type) and value.__dict__.get("library_name")
    )


# ----------------------------------------------------------------- privilege-free


@pytest.mark.parametrize("case", ["selftests", "tests"])
def test_generated_module_is_formatted_typed_and_stable(tmp_path: Path, case: str) -> None:
    if shutil.which("ruff", path=str(TOOLS)) is None or not (TOOLS / "mypy").exists():
        pytest.skip("ruff/mypy are not installed (scripts/setup installs them)")
    if case == "selftests":
        paths = _write_library(tmp_path, LIBRARY, selftest_object)
    else:
        paths = _write_library(tmp_path, ("linker_lib",), build_object)
    out = _generate(tmp_path, paths, "lib_subskel.py")
    assert subskeleton_for_files(paths, str(out)) == out.read_text()  # stable
    rules = "E,F,W,I,B,UP,SIM,RUF,N"
    env = {**os.environ, "MYPYPATH": str(ROOT)}
    for argv in (
        [str(TOOLS / "ruff"), "check", "--isolated", "--select", rules, out.name],
        [str(TOOLS / "ruff"), "format", "--isolated", "--check", out.name],
        [str(TOOLS / "mypy"), "--strict", "--no-incremental", out.name],
    ):
        result = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, env=env)
        assert result.returncode == 0, f"{argv[1:]}:\n{result.stdout}{result.stderr}"


def test_binds_where_the_linker_put_each_variable(library: ModuleType) -> None:
    """Linked after the program's own object, the library's globals move; the subskeleton
    finds each by section and name, and writes land where the final object reads them."""
    subskel = _subskel_class(library)
    alone = BpfObject.open(link_selftests(*LIBRARY), name="lib")
    final = BpfObject.open(link_selftests(PROGRAM, *LIBRARY), name=PROGRAM)
    with alone, final:
        lib = subskel(final)
        moved = 0
        for attribute, section_class in subskel.sections.items():
            layout = getattr(lib, attribute)._layout()
            for field, name, _ctype in section_class.variables:
                there = final.find_variable(section_class.section, name)
                assert getattr(layout, field).offset == there.offset
                moved += there.offset != alone.find_variable(section_class.section, name).offset
        assert moved  # the test links the library where its offsets change
        lib.rodata.var1 = 1
        lib.data.var2 = 2
        lib.bss.var3.var3_1 = 3  # a live view over the final object's image
        lib.bss.var3.var3_2 = 4
        assert final.variables["var1"].value == 1
        assert final.variables["var2"].value == 2
        assert final.variables["var3"].raw == struct.pack("<i4xq", 3, 4)
        assert lib.data.var5 == 5  # the program's strong definition beat the library's weak
        assert lib.progs.lib_perf_handler is final.programs["lib_perf_handler"]
        assert lib.maps.map1 is final.maps["map1"] and lib.maps.data is final.maps[".data"]


def test_an_object_without_the_library_is_refused(library: ModuleType) -> None:
    subskel = _subskel_class(library)
    with (
        BpfObject.open(link("linker_lib", "linker_main"), name="other") as other,
        pytest.raises(ObjectError, match="has no program 'lib_perf_handler'.*linked into it"),
    ):
        subskel(other)
    # Programs and maps there, a variable not: the section says which.
    with BpfObject.open(link_selftests(*LIBRARY, PROGRAM), name=PROGRAM) as final:
        section = next(c for c in subskel.sections.values() if c.section == ".bss")

        class Renamed(section):
            __slots__ = ()
            variables = (("gone", "not_in_the_object", ctypes.c_int32),)

        with pytest.raises(ObjectError, match="no global variable 'not_in_the_object' in .bss"):
            Renamed(final)

        class Resized(section):
            __slots__ = ()
            variables = (("libout1", "libout1", ctypes.c_int64),)

        with pytest.raises(ObjectError, match="'libout1' is 4 bytes, the library's is 8"):
            Resized(final)


# ----------------------------------------------------------------- the kernel


@pytest.mark.root
def test_the_selftest_checks_through_the_subskeleton(library: ModuleType) -> None:
    """prog_tests/subskeleton.c: the library is set up through its subskeleton before
    load, the program runs, and a new subskeleton handle reads the library's results."""
    subskel = _subskel_class(library)
    with BpfObject.open(link_selftests(*LIBRARY, PROGRAM), name=PROGRAM) as obj:
        obj.variables["rovar1"].value = 10
        lib = subskel(obj)
        lib.rodata.var1 = 1
        lib.data.var2 = 2
        lib.bss.var3.var3_1 = 3
        lib.bss.var3.var3_2 = 4
        obj.load()
        with obj.programs["handler1"].attach():  # raw_tp/sys_enter: any syscall runs it
            os.getppid()
        lib = subskel(obj)
        result = lib.bss.libout1
        assert result == 1 + 2 + 3 + 4 + 5 + 6
        assert lib.progs.lib_perf_handler.name == "lib_perf_handler"
        assert lib.maps.map1.name == "map1"
        assert lib.data.var5 == 5  # __weak var5: the program's strong definition
        assert lib.data.var6 == 6  # extern var6, defined in lib2
        assert lib.kconfig.CONFIG_BPF_SYSCALL is True
        assert obj.variables["out1"].value == result * 10
        assert lib.maps.map2[1] == 2  # lib_routine's bpf_map_update_elem(&map2, 1, 2)
