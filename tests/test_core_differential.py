"""Differential test against libbpf: CO-RE programs (task_struct and sk_buff fields and
bitfields, kernel enums, type sizes and existence) loaded by bpftool (libbpf) and by
pylibbpf; the instructions the kernel reports after loading must be identical, map
references compared by map name."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from pylibbpf import introspect
from pylibbpf.loader import BpfObject
from pylibbpf.maps import Map
from pylibbpf.program import Program

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(shutil.which("bpftool") is None, reason="bpftool is not installed"),
]
PROGRAMS = ["task_fields", "skb_fields", "enums_and_types"]


def normalized(lines: list[str]) -> list[str]:
    """Instruction lines with map ids replaced by map names (ids differ between loads)."""

    def name(match: re.Match[str]) -> str:
        with Map.from_id(int(match[1])) as map_obj:
            return f"map[{map_obj.info().name.split('.', 1)[-1]}]"

    return [re.sub(r"map\[id:(\d+)\]", name, line) for line in lines]


def test_xlated_instructions_match_libbpf(bpf_object: Callable[[str], Path], pin_dir: Path) -> None:
    path = bpf_object("core_diff")
    pins = pin_dir / f"core_diff_{uuid.uuid4().hex[:6]}"
    subprocess.run(["bpftool", "prog", "loadall", str(path), str(pins)], check=True)
    try:
        theirs = {}
        for program in PROGRAMS:
            out = subprocess.run(
                ["bpftool", "prog", "dump", "xlated", "pinned", str(pins / program)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            theirs[program] = normalized(
                [line for line in out.splitlines() if re.match(r"\s*\d+: \(", line)]
            )
    finally:
        for pin in pins.iterdir():
            pin.unlink()
        pins.rmdir()
    with BpfObject.open(path) as obj:
        obj.load()
        for program in PROGRAMS:
            with Program.from_id(obj.programs[program].info().id) as loaded:
                ours = normalized(introspect.dump_xlated(loaded))
            assert len(ours) > 5 and ours == theirs[program], program
        relocated = {r.access for r in obj.core_results("task_fields")}
        assert "struct task_struct::real_parent" in relocated  # CO-RE did happen
