"""Lookups by name say what exists (privilege-free: objects are only opened): a misspelt
program, map or variable is a KeyError naming the close matches, and a misspelt skeleton
attribute an AttributeError naming them."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from pylibbpf import cli
from pylibbpf.loader import BpfObject
from pylibbpf.names import NamedDict, NameNotFoundError


def test_named_dict_is_a_dict_whose_misses_name_the_matches() -> None:
    named = NamedDict[int]("program", "hello", {"count": 1, "counter": 2, "other": 3})
    assert named["count"] == 1 and named.get("cout") is None and "cout" not in named
    assert dict(named) == {"count": 1, "counter": 2, "other": 3}
    with pytest.raises(KeyError) as caught:
        named["cout"]
    error = caught.value
    assert isinstance(error, NameNotFoundError)
    assert error.matches == ["count", "counter"]
    assert str(error) == "hello: no program named 'cout'; did you mean 'count' or 'counter'?"
    with pytest.raises(KeyError, match=r"no program named 'zzz' \(there are: count, counter, "):
        named["zzz"]
    with pytest.raises(KeyError, match=r"no map named 'x' \(there is no map\)"):
        NamedDict[int]("map", "hello")["x"]


def test_object_lookups_name_the_close_matches(bpf_object: Callable[[str], Path]) -> None:
    with BpfObject.open(bpf_object("skeleton")) as obj:
        with pytest.raises(
            KeyError,
            match=r"skeleton: no program named 'count_getpid'; "
            r"did you mean 'count_getppid'\?",
        ):
            obj.programs["count_getpid"]
        with pytest.raises(KeyError, match=r"did you mean 'per_mode'\?"):
            obj.maps["per_mod"]
        with pytest.raises(
            KeyError,
            match=r"no variable named 'target_id'; did you mean "
            r"'target_pid'\?",
        ):
            obj.variables["target_id"]
        assert obj.variables["target_pid"].value == 0  # the right names still work


def import_file(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"names_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_skeleton_attributes_name_the_close_matches(
    bpf_object: Callable[[str], Path], tmp_path: Path
) -> None:
    out = tmp_path / "skeleton_skel.py"
    assert cli.main(["gen", "skeleton", str(bpf_object("skeleton")), "-o", str(out)]) == 0
    module = import_file(out)
    with module.SkeletonSkel.open() as skel:
        with pytest.raises(
            AttributeError,
            match=r"no skeleton program named 'count_getpid'; "
            r"did you mean 'count_getppid'\?",
        ):
            skel.progs.count_getpid  # noqa: B018
        with pytest.raises(KeyError, match=r"did you mean 'per_mode'\?"):
            skel.maps.per_mod  # noqa: B018
        assert not hasattr(skel.links, "count_getpid")
        with pytest.raises(
            AttributeError,
            match=r"no \.rodata variable named 'target_id'; "
            r"did you mean 'target_pid'\?",
        ):
            skel.rodata.target_id  # noqa: B018
        with pytest.raises(AttributeError, match=r"did you mean 'target_pid'\?"):
            skel.rodata.target_id = 5
        skel.rodata.target_pid = 5  # the real ones still read and write
        assert skel.rodata.target_pid == 5
