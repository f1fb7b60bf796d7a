"""``pylibbpf feature probe``: which map types, program types and BTF features this
kernel accepts, found by loading tiny objects."""

from __future__ import annotations

import argparse
from typing import Any

from .app import Commands, OnFirstUse, print_json, wants_json

features: Any = OnFirstUse("pylibbpf.syscall.features")


def register(commands: Commands) -> None:
    """``feature probe``."""
    commands.group("feature", "what this kernel supports")
    commands.add(
        "feature",
        "probe",
        _probe,
        "probe map types, program types and BTF support (needs CAP_BPF)",
        epilog="A program type is 'yes' when the kernel knows it, even where this host's "
        "policy\nrefuses some of its attach types (tracing: tp_btf loads, fentry may not).",
    )


def _probe(args: argparse.Namespace) -> int:
    result = features.probe_all()
    if wants_json(args):
        print_json(args, result)
        return 0
    for group, entries in result.items():
        print(f"{group}:")
        for name, ok in entries.items():
            print(f"  {name:<28} {'yes' if ok else 'no'}")
    return 0
