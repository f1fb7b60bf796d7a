"""The ``pylibbpf`` command (also ``python -m pylibbpf``): a small bpftool for Python users."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .btf import Btf, Kind
from .btf.types import SIZED_KINDS
from .errors import BpfError


class _OnFirstUse:
    """A module imported when a command first uses it: ``btf dump`` needs only the BTF
    half, and a command line pays for what it runs, not for every command it offers."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name, __package__), attribute)


introspect: Any = _OnFirstUse(".introspect")
features: Any = _OnFirstUse(".syscall.features")
_uapi: Any = _OnFirstUse(".uapi")


def _name(enum: Any, value: int) -> str:
    try:
        return str(enum(value).name.lower())
    except ValueError:
        return str(value)


def _pids(entries: list[dict[str, Any]]) -> str:
    """bpftool's ``pids comm(pid)`` line."""
    if not entries:
        return ""
    return "\n\tpids " + ", ".join(f"{e['comm']}({e['pid']})" for e in entries)


def _cmd_prog_list(args: argparse.Namespace) -> int:
    holders = introspect.holders()
    rows = [
        {
            "id": p.id,
            "type": _name(_uapi.ProgType, p.type),
            "name": p.name,
            "tag": p.tag,
            "map_ids": p.map_ids,
            "btf_id": p.btf_id,
            "pids": holders.get(("prog", p.id), []),
        }
        for p in introspect.programs()
    ]
    _emit(
        args,
        rows,
        lambda r: (
            f"{r['id']}: {r['type']}  name {r['name']}  tag {r['tag']}"
            + (f"  map_ids {','.join(map(str, r['map_ids']))}" if r["map_ids"] else "")
            + _pids(r["pids"])
        ),
    )
    return 0


def _cmd_map_list(args: argparse.Namespace) -> int:
    holders = introspect.holders()
    rows = [
        {
            "id": m.id,
            "type": _name(_uapi.MapType, m.type),
            "name": m.name,
            "key": m.key_size,
            "value": m.value_size,
            "max_entries": m.max_entries,
            "flags": m.flags,
            "pids": holders.get(("map", m.id), []),
        }
        for m in introspect.maps()
    ]
    _emit(
        args,
        rows,
        lambda r: (
            f"{r['id']}: {r['type']}  name {r['name']}  key {r['key']}B  "
            f"value {r['value']}B  max_entries {r['max_entries']}  flags 0x{r['flags']:x}"
            + _pids(r["pids"])
        ),
    )
    return 0


def _cmd_prog_show(args: argparse.Namespace) -> int:
    with introspect.open_program(args.target) as prog:
        row = introspect.program_details(prog)
    row["pids"] = introspect.holders().get(("prog", row["id"]), [])
    _emit(
        args,
        [row],
        lambda r: (
            f"{r['id']}: {r['type']}  name {r['name']}  tag {r['tag']}"
            + ("  gpl" if r["gpl_compatible"] else "")
            + f"\n\tloaded_at {r['loaded_at']}  uid {r['uid']}"
            + f"\n\txlated {r['xlated_bytes']}B  jited {r['jited_bytes']}B  "
            + f"verified_insns {r['verified_insns']}"
            + (f"  map_ids {','.join(map(str, r['map_ids']))}" if r["map_ids"] else "")
            + (f"  btf_id {r['btf_id']}" if r["btf_id"] else "")
            + (
                f"\n\trun_time_ns {r['run_time_ns']}  run_cnt {r['run_cnt']}"
                if r["run_cnt"]
                else ""
            )
            + _pids(r["pids"])
        ),
    )
    return 0


def _cmd_prog_dump(args: argparse.Namespace) -> int:
    with introspect.open_program(args.target) as prog:
        lines = introspect.dump_xlated(prog)
    if args.json:
        print(json.dumps([line.split(": ", 1)[1] for line in lines], indent=1))
    else:
        print("\n".join(lines))
    return 0


def _cmd_prog_tracelog(args: argparse.Namespace) -> int:
    """bpftool 7.6's ``prog tracelog [{stdout|stderr} PROG]``: what a program wrote to its
    BPF stream (Linux 6.17), on the matching stream of ours; no words: the trace pipe."""
    if not args.words:
        from .trace import TracePipe, trace_print

        trace_print(pipe=TracePipe(top_level=True))
        return 0
    stream, target = args.words[0], args.words[1:]
    if stream not in ("stdout", "stderr") or not target:
        raise BpfError("expected: prog tracelog [{stdout|stderr} PROG]", 22)
    with introspect.open_program(target) as prog, prog.stream(stream) as reader:
        text = reader.read_all()
    if args.json:
        print(json.dumps(text.splitlines(), indent=1))
    else:
        (sys.stdout if stream == "stdout" else sys.stderr).write(text)
    return 0


def _split_key_value(words: list[str]) -> tuple[list[str], list[str], list[str]]:
    """bpftool's ``TARGET key BYTES [value BYTES]``."""
    if "key" not in words:
        raise BpfError("expected: MAP key BYTES [value BYTES]", 22)
    at = words.index("key")
    target, rest = words[:at], words[at + 1 :]
    if "value" in rest:
        at = rest.index("value")
        return target, rest[:at], rest[at + 1 :]
    return target, rest, []


def _cmd_map_dump(args: argparse.Namespace) -> int:
    with introspect.open_map(args.target) as map_obj:
        rows = introspect.dump_map(map_obj)

    def text(row: dict[str, Any]) -> str:
        line = f"key: {row['key']}  value: {row['value']}"
        if "formatted_key" in row or "formatted_value" in row:
            decoded = {k: row[k] for k in ("formatted_key", "formatted_value") if k in row}
            line += "\n  " + json.dumps(decoded)
        return line

    _emit(args, rows, text)
    if not args.json:
        print(f"Found {len(rows)} element{'s' if len(rows) != 1 else ''}")
    return 0


def _cmd_map_lookup(args: argparse.Namespace) -> int:
    target, key_words, _ = _split_key_value(args.words)
    with introspect.open_map(target) as map_obj:
        key = introspect.parse_bytes(key_words, map_obj.key_size, "key")
        value = map_obj.lookup(key)
    if value is None:
        raise BpfError(f"map {' '.join(target)}: key {key.hex(' ')} not found", 2)
    row = {"key": key.hex(" "), "value": introspect.value_hex(value)}
    _emit(args, [row], lambda r: f"key: {r['key']}  value: {r['value']}")
    return 0


def _cmd_map_update(args: argparse.Namespace) -> int:
    target, key_words, value_words = _split_key_value(args.words)
    if not value_words:
        raise BpfError("expected: MAP key BYTES value BYTES", 22)
    with introspect.open_map(target) as map_obj:
        key = introspect.parse_bytes(key_words, map_obj.key_size, "key")
        value = introspect.parse_bytes(value_words, map_obj.value_size, "value")
        map_obj.update(key, value)
    return 0


def _cmd_link_list(args: argparse.Namespace) -> int:
    holders = introspect.holders()
    rows = [{**vars(row), "pids": holders.get(("link", row.id), [])} for row in introspect.links()]
    _emit(args, rows, lambda r: f"{r['id']}: {r['type']}  prog {r['prog_id']}{_pids(r['pids'])}")
    return 0


def _cmd_link_detach(args: argparse.Namespace) -> int:
    introspect.detach_link(args.link_id)
    return 0


def _cmd_feature_probe(args: argparse.Namespace) -> int:
    result = features.probe_all()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for group, entries in result.items():
        print(f"{group}:")
        for name, ok in entries.items():
            print(f"  {name:<28} {'yes' if ok else 'no'}")
    return 0


def _btf_type_json(t: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": t.id, "kind": t.kind.name, "name": t.name}
    if t.kind in SIZED_KINDS:
        out["size"] = t.size
    elif t.kind != Kind.UNKN:
        out["type_id"] = t.type
    if t.members:
        out["members"] = [
            {
                "name": m.name,
                "type_id": m.type,
                "bits_offset": m.bit_offset,
                "bitfield_size": m.bitfield_size,
            }
            for m in t.members
        ]
    if t.values:
        out["values"] = [{"name": v.name, "val": v.value} for v in t.values]
    if t.params:
        out["params"] = [{"name": p.name, "type_id": p.type} for p in t.params]
    if t.vars:
        out["vars"] = [{"type_id": v.type, "offset": v.offset, "size": v.size} for v in t.vars]
    if t.kind == Kind.ARRAY:
        out.update(type_id=t.type, index_type_id=t.index_type, nr_elems=t.nelems)
    if t.kind == Kind.INT:
        out.update(bits_offset=t.bit_offset, nr_bits=t.bits, encoding=t.encoding)
    return out


def _cmd_btf_dump(args: argparse.Namespace) -> int:
    btf = Btf.from_file(args.file) if args.file else Btf.load_vmlinux()
    out = sys.stdout
    if args.format == "c":
        out.write(btf.dump_c())
    elif args.format == "json" or args.json:
        out.write(json.dumps([_btf_type_json(t) for t in btf], indent=1) + "\n")
    else:
        for t in btf:
            out.write(f"[{t.id}] {t.kind.name} '{t.name or '(anon)'}' {_raw_detail(t)}\n")
    return 0


def _raw_detail(t: Any) -> str:
    detail = f"size={t.size}" if t.kind in SIZED_KINDS else f"type_id={t.type}"
    if t.kind == Kind.INT:
        detail += f" bits_offset={t.bit_offset} nr_bits={t.bits} encoding={t.encoding}"
    if t.kind == Kind.ARRAY:
        detail = f"type_id={t.type} index_type_id={t.index_type} nr_elems={t.nelems}"
    vlen = len(t.members or t.values or t.params or t.vars)
    return detail + (f" vlen={vlen}" if vlen else "")


def _find_struct_ops(key: str) -> int:
    from .struct_ops import list_registered

    for entry in list_registered():
        if key in (str(entry.id), entry.name, entry.ops_name):
            return entry.id
    raise BpfError(f"no struct_ops map with id or name {key!r}")


def _cmd_struct_ops_list(args: argparse.Namespace) -> int:
    from .struct_ops import list_registered

    rows = [vars(entry) for entry in list_registered()]
    _emit(
        args,
        rows,
        lambda r: (
            f"{r['id']}: {r['name']:<16} {r['kernel_type']:<24} "
            f"{r['state']:<8} {r['ops_name']}" + (" (link)" if r["link_based"] else "")
        ),
    )
    return 0


def _cmd_struct_ops_dump(args: argparse.Namespace) -> int:
    import ctypes

    map_id = _find_struct_ops(args.target)
    btf = Btf.load_vmlinux()
    from .maps import Map

    with Map.from_id(map_id) as map_:
        info = map_.info()
        value_type = btf.ctype(info.btf_vmlinux_value_type_id)
        raw = map_.lookup(b"\0\0\0\0") or bytes(ctypes.sizeof(value_type))
    value = value_type.from_buffer_copy(raw)
    data = value.data
    rows: dict[str, Any] = {}
    for name, *_ in data._fields_:
        if name.startswith("_pad"):
            continue
        field = getattr(data, name)
        if isinstance(field, bytes):
            rows[name] = field.split(b"\0", 1)[0].decode(errors="replace")
        elif isinstance(field, int):
            rows[name] = field
        else:
            raw = bytes(field)
            rows[name] = f"<{len(raw)} bytes{'' if any(raw) else ', zero'}>"
    _emit(args, [rows], lambda r: "\n".join(f"{k:<24} {v}" for k, v in r.items()))
    return 0


def _cmd_struct_ops_unregister(args: argparse.Namespace) -> int:
    from .struct_ops import unregister

    map_id = _find_struct_ops(args.target)
    unregister(map_id)
    print(f"unregistered struct_ops map {map_id}")
    return 0


def _cmd_gen_skeleton(args: argparse.Namespace) -> int:
    from .skelgen import skeleton_for_file

    source = skeleton_for_file(
        args.object_file, args.output, args.name, args.reference, tuple(args.type or ())
    )
    if args.output:
        Path(args.output).write_text(source)
    else:
        sys.stdout.write(source)
    return 0


def _cmd_gen_object(args: argparse.Namespace) -> int:
    from .spec.source import link_files

    data, _ = link_files(args.inputs)
    output = Path(args.output)
    temporary = output.with_name(output.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, output)
    return 0


def _emit(args: argparse.Namespace, rows: list[dict[str, Any]], fmt: Callable[..., str]) -> None:
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(fmt(row))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="pylibbpf", description=__doc__)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="object", required=True)
    prog = sub.add_parser("prog", help="loaded programs").add_subparsers(dest="verb", required=True)
    prog.add_parser("list").set_defaults(func=_cmd_prog_list)
    show = prog.add_parser("show", help="one program: ID | id ID | name NAME | pinned PATH")
    show.add_argument("target", nargs="+")
    show.set_defaults(func=_cmd_prog_show)
    dump = prog.add_parser("dump", help="the instructions the kernel runs")
    dump.add_argument("what", choices=["xlated"])
    dump.add_argument("target", nargs="+")
    dump.set_defaults(func=_cmd_prog_dump)
    tracelog = prog.add_parser(
        "tracelog", help="a program's BPF stream: {stdout|stderr} PROG (none: the trace pipe)"
    )
    tracelog.add_argument("words", nargs="*")
    tracelog.set_defaults(func=_cmd_prog_tracelog)
    maps = sub.add_parser("map", help="maps").add_subparsers(dest="verb", required=True)
    maps.add_parser("list").set_defaults(func=_cmd_map_list)
    map_dump = maps.add_parser("dump", help="every entry (decoded with BTF when present)")
    map_dump.add_argument("target", nargs="+")
    map_dump.set_defaults(func=_cmd_map_dump)
    for verb, func, usage in (
        ("lookup", _cmd_map_lookup, "MAP key BYTES"),
        ("update", _cmd_map_update, "MAP key BYTES value BYTES"),
    ):
        command = maps.add_parser(verb, usage=f"pylibbpf map {verb} {usage}")
        command.add_argument("words", nargs="+")
        command.set_defaults(func=func)
    links = sub.add_parser("link", help="links").add_subparsers(dest="verb", required=True)
    links.add_parser("list").set_defaults(func=_cmd_link_list)
    detach = links.add_parser("detach", help="detach a link by id (even if pinned)")
    detach.add_argument("link_id", type=int)
    detach.set_defaults(func=_cmd_link_detach)
    feature = sub.add_parser("feature", help="kernel features").add_subparsers(
        dest="verb", required=True
    )
    feature.add_parser("probe").set_defaults(func=_cmd_feature_probe)
    ops = sub.add_parser("struct_ops", help="registered struct_ops").add_subparsers(
        dest="verb", required=True
    )
    ops.add_parser("list").set_defaults(func=_cmd_struct_ops_list)
    for verb, func in (("dump", _cmd_struct_ops_dump), ("unregister", _cmd_struct_ops_unregister)):
        command = ops.add_parser(verb)
        command.add_argument("target", help="map id, map name or ops name")
        command.set_defaults(func=func)
    btf = sub.add_parser("btf", help="BTF").add_subparsers(dest="verb", required=True)
    dump = btf.add_parser("dump", help="dump BTF (default: the running kernel's)")
    dump.add_argument("file", nargs="?", help="raw BTF or an ELF object with .BTF")
    dump.add_argument("--format", choices=("c", "raw", "json"), default="raw")
    dump.set_defaults(func=_cmd_btf_dump)
    gen = sub.add_parser("gen", help="code generation").add_subparsers(dest="verb", required=True)
    skeleton = gen.add_parser("skeleton", help="a typed Python skeleton for a BPF object")
    skeleton.add_argument("object_file", help="the BPF ELF object (clang -target bpf -g)")
    skeleton.add_argument("-o", "--output", help="write the module here (default: stdout)")
    skeleton.add_argument("--name", help="class name (default: <Object>Skel)")
    skeleton.add_argument(
        "--reference",
        action="store_true",
        help="load the object from its path at run time instead of embedding its bytes",
    )
    skeleton.add_argument(
        "--type",
        action="append",
        metavar="NAME",
        help="also generate this struct/union/enum (e.g. a ring buffer's record); repeatable",
    )
    skeleton.set_defaults(func=_cmd_gen_skeleton)
    linked = gen.add_parser(
        "object", help="link BPF objects into one (as bpftool gen object; libbpf loads it)"
    )
    linked.add_argument("output", help="the linked object to write")
    linked.add_argument("inputs", nargs="+", help="the BPF objects to link, in order")
    linked.set_defaults(func=_cmd_gen_object)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BpfError as error:
        print(f"pylibbpf: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into head & co.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
