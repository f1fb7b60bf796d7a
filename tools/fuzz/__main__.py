"""``python -m tools.fuzz``: run a campaign, replay an input, or minimise a reproducer.

python -m tools.fuzz --seconds 60 --seed 1              # bounded run (CI)
python -m tools.fuzz --inputs 1000000 --selftests ...   # the long run (run_long.sh)
python -m tools.fuzz --replay case.o [--kind btf]       # one input, in this process
python -m tools.fuzz --minimize case.o --against seed.o # smallest diff from a seed
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .pool import Limits, Pool, Stats

if TYPE_CHECKING:
    from pylibbpf.btf import Btf

DEFAULT_OUT = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pylibbpf-fuzz"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.fuzz",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, help="stop issuing inputs after this long")
    parser.add_argument("--inputs", type=int, help="run this many inputs")
    parser.add_argument("--seed", type=int, default=1, help="fuzzer seed (inputs replay)")
    parser.add_argument("--first", type=int, default=0, help="index of the first input")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--selftests",
        action="store_true",
        help="add the kernel selftest objects from the test cache as seeds",
    )
    parser.add_argument("--no-vmlinux", action="store_true", help="skip CO-RE inspection")
    parser.add_argument("--btf-share", type=float, default=0.25, help="share of raw BTF inputs")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    parser.add_argument("--cpu-limit", type=float, default=5.0)
    parser.add_argument("--wall-limit", type=float, default=300.0)
    parser.add_argument("--memory-mb", type=int, default=256)
    parser.add_argument("--progress", type=float, default=30.0, help="seconds between lines")
    parser.add_argument("--replay", type=Path, help="run one saved input and print the result")
    parser.add_argument("--kind", choices=["object", "btf"], help="input kind for --replay")
    parser.add_argument("--minimize", type=Path, help="shrink a saved input's diff to a seed")
    parser.add_argument("--against", type=Path, help="the seed --minimize diffs against")
    args = parser.parse_args(argv)

    if args.replay:
        return _replay(args.replay, args.kind, not args.no_vmlinux, args.memory_mb, args.cpu_limit)
    if args.minimize:
        from .minimize import minimize_file

        return minimize_file(args.minimize, args.against, args.kind, not args.no_vmlinux)
    if args.seconds is None and args.inputs is None:
        parser.error("give --seconds or --inputs")

    from .campaign import Campaign
    from .seeds import corpus
    from .targets import Runner

    seeds = corpus(selftests=args.selftests)
    runner = Runner(_vmlinux() if not args.no_vmlinux else None)
    campaign = Campaign(seeds, args.seed, args.btf_share)
    limits = Limits(args.cpu_limit, args.wall_limit, args.memory_mb)
    pool = Pool(campaign, runner, args.workers, limits, args.out)
    print(
        f"fuzz: {len(campaign.objects)} object seeds, {len(campaign.btfs)} BTF seeds, "
        f"{args.workers} workers, seed {args.seed}, out {args.out}",
        file=sys.stderr,
    )

    def progress(stats: Stats) -> None:
        print(progress_line(stats), file=sys.stderr, flush=True)
        write_report(args.out / "report.json", stats, args, seeds_summary(campaign))

    stats = pool.run(args.inputs, args.seconds, args.first, args.progress, progress)
    report = write_report(args.out / "report.json", stats, args, seeds_summary(campaign))
    print(progress_line(stats), file=sys.stderr)
    print(json.dumps(report["defects"], indent=1), file=sys.stderr)
    return 1 if stats.defects else 0


def _vmlinux() -> Btf | None:
    from pylibbpf.btf import Btf

    try:
        return Btf.load_vmlinux()
    except Exception as error:  # no kernel BTF: CO-RE inspection is skipped
        print(f"fuzz: no vmlinux BTF ({error}); CO-RE inspection skipped", file=sys.stderr)
        return None


def progress_line(stats: Stats) -> str:
    rate = stats.inputs / stats.elapsed if stats.elapsed else 0.0
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(stats.outcomes.items()))
    return (
        f"fuzz: {stats.inputs} inputs in {stats.elapsed:.0f} s ({rate:.1f}/s): {outcomes}; "
        f"{len(stats.defects)} distinct defects"
    )


def seeds_summary(campaign: object) -> dict[str, list[str]]:
    return {
        "objects": [s.name for s in getattr(campaign, "objects", [])],
        "btf": [s.name for s in getattr(campaign, "btfs", [])],
    }


def write_report(
    path: Path, stats: Stats, args: argparse.Namespace, seeds: dict[str, list[str]]
) -> dict[str, object]:
    report: dict[str, object] = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "seed": args.seed,
        "btf_share": args.btf_share,
        "workers": args.workers,
        "limits": {"cpu_s": args.cpu_limit, "wall_s": args.wall_limit, "memory_mb": args.memory_mb},
        "inputs": stats.inputs,
        "seconds": round(stats.elapsed, 1),
        "rate_per_s": round(stats.inputs / stats.elapsed, 1) if stats.elapsed else 0,
        "outcomes": dict(stats.outcomes),
        "defect_kinds": dict(stats.defect_kinds),
        "steps": {k: dict(v) for k, v in sorted(stats.steps.items())},
        "cpu_per_input": dict(stats.cpu_buckets),
        "cpu_ms_per_input_by_step": {
            step: round(1000 * seconds / max(stats.inputs, 1), 2)
            for step, seconds in stats.step_cpu.most_common()
        },
        "slowest_cpu_s": round(stats.slowest_cpu, 2),
        "mutators": dict(stats.mutators.most_common()),
        "mutators_in_defects": dict(stats.mutators_in_defects.most_common()),
        "seeds": seeds,
        "defects": [
            {k: v for k, v in record.__dict__.items() if k != "trace"}
            for record in sorted(stats.defects.values(), key=lambda r: -r.count)
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(path)
    return report


def _replay(
    path: Path, kind: str | None, with_vmlinux: bool, memory_mb: int, cpu_seconds: float
) -> int:
    """One input in this process, under the workers' limits (a reproducer of an unbounded
    allocation must not bring the OOM killer to a shared machine)."""
    import resource
    import signal

    from .pool import _vm_size
    from .targets import InputTimeout, Runner

    def alarm(_signum: int, _frame: object) -> None:
        raise InputTimeout(f"input used more than {cpu_seconds:g} s of CPU time")

    data = path.read_bytes()
    kind = kind or ("object" if data[:4] == b"\x7fELF" else "btf")
    runner = Runner(_vmlinux() if with_vmlinux else None)
    limit = _vm_size() + memory_mb * (1 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    started = time.process_time()
    signal.signal(signal.SIGPROF, alarm)
    signal.setitimer(signal.ITIMER_PROF, cpu_seconds)
    result = runner.run(kind, data)
    signal.setitimer(signal.ITIMER_PROF, 0)
    print(
        f"{path}: {kind}, {result.outcome} in {time.process_time() - started:.2f} s CPU; "
        f"steps {result.steps}"
    )
    for defect in result.defects:
        print(f"--- {defect.signature} in step {defect.step}\n{defect.trace}")
    return 1 if result.defects else 0


if __name__ == "__main__":
    sys.exit(main())
