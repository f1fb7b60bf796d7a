"""Attach kinds with their effects: XDP and tcx on a veth pair between two private network
namespaces, cgroup egress, iterators, and the tracing kinds (fentry, fexit, kprobe,
kretprobe, lsm, tp_btf) — those skip on hosts that refuse them and run in the VM suite."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import pylibbpf as bpf
from pylibbpf import features
from pylibbpf.object import BpfObject

pytestmark = pytest.mark.root
CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Run this thread inside a named network namespace for the duration."""
    libc = ctypes.CDLL(None, use_errno=True)
    original = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET):
            raise OSError(ctypes.get_errno(), "setns")
        yield
    finally:
        libc.setns(original, CLONE_NEWNET)
        os.close(target)
        os.close(original)


@pytest.fixture
def veth() -> Iterator[tuple[str, str]]:
    """Namespaces A and B joined by a veth pair: vA 10.201.0.1 <-> vB 10.201.0.2."""
    tag = uuid.uuid4().hex[:6]
    ns_a, ns_b = f"pylibbpf-a-{tag}", f"pylibbpf-b-{tag}"
    commands = [
        ["ip", "netns", "add", ns_a],
        ["ip", "netns", "add", ns_b],
        [
            "ip",
            "link",
            "add",
            "vA",
            "netns",
            ns_a,
            "type",
            "veth",
            "peer",
            "name",
            "vB",
            "netns",
            ns_b,
        ],
        ["ip", "-n", ns_a, "addr", "add", "10.201.0.1/24", "dev", "vA"],
        ["ip", "-n", ns_b, "addr", "add", "10.201.0.2/24", "dev", "vB"],
        ["ip", "-n", ns_a, "link", "set", "vA", "up"],
        ["ip", "-n", ns_b, "link", "set", "vB", "up"],
    ]
    try:
        for command in commands:
            subprocess.run(command, check=True, capture_output=True)
        yield ns_a, ns_b
    finally:
        for ns in (ns_a, ns_b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def udp_reaches(ns_a: str, ns_b: str) -> bool:
    """Send a datagram from A to B; True if B's socket receives it within a second."""
    with in_netns(ns_b):
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with receiver:
        with in_netns(ns_b):
            receiver.bind(("10.201.0.2", 0))
        port = receiver.getsockname()[1]
        receiver.settimeout(1.0)
        send = (
            f"import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            f"[s.sendto(b'ping', ('10.201.0.2', {port})) for _ in range(3)]"
        )
        subprocess.run(["ip", "netns", "exec", ns_a, sys.executable, "-c", send], check=True)
        try:
            return receiver.recv(16) == b"ping"
        except TimeoutError:
            return False


def only(obj: BpfObject, name: str) -> BpfObject:
    for program_name, program in obj.programs.items():
        program.autoload = program_name == name
    return obj


@pytest.fixture
def kinds(bpf_object: Callable[[str], Path]) -> Iterator[BpfObject]:
    with BpfObject.open(bpf_object("attach_kinds")) as obj:
        yield obj


@pytest.mark.parametrize("kind", ["xdp", "tcx"])
def test_xdp_and_tcx_drop_real_traffic(kinds: BpfObject, veth: tuple[str, str], kind: str) -> None:
    if kind == "tcx" and not features.has_tcx():
        pytest.skip("this kernel has no tcx links (6.6+)")
    ns_a, ns_b = veth
    name, counter = ("xdp_drop_all", "xdp_seen") if kind == "xdp" else ("tc_drop_all", "tc_seen")
    only(kinds, name).load()
    assert udp_reaches(ns_a, ns_b)
    with in_netns(ns_b):
        program = kinds.programs[name]
        link = program.attach_xdp("vB") if kind == "xdp" else program.attach_tc("vB", "ingress")
    with link:
        assert link.info().type == (bpf.LinkType.XDP if kind == "xdp" else bpf.LinkType.TCX)
        assert not udp_reaches(ns_a, ns_b)  # dropped by the program
        assert kinds.variables[counter].value > 0
    assert udp_reaches(ns_a, ns_b)  # detached: traffic flows again


def test_cgroup_egress_refuses_a_process_sends(kinds: BpfObject, cgroup_dir: Path) -> None:
    only(kinds, "cg_drop_all").load()
    script = (
        "import os, socket, sys\n"
        f"open({str(cgroup_dir / 'cgroup.procs')!r}, 'w').write(str(os.getpid()))\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "try:\n    s.sendto(b'x', ('127.0.0.1', 9)); print('sent')\n"
        "except PermissionError:\n    print('refused')\n"
    )

    def send() -> str:
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        return out.stdout.strip()

    with kinds.programs["cg_drop_all"].attach_cgroup(cgroup_dir) as link:
        assert link.info().type == bpf.LinkType.CGROUP
        assert send() == "refused"
        assert kinds.variables["cg_seen"].value > 0
    assert send() == "sent"


def test_task_iterator_lists_this_thread(kinds: BpfObject) -> None:
    only(kinds, "list_tasks").load()
    libc = ctypes.CDLL(None)
    original = Path("/proc/thread-self/comm").read_text().strip().encode()
    marker = f"pyl-it-{uuid.uuid4().hex[:6]}".encode()
    libc.prctl(15, marker, 0, 0, 0)  # PR_SET_NAME
    try:
        with kinds.programs["list_tasks"].attach_iter() as link, link.open_iter() as listing:
            text = listing.read().decode()
    finally:
        libc.prctl(15, original, 0, 0, 0)
    assert any(line.split(" ", 1)[1] == marker.decode() for line in text.splitlines())


TRACING = [
    ("on_fentry", "fentry_seen", "trace"),
    ("on_fexit", "fexit_seen", "trace"),
    ("on_kprobe", "kprobe_seen", "kprobe"),
    ("on_kretprobe", "kretprobe_seen", "kprobe"),
    ("on_sys_enter_btf", "tp_btf_seen", "trace"),
    ("on_file_open", "lsm_seen", "lsm"),
    ("on_fmod_ret", "fmod_ret_seen", "trace"),
    ("on_kprobe_multi", "multi_seen", "kprobe.multi"),
]


@pytest.mark.parametrize(("program", "counter", "kind"), TRACING)
def test_tracing_kinds_count_this_process(
    kinds: BpfObject, program: str, counter: str, kind: str
) -> None:
    if kind.startswith("kprobe") and not Path("/sys/bus/event_source/devices/kprobe").exists():
        pytest.skip("this kernel has no kprobes (no kprobe PMU); covered in the VM suite")
    if kind == "kprobe.multi" and not features.kernel_knows(
        "bpf_link_type", "BPF_LINK_TYPE_KPROBE_MULTI"
    ):
        pytest.skip("this kernel has no kprobe.multi links")
    try:
        only(kinds, program).load()
    except bpf.BpfPermissionError:
        pytest.skip(f"this host refuses {kind} programs (EPERM); covered in the VM suite")
    except bpf.LoadError as error:
        if kind == "lsm" and error.errno in (errno.EINVAL, errno.EPERM):
            pytest.skip("BPF LSM is not enabled on this kernel (lsm= has no 'bpf')")
        raise
    try:
        link = kinds.programs[program].attach()
    except bpf.AttachError as error:
        if kind == "kprobe.multi" and error.errno in (errno.EOPNOTSUPP, 524, errno.EINVAL):
            pytest.skip(f"kprobe.multi links are not available here: {error}")
        raise
    with link:
        assert link.info().type in (
            bpf.LinkType.TRACING,
            bpf.LinkType.PERF_EVENT,
            bpf.LinkType.RAW_TRACEPOINT,
            bpf.LinkType.KPROBE_MULTI,
        )
        for _ in range(5):
            os.getppid()
            Path("/proc/self/comm").read_text()
        assert kinds.variables[counter].value >= 5
