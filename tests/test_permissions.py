"""An unprivileged caller gets a PermissionError that says which capability is missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

SCRIPT = """
import json, pylibbpf as bpf
from pylibbpf.spec.insn import assemble, return_imm
out = {}
for label, action in (
    ("map", lambda: bpf.Map.create(bpf.MapType.HASH, 4, 4, 1, name="t_nobody")),
    ("prog", lambda: bpf.Program.from_insns(
        assemble(return_imm(2)), bpf.ProgType.XDP, name="t_nobody")),
):
    try:
        action()
        out[label] = "created"
    except bpf.BpfPermissionError as error:
        out[label] = ["BpfPermissionError", isinstance(error, PermissionError), str(error)]
    except Exception as error:
        out[label] = [type(error).__name__, False, str(error)]
print(json.dumps(out))
"""


def _others_can_run(executable: str) -> bool:
    """Whether user nobody may run this interpreter (and reach its standard library)."""
    paths = [Path(os.path.realpath(executable)), Path(os.__file__).resolve()]
    return all(os.stat(directory).st_mode & 0o001 for path in paths for directory in path.parents)


def test_unprivileged_caller_gets_a_permission_error() -> None:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    if not _others_can_run(sys.executable):
        pytest.skip(f"{sys.executable} lives where other users cannot run it (under /root?)")
    root = Path(__file__).resolve().parent.parent
    env = {"PYTHONPATH": str(root), "PATH": os.environ.get("PATH", "")}
    result = subprocess.run(
        [
            setpriv,
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            sys.executable,
            "-c",
            SCRIPT,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    out = json.loads(result.stdout)
    for label, subject in (("map", "map 't_nobody'"), ("prog", "program 't_nobody'")):
        kind, is_permission_error, message = out[label]
        assert kind == "BpfPermissionError" and is_permission_error, out
        assert subject in message and "CAP_BPF" in message, message
        assert "this process holds: none of them" in message, message
