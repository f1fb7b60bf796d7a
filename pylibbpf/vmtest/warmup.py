"""Host-side preparation before any guest boots: collect the tests once on the host, which
lists them (for shards) and leaves the bytecode of everything collection imports, test
modules with pytest's assertion rewriting included, next to the sources; then compile the
rest of the project. Under TCG a guest compiling Python source instead of loading .pyc
spends a quarter of a minute more before its first test, and every guest would pay it.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

from .runner import Options


def warm_up(options: Options) -> list[str] | None:
    """The node ids pytest collects on the host; None if collection fails there (then each
    guest collects for itself and nothing is sharded)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as records:
        env["PYLIBBPF_VMTEST_RECORDS"] = records.name
        collected = subprocess.run(
            [
                options.python,
                "-m",
                "pytest",
                "--collect-only",
                "-q",
                "-p",
                "no:cacheprovider",
                "-p",
                "pylibbpf.vmtest.guest_plugin",
                *options.pytest_args,
            ],
            cwd=options.cwd,
            env=env,
            capture_output=True,
            text=True,
        )
        nodeids = None
        for line in Path(records.name).read_text().splitlines():
            event = json.loads(line)
            if event.get("event") == "collected" and collected.returncode == 0:
                nodeids = [str(nodeid) for nodeid in event["nodeids"]]
    env.pop("PYLIBBPF_VMTEST_RECORDS")
    subprocess.run(  # the modules tests import only when they run; hidden dirs left out
        [options.python, "-m", "compileall", "-q", "-x", r"/\.", str(options.cwd)],
        env=env,
        capture_output=True,
    )
    return nodeids
