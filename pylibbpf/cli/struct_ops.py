"""``pylibbpf struct_ops``: registered struct_ops maps (a TCP congestion control in
BPF…) — show, dump, unregister."""

from __future__ import annotations

import argparse
import ctypes
from typing import Any

from ..errors import BpfError
from .app import Commands, emit

STRUCT_OPS = "STRUCT_OPS is a map id, a map name or the ops' name (tcp_congestion_ops.name)"


def register(commands: Commands) -> None:
    """``struct_ops show``, ``dump``, ``unregister``."""
    commands.group("struct_ops", "registered struct_ops maps (ops written in BPF)")
    commands.add("struct_ops", "show", _show, "every registered struct_ops map", aliases=["list"])
    for verb, handler, text in (
        ("dump", _dump, "the kernel's view of one struct_ops value, member by member"),
        ("unregister", _unregister, "unregister (the ops disappear from the kernel)"),
    ):
        parser = commands.add("struct_ops", verb, handler, text, epilog=STRUCT_OPS)
        parser.add_argument("target", metavar="STRUCT_OPS", help="which one")


def _find(key: str) -> int:
    from ..struct_ops import list_registered

    for entry in list_registered():
        if key in (str(entry.id), entry.name, entry.ops_name):
            return entry.id
    raise BpfError(f"no struct_ops map with id or name {key!r}", 2)


def _show(args: argparse.Namespace) -> int:
    from ..struct_ops import list_registered

    rows = [vars(entry) for entry in list_registered()]
    emit(
        args,
        rows,
        lambda r: (
            f"{r['id']}: {r['name']:<16} {r['kernel_type']:<24} "
            f"{r['state']:<8} {r['ops_name']}" + (" (link)" if r["link_based"] else "")
        ),
    )
    return 0


def _dump(args: argparse.Namespace) -> int:
    from ..struct_ops import value_btf

    map_id = _find(args.target)
    from ..maps import Map

    with Map.from_id(map_id) as map_:
        info = map_.info()
        btf = value_btf(info.btf_vmlinux_id)  # vmlinux's, or a module's ops struct
        value_type = btf.ctype(info.btf_vmlinux_value_type_id)
        raw = map_.lookup(b"\0\0\0\0") or bytes(ctypes.sizeof(value_type))
    data = value_type.from_buffer_copy(raw).data
    row: dict[str, Any] = {}
    for name, *_ in data._fields_:
        if name.startswith("_pad"):
            continue
        member = getattr(data, name)
        if isinstance(member, bytes):
            row[name] = member.split(b"\0", 1)[0].decode(errors="replace")
        elif isinstance(member, int):
            row[name] = member
        else:
            raw = bytes(member)
            row[name] = f"<{len(raw)} bytes{'' if any(raw) else ', zero'}>"
    emit(args, [row], lambda r: "\n".join(f"{k:<24} {v}" for k, v in r.items()), single=True)
    return 0


def _unregister(args: argparse.Namespace) -> int:
    from ..struct_ops import unregister

    map_id = _find(args.target)
    unregister(map_id)
    print(f"unregistered struct_ops map {map_id}")
    return 0
