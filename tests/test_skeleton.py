"""Skeletons: generated modules are clean, stable and exact (privilege-free), and drive the
kernel: rodata specialises, bss counts real events, data written from Python is used."""

from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pylibbpf import cli, features
from pylibbpf.errors import BpfError, ObjectError
from pylibbpf.loader import BpfObject
from pylibbpf.skelgen import field_name, skeleton_for_file

ROOT = Path(__file__).resolve().parent.parent
TOOLS = Path(sys.executable).parent
OBJECTS = ["skeleton", "loader", "tcp_cc_plain", "ringbuf", "core_sample"]
# The kernel's own objects with what trips generators up: anonymous unions in unions,
# C members named like Python keywords (`in`, `global`), function-scope statics
# (`fn.___fmt`), and libbpf's own skeleton test object.
SELFTESTS = ["fib_lookup", "iters", "test_tcpbpf_kern", "bpf_iter_udp4", "test_skeleton"]
CASES = [*OBJECTS, *(f"selftest:{name}" for name in SELFTESTS)]


def object_path(bpf_object: Callable[[str], Path], case: str) -> Path:
    if case.startswith("selftest:"):
        from conftest import compile_selftest

        return compile_selftest(case.removeprefix("selftest:"))
    return bpf_object(case)


def write_skeleton(obj_path: Path, out: Path, *extra: str) -> Path:
    assert cli.main(["gen", "skeleton", str(obj_path), "-o", str(out), *extra]) == 0
    return out


def import_file(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"skel_{path.stem}_{id(path)}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def skeleton_module(bpf_object: Callable[[str], Path], tmp_path: Path) -> ModuleType:
    return import_file(write_skeleton(bpf_object("skeleton"), tmp_path / "skeleton_skel.py"))


def run_tool(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MYPYPATH": str(ROOT)}
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env)


# ----------------------------------------------------------------- privilege-free


@pytest.mark.parametrize("case", CASES)
def test_generated_module_is_formatted_typed_and_stable(
    bpf_object: Callable[[str], Path], tmp_path: Path, case: str
) -> None:
    if shutil.which("ruff", path=str(TOOLS)) is None or not (TOOLS / "mypy").exists():
        pytest.skip("ruff/mypy are not installed (scripts/setup installs them)")
    path = object_path(bpf_object, case)
    name = path.name.split(".")[0]
    out = write_skeleton(path, tmp_path / f"{name}_skel.py")
    assert skeleton_for_file(str(path), str(out)) == out.read_text()  # stable
    # The rules a user's project is likely to enable, with ruff's default line length.
    rules = "E,F,W,I,B,UP,SIM,RUF,N"
    for argv in (
        [str(TOOLS / "ruff"), "check", "--isolated", "--select", rules, out.name],
        [str(TOOLS / "ruff"), "format", "--isolated", "--check", out.name],
        [str(TOOLS / "mypy"), "--strict", "--no-incremental", out.name],
    ):
        result = run_tool(*argv, cwd=tmp_path)
        assert result.returncode == 0, f"{argv[1:]}:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("case", CASES)
def test_generated_layouts_match_the_object(
    bpf_object: Callable[[str], Path], tmp_path: Path, case: str
) -> None:
    """Every variable sits at the offset and size the object gives it; names line up."""
    path = object_path(bpf_object, case)
    module = import_file(write_skeleton(path, tmp_path / f"{path.name.split('.')[0]}_skel.py"))
    skel_class: Any = next(
        value
        for value in vars(module).values()
        if isinstance(value, type) and value.__dict__.get("object_name")
    )
    with skel_class.open() as skel:
        obj: BpfObject = skel.obj
        assert set(skel_class.programs_class.names.values()) == set(obj.programs)
        assert set(skel_class.maps_class.names.values()) == set(obj.maps)
        covered = set()
        for attribute, section_class in skel_class.sections.items():
            layout = section_class.layout
            assert ctypes.sizeof(layout) == len(obj.section_memory(section_class.section))
            for variable in obj.variables.values():
                if variable.section != section_class.section or not variable.name.isidentifier():
                    continue  # function-scope statics (`fn.___fmt`) are left out
                field = getattr(layout, field_name(variable.name))
                assert (field.offset, field.size) == (variable.offset, variable.size)
                raw = getattr(skel, attribute).raw()
                assert raw[variable.offset : variable.offset + variable.size] == variable.raw
                covered.add(variable.name)
        assert covered == {name for name in obj.variables if name.isidentifier()}


def test_nested_types_enums_and_bitfields(skeleton_module: ModuleType) -> None:
    with skeleton_module.SkeletonSkel.open() as skel:
        assert skeleton_module.Mode.MODE_DOUBLE == 2
        flags = skel.data.flags  # bitfields (ctypes cannot place these natively)
        assert (flags.ready, flags.level, flags.delta, flags.tail) == (1, 5, -3, 7)
        flags.delta = -8
        flags.level = 2
        assert (flags.ready, flags.level, flags.delta, flags.tail) == (1, 2, -8, 7)
        assert skel.obj.variables["flags"].raw == bytes(flags)
        assert repr(flags) == "Flags(ready=1, level=2, delta=-8, tail=7)"
        assert skel.data.asdict()["flags"] == {"ready": 1, "level": 2, "delta": -8, "tail": 7}
        assert skel.rodata_banner.asdict() == {"banner": "skel"}
        assert "stats=Stats(calls=0, " in repr(skel.bss)
        assert skel.rodata_banner.banner == b"skel"
        assert skel.rodata.xdp_verdict == 2
        assert ctypes.sizeof(skeleton_module.Stats) == skel.obj.variables["stats"].size
        with pytest.raises(AttributeError):
            skel.bss.stat = 1  # type: ignore[attr-defined]  # __slots__: typos fail loudly


def test_mypy_catches_a_misspelt_global(skeleton_module: ModuleType, tmp_path: Path) -> None:
    if not (TOOLS / "mypy").exists():
        pytest.skip("mypy is not installed (scripts/setup installs it)")
    assert Path(skeleton_module.__file__ or "") == tmp_path / "skeleton_skel.py"
    (tmp_path / "user.py").write_text(
        "from skeleton_skel import SkeletonSkel\n"
        "\n"
        "skel = SkeletonSkel.open()\n"
        "skel.rodata.target_pid = 42\n"
        "calls: int = skel.bss.stats.calls\n"
        "skel.rodata.target_pd = 42\n"
        "print(skel.bss.xdp_run)\n"
        "print(skel.maps.per_mod, skel.progs.count_getppid.name)\n"
        "skel.data.bonus = 'five'\n"
    )
    result = run_tool(str(TOOLS / "mypy"), "--strict", "--no-incremental", "user.py", cwd=tmp_path)
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert result.returncode == 1
    assert [line.split(":")[1] for line in errors] == ["6", "7", "8", "9"], result.stdout
    assert '"SkeletonSkelRodata" has no attribute "target_pd"' in errors[0]
    assert '"SkeletonSkelBss" has no attribute "xdp_run"' in errors[1]
    assert "per_mod" in errors[2]
    assert "Incompatible types in assignment" in errors[3]


# ----------------------------------------------------------------- kernel


@pytest.fixture
def loaded(skeleton_module: ModuleType) -> Iterator[Any]:
    skel = skeleton_module.SkeletonSkel.open()
    skel.rodata.target_pid = os.getpid()
    skel.rodata.weight = 10
    skel.rodata.xdp_verdict = 1  # XDP_DROP
    skel.load()
    try:
        yield skel
    finally:
        skel.destroy()


@pytest.mark.root
def test_rodata_bss_and_data_through_a_skeleton(loaded: Any, skeleton_module: ModuleType) -> None:
    skel = loaded
    skel.attach()
    assert skel.links.count_getppid is not None
    assert skel.links.verdict is None  # XDP needs an interface: not auto-attached
    for _ in range(3):
        os.getppid()
    stats = skel.bss.stats
    assert stats.calls == 3
    assert stats.weighted == 3 * (10 + 5)  # rodata weight, data bonus
    assert list(skel.bss.histogram) == [0, 1, 1, 1]
    assert [(p.x, p.y) for p in stats.last] == [(3, -3), (2, -2)]
    assert skel.data_custom.custom_counter == 103
    assert skel.data.flags.level == 0  # 5 + 3 in a 3-bit field

    skel.data.mode = skeleton_module.Mode.MODE_DOUBLE  # written live from Python
    skel.data.bonus = 0
    os.getppid()
    assert stats.calls == 4  # the same view: it reads the live map memory
    assert stats.weighted == 45 + 2 * 10
    assert stats.seen_mode == skeleton_module.Mode.MODE_DOUBLE
    assert stats.comm == Path("/proc/self/comm").read_text().strip().encode()[:15]
    assert dict(skel.maps.per_mode.items()) == {1: 3, 2: 1}

    with pytest.raises(BpfError, match="read-only after load"):
        skel.rodata.weight = 3
    assert skel.rodata.weight == 10
    assert skel.progs.verdict.test_run(bytes(64)).retval == 1  # specialised by rodata
    assert skel.bss.xdp_runs == 1

    skel.detach()
    assert skel.links.count_getppid is None
    os.getppid()
    assert stats.calls == 4


@pytest.mark.root
def test_rodata_decides_the_program(skeleton_module: ModuleType) -> None:
    """A false .rodata flag makes code dead: the verifier removes it from the program."""
    sizes = {}
    for count in (True, False):
        with skeleton_module.SkeletonSkel.open() as skel:
            skel.rodata.count_xdp = count
            skel.load()
            assert skel.progs.verdict.test_run(bytes(64)).retval == 2  # XDP_PASS
            assert skel.bss.xdp_runs == int(count)
            sizes[count] = len(skel.progs.verdict.info(xlated=True).xlated_insns)
    assert sizes[False] < sizes[True]


@pytest.mark.root
def test_without_mmap_the_same_api_uses_map_lookups(
    skeleton_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kernels before 5.5 cannot mmap array maps: sections go through lookup/update."""
    monkeypatch.setattr(features, "has_mmapable_maps", lambda: False)
    with skeleton_module.SkeletonSkel.open() as skel:
        skel.rodata.target_pid = os.getpid()
        skel.load()
        assert not skel.obj._memory.mmaps
        skel.attach()
        os.getppid()
        assert skel.bss.stats.calls == 1
        skel.data.bonus = 100  # written with a map update
        assert bytes(skel.maps.data.lookup(0))[:8] == (100).to_bytes(8, "little")
        os.getppid()
        assert skel.bss.stats.weighted == 5 + 100 + 2  # weight 1 twice
        assert skel.rodata.target_pid == os.getpid()


@pytest.mark.root
def test_referenced_object_and_struct_ops(
    bpf_object: Callable[[str], Path], tmp_path: Path
) -> None:
    """--reference loads the .o from its path; struct_ops values are edited before load
    (the congestion control's name) and attach() registers them."""
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        from test_struct_ops import available, transfer
    finally:
        sys.path.pop(0)
    out = write_skeleton(bpf_object("tcp_cc_plain"), tmp_path / "cc_skel.py", "--reference")
    assert "object_data" not in out.read_text()
    module = import_file(out)
    with module.TcpCcPlainSkel.open() as skel:
        assert skel.struct_ops.plain.name == b"pylibbpf_plain"
        skel.struct_ops.plain.name = b"pylibbpf_skel"  # as skel->struct_ops.plain->name
        skel.load()
        assert skel.links.plain is None and skel.links.incomplete is None
        assert "pylibbpf_skel" not in available()
        skel.attach()
        assert skel.links.incomplete is None  # '?' sections are not created
        assert "pylibbpf_skel" in available() and "pylibbpf_plain" not in available()
        assert transfer("pylibbpf_skel", mib=2)["first"] == {
            "cc": "pylibbpf_skel",
            "snd_cwnd": 10,
        }
        assert skel.bss.calls > 0
        with pytest.raises(BpfError, match="already loaded"):
            skel.struct_ops.plain.name = b"too_late"
        skel.detach()
        assert "pylibbpf_skel" not in available()


def test_map_value_types_and_named_types(bpf_object: Callable[[str], Path], tmp_path: Path) -> None:
    """Map keys/values get ctypes classes; --type adds types nothing else names (the
    record a ring buffer carries, an enum used only in code)."""
    path = bpf_object("core_sample")
    module = import_file(write_skeleton(path, tmp_path / "cs_skel.py", "--type", "color"))
    obj = BpfObject.open(path)
    assert obj.spec.btf is not None
    event = obj.spec.btf.find("event")
    assert ctypes.sizeof(module.Event) == event.size  # a packed struct with bitfields
    record = module.Event(pid=7, ppid=9)
    record.flag_b = 5
    assert obj.spec.btf.ctype(event.id).from_buffer_copy(bytes(record)).flag_b == 5
    assert module.Color.BLUE == 0x1_0000_0000
    # A local's type is not in BTF: it comes from DWARF, with the layout clang gave it.
    fixed = import_file(
        write_skeleton(bpf_object("ringbuf"), tmp_path / "rb_skel.py", "--type", "fixed")
    ).Fixed
    assert (ctypes.sizeof(fixed), fixed.a.offset, fixed.b.offset) == (16, 8, 12)
    with pytest.raises(ObjectError, match="no struct, union, enum or typedef named 'nothing'"):
        skeleton_for_file(str(bpf_object("ringbuf")), types=("nothing",))
