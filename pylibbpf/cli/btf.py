"""``pylibbpf btf``: BTF objects the kernel holds (``show``) and any BTF as text
(``dump``: bpftool's raw format and JSON, or a C header such as ``vmlinux.h``)."""

from __future__ import annotations

import argparse
import os
import sys

from ..btf import Btf, Kind
from ..btf.types import SIZED_KINDS, OpaqueType
from ..errors import BpfError
from .app import Commands, OnFirstUse, emit, print_json, wants_json

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any

    from ..maps import Map

introspect: Any = OnFirstUse("pylibbpf.introspect")

SOURCES = (
    "SOURCE is id ID | file FILE (raw BTF or an ELF object with .BTF) | prog PROG | map MAP\n"
    "(default: the running kernel's vmlinux BTF)"
)
KERNEL_BTF = "/sys/kernel/btf/vmlinux"
INT_ENCODINGS = {0: "(none)", 1: "SIGNED", 2: "CHAR", 4: "BOOL"}
LINKAGES = ("static", "global", "extern")


def register(commands: Commands) -> None:
    """``btf show``, ``btf dump``."""
    commands.group("btf", "BTF: the kernel's, modules', loaded objects', or a file's")
    show = commands.add(
        "btf",
        "show",
        _show,
        "BTF objects the kernel holds, with the programs and maps using each",
        aliases=["list"],
        epilog="BTF is ID | id ID",
    )
    show.add_argument("target", nargs="*", metavar="BTF", help="which one; default: all")
    dump = commands.add(
        "btf",
        "dump",
        _dump,
        "dump BTF types: bpftool's raw text or JSON, or C (format c: a vmlinux.h)",
        epilog=f"{SOURCES}\nexamples:\n  pylibbpf btf dump file /sys/kernel/btf/vmlinux "
        "format c > vmlinux.h\n  pylibbpf btf dump id 42 --json",
    )
    dump.add_argument("words", nargs="*", metavar="SOURCE [format raw|c]")
    dump.add_argument("--format", choices=("c", "raw", "json"), help="same as `format X`")


def _show_text(row: dict[str, Any]) -> str:
    name = row.get("name", "")
    name = (f"[{name}]" if row["kernel"] else name) if name else "<anon>"
    line = f"{row['id']}: name {name}  size {row['size']}B"
    if row["prog_ids"]:
        line += f"  prog_ids {','.join(map(str, row['prog_ids']))}"
    if row["map_ids"]:
        line += f"  map_ids {','.join(map(str, row['map_ids']))}"
    return line


def _show(args: argparse.Namespace) -> int:
    found = introspect.holders()
    if args.target:
        emit(
            args,
            introspect.btf_rows(introspect.btf_ids(args.target), found),
            _show_text,
            single=True,
        )
    else:
        emit(args, introspect.btf_rows(introspect.every_btf_id(), found), _show_text)
    return 0


def _source(args: argparse.Namespace) -> tuple[Btf, str]:
    """The BTF the words name, and the format asked for."""
    words = list(args.words)
    form = args.format or ""
    if len(words) >= 2 and words[-2] == "format":
        form, words = words[-1], words[:-2]
    if form not in ("", "raw", "c", "json"):
        raise BpfError(f"btf dump: unknown format {form!r} (raw or c)", 22)
    base = Btf.from_file(args.base_btf) if args.base_btf else None
    if not words:
        return Btf.load_vmlinux(), form
    kind, rest = words[0], words[1:]
    if kind == "file" and len(rest) == 1:
        return _file(rest[0], base), form
    if kind == "id" and len(rest) == 1 and rest[0].isdigit():
        return introspect.object_btf(int(rest[0])), form
    if kind == "prog" and rest:
        with introspect.open_program(rest) as prog:
            btf_id = introspect.program_info(prog.fd)[0].btf_id
        return _by_id(btf_id, f"program {' '.join(rest)}"), form
    if kind == "map" and rest:
        target = rest[:-1] if rest[-1] in ("key", "value", "kv", "all") else rest
        map_obj: Map = introspect.open_map(target)
        with map_obj:
            btf_id = map_obj.info().btf_id
        return _by_id(btf_id, f"map {' '.join(target)}"), form
    if len(words) == 1:  # pylibbpf's older form: btf dump FILE
        return _file(words[0], base), form
    raise BpfError(f"btf dump: expected {SOURCES.splitlines()[0][10:]}", 22)


def _file(path: str, base: Btf | None) -> Btf:
    """BTF from a file; the running kernel's own (``/sys/kernel/btf/vmlinux``, the
    file bpftool's users name) as ``Btf.load_vmlinux`` reads it, with the on-disk index
    and the tables kept for its content."""
    if base is None and os.path.realpath(path) == KERNEL_BTF:
        return Btf.load_vmlinux()
    return Btf.from_file(path, base)


def _by_id(btf_id: int, what: str) -> Btf:
    from ..introspect import object_btf

    if not btf_id:
        raise BpfError(f"{what} has no BTF", 2)
    return object_btf(btf_id)


def _dump(args: argparse.Namespace) -> int:
    btf, form = _source(args)
    if form == "c":
        btf.write_c(sys.stdout.write)  # (in pieces: no whole header held, then encoded)
    elif form == "json" or wants_json(args):
        print_json(args, {"types": [type_json(btf, t) for t in btf]})
    else:
        for t in btf:
            sys.stdout.write(type_text(btf, t) + "\n")
    return 0


# ----------------------------------------------------------------- bpftool's raw format


def _name(name: str) -> str:
    return name or "(anon)"


def _enum_value(t: Any, value: int, bits: int) -> int:
    if t.kind_flag:  # signed
        return value - (1 << bits) if value >= 1 << (bits - 1) else value
    return value % (1 << bits)


def type_json(btf: Btf, t: Any) -> dict[str, Any]:
    """One type as ``bpftool btf dump -j`` writes it."""
    kind = t.kind
    out: dict[str, Any] = {
        "id": t.id,
        "kind": kind.name if kind else "UNKNOWN",
        "name": _name(t.name),
    }
    if kind == Kind.INT:
        out.update(
            size=t.size,
            bits_offset=t.bit_offset,
            nr_bits=t.bits,
            encoding=INT_ENCODINGS.get(t.encoding, "UNKN"),
        )
    elif kind in (Kind.PTR, Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG):
        out["type_id"] = t.type
    elif kind == Kind.ARRAY:
        out.update(type_id=t.type, index_type_id=t.index_type, nr_elems=t.nelems)
    elif kind in (Kind.STRUCT, Kind.UNION):
        members = []
        for m in t.members:
            member: dict[str, Any] = {
                "name": _name(m.name),
                "type_id": m.type,
                "bits_offset": m.bit_offset,
            }
            if m.bitfield_size:
                member["bitfield_size"] = m.bitfield_size
            members.append(member)
        out.update(size=t.size, vlen=len(t.members), members=members)
    elif kind in (Kind.ENUM, Kind.ENUM64):
        bits = 32 if kind == Kind.ENUM else 64
        out.update(
            encoding="SIGNED" if t.kind_flag else "UNSIGNED",
            size=t.size,
            vlen=len(t.values),
            values=[
                {"name": _name(v.name), "val": _enum_value(t, v.value, bits)} for v in t.values
            ],
        )
    elif kind == Kind.FWD:
        out["fwd_kind"] = "union" if t.kind_flag else "struct"
    elif kind == Kind.FUNC:
        out.update(type_id=t.type, linkage=_linkage(t.linkage))
    elif kind == Kind.FUNC_PROTO:
        out.update(
            ret_type_id=t.type,
            vlen=len(t.params),
            params=[{"name": _name(p.name), "type_id": p.type} for p in t.params],
        )
    elif kind == Kind.VAR:
        out.update(type_id=t.type, linkage=_linkage(t.linkage))
    elif kind == Kind.DATASEC:
        out.update(
            size=t.size,
            vlen=len(t.vars),
            vars=[{"type_id": v.type, "offset": v.offset, "size": v.size} for v in t.vars],
        )
    elif kind == Kind.FLOAT:
        out["size"] = t.size
    elif kind == Kind.DECL_TAG:
        out.update(type_id=t.type, component_idx=t.component_idx)
    elif isinstance(t, OpaqueType):  # a kind only the BTF's layout section describes
        out.update(kind="UNKNOWN", kind_number=t.kind_number, vlen=t.vlen)
    return out


def _linkage(value: int) -> str:
    return LINKAGES[value] if 0 <= value < len(LINKAGES) else "(unknown)"


def type_text(btf: Btf, t: Any) -> str:
    """One type as ``bpftool btf dump`` writes it (``[1] INT 'int' size=4 ...``)."""
    fields = type_json(btf, t)
    head = f"[{t.id}] {fields['kind']} '{fields['name']}'"
    kind = t.kind
    if kind == Kind.OPAQUE:
        return head + f" kind={fields['kind_number']} vlen={fields['vlen']}"
    if kind == Kind.INT:
        return (
            head + f" size={t.size} bits_offset={t.bit_offset} nr_bits={t.bits}"
            f" encoding={fields['encoding']}"
        )
    if kind in (Kind.PTR, Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG):
        return head + f" type_id={t.type}"
    if kind == Kind.ARRAY:
        return head + f" type_id={t.type} index_type_id={t.index_type} nr_elems={t.nelems}"
    if kind in (Kind.STRUCT, Kind.UNION):
        lines = [head + f" size={t.size} vlen={len(t.members)}"]
        for m in fields["members"]:
            line = f"\t'{m['name']}' type_id={m['type_id']} bits_offset={m['bits_offset']}"
            if "bitfield_size" in m:
                line += f" bitfield_size={m['bitfield_size']}"
            lines.append(line)
        return "\n".join(lines)
    if kind in (Kind.ENUM, Kind.ENUM64):
        lines = [head + f" encoding={fields['encoding']} size={t.size} vlen={len(t.values)}"]
        suffix = ("LL" if t.kind_flag else "ULL") if kind == Kind.ENUM64 else ""
        lines += [f"\t'{v['name']}' val={v['val']}{suffix}" for v in fields["values"]]
        return "\n".join(lines)
    if kind == Kind.FWD:
        return head + f" fwd_kind={fields['fwd_kind']}"
    if kind == Kind.FUNC:
        return head + f" type_id={t.type} linkage={fields['linkage']}"
    if kind == Kind.FUNC_PROTO:
        lines = [head + f" ret_type_id={t.type} vlen={len(t.params)}"]
        lines += [f"\t'{p['name']}' type_id={p['type_id']}" for p in fields["params"]]
        return "\n".join(lines)
    if kind == Kind.VAR:
        return head + f" type_id={t.type}, linkage={fields['linkage']}"
    if kind == Kind.DATASEC:
        lines = [head + f" size={t.size} vlen={len(t.vars)}"]
        for v in t.vars:
            line = f"\ttype_id={v.type} offset={v.offset} size={v.size}"
            if v.type < btf.type_count:
                var = btf[v.type]
                line += f" ({var.kind.name} '{_name(var.name)}')"
            lines.append(line)
        return "\n".join(lines)
    if kind == Kind.FLOAT:
        return head + f" size={t.size}"
    if kind == Kind.DECL_TAG:
        return head + f" type_id={t.type} component_idx={t.component_idx}"
    return head + (f" size={t.size}" if kind in SIZED_KINDS else "")
