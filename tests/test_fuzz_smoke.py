"""A bounded fuzzing run (fixed seed, at most a minute) finds no defect not already kept
as a reproducer in ``tests/fuzz_cases``.

The long run (``tools/fuzz/run_long.sh``, a million inputs) is not a test; this is its
CI-sized slice: the same mutators and targets on the test suite's own objects, with the
same oracle (success or a ``BpfError``; no other exception, no signal, no input over
5 s of CPU or 256 MiB of extra memory).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BPF_SRC, compile_test_object
from test_fuzz_regressions import known_defect

ROOT = Path(__file__).resolve().parents[1]
if not (ROOT / "tools" / "fuzz").is_dir():
    pytest.skip("the fuzzer (tools/fuzz) is not in this tree (an sdist)", allow_module_level=True)


def test_a_minute_of_fuzzing_finds_no_new_defect(tmp_path: Path) -> None:
    for source in sorted(BPF_SRC.glob("*.bpf.c")):  # seeds (cached; skips without clang)
        compile_test_object(source.name[: -len(".bpf.c")])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "tools.fuzz", "--seed", "1", "--inputs", "400"]
    command += ["--seconds", "55", "--workers", "2", "--progress", "0", "--out", str(tmp_path)]
    subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    report = json.loads((tmp_path / "report.json").read_text())

    assert report["inputs"] >= 40, report
    # Every target ran on inputs it accepted, not only on ones it rejected.
    steps = ["open", "variables", "skeleton", "dump_c", "btf_parse"]
    if Path("/sys/kernel/btf/vmlinux").exists():
        steps.append("inspect_core")
    for step in steps:
        assert report["steps"][step].get("ok", 0) > 0, (step, report["steps"].get(step))
    new = [d for d in report["defects"] if not known_defect(d["signature"])]
    assert not new, json.dumps(new, indent=1)
