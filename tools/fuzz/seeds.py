"""The seed corpus: real objects and real BTF to mutate.

Objects: the test suite's ``tests/bpf/*.bpf.c``, compiled as the tests compile them
(cached by content), and with ``--selftests`` the kernel selftest objects the test
cache holds. Debug sections are stripped (``llvm-strip --strip-debug``): they are most of
a ``-g`` object's bytes and pylibbpf never reads them, so mutations land where they
matter. Raw BTF: every seed object's ``.BTF``, a synthetic BTF with every kind, and
excerpts of the host's vmlinux BTF (bitfields, anonymous unions, function pointers).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .elfview import BtfView, ElfView, read_btf, read_elf

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
CACHE = Path(os.environ.get("PYLIBBPF_TEST_CACHE", Path.home() / ".cache" / "pylibbpf-tests"))
# vmlinux types whose closure is small and shaped like what breaks parsers.
VMLINUX_ROOTS = ["bpf_insn", "iphdr", "tcphdr", "perf_event_attr", "bpf_attr", "xdp_md", "ethhdr"]


@dataclass
class Seed:
    name: str
    kind: str  # "object" or "btf"
    data: bytes
    elf: ElfView | None
    btf: BtfView | None


def _strip(path: Path) -> bytes:
    """The object without debug sections (cached); the object itself without llvm-strip."""
    data = path.read_bytes()
    strip = shutil.which("llvm-strip") or shutil.which("llvm-strip-19")
    if strip is None:
        return data
    digest = hashlib.sha256(data).hexdigest()[:16]
    out = CACHE / "fuzz-seeds" / f"{digest}-{path.name}"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".{os.getpid()}")
        subprocess.run([strip, "--strip-debug", str(path), "-o", str(tmp)], check=True)
        tmp.replace(out)
    return out.read_bytes()


def test_objects() -> list[Path]:
    """``tests/bpf/*.bpf.c`` compiled by the test suite's own (cached) compile step."""
    sys.path.insert(0, str(TESTS))
    try:
        import conftest  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(TESTS))
    return [
        conftest.compile_test_object(p.name[: -len(".bpf.c")])
        for p in sorted((TESTS / "bpf").glob("*.bpf.c"))
    ]


def selftest_objects() -> list[Path]:
    """Selftest objects already compiled into the test cache (none if never built)."""
    found = {p.name: p for p in sorted((CACHE / "selftests").glob("*/*.bpf.o"))}
    return [found[name] for name in sorted(found)]


def _opens(data: bytes) -> bool:
    """Whether an object opens as it is: one that does not only tests the first checks."""
    from pylibbpf.errors import BpfError
    from pylibbpf.loader import BpfObject

    try:
        BpfObject.open(data)
    except BpfError:
        return False
    return True


def object_seed(name: str, data: bytes) -> Seed:
    return Seed(name, "object", data, read_elf(data), _btf_of(data))


def _btf_of(data: bytes) -> BtfView | None:
    elf = read_elf(data)
    return elf.btf if elf is not None else None


def btf_seed(name: str, data: bytes) -> Seed:
    return Seed(name, "btf", data, None, read_btf(data, 0, len(data)))


def synthetic_btf() -> bytes:
    """Every BTF kind at least once, bitfields and an anonymous union included."""
    from pylibbpf.btf import EnumValue, Kind, Member, Param, Type, VarSecinfo
    from pylibbpf.btf.encode import encode

    return encode(
        [
            Type(1, Kind.INT, "int", size=4, encoding=1, bits=32),
            Type(2, Kind.PTR, "", type=3),
            Type(
                3,
                Kind.STRUCT,
                "node",
                size=24,
                members=(
                    Member("next", 2, 0),
                    Member("value", 1, 64),
                    Member("", 4, 96),
                    Member("flags", 1, 160, 3),
                    Member("mode", 1, 163, 5),
                ),
                kind_flag=True,
            ),
            Type(4, Kind.UNION, "", size=8, members=(Member("a", 1, 0), Member("b", 5, 0))),
            Type(5, Kind.ARRAY, "", type=1, index_type=1, nelems=2),
            Type(
                6,
                Kind.ENUM,
                "color",
                size=4,
                values=(EnumValue("RED", 0), EnumValue("BLUE", -1)),
                kind_flag=True,
            ),
            Type(7, Kind.FWD, "later", kind_flag=False),
            Type(8, Kind.TYPEDEF, "node_t", type=3),
            Type(9, Kind.VOLATILE, "", type=1),
            Type(10, Kind.CONST, "", type=9),
            Type(11, Kind.RESTRICT, "", type=2),
            Type(12, Kind.FUNC_PROTO, "", type=1, params=(Param("n", 2), Param("", 1))),
            Type(13, Kind.FUNC, "handler", type=12, linkage=1),
            Type(14, Kind.VAR, "counter", type=1, linkage=1),
            Type(15, Kind.DATASEC, ".data", size=4, vars=(VarSecinfo(14, 0, 4),)),
            Type(16, Kind.FLOAT, "double", size=8),
            Type(17, Kind.DECL_TAG, "tag", type=3, component_idx=1),
            Type(18, Kind.TYPE_TAG, "user", type=1),
            Type(19, Kind.ENUM64, "big", size=8, values=(EnumValue("HUGE", 1 << 40),)),
            Type(20, Kind.PTR, "", type=12),
        ]
    )


def synthetic_wide_btf() -> bytes:
    """The 7.1+ form (a layout section) with a kind this library does not know, used by
    value, through a typedef, a pointer, an array, a variable and a function."""
    from pylibbpf.btf import Kind, Member, Param, Type, VarSecinfo
    from pylibbpf.btf.encode import encode, extend_layout
    from pylibbpf.btf.layout import KNOWN_LAYOUT, KindLayout
    from pylibbpf.btf.types import OpaqueType

    odd_info = (1 << 31) | (40 << 24) | 2  # kind 40: 8 bytes, then 12 per element
    return encode(
        [
            Type(1, Kind.INT, "int", size=4, encoding=1, bits=32),
            OpaqueType(
                2,
                Kind.OPAQUE,
                "odd",
                size=16,
                type=16,
                kind_flag=True,
                info=odd_info,
                raw=tuple(range(8)),
            ),
            Type(3, Kind.TYPEDEF, "odd_t", type=2),
            Type(4, Kind.PTR, "", type=2),
            Type(5, Kind.ARRAY, "", type=2, index_type=1, nelems=3),
            Type(
                6,
                Kind.STRUCT,
                "holder",
                size=40,
                members=(Member("odd", 2, 0), Member("p", 4, 128), Member("t", 3, 192)),
            ),
            Type(7, Kind.FUNC_PROTO, "", type=3, params=(Param("o", 2), Param("a", 5))),
            Type(8, Kind.FUNC, "use_odd", type=7, linkage=1),
            Type(9, Kind.VAR, "odd_var", type=5, linkage=1),
            Type(10, Kind.DATASEC, ".data", size=48, vars=(VarSecinfo(9, 0, 48),)),
            Type(11, Kind.CONST, "", type=2),
            Type(12, Kind.DECL_TAG, "tag", type=6, component_idx=0),
        ],
        layout=extend_layout(KNOWN_LAYOUT, 40, KindLayout(8, 12)),
    )


def vmlinux_excerpts() -> list[tuple[str, bytes]]:
    """Small self-contained pieces of the host's kernel BTF, ids renumbered from 1."""
    import dataclasses

    from pylibbpf.btf import Btf
    from pylibbpf.btf.encode import encode

    try:
        vmlinux = Btf.load_vmlinux()
    except Exception:
        return []
    out = []
    for root in VMLINUX_ROOTS:
        try:
            root_id = vmlinux.find(root).id
        except KeyError:
            continue
        closure = sorted(t.id for t in vmlinux.walk(root_id))
        if len(closure) > 600:
            continue
        renumber = {old: new for new, old in enumerate(closure, 1)}
        renumber[0] = 0

        def remap(type_id: int, table: dict[int, int] = renumber) -> int:
            return table[type_id]

        types = []
        for old in closure:
            t = vmlinux[old]
            t = dataclasses.replace(
                t,
                id=renumber[old],
                type=remap(t.type),  # 0 for sized kinds
                index_type=remap(t.index_type),
                members=tuple(dataclasses.replace(m, type=remap(m.type)) for m in t.members),
                params=tuple(dataclasses.replace(p, type=remap(p.type)) for p in t.params),
                vars=tuple(dataclasses.replace(v, type=remap(v.type)) for v in t.vars),
            )
            types.append(t)
        out.append((f"vmlinux:{root}", encode(types)))
    return out


def corpus(selftests: bool = False) -> list[Seed]:
    """Object seeds, then raw BTF seeds, in a fixed order (a fixed seed replays)."""
    seeds: list[Seed] = []
    extra: list[tuple[str, bytes]] = []
    paths = test_objects() + (selftest_objects() if selftests else [])
    for path in paths:
        data = _strip(path)
        if len(data) > 200_000:
            continue
        seed = object_seed(path.name, data)
        if _opens(data):
            seeds.append(seed)
        elif seed.btf is not None:  # a CO-RE target file (no programs): its BTF only
            view = seed.btf
            extra.append(
                (f"{path.name}:.BTF", data[view.start : view.strings_start + view.strings_len])
            )
    blobs: dict[bytes, str] = {}
    for seed in list(seeds):
        if seed.btf is not None:
            view = seed.btf
            blob = seed.data[view.start : view.strings_start + view.strings_len]
            blobs.setdefault(blob, f"{seed.name}:.BTF")
    for name, blob in extra:
        blobs.setdefault(blob, name)
    blobs.setdefault(synthetic_btf(), "synthetic")
    blobs.setdefault(synthetic_wide_btf(), "synthetic 7.1+ (layout section, kind 40)")
    for name, blob in vmlinux_excerpts():
        blobs.setdefault(blob, name)
    seeds += [btf_seed(name, blob) for blob, name in blobs.items()]
    return seeds
