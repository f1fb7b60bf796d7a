"""``pylibbpf token list``: the bpffs mounts that delegate BPF commands, and what a
token made from each may do (bpftool's ``token list``; tokens are Linux 6.9+)."""

from __future__ import annotations

import argparse
from typing import Any

from .app import Commands, OnFirstUse, emit

introspect: Any = OnFirstUse("pylibbpf.introspect")

_ALLOWED = ("allowed_cmds", "allowed_maps", "allowed_progs", "allowed_attachs")


def register(commands: Commands) -> None:
    """``token list``."""
    commands.group("token", "BPF tokens: the bpffs mounts that delegate BPF commands")
    commands.add(
        "token",
        "list",
        _list,
        "every delegating bpffs in this mount namespace, with what its tokens allow",
        aliases=["show"],
        epilog="With --json, bpftool's keys: token_info (the mount point), allowed_cmds, "
        "allowed_maps, allowed_progs, allowed_attachs.",
    )


def _text(row: dict[str, Any]) -> str:
    """bpftool's plain shape: the mount point, then each allowed set on its own line."""
    lines = [f"token_info  {row['token_info']}"]
    for key in _ALLOWED:
        lines += [f"\t{key}:", "\t  " + "  ".join(row[key])]
    return "\n".join(lines)


def _list(args: argparse.Namespace) -> int:
    rows = [
        {"token_info": row.path, **{key: getattr(row, key) for key in _ALLOWED}}
        for row in introspect.tokens()
    ]
    emit(args, rows, _text)
    return 0
