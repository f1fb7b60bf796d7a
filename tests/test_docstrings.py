"""Every public name in the API reference has a docstring (privilege-free).

The documented modules are the ones docs/api/*.rst name (``automodule``/``autofunction``),
so this test and the reference cannot drift apart: a public class, function, method or
property there without a docstring fails here, and so does a name ``import pylibbpf``
exports that the reference does not document.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import pylibbpf

DOCS = Path(__file__).resolve().parent.parent / "docs" / "api"
if not DOCS.is_dir():
    pytest.skip("docs/ is not here (an installed package?)", allow_module_level=True)


def documented() -> tuple[list[str], list[str]]:
    """(modules, functions) the API reference pages name."""
    text = "\n".join(page.read_text() for page in sorted(DOCS.glob("*.rst")))
    modules = re.findall(r"^\.\. automodule:: (\S+)", text, re.M)
    functions = re.findall(r"^\.\. autofunction:: (\S+)", text, re.M)
    return modules, functions


def own_doc(obj: Any) -> str | None:
    """The object's own docstring: not inherited, not the one dataclasses invent."""
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__")
        if doc and doc.startswith(f"{obj.__name__}(") and "dataclass" not in doc:
            return None  # @dataclass's generated signature
        return doc if isinstance(doc, str) and doc.strip() else None
    doc = getattr(obj, "__doc__", None)
    return doc if isinstance(doc, str) and doc.strip() else None


def public_names(module: ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    return [
        n
        for n in names
        if (inspect.isclass(getattr(module, n)) or inspect.isfunction(getattr(module, n)))
        and getattr(getattr(module, n), "__module__", None) == module.__name__
    ]


def undocumented_members(cls: type) -> list[str]:
    missing = []
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            function = member.fget
        elif isinstance(member, classmethod | staticmethod):
            function = member.__func__
        elif inspect.isfunction(member):
            function = member
        else:
            continue
        if function is not None and not own_doc(function):
            missing.append(f"{cls.__qualname__}.{name}")
    return missing


def test_every_public_name_has_a_docstring() -> None:
    modules, functions = documented()
    assert modules, "docs/api names no module"
    missing = []
    for module_name in modules:
        module = importlib.import_module(module_name)
        if not own_doc(module):
            missing.append(module_name)
        for name in public_names(module):
            obj = getattr(module, name)
            if not own_doc(obj):
                missing.append(f"{module_name}.{name}")
            if inspect.isclass(obj) and not getattr(obj, "_is_protocol", False):
                # (a Protocol's docstring says what its members are)
                missing += [f"{module_name}.{m}" for m in undocumented_members(obj)]
    for dotted in functions:
        module_name, _, name = dotted.rpartition(".")
        if not own_doc(getattr(importlib.import_module(module_name), name)):
            missing.append(dotted)
    assert not missing, "public names without a docstring:\n  " + "\n  ".join(missing)


def test_the_reference_documents_every_export_of_pylibbpf() -> None:
    modules, functions = documented()
    absent = []
    for name in pylibbpf.__all__:
        if name in pylibbpf._MODULES:  # a module offered as an attribute (bpf.features)
            home = importlib.import_module(pylibbpf._MODULES[name], "pylibbpf").__name__
        else:
            home = getattr(pylibbpf, name).__module__
        if home not in modules and f"{home}.{name}" not in functions:
            absent.append(f"pylibbpf.{name} (defined in {home})")
    assert not absent, "exported but not in docs/api:\n  " + "\n  ".join(absent)
