"""Generating a skeleton is a pure step: names in an object never become code.

Objects are crafted from ``tests/bpf/skel_names.bpf.c`` by rewriting its names (BTF,
section and symbol names; ``skel_craft``) into payloads that would run a command if they
reached the generated module as code. Each test generates the skeleton, imports it and
checks the command did not run, and that the names are still reachable as data. ctypes
shapes that crash CPython run in a child process, so a crash fails the test instead of
killing pytest. All privilege-free.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from skel_craft import rewrite

from pylibbpf import cli
from pylibbpf.btf import Btf, EnumValue, Kind, Member, Type
from pylibbpf.btf.encode import encode
from pylibbpf.errors import ObjectError
from pylibbpf.object import BpfObject
from pylibbpf.skelgen import SkeletonOptions, generate, skeleton_for_file
from pylibbpf.skelsafe import check_declarations

ROOT = Path(__file__).resolve().parent.parent


def import_file(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"crafted_{id(path)}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def payloads(marker: Path) -> dict[str, str]:
    """Names that run ``touch marker`` if written into the module as code."""
    run = f"__import__('os').system('touch {marker}')"
    return {
        "inject": f"x: int = {run}#",
        "newline": f"a\n{run}\n",
        "quote": f'q", {run}, "',
        "backslash": f'b\\", {run}, "\\',
        "triple": f'"""\n{run}\n"""',
        "single_triple": f"'''\n{run}\n'''",
        "non_utf8": "n\udcff\udcfe",  # the bytes 6e ff fe: not UTF-8
        "keyword": "import",
        "dunder": "__init__",
        "class": "__class__",
        "ctypes": "_fields_",
        "method": "asdict",
    }


def crafted(bpf_object: Callable[[str], Path], marker: Path) -> tuple[bytes, dict[str, str]]:
    names = payloads(marker)
    members = dict(zip([f"pl_m_{c}" for c in "abcdefghijkl"], names.values(), strict=True))
    run = f"__import__('os').system('touch {marker}')"
    section = f'.data.x"""\n{run}\n"""'
    btf_names = {
        **members,
        "pl_m_u": names["inject"] + "u",  # a member of an anonymous member
        "pl_b_a": names["inject"],  # a bitfield ctypes cannot place natively
        "pl_b_b": names["triple"],
        "PL_VAL_A": names["inject"],
        "PL_VAL_B": "mro",  # not allowed as an enum member name
        "pl_enum": names["newline"],
        "pl_rec": names["quote"],
        "pl_v_a": names["inject"],  # a global: not an identifier, so left out
        "pl_v_b": "raw",  # the section wrapper's own method
        "pl_v_c": "_view",
        ".data.pl_sec": section,
    }
    symbols = {"pl_prog": f"p{names['newline']}", "pl_map": names["triple"]}
    symbols |= {name: btf_names[name] for name in ("pl_v_a", "pl_v_b", "pl_v_c")}
    data = rewrite(
        bpf_object("skel_names").read_bytes(), btf_names, {".data.pl_sec": section}, symbols
    )
    return data, names


def test_names_that_try_to_inject_code_stay_data(
    bpf_object: Callable[[str], Path], tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    data, names = crafted(bpf_object, marker)
    path = tmp_path / "crafted.bpf.o"
    path.write_bytes(data)
    out = tmp_path / "crafted_skel.py"
    assert cli.main(["gen", "skeleton", str(path), "-o", str(out)]) == 0  # non-UTF-8: written
    source = out.read_text()
    assert source.isascii()
    module = import_file(out)
    assert not marker.exists()

    skel_class: Any = module.CraftedSkel
    record_class = next(
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, ctypes.Structure)
        and names["newline"] in [field[0] for field in getattr(value, "_fields_", ())]
    )
    record = record_class()
    # Every C name is a member, read and written by getattr; the ones Python or ctypes
    # reserve under a documented rename.
    renamed = {"import": "import_", "__init__": "m__init__", "__class__": "m__class__"}
    renamed |= {"_fields_": "_fields__", "asdict": "asdict_", "n\udcff\udcfe": "n\\xff\\xfe"}
    for value, c_name in enumerate(names.values(), start=10):
        attribute = renamed.get(c_name, c_name)
        setattr(record, attribute, value)
        assert getattr(record, attribute) == value
    assert getattr(record, names["inject"] + "u") == 0  # promoted from an anonymous member
    assert record.asdict()["n\\xff\\xfe"] == 16  # not UTF-8: escaped (ctypes 3.12+ needs it)
    assert json.loads(json.dumps(record.asdict()))[names["triple"]] == 14
    assert repr(record).startswith(f"{record_class.__name__}(x: int = __import__(")

    with skel_class.open() as skel:  # the embedded object: the same crafted names
        data_section = skel.data
        assert data_section.raw_ == 2 and data_section.view == 3  # renamed globals
        assert data_section.pl_v_rec.asdict()[names["inject"]] == 1
        bits = data_section.pl_v_bits
        assert (getattr(bits, names["inject"]), getattr(bits, names["triple"])) == (1, 5)
        setattr(bits, names["triple"], 2)
        assert getattr(bits, names["triple"]) == 2 and bits.pl_b_c == -3
        custom = next(
            getattr(skel, attribute)
            for attribute, cls in skel_class.sections.items()
            if cls.section.startswith(".data.x")
        )
        assert custom.pl_v_d == 100
        assert custom.section == f'.data.x"""\n__import__(\'os\').system(\'touch {marker}\')\n"""'
        assert set(skel_class.programs_class.names.values()) == {f"p{names['newline']}"}
    enum_class = next(
        value
        for value in vars(module).values()
        if isinstance(value, type) and hasattr(value, "mro_")
    )
    assert enum_class.mro_ == 2
    assert not marker.exists()


def exploits(run: str) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """Each of these alone ran ``run`` on import of the skeleton pylibbpf generated
    before names were checked: (BTF renames, section renames)."""
    section = f'.data.x"""\n    {run}\n    """'  # leaves the section class's docstring
    return {
        "member": ({"pl_m_a": f"x: int = {run}#"}, {}),
        "bitfield": ({"pl_b_a": f"x = {run}#"}, {}),
        "section": ({".data.pl_sec": section}, {".data.pl_sec": section}),
    }


@pytest.mark.parametrize("where", ["member", "bitfield", "section"])
def test_each_exploit_alone_stays_data(
    bpf_object: Callable[[str], Path], tmp_path: Path, where: str
) -> None:
    marker = tmp_path / "pwned"
    btf_names, section_names = exploits(f"__import__('os').system('touch {marker}')")[where]
    path = tmp_path / "exploit.bpf.o"
    path.write_bytes(rewrite(bpf_object("skel_names").read_bytes(), btf_names, section_names))
    out = tmp_path / "exploit_skel.py"
    assert cli.main(["gen", "skeleton", str(path), "-o", str(out)]) == 0
    module = import_file(out)
    assert not marker.exists()
    with module.ExploitSkel.open() as skel:
        if where == "section":
            (attribute,) = [a for a in module.ExploitSkel.sections if a.startswith("data_x")]
            assert getattr(skel, attribute).pl_v_d == 100
        else:
            holder = skel.data.pl_v_rec if where == "member" else skel.data.pl_v_bits
            assert getattr(holder, btf_names[f"pl_{where[0]}_a"]) == 1


def test_a_hostile_file_name_stays_data(
    bpf_object: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The object's name comes from its file name: it lands in docstrings and literals."""
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    name = "x\"\"\"\ngetattr(__import__('os'), 'system')('touch pwned')\n\"\"\""  # no dots
    (tmp_path / f"{name}.bpf.o").write_bytes(bpf_object("skel_names").read_bytes())
    out = tmp_path / "named_skel.py"
    assert cli.main(["gen", "skeleton", str(tmp_path / f"{name}.bpf.o"), "-o", str(out)]) == 0
    module = import_file(out)
    assert not marker.exists()
    skel_class = next(v for v in vars(module).values() if getattr(v, "object_name", None) == name)
    assert skel_class.object_name == name


def test_a_class_name_that_is_not_one_is_refused(bpf_object: Callable[[str], Path]) -> None:
    with pytest.raises(ObjectError, match="is not a Python class name"):
        skeleton_for_file(str(bpf_object("skel_names")), class_name="X(object): pass\nimport os")


def test_random_names_always_give_a_module_that_compiles(
    bpf_object: Callable[[str], Path], tmp_path: Path
) -> None:
    """Names of random bytes (quotes, backslashes, newlines, non-UTF-8, NUL excepted) in
    every member: the module always compiles, and holds only declarations."""
    original = bpf_object("skel_names").read_bytes()
    alphabet = [bytes([b]) for b in range(1, 256)]
    rng = random.Random(1234)
    for round_ in range(25):
        names = {}
        for c_name in [f"pl_m_{c}" for c in "abcdefghijkl"] + ["pl_b_a", "pl_v_a", "PL_VAL_A"]:
            raw = b"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
            names[c_name] = raw.decode("utf-8", "surrogateescape") + str(round_)
        data = rewrite(original, names)
        obj = BpfObject.open(data, name=f"fuzz{round_}")
        source = generate(obj, data, SkeletonOptions())
        compile(source, "fuzz", "exec")
        assert source.isascii()


def test_the_final_check_refuses_anything_but_declarations() -> None:
    """What stops a future emission that forgets to quote a name."""
    head = "from __future__ import annotations\nimport ctypes\n"
    head += "from pylibbpf.btf.ctype import CStruct\n"
    good = head + "class A(CStruct):\n    _fields_ = (('a', ctypes.c_int32 * 2),)\n    a: int\n"
    check_declarations(good, "good")
    for bad in (
        "class A(CStruct):\n    x: int = __import__('os').system('true')\n",
        "class A(CStruct):\n    x = open('/etc/passwd')\n",
        "import os\n",
        "from os import system\n",
        "print('hi')\n",
        "class A(CStruct):\n    x = [c for c in ()]\n",
        "class A(CStruct):\n    @staticmethod\n    def f(self) -> int:\n        return 1\n",
        "class A(CStruct):\n    def f(self) -> int:\n        return exec('1')\n",
        "class A(Unknown):\n    pass\n",
        "A = 1\n",
    ):
        with pytest.raises(ObjectError, match="refusing|does not compile"):
            check_declarations(head + bad, "bad")
    with pytest.raises(ObjectError, match="does not compile"):
        check_declarations(head + "class A(CStruct):\n    x: int = 'a\n", "bad")


# ----------------------------------------------------------------- ctypes shapes

INT = Type(1, Kind.INT, "int", size=4, encoding=1, bits=32)

CRASHER = """
import ctypes, sys
from pylibbpf.btf import Btf, Kind, Member, Type
from pylibbpf.btf.encode import encode
INT = Type(1, Kind.INT, "int", size=4, encoding=1, bits=32)
# union { struct { int; int b; }; int e; }: the inner struct's unnamed member and the
# union's anonymous member were both "_anon0"; ctypes' promotion freed one it was using.
inner = Type(2, Kind.STRUCT, "", size=8, members=(Member("", 1, 0), Member("b", 1, 32)))
outer = Type(3, Kind.UNION, "U", size=8, members=(Member("", 2, 0), Member("e", 1, 0)))
cls = Btf(encode([INT, inner, outer])).ctype(3)
value = cls.from_buffer_copy(bytes(range(8)))
print(ctypes.sizeof(cls), value.b, value.e, sorted(value.asdict()))
"""


def run_child(code: str) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)


def test_anonymous_member_names_that_crashed_ctypes() -> None:
    result = run_child(CRASHER)
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
    b = int.from_bytes(bytes(range(4, 8)), "little")
    e = int.from_bytes(bytes(range(4)), "little")
    assert result.stdout.split() == ["8", str(b), str(e), "['b',", "'e']"]


def test_the_crash_shape_in_an_object(bpf_object: Callable[[str], Path], tmp_path: Path) -> None:
    """The same shape made from a compiled object (its anonymous struct's first member
    unnamed), opened, read and given a skeleton in a child process."""
    data = rewrite(bpf_object("skel_names").read_bytes(), {"pl_m_u": ""})
    path = tmp_path / "crash.bpf.o"
    path.write_bytes(data)
    code = f"""
from pylibbpf.object import BpfObject
from pylibbpf.skelgen import skeleton_for_file
obj = BpfObject.open({str(path)!r})
rec = obj.variables["pl_v_rec"].value
print(rec.pl_m_l, rec.pl_m_v, rec.asdict()["pl_m_x"])
compile(skeleton_for_file({str(path)!r}), "skel", "exec")
"""
    result = run_child(code)
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
    assert result.stdout.split() == ["12", "0", "2"]


def btf_ctype(*types: Type) -> Any:
    return Btf(encode(types)).ctype(len(types))


@pytest.mark.parametrize(
    ("types", "why"),
    [
        (  # struct a { struct a inner; }: only hostile BTF can say it
            [INT, Type(2, Kind.STRUCT, "a", size=4, members=(Member("inner", 2, 0),))],
            "contains itself",
        ),
        (  # a 2^32-element array of 2^32-element arrays
            [
                INT,
                Type(2, Kind.ARRAY, type=1, index_type=1, nelems=0xFFFF_FFFF),
                Type(3, Kind.ARRAY, type=2, index_type=1, nelems=0xFFFF_FFFF),
            ],
            "more than BTF can describe",
        ),
        (  # a bitfield wider than its type
            [INT, Type(2, Kind.UNION, "w", size=4, members=(Member("x", 1, 0, 40),))],
            "cannot lay out",
        ),
        (  # one name twice, through an anonymous member
            [
                INT,
                Type(2, Kind.STRUCT, "", size=4, members=(Member("x", 1, 0),)),
                Type(3, Kind.STRUCT, "d", size=8, members=(Member("", 2, 0), Member("x", 1, 32))),
            ],
            "appears twice",
        ),
    ],
)
def test_hostile_layouts_are_refused_before_ctypes_sees_them(types: list[Type], why: str) -> None:
    with pytest.raises(ObjectError, match=why):
        btf_ctype(*types)


def test_zero_length_and_empty_records_are_fine() -> None:
    empty = Type(2, Kind.STRUCT, "empty", size=0)
    flexible = Type(3, Kind.ARRAY, type=1, index_type=1, nelems=0)
    holder = Type(4, Kind.STRUCT, "h", size=4, members=(Member("n", 1, 0), Member("tail", 3, 32)))
    cls = btf_ctype(INT, empty, flexible, holder)
    assert ctypes.sizeof(cls) == 4 and cls(n=3).asdict() == {"n": 3, "tail": []}


def test_records_read_well_and_dump_to_json() -> None:
    """repr() and asdict(): nested structs, arrays, char arrays as text, bitfields,
    anonymous members inline, enums as numbers."""
    char = Type(2, Kind.INT, "char", size=1, encoding=1, bits=8)
    comm = Type(3, Kind.ARRAY, type=2, index_type=1, nelems=8)
    point = Type(4, Kind.STRUCT, "point", size=8, members=(Member("x", 1, 0), Member("y", 1, 32)))
    points = Type(5, Kind.ARRAY, type=4, index_type=1, nelems=2)
    anon = Type(6, Kind.UNION, "", size=4, members=(Member("u", 1, 0), Member("raw", 1, 0)))
    color = Type(7, Kind.ENUM, "color", size=4, values=(EnumValue("RED", 1),))
    event = Type(
        8,
        Kind.STRUCT,
        "event",
        size=40,
        members=(
            Member("pid", 1, 0),
            Member("comm", 3, 32),
            Member("pts", 5, 96),
            Member("", 6, 224),
            Member("lo", 1, 256, 3),
            Member("hi", 1, 259, 5),
            Member("color", 7, 288),
        ),
    )
    cls = btf_ctype(INT, char, comm, point, points, anon, color, event)
    record = cls.from_buffer_copy(bytes(40))
    record.pid, record.comm, record.u, record.lo, record.hi, record.color = 7, b"bash", 9, -2, 11, 1
    record.pts[1].y = -4
    expected = {
        "pid": 7,
        "comm": "bash",
        "pts": [{"x": 0, "y": 0}, {"x": 0, "y": -4}],
        "u": 9,
        "raw": 9,
        "lo": -2,
        "hi": 11,
        "color": 1,
    }
    assert record.asdict() == expected
    assert json.loads(json.dumps(record.asdict())) == expected
    assert repr(record) == (
        "event(pid=7, comm='bash', pts=[point(x=0, y=0), point(x=0, y=-4)], u=9, raw=9, "
        "lo=-2, hi=11, color=1)"
    )


def test_names_in_a_library_stay_data_in_its_subskeleton(
    bpf_object: Callable[[str], Path], tmp_path: Path
) -> None:
    """The same crafted names through ``gen subskeleton``: nothing runs on import, and the
    subskeleton, bound to an object holding the library, reaches them as data."""
    marker = tmp_path / "pwned"
    data, names = crafted(bpf_object, marker)
    path = tmp_path / "crafted.bpf.o"
    path.write_bytes(data)
    out = tmp_path / "crafted_subskel.py"
    assert cli.main(["gen", "subskeleton", str(path), "-o", str(out)]) == 0
    assert out.read_text().isascii()
    module = import_file(out)
    assert not marker.exists()
    with BpfObject.open(data, name="final") as final:
        lib = module.CraftedSubskel(final)
        assert lib.data.raw_ == 2 and lib.data.view == 3  # globals named like its methods
        assert lib.data.pl_v_rec.asdict()[names["inject"]] == 1
        custom = next(
            getattr(lib, attribute)
            for attribute, cls in module.CraftedSubskel.sections.items()
            if cls.section.startswith(".data.x")
        )
        assert custom.pl_v_d == 100
        assert set(module.CraftedSubskel.programs_class.names.values()) == {f"p{names['newline']}"}
    assert not marker.exists()
