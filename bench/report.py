"""Rows, goals and tables of bench/RESULTS.md (see run.py for how they are measured)."""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BCC_PYTHON = "/usr/bin/python3"
Samples = dict[str, dict[str, list[float]]]  # row -> side -> samples
GROUPS = ("maps", "elemstep", "batchread", "ring", "smallring", "objects", "import", "btf")


@dataclass(frozen=True)
class Row:
    key: str  # "<group result>" of each side: side -> result key
    label: str
    time: bool  # a time (lower is better) rather than a rate
    goal: tuple[str, float] | None = (
        None  # ("ratio>=", x) | ("ratio<=", x) | ("rate>=", x) | ("ms<=", x)
    )
    c_key: str | None = None  # the C side's key when it differs
    main: bool = False  # a row of the table


ROWS = [
    Row(
        "int_update",
        "hash map update, Python int keys and values (`m[k] = v`, 1e5)",
        False,
        ("ratio>=", 0.6),
        main=True,
    ),
    Row("int_lookup", "hash map lookup, int keys (`m[k]`)", False, ("ratio>=", 0.6), main=True),
    Row(
        "int_update_lockstep",
        "`m[k] = v` again, C and pylibbpf passes by turns on one CPU (lockstep)",
        False,
        ("ratio>=", 0.6),
        main=True,
    ),
    Row(
        "int_lookup_lockstep",
        "`m[k]` again, in lockstep",
        False,
        ("ratio>=", 0.6),
        main=True,
    ),
    Row(
        "lookup_batch",
        "`lookup_batch()` of the whole map into Python values",
        False,
        ("ratio>=", 0.9),
        main=True,
    ),
    Row(
        "lookup_batch_lists",
        "same, into two lists of ints (`lookup_batch_lists()`: libbpf's layout)",
        False,
        ("ratio>=", 0.9),
        c_key="lookup_batch",
        main=True,
    ),
    Row(
        "lookup_batch_arrays",
        "same, into two `array.array` of ints (`lookup_batch_arrays()`)",
        False,
        ("ratio>=", 0.9),
        c_key="lookup_batch",
        main=True,
    ),
    Row("update_batch", "`update_batch` from lists of ints", False, ("ratio>=", 0.9), main=True),
    Row(
        "update_batch_lockstep",
        "same, both sides writing one shared map by turns (lockstep)",
        False,
        ("ratio>=", 0.9),
        main=True,
    ),
    Row(
        "ring_per_event",
        "ring drain, one callback per record, 64 MiB ring of 16-byte records",
        False,
        ("rate>=", 2.5e6),
        c_key="ring_per_event",
        main=True,
    ),
    Row(
        "smallring_per_event",
        "same, 256 KiB ring (per-record cost independent of ring size)",
        False,
        ("rate>=", 2.5e6),
        main=True,
    ),
    Row(
        "ring_batch",
        'ring drain in batch mode (`batch=`, `record="<QQ"`), 64 MiB ring',
        False,
        ("rate>=", 10e6),
        c_key="ring_per_event",
        main=True,
    ),
    Row(
        "xdp_repeated",
        "open+load of a small XDP object without CO-RE, repeated in a process",
        True,
        ("ratio<=", 2.0),
        main=True,
    ),
    Row(
        "core_first",
        "CO-RE tracepoint object, first open+load in a fresh process",
        True,
        ("ratio<=", 1.0),
        main=True,
    ),
    Row("core_repeated", "same, repeated", True, ("ratio<=", 0.5), main=True),
    Row("import", "`import pylibbpf` (`-X importtime`, cumulative)", True, ("ms<=", 25), main=True),
    Row(
        "import_cpu",
        "same, CPU time of `python -c 'import pylibbpf'` beyond `python -c pass`",
        True,
        ("ms<=", 25),
        main=True,
    ),
    Row(
        "import_object_cpu",
        "same for `import pylibbpf as bpf; bpf.BpfObject` (the common path)",
        True,
        ("ms<=", 25),
        main=True,
    ),
    Row(
        "import_cli_cpu",
        "same for `import pylibbpf.cli` (what `pylibbpf ...` imports before a command)",
        True,
        ("ms<=", 25),
        main=True,
    ),
    Row(
        "btfdump_cli",
        "`pylibbpf btf dump --format c` of vmlinux vs bpftool 1.5 (process)",
        True,
        ("ratio<=", 2.0),
        main=True,
    ),
    Row(
        "btfdump_cli_debian",
        "same vs Debian's bpftool 7.1 (libbpf 1.1)",
        True,
        ("ratio<=", 2.0),
        c_key="btfdump_debian",
        main=True,
    ),
    Row(
        "dumpc",
        "`Btf.dump_c()` of vmlinux in-process vs bpftool 1.5 (process)",
        True,
        ("ratio<=", 2.0),
        c_key="btfdump_cli",
        main=True,
    ),
    # The rest: the bytes path the earlier RESULTS.md measured, and neighbours.
    Row("bytes_update", "update, pre-packed `bytes` keys and values", False, c_key="int_update"),
    Row("bytes_lookup", "lookup, pre-packed `bytes` keys", False, c_key="int_lookup"),
    Row("bytes_update_batch", "`update_batch` of packed `bytes`", False, c_key="update_batch"),
    Row("bytes_lookup_batch", "`lookup_batch_raw()` (packed `bytes`)", False, c_key="lookup_batch"),
    Row(
        "lookup_batch_dict",
        "`dict(zip(*m.lookup_batch_lists()))` of the whole map",
        False,
        c_key="lookup_batch",
    ),
    Row(
        "lookup_batch_ownmap",
        "`lookup_batch()`, each side reading a map of its own (own hash seed and layout)",
        False,
        c_key="lookup_batch_ownmap",
    ),
    Row(
        "lookup_batch_lists_ownmap",
        "same, `lookup_batch_lists()`",
        False,
        c_key="lookup_batch_ownmap",
    ),
    Row(
        "bytes_lookup_batch_ownmap",
        "same, `lookup_batch_raw()`",
        False,
        c_key="lookup_batch_ownmap",
    ),
    Row("rec_update", "update, int key, 40-byte ctypes record value", False, ("ratio>=", 0.6)),
    Row("rec_lookup", "lookup, int key, ctypes record value", False, ("ratio>=", 0.6)),
    Row(
        "rec_update_lockstep",
        "same update, in lockstep",
        False,
        ("ratio>=", 0.6),
    ),
    Row("rec_lookup_lockstep", "same lookup, in lockstep", False, ("ratio>=", 0.6)),
    Row("percpu_update", "per-CPU hash update, one int for every CPU", False),
    Row("percpu_lookup", "per-CPU hash lookup into a list of ints", False),
    Row("items", "`dict(m.items())` of 1e5 (C: get_next_key + lookup)", False),
    Row("dict_of_map", "`dict(m)`: keys in batches, then `m[k]` each", False, c_key="items"),
    Row("threads_lookup", "int lookups from 4 threads at once, one CPU", False),
    Row("xdp_first", "XDP object, first open+load in a fresh process", True),
    Row(
        "btfload_cold",
        "vmlinux BTF ready for lookups, fresh process, no on-disk index",
        True,
        c_key="btfload",
    ),
    Row("btfload_warm", "same, on-disk index present", True, c_key="btfload"),
]


def medians(samples: Samples) -> dict[str, dict[str, float]]:
    return {
        row: {side: statistics.median(v) for side, v in sides.items() if v}
        for row, sides in samples.items()
    }


def fmt(value: float | None, time: bool) -> str:
    if value is None:
        return "n/a"
    if time:
        return f"{value / 1e3:.2f} s" if value >= 1e3 else f"{value:.3g} ms"
    return f"{value / 1e6:.3g} M/s" if value >= 1e6 else f"{value / 1e3:.3g} k/s"


def ratio(ours: float | None, theirs: float | None) -> float | None:
    return ours / theirs if ours is not None and theirs else None


def goal_text(goal: tuple[str, float] | None) -> str:
    if goal is None:
        return ""
    kind, bound = goal
    return {
        "ratio>=": f">= {bound:g}x",
        "ratio<=": f"<= {bound:g}x",
        "rate>=": f">= {fmt(bound, False)}",
        "ms<=": f"<= {bound:g} ms",
    }[kind]


def goal_met(goal: tuple[str, float] | None, ours: float | None, r: float | None) -> str:
    if goal is None or ours is None:
        return ""
    kind, bound = goal
    value = ours if kind in ("rate>=", "ms<=") else r
    if value is None:
        return ""
    ok = value >= bound if kind.endswith(">=") else value <= bound
    return "yes" if ok else "**no**"


def paired_ratio(ours: list[float] | None, c: list[float] | None) -> float | None:
    """The median of the per-round ratios, where both sides have one sample per round:
    each pair saw the same machine (this one changes speed from minute to minute, so a
    ratio of medians taken over several runs mixes its states)."""
    if not ours or not c or len(ours) != len(c):
        return None
    return statistics.median(a / b for a, b in zip(ours, c, strict=True) if b)


def table(
    rows: list[Row],
    now: dict[str, dict[str, float]],
    before: dict[str, dict[str, float]],
    samples: Samples | None = None,
) -> str:
    lines = [
        "| work | pylibbpf before | ratio before | pylibbpf | libbpf (C) | ratio | bcc "
        "| ratio vs bcc | goal | met |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        got = now.get(row.key, {})
        ours = got.get("pylibbpf")
        c = now.get(row.c_key or row.key, {}).get("c")
        bcc = got.get("bcc")
        old = before.get(row.key, {}).get("pylibbpf")
        old_ratio = ratio(old, before.get(row.c_key or row.key, {}).get("c"))
        r = ratio(ours, c)
        if samples is not None:
            paired = paired_ratio(
                samples.get(row.key, {}).get("pylibbpf"),
                samples.get(row.c_key or row.key, {}).get("c"),
            )
            r = r if paired is None else paired
        cells = [
            row.label,
            fmt(old, row.time),
            "n/a" if old_ratio is None else f"{old_ratio:.2f}x",
            fmt(ours, row.time),
            fmt(c, row.time),
            "n/a" if r is None else f"{r:.2f}x",
            fmt(bcc, row.time),
            "n/a" if ratio(ours, bcc) is None else f"{ratio(ours, bcc):.2f}x",
            goal_text(row.goal),
            goal_met(row.goal, ours, r),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def live_table(live: dict[str, Any]) -> str:
    lines = [
        "A C loop calling getppid() for 2 s, each call a 16-byte record in a 4 MiB ring, the",
        "consumer polling (not pinned: one CPU each). One run.",
        "",
        "| consumer | records/s produced | consumed | dropped (ring full) |",
        "|---|---:|---:|---:|",
    ]
    for key, label in (
        ("per_event", "pylibbpf, callback per record"),
        ("batch", "pylibbpf, batches"),
        ("bcc", "bcc, callback per record"),
    ):
        entry = live.get(key)
        if isinstance(entry, dict):
            lines.append(
                f"| {label} | {entry['rate']:,.0f} | {entry['consumed']:,} | {entry['dropped']:,} |"
            )
    return "\n".join(lines)


def machine(reps: int, c_side: str, tool: str) -> str:
    """The line saying where and how this run was measured."""
    with open("/proc/cpuinfo") as f:
        cpu = next((x.split(":", 1)[1].strip() for x in f if x.startswith("model name")), "")
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    bcc = subprocess.run(
        [BCC_PYTHON, "-c", "import bcc; print(bcc.__version__)"], capture_output=True, text=True
    ).stdout.strip()
    version = subprocess.run([tool, "version"], capture_output=True, text=True).stdout
    return (
        f"{datetime.datetime.now():%Y-%m-%d %H:%M}, Linux {platform.release()}, "
        f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}; C side: "
        f"{c_side}; bcc {bcc or 'n/a'}; {version.splitlines()[0] if version else tool}. "
        f"Median of {reps} rounds. Load average at the end: {load} "
        "(the machine is shared with other work: absolute figures are noisy, ratios less so)."
    )


def report(
    samples: Samples,
    live: dict[str, Any],
    errors: dict[str, str],
    where: str,
    write: bool,
    as_baseline: bool,
) -> str:
    """RESULTS.md's text; with ``write``, also stored with the raw samples (and, with
    ``as_baseline``, kept as the "before" of later runs)."""
    now = medians(samples)
    baseline_path = HERE / "baseline.json"
    before = (
        json.loads(baseline_path.read_text())["medians"]
        if baseline_path.exists() and not as_baseline
        else now
    )
    text = "\n".join(
        [
            "# Benchmark results",
            "",
            "Produced by `scripts/bench --write` (bench/run.py; raw samples in results.json).",
            "",
            where,
            "",
            "Rates: elements per CPU-second; times: CPU time (the process's, for whole-process "
            "rows). Ratio = pylibbpf / libbpf from C, the median of the per-round ratios "
            "(each pair measured in the same round; the lockstep rows' pairs milliseconds "
            "apart): for rates above 1 is faster, for times "
            'below 1 is faster, as the goals of issue #18 read. "before" is the baseline run '
            "(baseline.json), with its own C figures for its ratio. Two runs of the same code "
            "on this shared machine differ by up to ~1.5x, in ratios too: compare ratios "
            "rather than absolutes, and several runs rather than one.",
            "",
            "## The goals of issue #18",
            "",
            table([r for r in ROWS if r.main], now, before, samples),
            "",
            "## Other rows: the bytes path, records, per-CPU, iteration, threads, BTF loading",
            "",
            table([r for r in ROWS if not r.main], now, before, samples),
            "",
            *(["## Live ring buffer", "", live_table(live), ""] if live else []),
            *(
                [analysis.read_text().rstrip(), ""]
                if (analysis := HERE / "analysis.md").exists()
                else []
            ),
            *(["## Errors", "", *[f"- {k}: {v}" for k, v in errors.items()], ""] if errors else []),
        ]
    )
    if write:
        (HERE / "RESULTS.md").write_text(text)
        result = {
            "machine": where,
            "medians": now,
            "samples": samples,
            "live": live,
            "errors": errors,
        }
        (HERE / "results.json").write_text(json.dumps(result, indent=1) + "\n")
        if as_baseline:
            baseline_path.write_text(json.dumps(result, indent=1) + "\n")
    return text
