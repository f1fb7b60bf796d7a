"""Conformance run: the kernel's BPF selftest programs, loaded by pylibbpf and by libbpf.

    .venv/bin/python tools/selftests_conformance.py [--jobs 2] [--limit N] [--all]

Compiles ``tools/testing/selftests/bpf/progs/*.c`` from Debian's linux-source-6.12 against
the running kernel's vmlinux.h (written by pylibbpf), keeps the objects that need no
CO-RE, struct_ops or fentry/fexit/fmod_ret/lsm (``--all`` keeps every object), then opens
and loads each one with pylibbpf (in a child process, so a crash or hang is contained)
and with libbpf from C (Debian's libbpf 1.1, via tools/libbpf_load.c), and reports how
often the outcomes (loaded / not loaded) agree. Writes tools/SELFTESTS.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = Path(
    os.environ.get("PYLIBBPF_CONFORMANCE_DIR", Path.home() / ".cache" / "pylibbpf-conformance")
)
SOURCE = Path("/usr/src/linux-source-6.12.tar.xz")
SKIPPED_SECTIONS = ("fentry", "fexit", "fmod_ret", "lsm", "struct_ops", "freplace")

PYLIBBPF_LOAD = """
import sys
from pylibbpf.loader import BpfObject
from pylibbpf.errors import BpfError
try:
    obj = BpfObject.open(sys.argv[1])
except BpfError as error:
    print("OPEN", str(error).splitlines()[0][:300]); sys.exit(2)
try:
    obj.load()
except BpfError as error:
    print("LOAD", str(error).splitlines()[0][:300]); sys.exit(1)
finally:
    obj.close()
print("OK")
"""


def extract() -> Path:
    tools = WORK / "linux-source-6.12" / "tools"
    if not (tools / ".extracted").exists():
        (WORK / "linux-source-6.12").mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "tar",
                "-xaf",
                str(SOURCE),
                "-C",
                str(WORK / "linux-source-6.12"),
                "--strip-components=1",
                "linux-source-6.12/tools/testing/selftests/bpf",
                "linux-source-6.12/tools/lib/bpf",
                "linux-source-6.12/tools/include",
            ],
            check=True,
        )
        (tools / ".extracted").touch()
    return tools


def vmlinux_h() -> Path:
    include = WORK / "include"
    include.mkdir(parents=True, exist_ok=True)
    header = include / "vmlinux.h"
    if not header.exists():
        from pylibbpf.btf import Btf

        header.write_text(Btf.load_vmlinux().dump_c())
    return include


def compile_one(source: Path, tools: Path, include: Path) -> tuple[str, Path | None]:
    out = WORK / "objects" / f"{source.stem}.bpf.o"
    if out.exists():
        return source.stem, out
    progs = source.parent
    result = subprocess.run(
        [
            "clang-19",
            "-O2",
            "-g",
            "-target",
            "bpf",
            "-D__TARGET_ARCH_x86",
            "-mcpu=v3",
            "-I",
            str(include),
            "-I",
            str(tools / "lib"),
            "-I",
            "/usr/include/bpf",
            "-I",
            str(progs),
            "-I",
            str(progs.parent),
            "-I",
            str(tools / "include/uapi"),
            "-Wno-compare-distinct-pointer-types",
            "-c",
            str(source),
            "-o",
            str(out),
        ],
        capture_output=True,
        timeout=300,
    )
    return source.stem, out if result.returncode == 0 else None


def needs_skipping(path: Path) -> str:
    """Why an object is outside the comparison ('' if it is in)."""
    from pylibbpf.loader import BpfObject

    try:
        spec = BpfObject.open(path).spec
    except Exception as error:  # the runner reports; it does not judge here
        return f"open: {error}"
    if spec.struct_ops:
        return "struct_ops"
    for program in spec.programs.values():
        if program.section.lstrip("?").split("/")[0].split(".")[0] in SKIPPED_SECTIONS:
            return "fentry-like section"
    if spec.btf_ext is not None and any(spec.btf_ext.core_relos.values()):
        return "CO-RE"
    return ""


BPFFS = Path("/sys/fs/bpf")


def load_with(command: list[str]) -> tuple[int, str]:
    """Run one loader; remove whatever it pinned (objects with LIBBPF_PIN_BY_NAME maps)."""
    before = set(BPFFS.iterdir()) if BPFFS.is_dir() else set()
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return 3, "timeout"
    finally:
        for path in (set(BPFFS.iterdir()) if BPFFS.is_dir() else set()) - before:
            if path.is_file():
                path.unlink()
    return result.returncode, (result.stdout + result.stderr).strip().splitlines()[-1:][0] if (
        result.stdout + result.stderr
    ).strip() else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--limit", type=int, default=0, help="only the first N sources")
    parser.add_argument("--all", action="store_true", help="compare CO-RE/struct_ops too")
    args = parser.parse_args()
    (WORK / "objects").mkdir(parents=True, exist_ok=True)
    tools = extract()
    include = vmlinux_h()
    loader = WORK / "libbpf_load"
    subprocess.run(
        ["gcc", "-O2", "-o", str(loader), str(HERE / "libbpf_load.c"), "-lbpf"], check=True
    )
    sources = sorted((tools / "testing/selftests/bpf/progs").glob("*.c"))
    if args.limit:
        sources = sources[: args.limit]
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        compiled = list(pool.map(lambda s: compile_one(s, tools, include), sources))
    objects = {name: path for name, path in compiled if path is not None}
    rows: dict[str, dict[str, object]] = {}
    skipped: dict[str, str] = {}
    for name, path in sorted(objects.items()):
        reason = "" if args.all else needs_skipping(path)
        if reason:
            skipped[name] = reason
            continue
        ours, our_detail = load_with([sys.executable, "-c", PYLIBBPF_LOAD, str(path)])
        theirs, _ = load_with([str(loader), str(path)])
        rows[name] = {"pylibbpf": ours, "libbpf": theirs, "detail": our_detail}
        print(f"{name:<48} pylibbpf={ours} libbpf={theirs} {our_detail[:80]}", flush=True)
    agree = sum(1 for r in rows.values() if (r["pylibbpf"] == 0) == (r["libbpf"] == 0))
    both_ok = sum(1 for r in rows.values() if r["pylibbpf"] == 0 and r["libbpf"] == 0)
    report = [
        "# BPF selftests conformance",
        "",
        f"{datetime.date.today()}, Linux {os.uname().release}; sources: linux-source-6.12 "
        "tools/testing/selftests/bpf/progs; libbpf side: Debian's libbpf 1.1.",
        "",
        f"- sources: {len(sources)}, compiled: {len(objects)}, "
        f"outside the comparison (CO-RE/struct_ops/fentry-like or unopenable): {len(skipped)}",
        f"- compared: {len(rows)}; same outcome: {agree} ({100 * agree / max(len(rows), 1):.1f}%);"
        f" loaded by both: {both_ok}",
        "",
        "| object | pylibbpf | libbpf | pylibbpf's first error line |",
        "|---|---|---|---|",
    ]
    outcome = {0: "loaded", 1: "refused", 2: "open error", 3: "timeout"}
    for name, row in sorted(rows.items()):
        if (row["pylibbpf"] == 0) != (row["libbpf"] == 0):
            detail = str(row["detail"]).replace("|", "/")[:160]
            report.append(
                f"| {name} | {outcome.get(int(row['pylibbpf']), row['pylibbpf'])} | "  # type: ignore[call-overload]
                f"{outcome.get(int(row['libbpf']), row['libbpf'])} | {detail} |"
            )  # type: ignore[call-overload]
    (HERE / "SELFTESTS.md").write_text("\n".join(report) + "\n")
    (WORK / "results.json").write_text(json.dumps({"rows": rows, "skipped": skipped}, indent=1))
    print("\n".join(report[:8]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
