"""One run of the kernel matrix from start to end, for ``pylibbpf vmtest``
(``pylibbpf/cli/vmtest.py``) and ``vm-tests/run``: resolve the kernels, plan the guests,
run them with progress, then write one JUnit file and print one summary per kernel. The
pytest plugin (``matrix.py``) drives ``Run`` itself and shares only the bookkeeping
(``durations_path``, ``finish``)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .kernels import DEBIAN_PACKAGES, Kernel, KernelError, resolve
from .results import KernelResults, summary, write_junit
from .runner import Options, Run, host_cpus, load_durations, plan, save_durations
from .warmup import warm_up

DEFAULT_KERNELS = tuple(DEBIAN_PACKAGES)


def resolve_kernels(names: list[str], modules: Path | None = None) -> list[Kernel]:
    """Kernels by name (Debian's series, 'host', a path, LABEL=PATH); the labels name the
    results, so two kernels may not share one."""
    kernels = [resolve(name, modules=modules) for name in names or DEFAULT_KERNELS]
    labels = [kernel.label for kernel in kernels]
    if len(set(labels)) != len(labels):
        raise KernelError(f"two kernels share a label ({labels}): name them LABEL=PATH")
    return kernels


def log(message: str) -> None:
    print(f"[vmtest] {message}", flush=True)


def run(options: Options, select: list[str] | None = None) -> dict[str, KernelResults]:
    """Plan, run and report; returns each kernel's results by label."""
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
    """JUnit per kernel into the results directory; the test times for the next plan."""
    for kernel in kernels.values():
        write_junit(kernel, options.results / f"junit-{kernel.label}.xml")
    save_durations(durations_file, kernels)
