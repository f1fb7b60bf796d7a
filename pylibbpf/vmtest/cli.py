"""``pylibbpf vmtest``: run this project's pytest suite on other kernels, in QEMU guests.

    pylibbpf vmtest [--kernel 6.1 --kernel 6.12 --kernel host | --image PATH] [-j N]
                    [-- pytest args]

Run it from the project directory, as root (the guests run pytest as root). It prints
progress while the guests run, then one summary per kernel (counts, skip reasons, failures)
and writes ``junit-<kernel>.xml`` for each kernel into the results directory.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from pathlib import Path

from .kernels import DEBIAN_PACKAGES, Kernel, KernelError, default_cache, resolve
from .results import KernelResults, summary, write_junit
from .runner import Options, Run, host_cpus, load_durations, plan, save_durations
from .warmup import warm_up

DEFAULT_KERNELS = tuple(DEBIAN_PACKAGES)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``vmtest`` on the ``pylibbpf`` command's subcommands."""
    parser = sub.add_parser(
        "vmtest",
        help="run this project's tests in QEMU guests on other kernels",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=main)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    kernels = ", ".join(DEFAULT_KERNELS)
    parser.add_argument(
        "--kernel",
        action="append",
        default=[],
        metavar="KERNEL",
        help=f"Debian's {kernels}, 'host', a vmlinuz path, or LABEL=PATH; repeatable "
        f"(default: {kernels})",
    )
    parser.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="PATH",
        help="a kernel image (bzImage/vmlinuz); its modules are looked for "
        "in ../lib/modules/<release> and /lib/modules/<release>",
    )
    parser.add_argument(
        "--modules", type=Path, metavar="DIR", help="lib/modules/<release> of the --image kernels"
    )
    parser.add_argument(
        "-j", "--jobs", type=int, default=0, help="guests at a time (default: one per host CPU)"
    )
    parser.add_argument(
        "--shards",
        type=int,
        default=0,
        help="guests per kernel (default: the jobs spread over the kernels)",
    )
    parser.add_argument("--cpus", type=int, default=1, help="vCPUs per guest (default 1)")
    parser.add_argument("--memory", default="2G", help="memory per guest (default 2G)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        help="seconds a guest may run before it is killed (default 1800)",
    )
    parser.add_argument(
        "--results", type=Path, help="directory for logs and JUnit files (default: a new temp dir)"
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the Python that runs pytest in the guest (default: this one)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set in the guest (PATH, HOME, VIRTUAL_ENV, PYTHONPATH, "
        "PYLIBBPF_* and PYTEST_* pass through)",
    )
    parser.add_argument(
        "--writable",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="also let the guest write here (to a throwaway overlay; $HOME "
        "and the project are writable already)",
    )
    parser.add_argument(
        "--append",
        action="append",
        default=[],
        metavar="ARG",
        help="extra guest kernel command line argument",
    )
    parser.add_argument(
        "pytest_args", nargs=argparse.REMAINDER, help="after --: arguments for pytest in the guests"
    )


def main(args: argparse.Namespace) -> int:
    pytest_args = list(args.pytest_args)
    if pytest_args[:1] == ["--"]:
        pytest_args = pytest_args[1:]
    try:
        kernels = resolve_kernels([*args.kernel, *args.image], args.modules)
    except KernelError as error:
        print(f"pylibbpf vmtest: {error}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("pylibbpf vmtest: note: not root; the guests still run pytest as root")
    results = args.results or Path(tempfile.mkdtemp(prefix="pylibbpf-vmtest-"))
    results.mkdir(parents=True, exist_ok=True)
    options = Options(
        kernels=kernels,
        pytest_args=pytest_args,
        results=results.resolve(),
        cache=default_cache(),
        jobs=args.jobs,
        shards=args.shards,
        timeout=args.timeout,
        python=args.python,
        env=dict(item.split("=", 1) for item in args.env),
        writable=args.writable,
        cpus=args.cpus,
        memory=args.memory,
        kernel_args=args.append,
    )
    log("kernels: " + ", ".join(f"{k.label} ({k.release})" for k in kernels))
    outcome = run(options)
    print(f"results in {results}")
    return 0 if all(kernel.ok for kernel in outcome.values()) else 1


def resolve_kernels(names: list[str], modules: Path | None = None) -> list[Kernel]:
    kernels = [resolve(name, modules=modules) for name in names or DEFAULT_KERNELS]
    labels = [kernel.label for kernel in kernels]
    if len(set(labels)) != len(labels):
        raise KernelError(f"two kernels share a label ({labels}): name them LABEL=PATH")
    return kernels


def log(message: str) -> None:
    print(f"[vmtest] {message}", flush=True)


def run(options: Options, select: list[str] | None = None) -> dict[str, KernelResults]:
    """Plan, run and report: the CLI's whole job (the pytest plugin drives ``Run`` itself)."""
    durations_file = durations_path(options)
    durations = load_durations(durations_file)
    jobs = options.jobs or host_cpus()
    nodeids = warm_up(options)
    if nodeids is None:
        log("collecting the tests on the host failed: one guest per kernel")
    # Guests collect for themselves unless the tests are split (the host's list could miss
    # tests parametrized by what the guest kernel supports).
    if select is None and (options.shards or jobs // len(options.kernels)) > 1:
        select = nodeids
    options.select = select
    units = plan(options, durations)
    log(f"{len(units)} guests, {jobs} at a time, {options.cpus} vCPU each")
    kernels = Run(options, units, log).run()
    finish(options, kernels, durations_file)
    print()
    for kernel in kernels.values():
        print(summary(kernel))
    return kernels


def durations_path(options: Options) -> Path:
    """Per-project test times from earlier runs (they balance the shards)."""
    key = hashlib.sha256(str(options.cwd.resolve()).encode()).hexdigest()[:16]
    return options.cache / "durations" / f"{key}.json"


def finish(options: Options, kernels: dict[str, KernelResults], durations_file: Path) -> None:
    for kernel in kernels.values():
        write_junit(kernel, options.results / f"junit-{kernel.label}.xml")
    save_durations(durations_file, kernels)
