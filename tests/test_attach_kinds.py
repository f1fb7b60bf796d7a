"""Attach kinds with their effects: XDP and tcx on a veth pair between two private network
namespaces, cgroup egress, iterators, and the tracing kinds (fentry, fexit, kprobe,
kretprobe, lsm, tp_btf) — those skip on hosts that refuse them and run in the VM suite."""

from __future__ import annotations

import ctypes
import errno
import gc
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from netns import in_netns, udp_reaches

import pylibbpf as bpf
from pylibbpf import features, syscall
from pylibbpf.loader import BpfObject
from pylibbpf.syscall import perf as perf_module

pytestmark = pytest.mark.root


def only(obj: BpfObject, name: str) -> BpfObject:
    for program_name, program in obj.programs.items():
        program.autoload = program_name == name
    return obj


@pytest.fixture
def kinds(bpf_object: Callable[[str], Path]) -> Iterator[BpfObject]:
    with BpfObject.open(bpf_object("attach_kinds")) as obj:
        yield obj


@pytest.mark.parametrize("kind", ["xdp", "tcx", "xdp-netlink", "tc-netlink"])
def test_xdp_and_tc_drop_real_traffic(kinds: BpfObject, veth: tuple[str, str], kind: str) -> None:
    """bpf_links (XDP, tcx) and the netlink paths (ip link xdp, clsact + cls_bpf)."""
    if kind == "tcx" and not features.has_tcx():
        pytest.skip("this kernel has no tcx links (6.6+)")
    ns_a, ns_b = veth
    xdp = kind.startswith("xdp")
    name, counter = ("xdp_drop_all", "xdp_seen") if xdp else ("tc_drop_all", "tc_seen")
    only(kinds, name).load()
    assert udp_reaches(ns_a, ns_b)
    with in_netns(ns_b):
        program = kinds.programs[name]
        if xdp:
            link = program.attach_xdp("vB", netlink=kind == "xdp-netlink")
        else:
            link = program.attach_tc("vB", "ingress", tcx=kind == "tcx")
    with link:
        if kind.endswith("netlink"):
            assert f"prog/xdp id {program.info().id}" in ip(ns_b, "link", "show", "vB") or (
                f"id {program.info().id}" in tc_filters(ns_b)
            )
            with pytest.raises(bpf.NotSupportedError):
                link.info()
        else:
            assert link.info().type == (bpf.LinkType.XDP if xdp else bpf.LinkType.TCX)
        assert not udp_reaches(ns_a, ns_b)  # dropped by the program
        assert kinds.variables[counter].value > 0
    assert udp_reaches(ns_a, ns_b)  # detached: traffic flows again
    assert "prog/xdp" not in ip(ns_b, "link", "show", "vB")
    assert (
        "clsact"
        not in subprocess.run(
            ["tc", "-n", ns_b, "qdisc", "show", "dev", "vB"], capture_output=True, text=True
        ).stdout
    )  # the qdisc the netlink path created is gone too


@pytest.mark.parametrize("tcx", [True, False], ids=["tcx", "clsact"])
def test_tc_egress_drops_what_a_namespace_sends(
    kinds: BpfObject, veth: tuple[str, str], tcx: bool
) -> None:
    """The same program on A's egress: A's datagrams never leave."""
    if tcx and not features.has_tcx():
        pytest.skip("this kernel has no tcx links (6.6+)")
    ns_a, ns_b = veth
    only(kinds, "tc_drop_all").load()
    with in_netns(ns_a):
        link = kinds.programs["tc_drop_all"].attach_tc("vA", "egress", tcx=tcx)
    with link:
        assert not udp_reaches(ns_a, ns_b)
        assert kinds.variables["tc_seen"].value > 0
    assert udp_reaches(ns_a, ns_b)
    qdiscs = subprocess.run(["tc", "-n", ns_a, "qdisc", "show", "dev", "vA"], capture_output=True)
    assert b"clsact" not in qdiscs.stdout


def test_netlink_xdp_refuses_to_replace_unless_asked(
    kinds: BpfObject, veth: tuple[str, str]
) -> None:
    _, ns_b = veth
    only(kinds, "xdp_drop_all").load()
    program = kinds.programs["xdp_drop_all"]
    with in_netns(ns_b):
        first = program.attach_xdp("vB", netlink=True)
        with pytest.raises(bpf.AttachError, match="already has an XDP program.*replace=True"):
            program.attach_xdp("vB", netlink=True)
        second = program.attach_xdp("vB", replace=True)
    first.close()
    second.close()
    assert "prog/xdp" not in ip(ns_b, "link", "show", "vB")


def ip(netns: str, *args: str) -> str:
    return subprocess.run(["ip", "-n", netns, *args], capture_output=True, text=True).stdout


def tc_filters(netns: str) -> str:
    out = subprocess.run(
        ["tc", "-n", netns, "filter", "show", "dev", "vB", "ingress"],
        capture_output=True,
        text=True,
    )
    return out.stdout


@pytest.mark.parametrize("legacy", [False, True], ids=["link", "prog_attach"])
def test_cgroup_egress_refuses_a_process_sends(
    kinds: BpfObject, cgroup_dir: Path, legacy: bool
) -> None:
    """A cgroup link, and PROG_ATTACH (what kernels before 5.7 get) detached on close."""
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

    with kinds.programs["cg_drop_all"].attach_cgroup(cgroup_dir, legacy=legacy) as link:
        if legacy:
            cgroup_fd = os.open(cgroup_dir, os.O_RDONLY)
            try:
                query = syscall.prog_query(cgroup_fd, bpf.AttachType.CGROUP_INET_EGRESS)
            finally:
                os.close(cgroup_fd)
            assert query.prog_ids == [kinds.programs["cg_drop_all"].info().id]
        else:
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


def test_kprobe_through_tracefs_when_the_pmu_is_missing(
    kinds: BpfObject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kernels without the kprobe PMU: a kprobe_events probe, removed with the link."""
    events = Path("/sys/kernel/tracing/kprobe_events")
    if not events.exists():
        pytest.skip("this kernel has no kprobes (no kprobe_events); covered in the VM suite")
    real_pmu = perf_module.pmu

    def no_kprobe_pmu(name: str) -> tuple[int, int]:
        if name == "kprobe":
            raise bpf.NotSupportedError("no kprobe PMU (test)", errno.ENOTSUP)
        return real_pmu(name)

    monkeypatch.setattr(perf_module, "pmu", no_kprobe_pmu)
    only(kinds, "on_kprobe").load()
    with kinds.programs["on_kprobe"].attach() as link:
        assert f"pylibbpf_{os.getpid()}_" in events.read_text()
        for _ in range(5):
            Path("/proc/self/comm").read_text()
        assert kinds.variables["kprobe_seen"].value >= 5
        assert link.info().type == bpf.LinkType.PERF_EVENT
    assert f"pylibbpf_{os.getpid()}_" not in events.read_text()


def test_prog_attach_is_undone_when_the_link_is_collected(
    kinds: BpfObject, cgroup_dir: Path
) -> None:
    """No bpf_link behind a PROG_ATTACH: dropping the Link must still detach."""
    only(kinds, "cg_drop_all").load()

    def attached() -> list[int]:
        fd = os.open(cgroup_dir, os.O_RDONLY)
        try:
            return syscall.prog_query(fd, bpf.AttachType.CGROUP_INET_EGRESS).prog_ids
        finally:
            os.close(fd)

    link = kinds.programs["cg_drop_all"].attach_cgroup(cgroup_dir, legacy=True)
    assert attached() == [kinds.programs["cg_drop_all"].info().id]
    del link
    gc.collect()
    assert attached() == []
