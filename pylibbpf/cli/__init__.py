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
import sys
from collections.abc import Sequence

from .app import Commands, command_words, run

# Command modules, in --help order; each has register(commands: Commands) -> None.
GROUPS = ("prog", "maps", "link", "btf", "struct_ops", "feature", "gen", "token", "vmtest")
# The command each module registers -> the module.
COMMAND_MODULES = {"map" if name == "maps" else name: name for name in GROUPS}


def build_parser() -> Commands:
    """Every command, registered."""
    commands = Commands()
    for name in GROUPS:
        importlib.import_module(f"{__name__}.{name}").register(commands)
    return commands


def parser_for(argv: Sequence[str]) -> Commands:
    """The command a line names in full (``btf dump ...``) alone, else every command:
    registering them all imports every group's modules and builds ~40 parsers, which
    costs a quick command more than its work (prefixes, --help and mistakes need all)."""
    words = command_words(list(argv))
    module = COMMAND_MODULES.get(argv[words[0]]) if words else None
    if module is None:
        return build_parser()
    commands = Commands()
    importlib.import_module(f"{__name__}.{module}").register(commands)
    return commands


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    words = list(sys.argv[1:] if argv is None else argv)
    return run(parser_for(words), words)


__all__ = ["Commands", "build_parser", "main", "parser_for"]
