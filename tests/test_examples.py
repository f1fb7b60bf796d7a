"""Every example, built by scripts/build-examples and run for real, checked for what it
reports: exec events, a congestion control carrying a transfer, packets counted and
dropped on a veth pair, a latency histogram, commands typed into bash."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CACHE
from netns import udp_reaches

from pylibbpf import features

pytestmark = pytest.mark.root
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def build() -> Path:
    """scripts/build-examples into the test cache (it rebuilds only what changed)."""
    out = CACHE / "examples-build"
    result = subprocess.run(
        [str(ROOT / "scripts" / "build-examples"), str(out)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def run(*argv: str, timeout: float = 60) -> str:
    result = subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_execsnoop_shows_an_exec_with_its_arguments(build: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLES / "execsnoop.py"),
            "--build",
            str(build),
            "--duration",
            "2",
            "--exec",
            "/bin/echo pylibbpf-exec-test second-arg",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, out + err
    assert out.splitlines()[0].split() == ["TIME", "PCOMM", "PID", "PPID", "RET", "ARGS"]
    rows = [line.split() for line in out.splitlines() if "pylibbpf-exec-test" in line]
    assert len(rows) == 1, out
    _time, comm, _pid, ppid, ret, *args = rows[0]
    assert (comm, int(ppid), int(ret)) == ("echo", process.pid, 0)
    assert args == ["/bin/echo", "pylibbpf-exec-test", "second-arg"]
    assert re.search(r"\d+ exec\(\) calls, 0 lost", out)


def test_tcp_cc_registers_caps_the_window_and_unregisters(build: Path) -> None:
    if not features.has_struct_ops_link():
        pytest.skip("the example uses a struct_ops link (Linux 6.4+)")
    out = run(str(EXAMPLES / "tcp_cc.py"), str(build / "tcp_cc.bpf.o"), "--max-cwnd", "20")
    assert "registered pylibbpf_demo: True" in out
    sent = re.search(r"\) with pylibbpf_demo, final cwnd (\d+)", out)
    assert sent is not None and int(sent[1]) <= 20, out
    seen = re.search(r"BPF saw: (\d+) ACKs.*largest window (\d+) \(ceiling 20\)", out)
    assert seen is not None and int(seen[1]) > 0 and int(seen[2]) == 20, out
    assert "unregistered: True" in out
    available = Path("/proc/sys/net/ipv4/tcp_available_congestion_control").read_text()
    assert "pylibbpf_demo" not in available


def in_namespace(namespace: str, script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["ip", "netns", "exec", namespace, sys.executable, str(EXAMPLES / script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_xdp_counter_counts_udp_on_a_veth(build: Path, veth: tuple[str, str]) -> None:
    ns_a, ns_b = veth
    counter = in_namespace(
        ns_b,
        "xdp_counter.py",
        "vB",
        "--duration",
        "2",
        "--object",
        str(build / "xdp_counter.bpf.o"),
    )
    assert counter.stdout is not None
    assert counter.stdout.readline().strip() == "counting on vB (skb mode)"
    for _ in range(4):
        assert udp_reaches(ns_a, ns_b)  # XDP_PASS: counted, not dropped
    out, err = counter.communicate(timeout=30)
    assert counter.returncode == 0, out + err
    last = [line for line in out.splitlines() if "UDP" in line][-1]
    udp = re.search(r"UDP: (\d+) pkts (\d+) B", last)
    assert udp is not None and int(udp[1]) >= 12, out  # 4 probes x 3 datagrams
    assert int(udp[2]) >= int(udp[1]) * 46  # eth + ip + udp + payload
    assert out.splitlines()[-1] == "detached"


@pytest.mark.parametrize("clsact", [False, True], ids=["default", "clsact"])
def test_tc_firewall_blocks_ports_live(build: Path, veth: tuple[str, str], clsact: bool) -> None:
    ns_a, ns_b = veth
    extra = ["--clsact"] if clsact else []
    firewall = in_namespace(
        ns_b,
        "tc_firewall.py",
        "vB",
        "--block",
        "7001",
        *extra,
        "--object",
        str(build / "tc_firewall.bpf.o"),
    )
    assert firewall.stdin is not None and firewall.stdout is not None

    def command(text: str) -> str:
        assert firewall.stdin is not None and firewall.stdout is not None
        firewall.stdin.write(text + "\n")
        firewall.stdin.flush()
        return firewall.stdout.readline()

    attached = firewall.stdout.readline()
    assert ("clsact" in attached) == (clsact or not features.has_tcx()), attached
    assert firewall.stdout.readline().startswith("blocking: 7001 (0 dropped)")
    assert (udp_reaches(ns_a, ns_b, 7001), udp_reaches(ns_a, ns_b, 7002)) == (False, True)
    assert command("+7002").startswith("blocking: 7001 (3 dropped), 7002 (0 dropped)")
    assert (udp_reaches(ns_a, ns_b, 7001), udp_reaches(ns_a, ns_b, 7002)) == (False, False)
    assert command("-7001").startswith("blocking: 7002 (3 dropped)")
    assert (udp_reaches(ns_a, ns_b, 7001), udp_reaches(ns_a, ns_b, 7002)) == (True, False)
    out, err = firewall.communicate("", timeout=30)
    assert firewall.returncode == 0, out + err
    assert out.strip() == "detached"
    qdiscs = subprocess.run(["tc", "-n", ns_b, "qdisc", "show", "dev", "vB"], capture_output=True)
    assert b"clsact" not in qdiscs.stdout


def test_syscall_latency_histogram(build: Path) -> None:
    # 3 ms sleeps: a 2 ms one can end before 2048 µs, the bucket boundary counted below.
    sleeper = "python3 -c 'import time; [time.sleep(0.003) for _ in range(40)]'"
    out = run(
        str(EXAMPLES / "syscall_latency.py"),
        "--duration",
        "1",
        "--exec",
        sleeper,
        "--object",
        str(build / "syscall_latency.bpf.o"),
    )
    rows = dict(re.findall(r"^\s*(\d+) -> \d+\s+: (\d+)", out, re.MULTILINE))
    assert sum(int(count) for low, count in rows.items() if int(low) >= 2048) >= 40, out
    calls = re.search(r"(\d+) calls, average", out)
    assert calls is not None and int(calls[1]) >= 40


@pytest.fixture
def interactive_bash() -> Iterator[tuple[int, int]]:
    pid, terminal = pty.fork()
    if pid == 0:
        os.execvp("bash", ["bash", "--norc", "--noprofile", "-i"])
    try:
        yield pid, terminal
    finally:
        os.close(terminal)
        os.waitpid(pid, 0)


def test_bashreadline_prints_typed_commands(build: Path, interactive_bash: tuple[int, int]) -> None:
    bash_pid, terminal = interactive_bash
    tracer = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLES / "bashreadline.py"),
            "--duration",
            "4",
            "--object",
            str(build / "bashreadline.bpf.o"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert tracer.stdout is not None
    assert "uretprobe /bin/bash:readline" in tracer.stdout.readline()
    assert tracer.stdout.readline().split() == ["TIME", "PID", "COMMAND"]
    # bash was already inside readline() when the uretprobe went in: that call's return
    # is not probed, so a first line just gets it to call readline() again.
    for line in (b"true", b"echo pylibbpf-$((6*7))", b"exit"):
        time.sleep(0.3)
        os.write(terminal, line + b"\n")
    out, err = tracer.communicate(timeout=30)
    assert tracer.returncode == 0, out + err
    seen = [
        (int(pid), text) for _time, pid, text in (line.split(None, 2) for line in out.splitlines())
    ]
    assert seen[-2:] == [(bash_pid, "echo pylibbpf-$((6*7))"), (bash_pid, "exit")], out


def test_demo_examples_run(build: Path) -> None:
    """The examples the demo runs besides these: a socket filter and a CO-RE tracepoint."""
    out = run(str(EXAMPLES / "socket_counter.py"))
    assert "the kernel ran it on 3 datagrams" in out
    assert "IPv4 frame: PASS" in out and "ARP frame: DROP" in out
    out = run(str(EXAMPLES / "getppid_watch.py"), str(build / "getppid_watch.bpf.o"))
    assert "demo-child-2" in out and "getppid() calls seen" in out
