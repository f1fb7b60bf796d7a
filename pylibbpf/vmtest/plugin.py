"""pytest plugin: ``pytest --bpf-kernels 6.1,6.12`` runs the selected tests in QEMU guests,
one or more per kernel, and reports every test once per kernel (``test_x[6.1]``).

Registered through the ``pytest11`` entry point, so every pytest run in an environment with
pylibbpf imports this module; it stays inert (two cheap hooks, nothing else imported)
unless ``--bpf-kernels`` is given. With it, the tests are collected on the host as usual,
``-k``/``-m`` apply, and each collected test becomes one item per kernel whose outcome is
what the guest reported: passed, failed (with the guest's traceback), skipped (with the
guest's reason). JUnit XML per kernel goes to the results directory (``--bpf-results``);
pytest's own ``--junitxml`` holds every kernel's items.
"""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vmtest", "run the tests on other kernels in QEMU (pylibbpf)")
    group.addoption(
        "--bpf-kernels",
        metavar="K1,K2",
        help="run the tests in QEMU guests on these kernels: Debian's 6.1 / 6.12, 'host', a "
        "vmlinuz path or LABEL=PATH, comma-separated",
    )
    group.addoption("--bpf-jobs", type=int, default=0, help="guests at a time (default: CPUs)")
    group.addoption("--bpf-shards", type=int, default=0, help="guests per kernel")
    group.addoption("--bpf-cpus", type=int, default=1, help="vCPUs per guest (default 1)")
    group.addoption("--bpf-timeout", type=float, default=1800.0, help="seconds per guest")
    group.addoption("--bpf-results", metavar="DIR", help="logs and JUnit files per kernel")


def pytest_configure(config: pytest.Config) -> None:
    kernels = config.getoption("bpf_kernels", None)
    if kernels and not os.environ.get("PYLIBBPF_VMTEST_RECORDS"):  # not inside a guest
        from .matrix import KernelMatrix

        matrix = KernelMatrix(config, [k for k in kernels.split(",") if k])
        config.pluginmanager.register(matrix, "pylibbpf-vmtest-matrix")
