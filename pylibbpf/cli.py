"""The ``pylibbpf`` command (also ``python -m pylibbpf``): a small bpftool for Python users."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import features, syscall
from .btf import Btf, Kind
from .btf.types import SIZED_KINDS
from .errors import BpfError
from .fd import OwnedFd
from .maps import Map, MapInfo
from .program import Program, ProgramInfo
from .uapi import MapType, ProgType


def _name(enum: Any, value: int) -> str:
    try:
        return str(enum(value).name.lower())
    except ValueError:
        return str(value)


def _programs() -> list[ProgramInfo]:
    infos = []
    for prog_id in syscall.iterate_ids(syscall.prog_get_next_id):
        try:
            with Program.from_fd(OwnedFd(syscall.prog_get_fd_by_id(prog_id))) as prog:
                infos.append(prog.info())
        except BpfError:
            continue  # unloaded between listing and opening
    return infos


def _maps() -> list[MapInfo]:
    infos = []
    for map_id in syscall.iterate_ids(syscall.map_get_next_id):
        try:
            with Map.from_fd(OwnedFd(syscall.map_get_fd_by_id(map_id))) as map_:
                infos.append(map_.info())
        except BpfError:
            continue
    return infos


def _cmd_prog_list(args: argparse.Namespace) -> int:
    rows = [
        {
            "id": p.id,
            "type": _name(ProgType, p.type),
            "name": p.name,
            "tag": p.tag,
            "map_ids": p.map_ids,
            "btf_id": p.btf_id,
        }
        for p in _programs()
    ]
    _emit(
        args,
        rows,
        lambda r: (
            f"{r['id']}: {r['type']}  name {r['name']}  tag {r['tag']}"
            + (f"  map_ids {','.join(map(str, r['map_ids']))}" if r["map_ids"] else "")
        ),
    )
    return 0


def _cmd_map_list(args: argparse.Namespace) -> int:
    rows = [
        {
            "id": m.id,
            "type": _name(MapType, m.type),
            "name": m.name,
            "key": m.key_size,
            "value": m.value_size,
            "max_entries": m.max_entries,
            "flags": m.flags,
        }
        for m in _maps()
    ]
    _emit(
        args,
        rows,
        lambda r: (
            f"{r['id']}: {r['type']}  name {r['name']}  key {r['key']}B  "
            f"value {r['value']}B  max_entries {r['max_entries']}  flags 0x{r['flags']:x}"
        ),
    )
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

    from .maps import Map

    map_id = _find_struct_ops(args.target)
    btf = Btf.load_vmlinux()
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


def _emit(args: argparse.Namespace, rows: list[dict[str, Any]], fmt: Callable[..., str]) -> None:
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(fmt(row))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pylibbpf", description=__doc__)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="object", required=True)
    prog = sub.add_parser("prog", help="loaded programs").add_subparsers(dest="verb", required=True)
    prog.add_parser("list").set_defaults(func=_cmd_prog_list)
    maps = sub.add_parser("map", help="maps").add_subparsers(dest="verb", required=True)
    maps.add_parser("list").set_defaults(func=_cmd_map_list)
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BpfError as error:
        print(f"pylibbpf: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into head & co.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
