"""Compile the project's BPF C on first use (cached in build/ by the source's hash)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent


def compile_bpf(name: str) -> Path:
    """bpf/<name>.bpf.c -> build/<name>-<hash>.bpf.o (clang, BPF target, with BTF)."""
    clang = shutil.which("clang-19") or shutil.which("clang")
    if clang is None:
        pytest.skip("clang is not installed")
    source = PROJECT / "bpf" / f"{name}.bpf.c"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    target = PROJECT / "build" / f"{name}-{digest}.bpf.o"
    if not target.exists():
        target.parent.mkdir(exist_ok=True)
        multiarch = subprocess.run(
            ["gcc", "-print-multiarch"], capture_output=True, text=True
        ).stdout.strip()
        subprocess.run(
            [
                clang,
                "-O2",
                "-g",
                "-target",
                "bpf",
                f"-I/usr/include/{multiarch}",
                "-c",
                str(source),
                "-o",
                str(target),
            ],
            check=True,
        )
    return target


@pytest.fixture(scope="session")
def bpf_object() -> Callable[[str], Path]:
    return compile_bpf
