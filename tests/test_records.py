"""``pylibbpf.records``, the cheap ``@dataclass`` of the import path, against the standard
one: each class is declared twice, once with each, and must behave the same. And the
import path itself: ``bpf.BpfObject`` in a fresh interpreter leaves out what only some
calls need. Pure: no privileges."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import os
import pickle
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pylibbpf
from pylibbpf import records
from pylibbpf.btf.types import Member

ROOT = Path(__file__).resolve().parent.parent


def declare(dataclass: Any, field: Any) -> dict[str, Any]:
    """The same four classes, made by ``dataclass``/``field`` of one implementation."""

    @dataclass(frozen=True, slots=True)
    class Member:
        """A frozen, slotted record with defaults."""

        name: str
        type: int
        bit_offset: int = 0
        values: tuple[int, ...] = ()

    @dataclass(frozen=True, slots=True, repr=False)
    class Opaque(Member):
        """A subclass adding fields, with its own ``__repr__``."""

        info: int = 0

        def __repr__(self) -> str:
            return f"<opaque {self.info}>"

    @dataclass(eq=False)
    class Section:
        """Identity equality, factories, a field set by ``__post_init__``."""

        name: str
        data: bytearray = field(default_factory=bytearray)
        relocations: list[int] = field(default_factory=list)
        length: int = field(init=False)

        def __post_init__(self) -> None:
            self.length = len(self.name)

    @dataclass
    class Options:
        """Mutable and comparable (so unhashable)."""

        level: int
        extra: dict[str, int] = field(default_factory=dict)

    return {"Member": Member, "Opaque": Opaque, "Section": Section, "Options": Options}


STANDARD = declare(dataclasses.dataclass, dataclasses.field)
OURS = declare(records.dataclass, records.field)


def both(name: str, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    return STANDARD[name](*args, **kwargs), OURS[name](*args, **kwargs)


def test_records_construct_compare_hash_and_print_as_dataclasses() -> None:
    for args in [("x", 1), ("x", 1, 8, (1, 2)), ("y", 2, 0)]:
        standard, ours = both("Member", *args)
        assert repr(ours) == repr(standard)
        assert ours == OURS["Member"](*args) and ours != OURS["Member"]("other", 9)
        assert hash(ours) == hash(OURS["Member"](*args))
        assert dataclasses.astuple(ours) == dataclasses.astuple(standard)
    standard, ours = both("Opaque", "o", 3, info=5)
    assert repr(ours) == repr(standard) == "<opaque 5>"
    assert ours != OURS["Member"]("o", 3)  # another class: not equal, as dataclasses
    assert OURS["Member"].__slots__ == STANDARD["Member"].__slots__
    assert OURS["Opaque"].__slots__ == ("info",)  # (as 3.11's: 3.10's repeats the base's)
    assert str(inspect.signature(OURS["Section"])) == str(inspect.signature(STANDARD["Section"]))
    assert str(inspect.signature(OURS["Opaque"])) == str(inspect.signature(STANDARD["Opaque"]))


def test_frozen_records_refuse_changes_as_dataclasses_do() -> None:
    for member in both("Member", "x", 1):
        with pytest.raises(dataclasses.FrozenInstanceError):
            member.type = 2
        with pytest.raises(dataclasses.FrozenInstanceError):
            del member.name


def test_factories_post_init_identity_and_hashability() -> None:
    for section in both("Section", "abc"):
        other = type(section)("abc")
        assert (
            section.length == 3 and section.data == bytearray() and section.data is not other.data
        )
        assert section != other and hash(section) != hash(other)  # eq=False: identity
        assert repr(section).endswith("(name='abc', data=bytearray(b''), relocations=[], length=3)")
    for options in both("Options", 1):
        assert options == type(options)(1) and type(options).__hash__ is None


def test_a_subclass_gets_the_init_compiled_on_first_use() -> None:
    fresh = declare(records.dataclass, records.field)["Options"]  # __init__ not compiled yet

    class Derived(fresh):  # type: ignore[misc, valid-type]
        def __init__(self, level: int) -> None:
            super().__init__(level, {"x": 1})

    assert repr(Derived(2)).endswith("<locals>.Derived(level=2, extra={'x': 1})")
    assert fresh(3).extra == {} and fresh.__init__.__qualname__.endswith("Options.__init__")


def test_the_dataclasses_module_works_on_records() -> None:
    standard, ours = both("Opaque", "o", 3, 8, (1,), info=5)
    assert dataclasses.is_dataclass(ours) and not isinstance(ours, type)
    assert [f.name for f in dataclasses.fields(ours)] == [
        f.name for f in dataclasses.fields(standard)
    ]
    assert dataclasses.asdict(ours) == dataclasses.asdict(standard)
    assert dataclasses.replace(ours, info=6) == OURS["Opaque"]("o", 3, 8, (1,), info=6)
    assert records.replace(ours, info=6) == OURS["Opaque"]("o", 3, 8, (1,), info=6)
    assert records.replace(standard, info=6) == dataclasses.replace(standard, info=6)
    section = OURS["Section"]("ab")
    assert records.replace(section, name="abcd").length == 4  # __post_init__ ran again
    member = Member("m", 1, 32, 3)  # (pickle wants a class it can import by name)
    assert pickle.loads(pickle.dumps(member)) == member
    assert copy.deepcopy(ours) == ours and copy.copy(ours) == ours


def test_bpf_object_import_leaves_out_what_only_some_calls_need() -> None:
    """What ``import pylibbpf as bpf; bpf.BpfObject`` imports, in a fresh interpreter:
    not typing or re, logging (until the application has), dataclasses/inspect, hashlib, pathlib,
    the static linker, arenas, struct_ops or the attach kinds' modules (netlink, sockets,
    USDT, uprobes)."""
    left_out = [
        "typing",  # (on this path: `TYPE_CHECKING = False` / `if TYPE_CHECKING:` imports)
        "re",
        "logging",
        "dataclasses",
        "inspect",
        "hashlib",
        "pathlib",
        "difflib",
        "shutil",
        "socket",
        "platform",
        "pylibbpf.spec.linker",
        "pylibbpf.links.auto",
        "pylibbpf.links.order",
        "pylibbpf.links.xdp",
        "pylibbpf.links.usdt",
        "pylibbpf.syscall.btf_index",
        "pylibbpf.arena",
        "pylibbpf.struct_ops",
        "pylibbpf.spec.struct_ops",
    ]
    code = (
        "import sys; import pylibbpf as bpf; bpf.BpfObject; bpf.Map; bpf.Program\n"
        f"print(' '.join(m for m in {left_out!r} if m in sys.modules))"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == []


def test_records_of_one_shape_share_a_template_but_not_names_or_defaults() -> None:
    """``__init__`` is compiled once per shape and renamed per record: each keeps its own
    parameter names, defaults and field order, as ``dataclasses`` gives them."""
    made = []
    for implementation in (dataclasses, records):
        pair = []
        for names, default in ((("a", "b"), 1), (("key", "value"), "v")):
            namespace: dict[str, Any] = {"__annotations__": dict.fromkeys(names, "Any")}
            namespace[names[1]] = default
            pair.append(implementation.dataclass(frozen=True)(type("R", (), namespace)))
        made.append(pair)
    for standard, ours in zip(*made, strict=True):
        assert str(inspect.signature(ours)) == str(inspect.signature(standard))
        assert repr(ours(5)) == repr(standard(5))
        params = tuple(inspect.signature(ours).parameters)
        assert repr(ours(**dict(zip(params, (7, 8), strict=True)))) == repr(standard(7, 8))
    one, other = made[1]
    assert one.__init__.__code__.co_code == other.__init__.__code__.co_code  # (one template)


def test_a_field_without_default_after_one_with_is_refused_as_dataclasses_does() -> None:
    @records.dataclass
    class Broken:
        first: int = 1
        second: int  # type: ignore[misc]

    with pytest.raises(TypeError, match="non-default argument 'second' follows default"):
        Broken(1, 2)


def test_every_record_shape_of_the_package_comes_compiled() -> None:
    """``record_inits`` holds the ``__init__`` template of every record class of the
    package (``python tools/record_inits.py`` writes it), each the code that compiling
    ``template_source`` gives, so no process compiles one of the package's own."""
    from pylibbpf import record_inits

    shapes = set()
    for info in pkgutil.walk_packages(pylibbpf.__path__, "pylibbpf."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and "__record_fields__" in value.__dict__:
                shapes.add(records.shape_of(value))
    assert len(shapes) > 10
    missing = shapes - set(record_inits.TEMPLATES)
    assert not missing, f"run python tools/record_inits.py: {sorted(missing)}"
    for shape, code in record_inits.TEMPLATES.items():
        made: dict[str, Any] = {}
        exec(records.template_source(shape), {}, made)
        compiled = made["__init__"].__code__
        assert code.co_name == shape
        for part in ("co_code", "co_varnames", "co_names", "co_consts", "co_argcount"):
            assert getattr(code, part) == getattr(compiled, part), (shape, part)


def test_a_shape_of_no_package_record_is_compiled_on_first_use() -> None:
    from pylibbpf import record_inits

    fields = {f"x{number}": "int" for number in range(40)}
    made = records.dataclass(frozen=True)(type("Wide", (), {"__annotations__": fields}))
    shape = records.shape_of(made)
    assert shape not in record_inits.TEMPLATES
    wide = made(*range(40))
    assert wide.x39 == 39 and made.__init__.__code__.co_filename == "<string>"
    assert shape in records._TEMPLATES  # compiled once, for the next record of its shape


def test_on_demand_stands_in_for_a_mixin_until_first_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The mixin's module is imported by the first read of any of its attributes (a
    dunder through its slot, on the class or an instance); from then on each is the
    mixin's own, and a listed name the mixin does not have is an AttributeError."""
    import types

    from pylibbpf.records import on_demand

    module = types.ModuleType("fake_mixin_module")

    class Mixin:
        limit = 2

        def __iter__(self) -> Iterator[int]:
            return iter(range(self.limit))

        def twice(self) -> int:
            return 2 * self.limit

    module.Mixin = Mixin  # type: ignore[attr-defined]
    imported: list[str] = []
    real_import = __import__

    def spy(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "fake_mixin_module":
            imported.append(name)
            monkeypatch.setitem(sys.modules, name, module)
            return module
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr("builtins.__import__", spy)
    stand_in = on_demand("fake_mixin_module", "Mixin", ("limit", "__iter__", "twice", "gone"))

    class Uses(stand_in):  # type: ignore[misc, valid-type]
        pass

    assert imported == []
    assert list(Uses()) == [0, 1]  # iter() through the placeholder's slot
    assert imported == ["fake_mixin_module"]
    assert Uses.twice is Mixin.twice and Uses().twice() == 4 and Uses.limit == 2
    assert not hasattr(Uses, "gone")
