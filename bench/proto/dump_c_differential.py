"""Differential check of the fast C dumper against the reference one it replaced.

    PYTHONPATH=. python bench/proto/dump_c_differential.py [--cases 3000] [--vmlinux]

Random type graphs (structs with bitfields, packing and gaps, unions, typedef chains,
pointer and typedef cycles, arrays, qualifiers, function prototypes, enums, forward
declarations, duplicate names) go through both dumpers, little- and big-endian and as
split BTF on a base; where the reference dumper produces a header, the fast one must
produce the same bytes, or raise ObjectError where that header does not compile (a type
cycle the reference wrote as invalid C). ``--vmlinux`` also compares the running
kernel's BTF and every module's.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dump_c_reference import CDumper as ReferenceDumper

from pylibbpf.btf.dump_c import CDumper
from pylibbpf.btf.encode import encode
from pylibbpf.btf.parse import Btf
from pylibbpf.btf.types import EnumValue, Kind, Member, Param, Type

NAMES = ["a", "b", "c", "foo", "bar", "list_head", "u32", "x", ""]


def random_types(rng: random.Random, count: int, first_id: int = 1) -> list[Type]:
    """``count`` types with ids from ``first_id``, referring to any id below first_id +
    count (so cycles happen through pointers, typedefs and whatever else)."""
    last = first_id + count - 1
    types: list[Type] = []

    def ref() -> int:
        return rng.randint(0, last)

    def name(anonymous_ok: bool = True) -> str:
        choice = rng.choice(NAMES)
        return choice if choice or anonymous_ok else "n"

    for type_id in range(first_id, last + 1):
        kind = rng.choice(
            [Kind.INT] * 3
            + [Kind.PTR] * 3
            + [Kind.STRUCT] * 4
            + [Kind.UNION, Kind.ARRAY, Kind.TYPEDEF, Kind.TYPEDEF, Kind.CONST, Kind.VOLATILE]
            + [Kind.ENUM, Kind.ENUM64, Kind.FWD, Kind.FUNC_PROTO, Kind.TYPE_TAG, Kind.FLOAT]
        )
        if kind == Kind.INT:
            size = rng.choice([1, 2, 4, 8])
            types.append(
                Type(
                    type_id,
                    kind,
                    rng.choice(["int", "char", "long", "", "_Bool"]),
                    size=size,
                    bits=8 * size,
                    encoding=rng.choice([0, 1, 2, 4]),
                )
            )
        elif kind == Kind.FLOAT:
            types.append(Type(type_id, kind, "double", size=8))
        elif kind in (Kind.PTR, Kind.CONST, Kind.VOLATILE, Kind.TYPE_TAG):
            types.append(Type(type_id, kind, "tag" if kind == Kind.TYPE_TAG else "", type=ref()))
        elif kind == Kind.TYPEDEF:
            types.append(Type(type_id, kind, name(False), type=ref()))
        elif kind == Kind.ARRAY:
            types.append(
                Type(type_id, kind, type=ref(), index_type=ref(), nelems=rng.randint(0, 5))
            )
        elif kind == Kind.FWD:
            types.append(Type(type_id, kind, name(False), kind_flag=rng.random() < 0.3))
        elif kind in (Kind.ENUM, Kind.ENUM64):
            values = tuple(
                EnumValue(rng.choice(["A", "B", "C", "BPF_ANY"]), rng.randint(-(1 << 40), 1 << 40))
                for _ in range(rng.randint(0, 3))
            )
            if kind == Kind.ENUM:
                values = tuple(EnumValue(v.name, v.value % (1 << 32)) for v in values)
            types.append(
                Type(
                    type_id,
                    kind,
                    name(),
                    size=rng.choice([1, 2, 4, 8]),
                    kind_flag=rng.random() < 0.5,
                    values=values,
                )
            )
        elif kind == Kind.FUNC_PROTO:
            params = tuple(Param(name(), ref()) for _ in range(rng.randint(0, 3)))
            types.append(Type(type_id, kind, type=ref(), params=params))
        else:
            bitfields = rng.random() < 0.3
            members = []
            offset = 0
            for _ in range(rng.randint(0, 5)):
                offset += rng.choice([0, 0, 8, 32, 64, 3, 4000 * 8 + 64])
                width = rng.choice([0, 0, 3, 7, 17]) if bitfields else 0
                members.append(Member(name(), ref(), offset if kind == Kind.STRUCT else 0, width))
                offset += rng.choice([8, 32, 64])
            types.append(
                Type(
                    type_id,
                    kind,
                    name(),
                    size=max(offset // 8, 1) + rng.choice([0, 0, 1, 4, 4000]),
                    kind_flag=bitfields,
                    members=tuple(members),
                )
            )
    return types


def repr_type(t: Type) -> str:
    fields = (
        "kind",
        "name",
        "size",
        "type",
        "kind_flag",
        "encoding",
        "nelems",
        "members",
        "params",
    )
    return f"{t.id}: " + ", ".join(f"{f}={getattr(t, f)!r}" for f in fields if getattr(t, f))


def both(btf: Btf) -> tuple[str | None, str]:
    """(reference output or None if it fails, fast output or the error it raises)."""
    try:
        expected: str | None = ReferenceDumper(btf).dump()
    except Exception:
        expected = None
    try:
        actual = CDumper(btf).dump()
    except Exception as error:  # the fast dumper must fail only with ObjectError
        actual = f"{type(error).__name__}: {error}"
    return expected, actual


def compiles(header: str) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "check.c"
        source.write_text(header)
        command = ["clang-19", "-target", "bpf", "-fsyntax-only", str(source)]
        return subprocess.run(command, capture_output=True).returncode == 0


def check(btf: Btf, label: str) -> bool:
    expected, actual = both(btf)
    if expected is None:
        if not actual.startswith("ObjectError") and "#ifndef" not in actual:
            print(f"{label}: reference failed, fast raised {actual}")
            return False
        return True
    if expected != actual and actual.startswith("ObjectError") and not compiles(expected):
        return True  # the reference wrote C that does not compile; refusing is right
    if expected != actual:
        print(f"{label}: outputs differ")
        Path("/tmp/dump_c_expected.h").write_text(expected)
        Path("/tmp/dump_c_actual.h").write_text(actual)
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--vmlinux", action="store_true")
    args = parser.parse_args()
    sys.setrecursionlimit(2000)
    rng = random.Random(args.seed)
    failures = 0
    for case in range(args.cases):
        types = random_types(rng, rng.randint(1, 14))
        for order in ("little", "big"):
            if not check(Btf(encode(types, byteorder=order)), f"case {case} {order}"):
                failures += 1
                Path("/tmp/dump_c_types.txt").write_text("\n".join(map(repr_type, types)))
        base = Btf(encode(types))
        split_types = random_types(rng, rng.randint(1, 8), first_id=base.type_count)
        strings = base.strings
        raw = encode(split_types, strings_base=strings)
        # A split BTF's strings continue the base's: drop the copy of the base's section.
        from pylibbpf.btf.parse import HEADER_SIZE

        header = bytearray(raw[:HEADER_SIZE])
        type_len = int.from_bytes(header[12:16], "little")
        str_len = int.from_bytes(header[20:24], "little") - len(strings)
        header[20:24] = str_len.to_bytes(4, "little")
        split = bytes(header) + raw[HEADER_SIZE : HEADER_SIZE + type_len]
        split += raw[HEADER_SIZE + type_len + len(strings) :]
        failures += not check(Btf(split, base=base, name="split"), f"case {case} split")
        if failures > 5:
            break
    if args.vmlinux:
        vmlinux = Btf.load_vmlinux()
        failures += not check(vmlinux, "vmlinux")
        for module in Btf.module_names()[:40]:
            failures += not check(Btf.load_module(module), f"module {module}")
    print(f"{args.cases} random cases: {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
