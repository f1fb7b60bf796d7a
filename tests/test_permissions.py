"""A caller without the capabilities gets a PermissionError that names the one missing:
the capabilities the kernel checks for this program type, map type or command (run in
children that drop them, so the kernel itself refuses), and tracefs refusals with the
kernel's EACCES instead of "not mounted"."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import pylibbpf as bpf

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
        assert "this process lacks CAP_BPF" in message, message
    assert "HASH maps need CAP_BPF (or CAP_SYS_ADMIN)" in out["map"][2]
    assert "lacks CAP_BPF and CAP_NET_ADMIN" in out["prog"][2]  # XDP: a networking type


def run_restricted(
    setpriv_args: list[str], script: str, args: Sequence[str] = ()
) -> dict[str, Any]:
    """Run ``script`` in a child with the capabilities ``setpriv_args`` leave it; it
    prints one JSON object."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    if any(arg.startswith("--reuid") for arg in setpriv_args) and not _others_can_run(
        sys.executable
    ):
        pytest.skip(f"{sys.executable} lives where other users cannot run it (under /root?)")
    root = Path(__file__).resolve().parent.parent
    env = {"PYTHONPATH": str(root), "PATH": os.environ.get("PATH", "")}
    result = subprocess.run(
        [setpriv, *setpriv_args, sys.executable, "-c", script, *args],
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()
    out: dict[str, Any] = json.loads(result.stdout)
    return out


ATTEMPTS = """
import json, pylibbpf as bpf
from pylibbpf.spec.insn import assemble, return_imm
from pylibbpf.syscall.system import effective_capabilities

def outcome(action):
    try:
        made = action()
    except bpf.BpfError as error:
        return [type(error).__name__, error.errno, str(error)]
    kind = made.info().type
    made.close()
    return ["made", kind, ""]

def program(prog_type):
    return lambda: bpf.Program.from_insns(assemble(return_imm(0)), prog_type, name="t_caps")

out = {"caps": sorted(effective_capabilities())}
for prog_type in ("KPROBE", "TRACEPOINT", "SCHED_CLS", "XDP", "SOCKET_FILTER"):
    out[prog_type] = outcome(program(bpf.ProgType[prog_type]))
out["SOCKMAP"] = outcome(lambda: bpf.Map.create(bpf.MapType.SOCKMAP, 4, 4, 1, name="t_caps"))
out["HASH"] = outcome(lambda: bpf.Map.create(bpf.MapType.HASH, 4, 4, 1, name="t_caps"))
out["by_id"] = outcome(lambda: bpf.Program.from_id(1))
out["sampling"] = outcome(lambda: bpf.open_sampling_event(0, frequency=49))
print(json.dumps(out))
"""


def test_a_refusal_names_the_capability_the_type_needs() -> None:
    """Root's uid with CAP_BPF alone: the kernel loads what CAP_BPF allows and refuses the
    tracing types (CAP_PERFMON) and the networking ones (CAP_NET_ADMIN)."""
    out = run_restricted(["--inh-caps=-all", "--bounding-set=-all,+bpf"], ATTEMPTS)
    assert out["caps"] == ["CAP_BPF"]  # what the child really held
    for prog_type, needs, lacks in (
        ("KPROBE", "CAP_BPF and CAP_PERFMON", "CAP_PERFMON"),
        ("TRACEPOINT", "CAP_BPF and CAP_PERFMON", "CAP_PERFMON"),
        ("SCHED_CLS", "CAP_BPF and CAP_NET_ADMIN", "CAP_NET_ADMIN"),
        ("XDP", "CAP_BPF and CAP_NET_ADMIN", "CAP_NET_ADMIN"),
    ):
        kind, err, message = out[prog_type]
        assert kind == "BpfPermissionError" and err == errno.EPERM, out[prog_type]
        assert message.startswith(f"program 't_caps' ({prog_type}): PROG_LOAD failed"), message
        assert f"{prog_type} programs need {needs} (or CAP_SYS_ADMIN)" in message, message
        assert message.endswith(f"this process lacks {lacks} (it holds CAP_BPF)"), message
    assert out["SOCKET_FILTER"] == ["made", bpf.ProgType.SOCKET_FILTER, ""]  # CAP_BPF is enough
    assert out["HASH"] == ["made", bpf.MapType.HASH, ""]
    kind, err, message = out["SOCKMAP"]
    assert kind == "BpfPermissionError" and err == errno.EPERM
    assert "SOCKMAP maps need" in message and "lacks CAP_NET_ADMIN" in message, message
    kind, err, message = out["by_id"]
    assert kind == "BpfPermissionError" and err == errno.EPERM
    assert "PROG_GET_FD_BY_ID needs CAP_SYS_ADMIN; this process lacks CAP_SYS_ADMIN" in message
    kind, err, message = out["sampling"]  # every process on CPU 0: CAP_PERFMON or paranoid <= 0
    paranoid = int(Path("/proc/sys/kernel/perf_event_paranoid").read_text())
    if paranoid <= 0:
        assert kind == "made" or err != errno.EACCES, out["sampling"]
    else:
        assert kind == "BpfPermissionError" and err == errno.EACCES, out["sampling"]
        assert "perf_event_open refused [EACCES]" in message, message
        assert f"kernel.perf_event_paranoid allows them (it is {paranoid}" in message, message
        assert message.endswith("this process lacks CAP_PERFMON"), message


CGROUP_ATTACH = """
import json, sys, pylibbpf as bpf
from pylibbpf.spec.insn import assemble, return_imm

program = bpf.Program.from_insns(
    assemble(return_imm(1)),
    bpf.ProgType.CGROUP_SKB,
    name="t_cgskb",
    expected_attach_type=bpf.AttachType.CGROUP_INET_EGRESS,
)
out = {"loaded": program.info().type}
try:
    program.attach_cgroup(sys.argv[1], bpf.AttachType.CGROUP_INET_EGRESS).close()
    out["attach"] = ["attached", 0, ""]
except bpf.BpfError as error:
    out["attach"] = [type(error).__name__, error.errno, str(error)]
print(json.dumps(out))
"""


def test_a_cgroup_skb_attach_names_cap_net_admin(cgroup_dir: Path) -> None:
    """cgroup skb programs load with CAP_BPF alone; the kernel checks CAP_NET_ADMIN when
    one is attached."""
    out = run_restricted(
        ["--inh-caps=-all", "--bounding-set=-all,+bpf"], CGROUP_ATTACH, args=[str(cgroup_dir)]
    )
    assert out["loaded"] == bpf.ProgType.CGROUP_SKB
    kind, err, message = out["attach"]
    assert kind in ("BpfPermissionError", "AttachError") and err == errno.EPERM, out
    assert "CGROUP_INET_EGRESS attachments (cgroup skb) need CAP_NET_ADMIN" in message, message
    assert "this process lacks CAP_NET_ADMIN" in message, message


TRACEFS_ATTEMPTS = """
import json, sys, pylibbpf as bpf
from pylibbpf import trace
from pylibbpf.spec.insn import assemble, return_imm

out = {}
program = bpf.Program.from_insns(assemble(return_imm(0)), bpf.ProgType.TRACEPOINT, name="t_tfs")
out["loaded"] = program.info().type
for label, action in (
    ("tracepoint", lambda: program.attach_tracepoint("syscalls", "sys_enter_getppid")),
    ("trace_pipe", trace.tracefs_root),
):
    try:
        action()
        out[label] = ["attached", 0, ""]
    except bpf.BpfError as error:
        out[label] = [type(error).__name__, error.errno, str(error)]
print(json.dumps(out))
"""


def test_tracefs_refused_says_eacces_not_not_mounted() -> None:
    """CAP_BPF and CAP_PERFMON under another uid: the program loads, but tracefs (root's,
    mode 0700 here) refuses to open its files; the error carries that EACCES."""
    tracefs = Path("/sys/kernel/tracing")
    if not (tracefs / "events").is_dir():
        pytest.skip("tracefs is not mounted at /sys/kernel/tracing")
    if tracefs.stat().st_mode & 0o005 and (tracefs / "events").stat().st_mode & 0o005:
        pytest.skip("tracefs is open to other users here: nothing refuses")
    caps = "-all,+bpf,+perfmon"
    out = run_restricted(
        [
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            f"--inh-caps={caps}",
            f"--ambient-caps={caps}",
        ],
        TRACEFS_ATTEMPTS,
    )
    assert out["loaded"] == bpf.ProgType.TRACEPOINT  # the kernel took the program
    kind, err, message = out["tracepoint"]
    assert kind == "BpfPermissionError" and err == errno.EACCES, out
    assert message.startswith("tracepoint syscalls:sys_enter_getppid: tracefs is mounted"), message
    assert "[EACCES]" in message and "CAP_DAC_READ_SEARCH or CAP_DAC_OVERRIDE" in message
    assert "not mounted" not in message
    kind, err, message = out["trace_pipe"]
    assert kind == "BpfPermissionError" and err == errno.EACCES, out
    assert "trace pipe: tracefs is mounted" in message and "not mounted" not in message
