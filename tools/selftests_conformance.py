"""The libbpf-fidelity yardstick: every program, loaded alone by libbpf 1.5 and by pylibbpf.

    tools/build_reference.sh                     # once: libbpf 1.5, bpftool, selftest objects
    PYTHONPATH=. .venv/bin/python tools/selftests_conformance.py [--jobs 2]
        [--corpus selftests|realprogs|upstream|all] [--only REGEX] [--reuse-libbpf]
        [--report-only]

Corpora: the linux-6.12 BPF selftests built with their own flags; tools/realprogs, tools
written here in the style of bcc's libbpf-tools and libbpf-bootstrap; and, where
$CACHE/realprogs-upstream exists, a local-only copy of some of those projects' own
programs. Each program is loaded alone (every other program autoload=false, as libbpf's
test_loader does) in a forked, CPU-limited child with a private bpffs: once by libbpf 1.5
built statically from the same tree (tools/libbpf_load.c), once by pylibbpf. The outcome
(ok, or the errno) is compared, and where both loaded what the kernel holds: the
normalised xlated instructions and their count, the kernel names of the maps the program
uses in that order, the number of maps created, the program's type, kernel name, attach
BTF id, GPL bit, BTF and func_info/line_info counts. The agreement and every difference
with its cause (tools/fidelity_causes.py) go to tools/SELFTESTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import multiprocessing
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fidelity_load as load
import fidelity_report as report

HERE = Path(__file__).resolve().parent
CACHE = Path(
    os.environ.get("PYLIBBPF_REFERENCE_CACHE", Path.home() / ".cache" / "pylibbpf-reference")
)
WORK = Path(os.environ.get("PYLIBBPF_FIDELITY_DIR", Path.home() / ".cache" / "pylibbpf-fidelity"))
LIBBPF = CACHE / "libbpf-1.5"
SELFTEST_OBJECTS = CACHE / "selftests-objs"
CLANG = os.environ.get("CLANG", "clang-19")

CORPORA = ("selftests", "realprogs", "upstream")

Row = dict[str, Any]


def build_helper() -> str:
    """tools/libbpf_load.c linked statically with libbpf 1.5."""
    helper = WORK / "libbpf_load"
    source = HERE / "libbpf_load.c"
    if not helper.exists() or helper.stat().st_mtime < source.stat().st_mtime:
        subprocess.run(
            ["gcc", "-O2", "-Wall", "-I", str(LIBBPF / "include"), "-o", str(helper),
             str(source), str(LIBBPF / "libbpf.a"), "-lelf", "-lz"],
            check=True,
        )  # fmt: skip
    return str(helper)


def sys_includes() -> list[str]:
    """clang's host include dirs as -idirafter (CLANG_BPF_SYS_INCLUDES in those Makefiles)."""
    probe = subprocess.run([CLANG, "-v", "-E", "-"], input="", capture_output=True, text=True)
    lines = probe.stderr.split("<...> search starts here:")[-1].split("End of search list.")[0]
    return [arg for d in lines.split() for arg in ("-idirafter", d)]


UPSTREAM = CACHE / "realprogs-upstream"  # local only: see its README


def build_corpus(name: str, source_dirs: list[Path], extra: list[str]) -> list[Path]:
    """Compile *.bpf.c as libbpf-tools' Makefile does (-g -O2 -Wall, sys includes)."""
    out_dir = WORK / name
    out_dir.mkdir(parents=True, exist_ok=True)
    include = SELFTEST_OBJECTS / "include"  # vmlinux.h (bpftool 1.5) and libbpf's headers
    objects = []
    for source_dir in source_dirs:
        headers = [p.stat().st_mtime for p in source_dir.glob("*.h")]
        for source in sorted(source_dir.glob("*.bpf.c")):
            out = out_dir / source.name.replace(".bpf.c", ".bpf.o")
            if not out.exists() or out.stat().st_mtime < max([source.stat().st_mtime, *headers]):
                subprocess.run(
                    [CLANG, "-g", "-O2", "-Wall", "-target", "bpf", "-D__TARGET_ARCH_x86",
                     "-I", str(include), "-I", str(include / "bpf"), "-I", str(source_dir),
                     *sys_includes(), *extra, "-c", str(source), "-o", str(out)],
                    check=True,
                )  # fmt: skip
            objects.append(out)
    return objects


def corpus_objects(corpus: str) -> list[Path]:
    if corpus == "selftests":
        if not (SELFTEST_OBJECTS / ".complete").exists():
            sys.exit(f"{SELFTEST_OBJECTS} is missing: run tools/build_reference.sh first")
        return sorted(SELFTEST_OBJECTS.glob("*.bpf.o"))
    if corpus == "upstream":
        dirs = sorted(d for d in UPSTREAM.iterdir() if d.is_dir() and d.name != "shim")
        return build_corpus("upstream", dirs, ["-idirafter", str(UPSTREAM / "shim")])
    return build_corpus("realprogs", [HERE / "realprogs"], [])


def corpus_facts(corpus: str) -> str:
    """One line on how the corpus was built, for the report."""
    if corpus == "selftests":
        sources = len(list((CACHE / "linux-6.12/tools/testing/selftests/bpf/progs").glob("*.c")))
        built = len(list(SELFTEST_OBJECTS.glob("*.bpf.o")))
        noproto = len(list(SELFTEST_OBJECTS.glob("*.noproto")))
        return (
            f"{built} of {sources} progs/*.c compiled against this host's vmlinux.h (the "
            f"others use fields a 6.18 kernel no longer has); {noproto} of them with "
            "-DBPF_NO_KFUNC_PROTOTYPES, their kfunc declarations conflicting with 6.18's."
        )
    if corpus == "upstream":
        return f"{UPSTREAM}/README says what each file is and which lines were adapted."
    return "tools/realprogs/README.md describes them."


def digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()[:16]


# --------------------------------------------------------------------- the worker side


def _worker_init(helper: str) -> None:
    global _HELPER
    _HELPER = helper
    load.warm_pylibbpf()


_HELPER = ""


def compare_object(task: tuple[str, dict[str, Row]]) -> tuple[str, list[Row], str]:
    """Load every program of one object alone, both ways (libbpf side reused if given).

    An object with no programs (or one neither side can open) is one row, program "*":
    the object loaded as it is.
    """
    path, previous = task
    listed, libbpf_error = load.list_programs(_HELPER, path)
    opened = load.open_with_pylibbpf(path)
    ours, our_error = load.pylibbpf_programs(opened)
    programs = dict(listed)
    for name, section in ours:
        programs.setdefault(name, section)
    rows = []
    sha = digest(Path(path))
    if not programs:  # no programs, or neither side opens it: the object as a whole
        programs = {"*": ""}
    for name, section in programs.items():
        old = previous.get(name)
        if old is not None and old.get("sha") == sha:
            theirs = old["libbpf"]
        else:
            theirs = load.load_with_libbpf(_HELPER, path, name)
        rows.append(
            {"program": name, "section": section, "sha": sha,
             "pylibbpf": load.load_with_pylibbpf(opened, name), "libbpf": theirs}
        )  # fmt: skip
    note = "; ".join(x for x in (libbpf_error and f"libbpf: {libbpf_error}",
                                 our_error and f"pylibbpf: {our_error}") if x)  # fmt: skip
    return path, rows, note


# --------------------------------------------------------------------- the run


def run(corpus: str, args: argparse.Namespace, helper: str) -> dict[str, Any]:
    results_path = WORK / f"results-{corpus}.json"
    saved: dict[str, Any] = json.loads(results_path.read_text()) if results_path.exists() else {}
    if args.report_only:
        return saved
    objects = corpus_objects(corpus)
    if args.only:
        objects = [p for p in objects if re.search(args.only, p.name)]
    old_objects: dict[str, list[Row]] = saved.get("objects", {})
    tasks = []
    for path in objects:
        name = path.name.removesuffix(".bpf.o")
        previous = {r["program"]: r for r in old_objects.get(name, [])} if args.reuse_libbpf else {}
        tasks.append((str(path), previous))
    # Big objects first, so the two workers finish together.
    tasks.sort(key=lambda t: -Path(t[0]).stat().st_size)
    started = time.monotonic()
    merged = dict(old_objects) if args.only else {}
    notes: dict[str, str] = dict(saved.get("notes", {})) if args.only else {}
    context = multiprocessing.get_context("fork")
    with context.Pool(args.jobs, initializer=_worker_init, initargs=(helper,)) as pool:
        for done, (finished, rows, note) in enumerate(
            pool.imap_unordered(compare_object, tasks), 1
        ):
            name = Path(finished).name.removesuffix(".bpf.o")
            merged[name] = rows
            if note:
                notes[name] = note
            else:
                notes.pop(name, None)
            bad = sum(1 for r in rows if report.differences(r["pylibbpf"], r["libbpf"]))
            print(f"[{done}/{len(tasks)} {time.monotonic() - started:5.0f}s] {name}: "
                  f"{len(rows)} programs, {bad} differ", flush=True)  # fmt: skip
    result = {
        "date": str(datetime.date.today()),
        "kernel": os.uname().release,
        "seconds": saved.get("seconds") if args.only else round(time.monotonic() - started),
        "objects": dict(sorted(merged.items())),
        "notes": notes,
        "corpus": corpus_facts(corpus),
    }
    results_path.write_text(json.dumps(result, indent=0))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--corpus", choices=(*CORPORA, "all"), default="all")
    parser.add_argument("--only", default="", help="only objects whose file name matches")
    parser.add_argument(
        "--reuse-libbpf",
        action="store_true",
        help="keep libbpf's results of the last run for unchanged objects",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite SELFTESTS.md from the last run's results",
    )
    parser.add_argument("--cpu-seconds", type=int, default=load.CPU_SECONDS)
    args = parser.parse_args()  # fmt: skip
    load.CPU_SECONDS = args.cpu_seconds
    os.nice(10)
    WORK.mkdir(parents=True, exist_ok=True)
    helper = build_helper()
    corpora = [c for c in CORPORA if c != "upstream" or UPSTREAM.is_dir()]
    if args.corpus != "all":
        corpora = [args.corpus]
    results = {}
    for corpus in corpora:
        results[corpus] = run(corpus, args, helper)
    for corpus in CORPORA:
        if corpus not in results:
            path = WORK / f"results-{corpus}.json"
            results[corpus] = json.loads(path.read_text()) if path.exists() else {}
    text = report.render(results)
    (HERE / "SELFTESTS.md").write_text(text)
    print("\n".join(text.splitlines()[:20]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
