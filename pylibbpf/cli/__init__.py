"""The ``pylibbpf`` command (also ``python -m pylibbpf``): bpftool's commands for Python
users, with bpftool's JSON.

One module per command group (``prog``, ``maps``, ``link``, ``btf``, ``struct_ops``,
``feature``, ``gen``, ``token``, ``vmtest``), each with a ``register(commands)`` that adds
its verbs; ``app`` is the frame (global options, prefixes, output, errors). A new verb is one
``commands.add(group, verb, handler, help)`` in its group's ``register`` plus the
handler; a new top-level command (``vmtest``) is a module with ``register`` listed in
``GROUPS`` below (``commands.add("vmtest", None, handler, help)``).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from .app import Commands, run

# Command modules, in --help order; each has register(commands: Commands) -> None.
GROUPS = ("prog", "maps", "link", "btf", "struct_ops", "feature", "gen", "token", "vmtest")


def build_parser() -> Commands:
    """Every command, registered."""
    commands = Commands()
    for name in GROUPS:
        importlib.import_module(f"{__name__}.{name}").register(commands)
    return commands


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    return run(build_parser(), argv)


__all__ = ["Commands", "build_parser", "main"]
