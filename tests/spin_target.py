"""tests/programs/spin.c built for symbolisation: with frame pointers and DWARF, as a PIE
(the default), a fixed-address executable or with DWARF 4; cached by content and flags."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import CACHE, TESTS

SOURCE = TESTS / "programs" / "spin.c"
FLAGS = ["-O0", "-g", "-fno-omit-frame-pointer"]
VARIANTS = {"pie": [], "no-pie": ["-no-pie"], "dwarf4": ["-gdwarf-4"]}


def build_spin(variant: str = "pie") -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed (scripts/setup installs it)")
    flags = FLAGS + VARIANTS[variant]
    # The path too: DWARF records it and the line tests read the file back.
    digest = hashlib.sha256(SOURCE.read_bytes() + " ".join(flags).encode() + bytes(SOURCE))
    digest = digest.hexdigest()[:16]
    out = CACHE / "programs" / digest / "spin"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".{os.getpid()}")
        result = subprocess.run(
            [gcc, *flags, "-o", str(tmp), str(SOURCE)], capture_output=True, text=True
        )
        if result.returncode:
            raise RuntimeError(f"gcc failed on {SOURCE}:\n{result.stderr[-3000:]}")
        tmp.replace(out)
    return out


def nm_functions(binary: Path | str, *, dynamic: bool = False) -> list[tuple[int, int, str]]:
    """(address, size, name) of the functions ``nm`` lists (text symbols with a size)."""
    args = ["nm", "-S", "--defined-only", *(["-D"] if dynamic else []), str(binary)]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    functions = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[2] in "tTiWw":
            functions.append((int(fields[0], 16), int(fields[1], 16), fields[3]))
    return functions
