"""Write pylibbpf/record_inits.py: the ``__init__`` templates of every record shape in the
package, so that they come compiled with it (``python tools/record_inits.py``; run it
after adding a record class of a new shape: tests/test_records.py says when)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pylibbpf  # noqa: E402
from pylibbpf import records  # noqa: E402

HEADER = '''"""The ``__init__`` templates of :mod:`pylibbpf.records` for every record shape in this
package, compiled with it: a ``.pyc`` loads them for a fraction of what compiling them
costs each process (the records on the path of a first open and load are most of them).
A name is the shape (``records.template_source`` says how to read it).

Written by ``python tools/record_inits.py``; tests/test_records.py checks that it is
complete and what ``records.template_source`` gives. Do not edit.
"""

# ruff: noqa: F821, E501
# mypy: disable-error-code="name-defined,no-untyped-def"
# (``_set``, ``_specs`` and ``_FACTORY`` are the globals ``records`` gives each __init__)
'''


def package_shapes() -> list[str]:
    """The shapes of every record class of the package."""
    shapes: set[str] = set()
    for info in pkgutil.walk_packages(pylibbpf.__path__, "pylibbpf."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and value.__module__ == info.name
                and "__record_fields__" in value.__dict__
            ):
                shapes.add(records.shape_of(value))
    return sorted(shapes, key=lambda shape: (len(shape), shape))


def render(shapes: list[str]) -> str:
    parts = [HEADER]
    for shape in shapes:
        parts.append("\n" + records.template_source(shape, shape) + "\n")
    listed = "".join(f'    "{shape}": {shape}.__code__,\n' for shape in shapes)
    parts.append(f"\nTEMPLATES = {{\n{listed}}}\n")
    return "\n".join(parts)


def main() -> None:
    target = ROOT / "pylibbpf" / "record_inits.py"
    target.write_text(render(package_shapes()))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
