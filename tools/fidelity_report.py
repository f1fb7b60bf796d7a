"""tools/SELFTESTS.md from the fidelity run's results: agreement, causes, every difference."""

from __future__ import annotations

import errno
from collections import Counter
from typing import Any

from fidelity_causes import CAUSES, classify
from fidelity_diff import differences, first_difference

__all__ = ["differences", "render"]

Row = dict[str, Any]

TITLES = {
    "selftests": "BPF selftests (linux-6.12, test_progs flags, -mcpu=v3)",
    "realprogs": "Tools in the style of libbpf-tools and libbpf-bootstrap (tools/realprogs)",
    "upstream": "libbpf-tools and libbpf-bootstrap programs (local only, not in the repository)",
}


def outcome(result: Row) -> str:
    if result["ok"]:
        return "ok"
    if result.get("errno") is not None:
        return errno.errorcode.get(result["errno"], str(result["errno"]))
    return str(result.get("stage", "?"))


def _cell(text: str, limit: int = 140) -> str:
    text = " ".join(str(text).split()).replace("|", "/")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _detail(row: Row, fields: list[str]) -> str:
    ours, theirs = row["pylibbpf"], row["libbpf"]
    if fields == ["outcome"] or fields == ["errno"]:
        side = ours if not ours["ok"] else theirs
        return ("pylibbpf: " if side is ours else "libbpf: ") + (side.get("msg") or "")
    a, b = ours.get("prog") or {}, theirs.get("prog") or {}
    parts = []
    if "map_names" in fields:
        parts.append(f"maps {a.get('map_names')} vs {b.get('map_names')}")
    if "insns" in fields or "insn_count" in fields:
        at = first_difference(a.get("insns", ""), b.get("insns", ""))
        parts.append(f"{len(a.get('insns', '')) // 16} vs {len(b.get('insns', '')) // 16} insns,"
                     f" first difference at {at}")  # fmt: skip
    if "maps_created" in fields:
        parts.append(f"{ours.get('maps_created')} vs {theirs.get('maps_created')} maps created")
    if "prog_type" in fields:
        parts.append(f"type {a.get('type')} vs {b.get('type')}")
    if "prog_name" in fields:
        parts.append(f"name {a.get('name')!r} vs {b.get('name')!r}")
    for fact in ("attach_btf_id", "gpl", "btf", "nr_func_info", "nr_line_info"):
        if fact in fields:
            parts.append(f"{fact} {a.get(fact)} vs {b.get(fact)}")
    return "; ".join(parts)


def _figures(objects: dict[str, list[Row]]) -> dict[str, int]:
    rows = [r for rows in objects.values() for r in rows]
    both_ok = [r for r in rows if r["pylibbpf"]["ok"] and r["libbpf"]["ok"]]
    return {
        "objects": len(objects),
        "programs": len(rows),
        "outcome": sum(r["pylibbpf"]["ok"] == r["libbpf"]["ok"] for r in rows),
        "errno": sum(
            not {"outcome", "errno"} & set(differences(r["pylibbpf"], r["libbpf"])) for r in rows
        ),
        "full": sum(not differences(r["pylibbpf"], r["libbpf"]) for r in rows),
        "both_ok": len(both_ok),
        "same_insns": sum(
            not {"insns", "insn_count"} & set(differences(r["pylibbpf"], r["libbpf"]))
            for r in both_ok
        ),
        "libbpf_ok": sum(r["libbpf"]["ok"] for r in rows),
        "pylibbpf_ok": sum(r["pylibbpf"]["ok"] for r in rows),
    }


def _pct(part: int, whole: int) -> str:
    return f"{part} ({100 * part / max(whole, 1):.1f} %)"


# The first run against libbpf 1.5 (full agreement, programs), before any fix.
BEFORE_DATE = "2026-11-28"
BEFORE = {"selftests": (2440, 3470), "realprogs": (46, 55), "upstream": (37, 43)}


def _section(corpus: str, title: str, results: dict[str, Any]) -> list[str]:
    objects: dict[str, list[Row]] = results.get("objects", {})
    if not objects:
        return [f"## {title}", "", "(not run)", ""]
    f = _figures(objects)
    lines = [
        f"## {title}",
        "",
        f"{results.get('date')}, Linux {results.get('kernel')}, {results.get('seconds')} s"
        " (2 jobs, nice 10, on the shared 2-core machine).",
        "",
        str(results.get("corpus", "")),
        "",
        f"- objects: {f['objects']}, programs compared: {f['programs']}"
        f" (loaded by libbpf: {f['libbpf_ok']}, by pylibbpf: {f['pylibbpf_ok']})",
        f"- same outcome (loaded or not): {_pct(f['outcome'], f['programs'])}",
        f"- same outcome and errno: {_pct(f['errno'], f['programs'])}",
        f"- **full agreement** (outcome, errno; where both loaded: normalised instructions,"
        f" count, map names, maps created, type, name, attach BTF id, GPL bit, BTF,"
        f" func_info and line_info counts):"
        f" **{_pct(f['full'], f['programs'])}**",
        f"- where both loaded, same instruction stream: {_pct(f['same_insns'], f['both_ok'])}",
    ]
    counted: Counter[str] = Counter()
    alone: Counter[str] = Counter()
    remaining = 0  # rows a deliberate or an unexplained difference keeps apart
    deliberate_only = 0  # rows only deliberate differences keep apart
    table = []
    for obj, rows in sorted(objects.items()):
        for row in rows:
            fields = differences(row["pylibbpf"], row["libbpf"])
            if not fields:
                continue
            causes = classify(obj, row, fields)
            counted.update(causes)
            if len(causes) == 1:
                alone[causes[0]] += 1
            status = [CAUSES[c]["status"] for c in causes]
            if "deliberate" in status or "unclassified" in causes:
                remaining += 1
            if set(status) == {"deliberate"}:
                deliberate_only += 1
            table.append(
                f"| {obj} | {row['program']} | {_cell(row['section'], 40)} | {','.join(fields)} |"
                f" {outcome(row['pylibbpf'])} | {outcome(row['libbpf'])} | {', '.join(causes)} |"
                f" {_cell(_detail(row, fields))} |"
            )
    before = BEFORE.get(corpus)
    lines += [
        f"- the same, the deliberate differences counted as agreement:"
        f" {_pct(f['full'] + deliberate_only, f['programs'])}",
        f"- once the open causes are fixed too (the deliberate ones kept):"
        f" {_pct(f['programs'] - remaining, f['programs'])}",
    ]
    if before is not None:
        lines.append(
            f"- full agreement on {BEFORE_DATE}, before the fixes of tools/fidelity_causes.py:"
            f" {_pct(before[0], before[1])} of {before[1]}"
        )
    lines += [
        "",
        "Programs per cause, now and before the fixes (a program can have several;"
        " *alone*: this cause and no other):",
        "",
        "| cause | programs | alone | before | status |",
        "|---|---|---|---|---|",
    ]
    shown = list(dict.fromkeys([c for c, _ in counted.most_common()] + list(CAUSES)))
    for cause in shown:
        was = CAUSES.get(cause, {}).get("before", {}).get(corpus, 0)
        if counted[cause] or was:
            status = CAUSES.get(cause, {}).get("status", "open")
            lines.append(f"| {cause} | {counted[cause]} | {alone[cause]} | {was} | {status} |")
    lines += [
        "",
        "| object | program | section | differs in | pylibbpf | libbpf | cause | detail |",
        "|---|---|---|---|---|---|---|---|",
        *table,
        "",
    ]
    return lines


def render(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "# libbpf fidelity: pylibbpf against libbpf 1.5",
        "",
        "Generated by `tools/selftests_conformance.py` (see its docstring; reference tools by"
        " `tools/build_reference.sh`). Each program is loaded alone (the object's other"
        " programs autoload=false), once by libbpf 1.5 built statically from linux-6.12's"
        " tools/lib/bpf and once by pylibbpf, and what the kernel holds is compared."
        " Instructions are the xlated stream with map ids replaced by the ordinal of their"
        " first use and kernel addresses (top byte 0xff) by 0.",
        "",
        "Reproduce: `tools/build_reference.sh` (once: it builds the reference tools in"
        " `$PYLIBBPF_REFERENCE_CACHE`, by default `~/.cache/pylibbpf-reference`), then"
        " `PYTHONPATH=. .venv/bin/python tools/selftests_conformance.py` (add"
        " `--reuse-libbpf` to keep libbpf's side of unchanged objects, `--only REGEX` for"
        " some objects, `--report-only` to rewrite this file). Raw results:"
        " `~/.cache/pylibbpf-fidelity/results-*.json`.",
        "",
        "What it does not see: attaching (links, USDT/uprobe-multi attach, struct_ops"
        " registration), map contents after load, the verifier log text. Each side runs in"
        " its own child: a crash or a hang is an outcome (`crash`, `timeout`), not a stuck"
        " run.",
        "",
    ]
    for key, title in TITLES.items():
        lines += _section(key, title, results.get(key, {}))
    lines += ["## Causes", ""]
    for name, cause in CAUSES.items():
        lines += [f"### {name} ({cause['status']})", "", cause["text"].strip(), ""]
    return "\n".join(lines) + "\n"
