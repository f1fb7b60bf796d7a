"""``pylibbpf vmtest``'s command line, without booting anything: its help, its options
(``-j`` is ``--jobs`` there, not the global ``--json``), how they become the runner's
options, and the errors for a kernel or an ``--env`` it cannot use. The guests themselves
are tested in tests/test_vm_runner.py. Pure: no privileges."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pylibbpf import cli
from pylibbpf.cli import vmtest
from pylibbpf.vmtest.kernels import KernelError

ROOT = Path(__file__).resolve().parent.parent


def fake_bzimage(path: Path, version: bytes) -> Path:
    """The part of an x86 boot image the runner reads: the setup header's version pointer."""
    data = bytearray(0x800)
    data[0x202:0x206] = b"HdrS"
    data[0x20E:0x210] = (0x600 - 0x200).to_bytes(2, "little")
    data[0x600 : 0x600 + len(version)] = version
    path.write_bytes(bytes(data))
    return path


def parse(argv: list[str]) -> argparse.Namespace:
    commands = cli.build_parser()
    return commands.parser.parse_args(commands.expand(argv))


def test_help_names_the_command_and_its_options() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "pylibbpf", "vmtest", "--help"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: pylibbpf vmtest [-h] [--kernel KERNEL]")
    # argparse writes "-j JOBS, --jobs JOBS" before Python 3.13, "-j, --jobs JOBS" since.
    assert re.search(r"-j( JOBS)?, --jobs JOBS", done.stdout), done.stdout
    for text in ("junit-<kernel>.xml", "pytest --bpf-kernels"):
        assert text in done.stdout
    top = subprocess.run(
        [sys.executable, "-m", "pylibbpf", "--help"], capture_output=True, text=True, env=env
    )
    words = " ".join(top.stdout.split())
    assert "vmtest run this project's tests in QEMU guests on other kernels" in words


def test_options_reach_the_runner(tmp_path: Path) -> None:
    image = fake_bzimage(tmp_path / "bzImage", b"6.6.30-custom (me@host) #1 SMP\0")
    args = parse(
        [
            "vm",
            "-j",
            "3",
            "--kernel",
            f"mine={image}",
            "--image",
            str(image),
            "--env",
            "PYLIBBPF_X=a=b",
            "--results",
            str(tmp_path / "out"),
            "--",
            "-x",
            "tests/test_maps.py",
            "-j",
        ]
    )
    options = vmtest.options_from(args)
    assert [(k.label, k.release) for k in options.kernels] == [
        ("mine", "6.6.30-custom"),
        ("6.6.30-custom", "6.6.30-custom"),
    ]
    assert options.jobs == 3
    assert options.pytest_args == ["-x", "tests/test_maps.py", "-j"]
    assert options.env == {"PYLIBBPF_X": "a=b"}
    assert options.results == (tmp_path / "out").resolve() and options.results.is_dir()


def test_unusable_kernels_and_env_are_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = fake_bzimage(tmp_path / "bzImage", b"6.6.30 #1\0")
    assert cli.main(["vmtest", "--kernel", str(tmp_path / "nowhere"), "--results", "x"]) == 2
    assert f"kernel image {tmp_path / 'nowhere'} does not exist" in capsys.readouterr().err
    assert cli.main(["vmtest", "--kernel", f"a={image}", "--kernel", f"a={image}"]) == 2
    assert "two kernels share a label (['a', 'a'])" in capsys.readouterr().err
    with pytest.raises(KernelError, match=r"--env 'NOVALUE': expected NAME=VALUE"):
        vmtest.options_from(parse(["vmtest", "--env", "NOVALUE"]))
