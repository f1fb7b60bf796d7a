"""The README's quick start works as pasted into a fresh shell: its fenced blocks, read
from README.md itself, run in order in an empty directory — the C block saved under the
name it gives, the shell blocks run by bash, each Python block by a new interpreter —
and each ``print(...)  # N: ...`` prints N (what the kernel counted or decided)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not README.exists(), reason="README.md is not here"),
]


def quick_start() -> list[tuple[str, str]]:
    """(language, code) of every fenced block between '## Quick start' and the next
    section."""
    text = README.read_text()
    section = text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```(\w+)\n(.*?)^```$", section, re.M | re.S)


def test_the_quick_start_names_real_commands() -> None:
    blocks = quick_start()
    assert [language for language, _ in blocks] == ["c", "sh", "python", "sh", "python", "python"]
    shell = "\n".join(code for language, code in blocks if language == "sh")
    assert re.search(r"^clang-19 ", shell, re.M)  # Debian 12's name; `clang` is not there
    for language, code in blocks:
        if language == "python":  # each block stands alone: it imports what it uses
            used = set(re.findall(r"\b(os|bpf)\.", code))
            imported = set(re.findall(r"^import (\w+)(?: as (\w+))?", code, re.M))
            names = {alias or module for module, alias in imported}
            assert used <= names, f"uses {used - names} without importing it:\n{code}"


def test_the_quick_start_runs_as_written(tmp_path: Path) -> None:
    for tool in ("clang-19", "bash"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/setup installs it)")
    if not Path("/usr/include/bpf/bpf_helpers.h").exists():
        pytest.skip("bpf/bpf_helpers.h is not installed (libbpf-dev)")
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    if shutil.which("pylibbpf", path=env["PATH"]) is None:
        pytest.skip("the pylibbpf command is not installed next to this Python")
    for index, (language, code) in enumerate(quick_start()):
        if language == "c":
            name = re.match(r"// (\S+\.c)\n", code)
            assert name, "the C block starts with its file name"
            (tmp_path / name.group(1)).write_text(code)
            continue
        command = ["bash", "-euo", "pipefail", "-c", code]
        if language == "python":
            command = [sys.executable, "-c", code]
        result = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, f"block {index} ({language}):\n{code}\n{result.stderr}"
        expected = re.findall(r"^\s*print\(.*\)\s*#\s*(\d+)\b", code, re.M)
        if expected:
            assert result.stdout.split() == expected, f"block {index}: {result.stdout!r}"
