"""``pylibbpf link``: the bpf_links the kernel holds — show (with each kind's details
under bpftool's keys) and detach."""

from __future__ import annotations

import argparse
from typing import Any

from .app import Commands, OnFirstUse, emit

introspect: Any = OnFirstUse("pylibbpf.introspect")
syscall: Any = OnFirstUse("pylibbpf.syscall")
linkinfo: Any = OnFirstUse("pylibbpf.cli.linkinfo")

LINK = "LINK is ID | id ID | pinned PATH"
# Per-kind fields in the order bpftool's plain output has them.
_HIDDEN = {"id", "type", "prog_id", "pinned", "pids", "funcs"}


def register(commands: Commands) -> None:
    """``link show``, ``link detach``."""
    commands.group("link", "bpf_links: attachments the kernel holds, whoever made them")
    show = commands.add(
        "link",
        "show",
        _show,
        "one link or every link, with its kind's details",
        aliases=["list"],
        epilog=f"{LINK}\nWith --json, bpftool's keys (attach_type, cgroup_id, tp_name, ...).",
    )
    show.add_argument("target", nargs="*", metavar="LINK", help="which link; default: all")
    detach = commands.add(
        "link",
        "detach",
        _detach,
        "detach a link (LINK_DETACH), even if pinned or held by another process",
        epilog=LINK,
    )
    detach.add_argument("target", nargs="+", metavar="LINK", help="the link")


def _text(row: dict[str, Any]) -> str:
    """bpftool's plain ``link show`` shape: the head line, then the kind's fields."""
    head = f"{row['id']}: {row['type']}  prog {row['prog_id']}"
    details = "  ".join(f"{k} {v}" for k, v in row.items() if k not in _HIDDEN)
    lines = [head] + ([f"\t{details}"] if details else [])
    for func in row.get("funcs", []):
        lines.append("\t" + "  ".join(f"{k} {v}" for k, v in func.items() if v is not None))
    lines += [f"\tpinned {path}" for path in row.get("pinned", [])]
    if "pids" in row:
        lines.append("\tpids " + ", ".join(f"{p['comm']}({p['pid']})" for p in row["pids"]))
    return "\n".join(lines)


def _show(args: argparse.Namespace) -> int:
    found = introspect.holders()
    at = introspect.pins() if args.bpffs else None
    if not args.target:
        emit(args, linkinfo.every_link(found, at), _text)
        return 0
    with introspect.link_fd(args.target) as fd:
        row = linkinfo.link_row(fd.fd, found, at)
    emit(args, [row], _text, single=True)
    return 0


def _detach(args: argparse.Namespace) -> int:
    with introspect.link_fd(args.target) as fd:
        syscall.link_detach(fd.fd, what=f"link {' '.join(args.target)}")
    return 0
