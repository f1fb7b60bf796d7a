"""``pylibbpf map``: the maps the kernel holds — show, dump, lookup, update, delete —
with bpftool's words and JSON."""

from __future__ import annotations

import argparse
import errno
import json
from typing import Any

from ..errors import BpfError
from ..uapi import UpdateFlags
from .app import Commands, OnFirstUse, emit

introspect: Any = OnFirstUse("pylibbpf.introspect")

MAP = "MAP is ID | id ID | name NAME | pinned PATH"
DATA = (
    "DATA is bytes (1 0 0 0, 0x01 0x00 ...), `hex 01 00 ...`, or one integer for a\n"
    "1/2/4/8-byte key or value (little-endian)"
)
FLAGS = {"any": UpdateFlags.ANY, "noexist": UpdateFlags.NOEXIST, "exist": UpdateFlags.EXIST}


def register(commands: Commands) -> None:
    """``map show``, ``dump``, ``lookup``, ``update``, ``delete``."""
    commands.group("map", "maps the kernel holds, whoever created them")
    show = commands.add(
        "map",
        "show",
        _show,
        "one map, the maps a name names, or every map",
        aliases=["list"],
        epilog=f"{MAP}\nWith --json, bpftool's keys (bytes_key, bytes_value, frozen...).",
    )
    show.add_argument("target", nargs="*", metavar="MAP", help="which map(s); default: all")
    dump = commands.add(
        "map",
        "dump",
        _dump,
        "every entry, decoded with the map's BTF when it has some",
        epilog=f"{MAP}\nWith --json, entries as bpftool writes them: key/value as lists of "
        '"0x.." bytes,\nformatted: {key, value} from BTF.',
    )
    dump.add_argument("target", nargs="+", metavar="MAP", help="the map")
    for verb, handler, usage, help_text in (
        ("lookup", _lookup, "MAP key DATA", "one entry"),
        ("update", _update, "MAP key DATA value VALUE [any|exist|noexist]", "write one entry"),
        ("delete", _delete, "MAP key DATA", "remove one entry"),
    ):
        parser = commands.add("map", verb, handler, help_text, epilog=f"{MAP}\n{DATA}")
        parser.usage = f"pylibbpf map {verb} {usage}"
        parser.add_argument("words", nargs="+", metavar="WORD", help=usage)


def _text(row: dict[str, Any]) -> str:
    """bpftool's plain ``map show`` lines."""
    head = f"{row['id']}: {row['type']}  "
    if "name" in row:
        head += f"name {row['name']}  "
    head += f"flags 0x{row['flags']:x}"
    body = f"\tkey {row['bytes_key']}B  value {row['bytes_value']}B  "
    body += f"max_entries {row['max_entries']}"
    if "bytes_memlock" in row:
        body += f"  memlock {row['bytes_memlock']}B"
    lines = [head, body]
    if "owner_prog_type" in row or "owner_jited" in row:
        owner = (
            f"\towner_prog_type {row['owner_prog_type']}  " if "owner_prog_type" in row else "\t"
        )
        if "owner_jited" in row:
            owner += "owner jited" if row["owner_jited"] else "owner not jited"
        lines.append(owner)
    lines += [f"\tpinned {path}" for path in row.get("pinned", [])]
    tail = [f"btf_id {row['btf_id']}"] if "btf_id" in row else []
    if row["frozen"]:
        tail.append("frozen")
    if tail:
        lines.append("\t" + "  ".join(tail))
    if "pids" in row:
        lines.append("\tpids " + ", ".join(f"{p['comm']}({p['pid']})" for p in row["pids"]))
    return "\n".join(lines)


def _show(args: argparse.Namespace) -> int:
    from ..maps import Map

    found = introspect.holders()
    at = introspect.pins() if args.bpffs else None
    if not args.target:
        emit(args, introspect.every_map(found, at), _text)
        return 0
    rows = []
    for map_id in introspect.map_ids(args.target):
        with Map.from_id(map_id) as map_obj:
            rows.append(introspect.map_row(map_obj, found, at))
    emit(args, rows, _text, single=True)
    return 0


def _entry_text(row: dict[str, Any]) -> str:
    def hexes(values: list[str]) -> str:
        return " ".join(value[2:] for value in values)

    line = f"key: {hexes(row['key'])}  "
    if "values" in row:
        line += "\n" + "\n".join(
            f"value (CPU {v['cpu']:02d}): {hexes(v['value'])}" for v in row["values"]
        )
    else:
        line += f"value: {hexes(row['value'])}"
    if "formatted" in row:
        line += "\n  " + json.dumps(row["formatted"])
    return line


def _dump(args: argparse.Namespace) -> int:
    with introspect.open_map(args.target) as map_obj:
        rows = introspect.dump_map(map_obj)
    emit(args, rows, _entry_text)
    if not (args.json or args.pretty):
        print(f"Found {len(rows)} element{'s' if len(rows) != 1 else ''}")
    return 0


def _split(words: list[str], want_value: bool) -> tuple[list[str], list[str], list[str], int]:
    """bpftool's ``MAP key DATA [value DATA [FLAGS]]``."""
    if "key" not in words:
        raise BpfError("expected: MAP key DATA" + (" value VALUE" if want_value else ""), 22)
    at = words.index("key")
    target, rest = words[:at], words[at + 1 :]
    flags = 0
    if rest and rest[-1] in FLAGS:
        flags = FLAGS[rest.pop()]
    if "value" in rest:
        at = rest.index("value")
        return target, rest[:at], rest[at + 1 :], flags
    if want_value:
        raise BpfError("expected: MAP key DATA value VALUE", errno.EINVAL)
    return target, rest, [], flags


def _data(words: list[str], size: int, what: str) -> bytes:
    from ..introspect import parse_bytes

    if words and words[0] == "hex":
        words = [f"0x{word}" for word in words[1:]]
    return parse_bytes(words, size, what)


def _lookup(args: argparse.Namespace) -> int:
    target, key_words, _, _ = _split(args.words, False)
    with introspect.open_map(target) as map_obj:
        key = _data(key_words, map_obj.key_size, "key")
        value = map_obj.lookup(key)
        if value is None:
            raise BpfError(f"map {' '.join(target)}: key {key.hex(' ')} not found", errno.ENOENT)
        row = introspect.entry_row(map_obj, key, value)
    emit(args, [row], _entry_text, single=True)
    return 0


def _update(args: argparse.Namespace) -> int:
    target, key_words, value_words, flags = _split(args.words, True)
    with introspect.open_map(target) as map_obj:
        key = _data(key_words, map_obj.key_size, "key")
        value = _data(value_words, map_obj.value_size, "value")
        map_obj.update(key, value, flags)
    return 0


def _delete(args: argparse.Namespace) -> int:
    target, key_words, _, _ = _split(args.words, False)
    with introspect.open_map(target) as map_obj:
        key = _data(key_words, map_obj.key_size, "key")
        if not map_obj.delete(key):
            raise BpfError(f"map {' '.join(target)}: key {key.hex(' ')} not found", errno.ENOENT)
    return 0
