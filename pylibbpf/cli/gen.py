"""``pylibbpf gen``: typed Python skeletons, and linking BPF objects into one."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .app import Commands


def register(commands: Commands) -> None:
    """``gen skeleton``, ``gen subskeleton``, ``gen object``."""
    commands.group("gen", "code generation")
    skeleton = commands.add(
        "gen",
        "skeleton",
        _skeleton,
        "a typed Python skeleton for a BPF object (as bpftool gen skeleton for C)",
        epilog="example:\n  pylibbpf gen skeleton hello.bpf.o -o hello_skel.py",
    )
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
    subskeleton = commands.add(
        "gen",
        "subskeleton",
        _subskeleton,
        "a typed Python subskeleton for a library object, bound at run time to an object "
        "that linked it in (as bpftool gen subskeleton)",
    )
    subskeleton.add_argument(
        "object_files", nargs="+", help="the library object (several are linked first)"
    )
    subskeleton.add_argument("-o", "--output", help="write the module here (default: stdout)")
    subskeleton.add_argument("--name", help="class name (default: <Library>Subskel)")
    linked = commands.add(
        "gen",
        "object",
        _object,
        "link BPF objects into one (as bpftool gen object; libbpf loads it)",
    )
    linked.add_argument("output", help="the linked object to write")
    linked.add_argument("inputs", nargs="+", help="the BPF objects to link, in order")


def _skeleton(args: argparse.Namespace) -> int:
    from ..skelgen import skeleton_for_file

    source = skeleton_for_file(
        args.object_file, args.output, args.name, args.reference, tuple(args.type or ())
    )
    if args.output:
        Path(args.output).write_text(source)
    else:
        sys.stdout.write(source)
    return 0


def _subskeleton(args: argparse.Namespace) -> int:
    from ..subskelgen import subskeleton_for_files

    source = subskeleton_for_files(args.object_files, args.output, args.name)
    if args.output:
        Path(args.output).write_text(source)
    else:
        sys.stdout.write(source)
    return 0


def _object(args: argparse.Namespace) -> int:
    from ..spec.source import link_files

    data, _ = link_files(args.inputs)
    output = Path(args.output)
    temporary = output.with_name(output.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, output)
    return 0
