"""``pylibbpf vmtest``: run this project's pytest suite on other kernels, in QEMU guests
(the runner is ``pylibbpf.vmtest``; this module is its command line)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

# The runner (guests, QEMU, results) is imported when the command runs: every other
# command builds this parser too.
from ..vmtest.kernels import DEBIAN_PACKAGES, KernelError, default_cache
from .app import Commands

if TYPE_CHECKING:
    from ..vmtest.runner import Options

DESCRIPTION = """\
Run this project's pytest suite in QEMU guests on other kernels, several guests at a time.

    pylibbpf vmtest [--kernel 6.1 --kernel 6.12 --kernel host | --image PATH] [-j N]
                    [-- pytest args]

Run it from the project directory, as root (the guests run pytest as root). The guests see
the host's root filesystem read-only, with $HOME, the project and /tmp writable (to
throwaway overlays). It prints progress while the guests run, then one summary per kernel
(counts, skip reasons, failures) and writes junit-<kernel>.xml for each kernel into the
results directory. The exit status is 1 if a test failed on any kernel or a guest died."""

EPILOG = """\
examples:
  pylibbpf vmtest -- -x tests/
  pylibbpf vmtest --kernel 6.1 --kernel 6.12 --kernel host -j 2 -- tests/test_maps.py
  pylibbpf vmtest --kernel mine=build/arch/x86/boot/bzImage --modules build/mod/lib/modules/X
the same from inside pytest: pytest --bpf-kernels 6.1,6.12 tests/"""


def register(commands: Commands) -> None:
    """``vmtest``: a top-level command with options of its own (``-j`` is ``--jobs``)."""
    parser = commands.add(
        "vmtest",
        None,
        main,
        "run this project's tests in QEMU guests on other kernels",
        epilog=EPILOG,
        own_options=True,
    )
    parser.description = DESCRIPTION
    add_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The runner's options (``vm-tests/run`` takes the same ones)."""
    kernels = ", ".join(DEBIAN_PACKAGES)  # session.DEFAULT_KERNELS
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


def options_from(args: argparse.Namespace) -> Options:
    """The runner's options from the parsed command line; a kernel that cannot be found or
    a malformed ``--env`` raises KernelError naming it."""
    from ..vmtest.runner import Options
    from ..vmtest.session import resolve_kernels

    pytest_args = list(args.pytest_args)
    if pytest_args[:1] == ["--"]:
        pytest_args = pytest_args[1:]
    env = {}
    for item in args.env:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise KernelError(f"--env {item!r}: expected NAME=VALUE")
        env[name] = value
    kernels = resolve_kernels([*args.kernel, *args.image], args.modules)
    results = args.results or Path(tempfile.mkdtemp(prefix="pylibbpf-vmtest-"))
    results.mkdir(parents=True, exist_ok=True)
    return Options(
        kernels=kernels,
        pytest_args=pytest_args,
        results=results.resolve(),
        cache=default_cache(),
        jobs=args.jobs,
        shards=args.shards,
        timeout=args.timeout,
        python=args.python,
        env=env,
        writable=args.writable,
        cpus=args.cpus,
        memory=args.memory,
        kernel_args=args.append,
    )


def main(args: argparse.Namespace) -> int:
    """``pylibbpf vmtest``: resolve the kernels, run the guests, report."""
    try:
        options = options_from(args)
    except KernelError as error:
        print(f"pylibbpf vmtest: {error}", file=sys.stderr)
        return 2
    return execute(options)


def execute(options: Options) -> int:
    """Run the guests, print the summaries; 0 when every test passed or skipped on every
    kernel (vm-tests/run resolves the options first, to build bpf_testmod for them)."""
    from ..vmtest.session import log, run

    if os.geteuid() != 0:
        print("pylibbpf vmtest: note: not root; the guests still run pytest as root")
    log("kernels: " + ", ".join(f"{k.label} ({k.release})" for k in options.kernels))
    outcome = run(options)
    print(f"results in {options.results}")
    return 0 if all(kernel.ok for kernel in outcome.values()) else 1
