"""``pylibbpf prog``: the programs the kernel holds, as bpftool shows and dumps them."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import BpfError
from .app import Commands, OnFirstUse, emit, print_json, wants_json

introspect: Any = OnFirstUse("pylibbpf.introspect")
progdump: Any = OnFirstUse("pylibbpf.cli.progdump")

PROG = "PROG is ID | id ID | name NAME | tag TAG | pinned PATH"
DUMP_OPTIONS = ("file", "opcodes", "linum", "visual")


def register(commands: Commands) -> None:
    """``prog show``, ``prog dump xlated|jited``."""
    commands.group("prog", "programs the kernel holds, whoever loaded them")
    show = commands.add(
        "prog",
        "show",
        _show,
        "one program, the programs a name or tag names, or every program",
        aliases=["list"],
        epilog=f"{PROG}\nWith --json, bpftool's keys (bytes_xlated, loaded_at in epoch "
        "seconds...);\npylibbpf adds verified_insns.",
    )
    show.add_argument("target", nargs="*", metavar="PROG", help="which program(s); default: all")
    dump = commands.add(
        "prog",
        "dump",
        _dump,
        "the instructions the kernel runs (xlated) or the machine code (jited)",
        epilog=f"{PROG}\n"
        "options: file FILE  write the raw image to FILE\n"
        "         opcodes    show each instruction's bytes\n"
        "         linum      name the source file, line and column\n"
        "Source lines come from the program's BTF line info (clang -g).\n"
        "jited disassembles with capstone (pip install 'libbpf-pure[disasm]'), else hex.",
    )
    dump.usage = "pylibbpf prog dump {xlated|jited} PROG [file FILE | opcodes | linum]"
    dump.add_argument(
        "what", type=_dump_kind, metavar="xlated|jited", help="translated or JIT-compiled"
    )
    dump.add_argument("words", nargs="+", metavar="WORD", help="the program, then options")
    tracelog = commands.add(
        "prog",
        "tracelog",
        _tracelog,
        "a program's BPF stream: {stdout|stderr} PROG (none: the trace pipe)",
        epilog=f"{PROG}\nBPF streams (bpf_stream_printk) need Linux 6.17; without words, "
        "the lines\nbpf_printk() writes to the kernel's trace pipe, as bpftool 7.6 prints "
        "them.",
    )
    tracelog.usage = "pylibbpf prog tracelog [{stdout|stderr} PROG]"
    tracelog.add_argument("words", nargs="*", metavar="WORD", help="stdout|stderr, then PROG")


def _dump_kind(word: str) -> str:
    """``xlated``/``jited``, or a prefix of one (``x``), as bpftool accepts."""
    for kind in ("xlated", "jited"):
        if kind.startswith(word):
            return kind
    raise argparse.ArgumentTypeError(f"{word!r}: expected xlated or jited")


def _loaded_at(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(epoch))


def _text(row: dict[str, Any]) -> str:
    """bpftool's plain ``prog show`` lines."""
    head = f"{row['id']}: {row['type']}  "
    if "name" in row:
        head += f"name {row['name']}  "
    head += f"tag {row['tag']}" + ("  gpl" if row["gpl_compatible"] else "")
    if "run_time_ns" in row:
        head += f" run_time_ns {row['run_time_ns']} run_cnt {row['run_cnt']}"
    if "recursion_misses" in row:
        head += f" recursion_misses {row['recursion_misses']}"
    lines = [head]
    if "loaded_at" in row:
        lines.append(f"\tloaded_at {_loaded_at(row['loaded_at'])}  uid {row['uid']}")
    sizes = f"\txlated {row['bytes_xlated']}B"
    sizes += f"  jited {row['bytes_jited']}B" if row["jited"] else "  not jited"
    if "bytes_memlock" in row:
        sizes += f"  memlock {row['bytes_memlock']}B"
    if "map_ids" in row:
        sizes += f"  map_ids {','.join(map(str, row['map_ids']))}"
    lines.append(sizes)
    lines += [f"\tpinned {path}" for path in row.get("pinned", [])]
    if "btf_id" in row:
        lines.append(f"\tbtf_id {row['btf_id']}")
    if "pids" in row:
        lines.append("\tpids " + ", ".join(f"{p['comm']}({p['pid']})" for p in row["pids"]))
    return "\n".join(lines)


def _show(args: argparse.Namespace) -> int:
    from ..program import Program

    found = introspect.holders()
    at = introspect.pins() if args.bpffs else None
    if not args.target:
        emit(args, introspect.every_program(found, at), _text)
        return 0
    rows = []
    for prog_id in introspect.program_ids(args.target):
        with Program.from_id(prog_id) as prog:
            rows.append(introspect.program_row(prog, found, at))
    emit(args, rows, _text, single=True)
    return 0


def _split_dump_words(words: list[str]) -> tuple[list[str], dict[str, Any]]:
    """``PROG [file FILE | opcodes | linum | visual]``."""
    width = 1 if words[0].isdigit() else 2
    target, rest = words[:width], words[width:]
    options: dict[str, Any] = {"file": None, "opcodes": False, "linum": False}
    while rest:
        word = rest.pop(0)
        if word == "file" and rest:
            options["file"] = rest.pop(0)
        elif word in ("opcodes", "linum"):
            options[word] = True
        elif word == "visual":
            raise BpfError("prog dump: 'visual' (a DOT graph) is not supported", 95)
        else:
            raise BpfError(
                f"prog dump: unexpected {word!r} (options: {', '.join(DUMP_OPTIONS)})", 22
            )
    return target, options


def _dump(args: argparse.Namespace) -> int:
    from ..program import Program

    target, options = _split_dump_words(args.words)
    jited = args.what == "jited"
    for prog_id in introspect.program_ids(target):
        with Program.from_id(prog_id) as prog:
            image = progdump.fetch_image(prog, jited=jited)
        if options["file"]:
            _write(options["file"], image.code)
            if wants_json(args):
                print_json(args, None)
            continue
        if jited:
            functions = progdump.jited(image, linum=options["linum"], opcodes=options["opcodes"])
            if not progdump.has_disassembler():
                print(
                    "pylibbpf: capstone is not installed: machine code as hex "
                    "(pip install 'libbpf-pure[disasm]' to disassemble)",
                    file=sys.stderr,
                )
            if wants_json(args):
                print_json(args, functions)
            else:
                print("\n".join(progdump.jited_text(functions)).rstrip("\n"))
        else:
            entries = progdump.xlated(image, linum=options["linum"], opcodes=options["opcodes"])
            if wants_json(args):
                print_json(args, progdump.xlated_json(entries))
            else:
                print("\n".join(progdump.xlated_text(entries)))
    return 0


def _tracelog(args: argparse.Namespace) -> int:
    """bpftool 7.6's ``prog tracelog [{stdout|stderr} PROG]``: what a program wrote to its
    BPF stream (Linux 6.17), on the matching stream of ours; no words: the trace pipe."""
    if not args.words:
        from ..trace import TracePipe, trace_print

        trace_print(pipe=TracePipe(top_level=True))
        return 0
    stream, target = args.words[0], args.words[1:]
    if stream not in ("stdout", "stderr") or not target:
        raise BpfError("expected: prog tracelog [{stdout|stderr} PROG]", 22)
    with introspect.open_program(target) as prog, prog.stream(stream) as reader:
        text = reader.read_all()
    if wants_json(args):
        print_json(args, text.splitlines())
    else:
        (sys.stdout if stream == "stdout" else sys.stderr).write(text)
    return 0


def _write(path: str, data: bytes) -> None:
    target = Path(path)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_bytes(data)
    os.chmod(temporary, 0o600)
    os.replace(temporary, target)
